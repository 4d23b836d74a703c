"""`campaign optouts FILE`: record stop-word replies into the campaign's first suppression file.

Exit codes: 0 done (also when nothing was sent yet), 1 user error, 3 some chats could not be
read (what was found is recorded; run it again: it never writes a line twice).
"""

from __future__ import annotations

import asyncio
import sys
import time

import click

from runner.audience.mask import display_chat
from runner.cli._base import main, user_errors
from runner.errors import CampaignError, Problem, StoppedEarly


def since_ms(text: str | None, now: float) -> int | None:
    """`--since`: an ISO 8601 instant with an offset, or a duration back from now (`7d`)."""
    if text is None:
        return None
    from runner.campaign.load import parse_delay
    from runner.campaign.schedule import ScheduleError, parse_instant

    seconds = parse_delay(text)
    if seconds is not None:
        return int((now - seconds) * 1000)
    try:
        return int(parse_instant(text, ()).timestamp() * 1000)
    except ScheduleError as err:
        raise CampaignError(Problem(f"--since: {err}", hint=f"{err.hint}, or a duration such as 7d")) from None


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--state", "state_dir", default=".runner", show_default=True,
              help="where the campaign's journal is")
@click.option("--base-url", default=None, help="API base URL (default: $BLOOIO_BASE_URL or the live API)")
@click.option("--since", "since", default=None, metavar="TIME",
              help="read replies after TIME instead of each chat's first send: ISO 8601 with an "
                   "offset, or a duration back from now such as 7d")
@click.option("--rate", default=5.0, show_default=True, type=click.FloatRange(min=0.01),
              help="requests per second at most")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 32),
              help="requests in flight")
@click.option("--max-attempts", default=5, show_default=True, type=click.IntRange(1, 10),
              help="tries per request on 429, 5xx and network errors (with backoff)")
@click.option("--dry-run", is_flag=True, help="print what would be added; write nothing")
@click.option("--show-recipients", is_flag=True, help="print phone numbers and emails unmasked")
@user_errors(None)
def optouts(file: str, state_dir: str, base_url: str | None, since: str | None, rate: float,
            concurrency: int, max_attempts: int, dry_run: bool, show_recipients: bool) -> None:
    """Record STOP (UNSUBSCRIBE, CANCEL, ...) replies into the first `suppress` file."""
    from runner.audience.suppress import suppression_target
    from runner.campaign.load import load_campaign
    from runner.run.optouts import chats_to_check, collect, not_yet_held, record
    from runner.store.journal import Journal, journal_path

    campaign = load_campaign(file)
    if not campaign.suppress:
        raise CampaignError(campaign.doc.problem((), "the campaign has no `suppress` file to record opt-outs in",
                                                 "add e.g.  suppress: [suppression/optouts.txt]  (the file "
                                                 "may start empty; it is relative to the campaign file)"))
    target = suppression_target(campaign.doc, campaign.base_dir, campaign.suppress)
    from runner.http.client import api_key_from_env, base_url_from

    api_key = api_key_from_env("optouts")
    base = base_url_from(base_url)
    lower = since_ms(since, time.time())

    path = journal_path(state_dir, campaign.id)
    if not path.is_file():
        click.echo(f"nothing sent yet for {campaign.id}: no journal at {path} (is --state right?)", err=True)
        click.echo("added 0 opt-outs")
        sys.exit(0)
    with Journal(path) as journal:
        checks = chats_to_check(journal.entries(), lower)

    result = asyncio.run(collect(checks, base_url=base, api_key=api_key, concurrency=concurrency,
                                 rate_per_second=rate, max_attempts=max_attempts))
    if dry_run:
        added = not_yet_held(target, result.optouts, str(campaign.path))
    else:
        added = record(target, result.optouts, str(campaign.path))

    click.echo(f"checked {result.chats:,} chats ({result.requests:,} requests, {result.replies:,} replies read)")
    verb = "would add" if dry_run else "added"
    click.echo(f"{verb} {len(added):,} opt-out{'s' if len(added) != 1 else ''} to {target}")
    for o in added:
        click.echo(f"  {display_chat(o.chat, show_recipients)}  {o.word}  {o.date}")
    already = len(result.optouts) - len(added)
    if already:
        click.echo(f"{already:,} already in the file")
    if result.not_found:
        click.echo(f"{result.not_found:,} chats unknown to the API (no replies to read)", err=True)
    if result.failed:
        for chat, reason in result.failed[:5]:
            click.echo(f"could not read {display_chat(chat, show_recipients)}: {reason}", err=True)
        raise StoppedEarly(f"{len(result.failed):,} chats could not be read",
                           hint="run the same command again later; nothing is written twice")
    sys.exit(0)

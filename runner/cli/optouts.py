"""`campaign optouts FILE`: record stop-word replies into the campaign's first suppression file.

Exit codes (runner.exitcodes): 0 done (also when nothing was sent yet), 1 user error, 3 some chats could not be
read (what was found is recorded; run it again: it never writes a line twice), or another run
holds the campaign's journal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runner import exitcodes
from runner.audience.mask import display_chat
from runner.cli._base import http_stack_option, state_option, user_errors
from runner.cli.console import echo
from runner.errors import StoppedEarly
from runner.run.optouts import mask_text
from runner.run.optouts_session import OptoutsOutcome, collect_optouts


def _print_text(outcome: OptoutsOutcome, dry_run: bool, show: bool) -> None:
    result, added, target = outcome.result, outcome.added, outcome.target
    echo(f"checked {result.chats:,} chats ({result.requests:,} requests, {result.replies:,} replies read)")
    verb = "would add" if dry_run else "added"
    echo(f"{verb} {len(added):,} opt-out{'s' if len(added) != 1 else ''} to {target}")
    for o in added:
        echo(f"  {display_chat(o.chat, show)}  {o.word}  {o.date}")
    if outcome.already_held:
        echo(f"{outcome.already_held:,} already in the file")
    if result.reviews:
        echo(f"{len(result.reviews):,} repl{'ies' if len(result.reviews) != 1 else 'y'} to review "
                   "(a stop word, not at the start; not recorded: add the chat to the file if it "
                   "is an opt-out):")
        for r in result.reviews:
            text = r.text if show else mask_text(r.text)
            echo(f"  {display_chat(r.chat, show)}  {r.word}  {r.date}  {json.dumps(text, ensure_ascii=False)}")


@click.command(epilog="""\b
Exit codes:
  0  done (also when nothing was sent yet)
  1  a user error (invalid campaign, no key)
  3  stopped early (the key was refused) or some chats could not be read: what was found is
     recorded; run it again (it never writes a line twice); or another run holds the
     campaign's journal
""")
@click.argument("file", type=click.Path(dir_okay=False))
@state_option("Where the campaign's journal is.")
@click.option("--base-url", default=None, metavar="URL",
              help="API base URL [default: BLOOIO_BASE_URL if set, else the live API]")
@click.option("--since", "since", default=None, metavar="TIME",
              help="read replies after TIME instead of each chat's first send: ISO 8601 with an "
                   "offset, or a duration back from now such as 7d")
@click.option("--rate", default=5.0, show_default=True, type=click.FloatRange(min=0.01, max=1e6),
              help="requests per second at most")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 32),
              help="requests in flight")
@click.option("--max-attempts", default=5, show_default=True, type=click.IntRange(1, 10),
              help="tries per request on 429, 5xx and network errors (with backoff)")
@http_stack_option()
@click.option("--dry-run", is_flag=True, help="print what would be added; write nothing")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--show-recipients", is_flag=True, help="print phone numbers and emails unmasked")
@user_errors()
def optouts(file: str, state_dir: Path, base_url: str | None, since: str | None, rate: float,
            concurrency: int, max_attempts: int, http_stack: str | None, dry_run: bool, fmt: str,
            show_recipients: bool) -> None:
    """Record STOP (UNSUBSCRIBE, CANCEL, ...) replies into the first `suppress` file."""
    outcome = collect_optouts(file, state_dir=state_dir, base_url=base_url, since=since, rate=rate,
                              concurrency=concurrency, max_attempts=max_attempts, dry_run=dry_run,
                              http_stack=http_stack)
    if not outcome.sent_yet:
        echo(f"nothing sent yet for {outcome.journal.stem}: no journal at {outcome.journal} "
                   "(is --state right?)", err=True)
    if fmt == "json":
        echo(json.dumps(outcome.to_dict(show_recipients), indent=2, ensure_ascii=False))
    elif not outcome.sent_yet:
        echo("added 0 opt-outs")
    else:
        _print_text(outcome, dry_run, show_recipients)
    result = outcome.result
    if result.not_found:
        echo(f"{result.not_found:,} chats unknown to the API (no replies to read)", err=True)
    if result.failed:
        for chat, reason in result.failed[:5]:
            echo(f"could not read {display_chat(chat, show_recipients)}: {reason}", err=True)
        raise StoppedEarly(f"{len(result.failed):,} chats could not be read",
                           hint="run the same command again later; nothing is written twice")
    sys.exit(outcome.exit_code if outcome.sent_yet else exitcodes.OK)

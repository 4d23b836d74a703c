"""`campaign reach FILE`: pre-flight check of who gets iMessage, only SMS, or nothing.

Exit codes: 0 checked (unreachable recipients are a finding, not an error), 1 user error,
3 stopped early (the API key was refused, Ctrl-C): the answers so far are cached.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from runner.cli._base import api_options, main, user_errors
from runner.errors import CampaignError, Problem


def _max_age(text: str) -> float:
    from runner.campaign.load import parse_delay

    seconds = parse_delay(text)
    if seconds is None:
        raise CampaignError(Problem(f"--max-age: {text!r} is not a duration",
                                    hint="e.g. 30m, 12h or 7d (0s re-checks everything)"))
    return float(seconds)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@api_options("Where the answers are cached.")
@click.option("--max-age", default="7d", show_default=True,
              help="Reuse cached answers younger than this (45s, 30m, 2h, 7d).")
@click.option("--show-recipients", is_flag=True, help="Do not mask phone numbers and emails.")
@click.option("--request-timeout", type=click.FloatRange(0.1, 600), default=30.0,
              show_default=True, help="Seconds per HTTP request.")
@click.option("--backoff-base", type=click.FloatRange(0, 60), default=0.5, hidden=True)
@user_errors(None)
def reach(file: Path, fmt: str, base_url: str | None, rate: float | None,
          concurrency: int | None, state_dir: Path, max_age: str, show_recipients: bool,
          request_timeout: float, backoff_base: float) -> None:
    """Check each phone and email's capabilities (iMessage, SMS) before a send; cached."""
    from runner.campaign.load import load_campaign
    from runner.cli.send import _run_loop, resolve_options
    from runner.http.client import api_key_from_env
    from runner.planning.planner import Planner
    from runner.run.reach import (
        Audience,
        CapabilityCache,
        CapabilityChecker,
        ReachOptions,
        analyse,
        contacts_of,
        render_text,
        step_features,
    )
    from runner.run.send import install_signal_handlers

    age = _max_age(max_age)
    campaign = load_campaign(file)
    send = resolve_options(campaign.send_options, base_url=base_url, rate=rate,
                           concurrency=concurrency, timeout=request_timeout, max_attempts=4)
    planner = Planner(campaign)
    audience: list[Audience] = []
    skipped_groups = 0
    for rec, rendered in planner.recipients():
        chat = rec.chat or ""
        if chat.startswith("grp_"):
            skipped_groups += 1
            continue
        audience.append(Audience(chat, {
            r.step.id: step_features(r.body, r.step.reply_to_step is not None)
            for r in rendered if r.body is not None}))
    planner.raise_if_invalid()
    contacts = sorted({c for a in audience for c in contacts_of(a.chat)})

    cache = CapabilityCache(state_dir, send.base_url)
    try:
        now = time.time()
        caps = cache.fresh(contacts, age, now)
        missing = [c for c in contacts if c not in caps]
        stop_reason = None
        failed: dict[str, str] = {}
        if missing:
            checker = CapabilityChecker(
                api_key=api_key_from_env("reach"),
                options=ReachOptions(base_url=send.base_url, rate_per_second=send.rate_per_second,
                                     concurrency=send.concurrency,
                                     request_timeout=request_timeout, backoff_base=backoff_base))

            async def go():  # type: ignore[no-untyped-def]
                remove = install_signal_handlers(checker)  # type: ignore[arg-type]
                try:
                    return await checker.check(missing)
                finally:
                    remove()

            result = _run_loop(go())
            cache.put(result.caps.values())
            caps.update(result.caps)
            stop_reason, failed = result.stop_reason, result.failed
    finally:
        cache.close()
    doc = analyse(audience, caps, skipped_groups, show_recipients)
    doc["cache_note"] = (f"{len(contacts) - len(missing):,} from the cache (younger than "
                         f"{max_age}), {len(missing):,} asked now")
    doc["no_answer"] = len(failed)
    doc["stop_reason"] = stop_reason
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(doc), nl=False)
    sys.exit(3 if stop_reason else 0)

"""`campaign track FILE`: poll the delivery status of accepted messages into the journal.

Exit codes: 0 every accepted message is final (delivered, failed or cancelled), 1 user error,
3 some are still in flight (timeout, Ctrl-C, a refused key, retries exhausted): run it again
later; it resumes where it stopped and never loses what it learnt.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import click

from runner.cli._base import api_options, main, user_errors
from runner.errors import StoppedEarly
from runner.http.client import api_key_from_env
from runner.run.track import Tracker, TrackOptions, TrackResult, TrackStats
from runner.store.journal import Journal

_STOP_TEXT = {
    None: "",
    "timeout": " (the --timeout passed; run track again later)",
    "interrupted": " (stopped by Ctrl-C; run track again to resume)",
    "unauthorized": " (stopped: the API key was refused (401))",
    "retries_exhausted": " (some status requests kept failing; run track again later)",
}


def track_options(campaign_send: dict[str, Any], *, base_url: str | None, rate: float | None,
                  concurrency: int | None, **rest: Any) -> TrackOptions:
    """The send options' base URL, rate and concurrency (campaign, then flags) plus ``rest``."""
    from runner.cli.send import resolve_options

    send = resolve_options(campaign_send, base_url=base_url, rate=rate, concurrency=concurrency,
                           timeout=rest.get("request_timeout", 30.0), max_attempts=6)
    return TrackOptions(base_url=send.base_url, rate_per_second=send.rate_per_second,
                        concurrency=send.concurrency, **rest)


def summary_text(result: TrackResult) -> str:
    s = result.stats
    final = s.total - s.open
    by = ", ".join(f"{k} {v:,}" for k, v in sorted(s.statuses.items()))
    return (f"tracked {s.total:,} messages: {final:,} final, {s.open:,} in flight; this run "
            f"{s.polls:,} status requests, {s.became_final:,} became final"
            + (f" ({by})" if by else "") + f" in {result.duration:,.1f} s"
            + _STOP_TEXT.get(result.stop_reason, f" (stopped: {result.stop_reason})"))


def _progress_line(s: TrackStats) -> str:
    elapsed = max(time.monotonic() - s.started, 1e-9)
    return (f"{s.total - s.open:,}/{s.total:,} final  in flight {s.open:,}  "
            f"polls {s.polls:,} ({s.polls / elapsed:,.0f}/s)  errors {s.poll_errors:,}")


async def _track(tracker: Tracker, progress: bool) -> TrackResult:
    from runner.run.send import install_signal_handlers

    remove = install_signal_handlers(tracker)  # type: ignore[arg-type]
    tty = sys.stderr.isatty()

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.25 if tty else 2.0)
            line = _progress_line(tracker.stats)
            click.echo("\r\x1b[2K" + line if tty else line, err=True, nl=not tty)

    task = asyncio.create_task(ticker()) if progress else None
    try:
        return await tracker.run()
    finally:
        remove()
        if task is not None:
            task.cancel()
            if tty:
                click.echo("\r\x1b[2K", err=True, nl=False)


def run_tracking(journal: Journal, revision: int, options: TrackOptions, api_key: str,
                 progress: bool) -> TrackResult:
    """Track one journal to the end (or the timeout); used by `track` and `send --track`."""
    from runner.cli.send import _run_loop

    tracker = Tracker(journal, api_key=api_key, options=options, revision=revision)
    try:
        tracker.load()
        return _run_loop(_track(tracker, progress))
    except sqlite3.Error as err:
        raise StoppedEarly(f"the journal could not be written: {err}", file=str(journal.path),
                           hint="check the disk and permissions, then run track again") from None


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@api_options()
@click.option("--timeout", type=click.FloatRange(0, 86400), default=300.0, show_default=True,
              help="Stop after this many seconds (exit 3 if messages are still in flight).")
@click.option("--request-timeout", type=click.FloatRange(0.1, 600), default=30.0,
              show_default=True, help="Seconds per HTTP request.")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=6, show_default=True,
              help="Failed status requests in a row before a message is left for a later run.")
@click.option("--progress/--no-progress", default=True, help="Show progress on stderr.")
# Polling pace: hidden because the defaults suit the API; tests and rehearsals shorten them.
@click.option("--first-poll", type=click.FloatRange(0, 3600), default=1.0, hidden=True)
@click.option("--poll-cap", type=click.FloatRange(0.001, 3600), default=60.0, hidden=True)
@click.option("--backoff-base", type=click.FloatRange(0, 60), default=0.5, hidden=True)
@click.option("--backoff-cap", type=click.FloatRange(0, 600), default=30.0, hidden=True)
@user_errors(None)
def track(file: Path, base_url: str | None, rate: float | None, concurrency: int | None,
          state_dir: Path, timeout: float, request_timeout: float, max_attempts: int,
          progress: bool, first_poll: float, poll_cap: float, backoff_base: float,
          backoff_cap: float) -> None:
    """Poll delivery status of accepted messages into the journal until all are final."""
    from runner.campaign.load import load_campaign

    campaign = load_campaign(file)
    options = track_options(campaign.send_options, base_url=base_url, rate=rate,
                            concurrency=concurrency, request_timeout=request_timeout,
                            timeout=timeout, max_attempts=max_attempts, first_poll=first_poll,
                            poll_cap=poll_cap, backoff_base=backoff_base,
                            backoff_cap=backoff_cap)
    api_key = api_key_from_env("track")
    with Journal.existing(state_dir, campaign.id, file) as journal:
        result = run_tracking(journal, campaign.revision, options, api_key, progress)
    click.echo(summary_text(result))
    sys.exit(result.exit_code)

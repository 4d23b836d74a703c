"""`campaign track FILE`: poll the delivery status of accepted messages into the journal.

Exit codes (runner.exitcodes): 0 every accepted message is final (delivered, failed or
cancelled), 1 user error, 3 some are still in flight (timeout, Ctrl-C, a refused key, retries
exhausted): run it again later; it resumes where it stopped and never loses what it learnt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner.cli._base import api_options, user_errors
from runner.cli.console import echo
from runner.cli.progress import TrackProgress, terminal_console, track_summary
from runner.http.client import base_url_from
from runner.http.retry import StopReason
from runner.report.words import replies_line, unauthorized_hint
from runner.run import session

_EPILOG = """\b
Exit codes:
  0  every accepted message is final (delivered, failed or cancelled)
  1  a user error (no journal, no key, invalid campaign)
  3  some are still in flight (the --timeout passed, Ctrl-C, retries exhausted), some chats'
     replies could not be read, or the key was refused: run it again later; it resumes
     where it stopped
"""


@click.command(epilog=_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@api_options()
@click.option(
    "--timeout",
    type=click.FloatRange(0, 86400),
    default=300.0,
    show_default=True,
    help="Stop after this many seconds (exit 3 if messages are still in flight).",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0.1, 600),
    default=30.0,
    show_default=True,
    help="Seconds per HTTP request.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=6,
    show_default=True,
    help="Failed status requests in a row before a message is left for a later run.",
)
@click.option(
    "--replies/--no-replies",
    default=True,
    show_default=True,
    help="Then read the inbound replies of every messaged chat (one request per chat) "
    "into the journal, for the report's reply and opt-out rates.",
)
@click.option(
    "--keep-reply-text",
    is_flag=True,
    help="Store each reply's text in the journal (by default only its length and "
    "whether it is a stop word).",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    help="Show progress on stderr: a bar on a terminal, a plain line now and then otherwise.",
)
@click.option(
    "--now",
    "now",
    metavar="TIME|emulator",
    help="Rehearsal time, against a non-live base URL only: act as if it were TIME "
    "(ISO 8601 with an offset), or the emulator's clock ('emulator').",
)
# Polling pace: hidden because the defaults suit the API; tests and rehearsals shorten them.
@click.option("--first-poll", type=click.FloatRange(0, 3600), default=1.0, hidden=True)
@click.option("--poll-cap", type=click.FloatRange(0.001, 3600), default=60.0, hidden=True)
@click.option("--backoff-base", type=click.FloatRange(0, 60), default=0.5, hidden=True)
@click.option("--backoff-cap", type=click.FloatRange(0, 600), default=30.0, hidden=True)
@user_errors(None)
def track(
    file: Path,
    base_url: str | None,
    rate: float | None,
    concurrency: int | None,
    http_stack: str | None,
    state_dir: Path,
    timeout: float,
    request_timeout: float,
    max_attempts: int,
    replies: bool,
    keep_reply_text: bool,
    progress: bool,
    first_poll: float,
    poll_cap: float,
    backoff_base: float,
    backoff_cap: float,
    now: str | None,
) -> None:
    """Poll delivery status of accepted messages into the journal until all are final."""
    ticker = TrackProgress(console=terminal_console() if progress else None)
    try:
        result = session.track(
            file,
            state_dir=state_dir,
            base_url=base_url,
            rate=rate,
            concurrency=concurrency,
            http_stack=http_stack,
            on_tick=ticker.tick if progress else None,
            tick_every=ticker.every_s,
            request_timeout=request_timeout,
            timeout=timeout,
            max_attempts=max_attempts,
            first_poll=first_poll,
            poll_cap=poll_cap,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            replies=replies,
            keep_reply_text=keep_reply_text,
            now=now,
        )
    finally:
        ticker.finish()
    echo(track_summary(result))
    line = replies_line(result.stats)
    if line:
        echo(line)
    if result.stop_reason is StopReason.UNAUTHORIZED:
        echo(unauthorized_hint(base_url_from(base_url)), err=True)
    sys.exit(result.exit_code)

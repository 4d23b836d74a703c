"""`campaign reach FILE`: pre-flight check of who gets iMessage, only SMS, or nothing.

Exit codes (runner.exitcodes): 0 checked (unreachable recipients are a finding, not an error),
1 user error, 3 stopped early (the API key was refused, Ctrl-C) or no check got an answer: the
answers so far are cached.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from runner.cli._base import api_options, user_errors
from runner.cli.console import echo
from runner.http.client import base_url_from
from runner.http.retry import StopReason
from runner.report.words import unauthorized_hint
from runner.run.reach import render_text
from runner.run.reach_session import reach as check_reach

_EPILOG = """\b
Exit codes:
  0  checked (unreachable recipients are a finding, not an error)
  1  a user error (invalid campaign, no key when something must be asked)
  3  stopped early (the key was refused, Ctrl-C): the answers so far are cached
"""


@click.command(epilog=_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@api_options("Where the answers are cached.")
@click.option(
    "--max-age",
    default="7d",
    show_default=True,
    help="Reuse cached answers younger than this (45s, 30m, 2h, 7d).",
)
@click.option("--show-recipients", is_flag=True, help="Do not mask phone numbers and emails.")
@click.option(
    "--request-timeout",
    type=click.FloatRange(0.1, 600),
    default=30.0,
    show_default=True,
    help="Seconds per HTTP request.",
)
@click.option("--backoff-base", type=click.FloatRange(0, 60), default=0.5, hidden=True)
@user_errors(None)
def reach(
    file: Path,
    fmt: str,
    base_url: str | None,
    rate: float | None,
    concurrency: int | None,
    http_stack: str | None,
    state_dir: Path,
    max_age: str,
    show_recipients: bool,
    request_timeout: float,
    backoff_base: float,
) -> None:
    """Check each phone and email's capabilities (iMessage, SMS) before a send; cached."""
    outcome = check_reach(
        file,
        state_dir=state_dir,
        max_age=max_age,
        show_recipients=show_recipients,
        base_url=base_url,
        rate=rate,
        concurrency=concurrency,
        request_timeout=request_timeout,
        backoff_base=backoff_base,
        http_stack=http_stack,
    )
    if fmt == "json":
        echo(json.dumps(outcome.doc, indent=2, ensure_ascii=False))
    else:
        echo(render_text(outcome.doc), nl=False)
    if outcome.asked and not outcome.answered and not outcome.stop_reason:
        echo(
            f"no check got an answer ({outcome.asked:,} asked): is the API reachable at "
            "--base-url / BLOOIO_BASE_URL? Run the same command again later.",
            err=True,
        )
    if outcome.stop_reason == StopReason.UNAUTHORIZED:
        echo(unauthorized_hint(base_url_from(base_url)), err=True)
    sys.exit(outcome.exit_code)

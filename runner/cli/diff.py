"""`campaign diff FILE`: what a change to a campaign does, for whom, against a git ref."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner import exitcodes
from runner.cli._base import policy_option, user_errors
from runner.cli.console import echo
from runner.report.diff import render_json, render_markdown, render_text
from runner.run.diff_session import campaign_diff


@click.command(
    epilog="""\b
Exit codes:
  0  the diff was printed (whatever it says)
  1  a user error: an invalid campaign on either side, not a git repository, an unknown ref
"""
)
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--base",
    "base",
    metavar="REF",
    help="git ref to compare with [default: the merge base with the default branch (origin/HEAD, "
    "else main, else master), else with the upstream branch, else HEAD]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="markdown fits a pull-request comment or a CI step summary",
)
@click.option("--show-recipients", is_flag=True, help="print phone numbers and emails unmasked")
@policy_option()
@user_errors()
def diff(file: str, base: str | None, fmt: str, show_recipients: bool, policy: Path | None) -> None:
    """Compare a campaign with its version at a git ref: who gets what, what is sent again (no network, no API key)."""
    doc = campaign_diff(file, base=base, show_recipients=show_recipients, policy=policy)
    render = {"json": render_json, "markdown": render_markdown}.get(fmt, render_text)
    echo(render(doc), nl=False)
    sys.exit(exitcodes.OK)

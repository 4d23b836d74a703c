"""`campaign status`: every campaign of a state and where it stands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from runner.cli._base import state_option, user_errors
from runner.run.status_session import CampaignStatus
from runner.run.status_session import status as state_status


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)) if at else "-"


def _line(s: CampaignStatus) -> str:
    r = s.requests
    what = s.state
    if s.holder:
        what += f" ({s.holder})"
    elif s.next_due:
        what += f" (next due {_when(s.next_due)})"
    return (
        f"{s.campaign}: {what}; accepted {r.get('accepted', 0)}, failed "
        f"{r.get('failed', 0) + r.get('expired', 0)}, pending "
        f"{r.get('pending', 0) + r.get('sending', 0) + r.get('scheduled', 0)}; opted out "
        f"{s.opted_out}; last run {_when(s.last_run_at)} by {s.last_run_by or '-'}"
    )


@click.command(
    epilog="""\b
Exit codes:
  0  listed (also when the state holds no campaign)
  1  the state cannot be read
  3  the state database is unreachable
"""
)
@state_option("The state to list.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@user_errors()
def status(state_dir: Path | str, fmt: str) -> None:
    """List every campaign of a state: run state, requests, opt-outs, last run by whom."""
    label, rows = state_status(state_dir)
    if fmt == "json":
        click.echo(json.dumps({"state": label, "campaigns": [s.to_dict() for s in rows]}, indent=2))
        return
    if not rows:
        click.echo(f"no campaign in {label}")
    for s in rows:
        click.echo(_line(s))

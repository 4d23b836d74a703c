"""`campaign plan FILE`: a dry run. Exit code 0 when the campaign plans (warnings allowed), 1 if
it is invalid."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from runner import exitcodes
from runner.campaign.load import load_campaign
from runner.campaign.schedule import ScheduleError
from runner.cli._base import policy_option, state_option, user_errors
from runner.cli.console import echo
from runner.contract import DEFAULT_BASE_URL
from runner.errors import CampaignError, Problem
from runner.report.plan import render_json, render_markdown, render_text
from runner.run.dry_run import PlanOutcome
from runner.run.dry_run import plan as dry_run

_EPILOG = """\b
Exit codes:
  0  the campaign plans (warnings allowed)
  1  it is invalid (every problem is listed), or a path cannot be read or written
"""


def _plan_with_journal(
    file: str, state_dir: str | Path | None, policy: Path | None = None, **kwargs: Any
) -> PlanOutcome:
    """Plan against an earlier run's journal when one exists. The journal (SQLite) is imported
    only then: a plan without one must start without loading SQLite (issue 11), so this is a
    deliberate lazy import in the command layer, not in the library."""
    from runner.store.state import FolderState
    from runner.store.where import locate_state

    campaign = load_campaign(file, policy=policy)
    state = locate_state(state_dir, file, policy=campaign.policy, campaign_id=campaign.id)
    if state.has_ledger():
        from runner.store.backend import existing_ledger

        # The state's consent ledger: its opted-out and held chats are planned out.
        with existing_ledger(state) as ledger:
            kwargs["consent"] = ledger.standings() if ledger is not None else None
    if not isinstance(state, FolderState) or any(state.path.glob("*.sqlite")):
        # What the state sent counts against the frequency limits: "capped" in the plan.
        from runner.campaign.schedule import parse_at
        from runner.run.caps import caps_of

        try:
            now = parse_at(kwargs.get("at") or "now").timestamp()
        except ScheduleError:
            now = None  # dry_run says what is wrong with --at
        kwargs["caps"] = caps_of(campaign, state, now, "plan")
    if not state.has_journal(campaign.id):
        return dry_run(campaign, **kwargs)
    from runner.store.backend import open_journal

    with open_journal(state, campaign.id) as journal, journal.snapshot("plan"):
        return dry_run(campaign, journal=journal, **kwargs)


@click.command(epilog=_EPILOG)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown fits a pull-request comment or a CI step summary",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="write every request, one JSON object a line (byte-identical on re-run)",
)
@state_option("Where an earlier run's journal is looked for (its accepted requests are marked).")
@click.option(
    "--previews",
    default=3,
    show_default=True,
    type=click.IntRange(0, 100),
    help="how many recipients to preview",
)
@click.option("--show-recipients", is_flag=True, help="print phone numbers and emails unmasked")
@policy_option()
@click.option(
    "--at",
    "at",
    default=None,
    metavar="TIME",
    help="with a schedule or delays: count what is due at TIME (ISO 8601 with offset, or 'now', the default)",
)
@click.option(
    "--now",
    "now",
    default=None,
    metavar="TIME|emulator",
    help="rehearsal time, against a non-live BLOOIO_BASE_URL only: count what is due at "
    "TIME, or at the emulator's clock ('emulator')",
)
@user_errors()
def plan(
    file: str,
    fmt: str,
    out: str | None,
    state_dir: Path,
    previews: int,
    show_recipients: bool,
    policy: Path | None,
    at: str | None,
    now: str | None,
) -> None:
    """Dry run: render every request (keys included) with no network and no API key."""
    if now is not None:
        if at is not None:
            raise CampaignError(
                Problem(
                    "give --at or --now, not both",
                    hint="--at counts at any time; --now is a rehearsal's clock",
                )
            )
        # Lazy: the rehearsal clock may ask the emulator over HTTP; a plain plan loads no such
        # module (issue 11's start-up budget).
        from runner.run.rehearsal import rehearsal_at

        at = rehearsal_at(now, os.environ.get("BLOOIO_BASE_URL") or DEFAULT_BASE_URL)
    outcome = _plan_with_journal(
        file, state_dir, policy, out=out, show_recipients=show_recipients, previews=previews, at=at
    )
    summary, extra, effects = outcome.summary, outcome.extra, outcome.effects
    if fmt == "json":
        echo(render_json(summary, extra=extra), nl=False)
    elif fmt == "markdown":
        echo(render_markdown(summary, file=file, effects=effects, extra=extra), nl=False)
    else:
        echo(render_text(summary, file=file, effects=effects, extra=extra), nl=False)
    if out and fmt == "text":
        echo(f"wrote {summary.requests:,} requests to {out}", err=True)
    # Problems that are only warnings (duplicates, etc.) are in the summary's warnings.
    sys.exit(exitcodes.OK)

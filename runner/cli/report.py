"""`campaign report FILE`: the last run's report from the journal (no network, no key).

``--format html`` writes one self-contained page (inline SVG charts, no scripts, nothing
fetched) that can travel as an e-mail attachment.
"""

from __future__ import annotations

from pathlib import Path

import click

from runner.campaign.load import load_campaign
from runner.cli._base import emit, state_option, user_errors
from runner.planning.current import current_plan
from runner.report.build import build
from runner.report.reporters import NAMES, render
from runner.store.backend import existing_journal, existing_ledger, running
from runner.store.where import locate_state


@click.command(
    epilog="""\b
Exit codes:
  0  written
  1  no journal for this campaign (nothing sent yet? is --state right?), an invalid campaign,
     or the --out file cannot be written
"""
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(NAMES), default="text", show_default=True)
@state_option("Journal directory.")
@click.option("--show-recipients", is_flag=True, help="Do not mask phone numbers and emails.")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of stdout.",
)
@user_errors(None)
def report(
    file: Path, fmt: str, state_dir: Path | str | None, show_recipients: bool, out_file: Path | None
) -> None:
    """Report the last send of a campaign: totals, per step, failures, delivery (after track)."""
    campaign = load_campaign(file)
    state = locate_state(state_dir, file, policy=campaign.policy, campaign_id=campaign.id)
    with (
        existing_journal(state, campaign.id, file) as journal,
        existing_ledger(state) as ledger,
        journal.snapshot("report"),
    ):
        consent = ledger.standings() if ledger is not None else None
        # A writer holding the journal's lock: the last run is not over, it is running.
        model = build(
            journal,
            show_recipients=show_recipients,
            current=current_plan(campaign, consent),
            ledger=ledger,
            running=running(state, campaign.id),
        )
        text = render(model, fmt, file=str(file))
    emit(text, out_file, "the report")

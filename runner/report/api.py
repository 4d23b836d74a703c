"""The library's report: ``runner.report(campaign_path)`` returns the typed model of the last
run (runner.report.model); ``runner.render(model, name)`` writes it as a reporter does
(runner.report.reporters). No network, no key."""

from __future__ import annotations

import os
from pathlib import Path

from runner.campaign.load import load_campaign
from runner.planning.current import current_plan
from runner.report.build import build
from runner.report.model import Report
from runner.store.backend import existing_journal, existing_ledger, running
from runner.store.paths import DEFAULT_STATE_DIR
from runner.store.state import STATE_ENV, open_state


def report(
    campaign_path: str | Path,
    *,
    state: str | Path | None = None,
    show_recipients: bool = False,
    now: float | None = None,
) -> Report:
    """The report of the campaign's last run, from its state (``state``: a folder or a
    ``postgresql://`` URL; default: ``RUNNER_STATE``, else ``.runner``, as the CLI).

    Raises ``CampaignError`` when the campaign is invalid or nothing was sent yet.
    """
    file = Path(campaign_path)
    campaign = load_campaign(file)
    opened = open_state(
        state if state is not None else os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR
    )
    with (
        existing_journal(opened, campaign.id, file) as journal,
        existing_ledger(opened) as ledger,
        journal.snapshot("report"),
    ):
        consent = ledger.standings() if ledger is not None else None
        return build(
            journal,
            show_recipients=show_recipients,
            now=now,
            current=current_plan(campaign, consent),
            ledger=ledger,
            running=running(opened, campaign.id),
        )

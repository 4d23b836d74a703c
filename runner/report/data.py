"""The run report as its JSON document, for callers that read the document's keys (and the
tests written against schema 6): ``build_report`` builds the typed model (runner.report.build)
and returns the JSON reporter's document, which still carries the model, so ``render`` of that
document renders the model, never the dictionary.

Schema history (``schema_version``): 1, requests (what the API accepted); 2 adds ``delivery`` and
message counts per step (what became of each accepted message, from ``campaign track``); 3 the
run state, outside the plan; 4 ``replies`` (replies and opt-outs per step and variant, with
intervals); 5 says whether and when replies were read (``replies.read``, ``last_read_at``,
``last_pass``) and, never read, writes reply counts and rates as ``null``, not 0; 6 adds
``consent`` (the state's consent ledger: this campaign's chats opted out and held), counts
opt-outs per step from the ledger too, and keeps the replies of chats suppressed after they
were messaged in the reply figures.
"""

from __future__ import annotations

from typing import Any

from runner.planning.current import CurrentPlan
from runner.report import reporters
from runner.report.build import build
from runner.report.model import Report
from runner.report.reporters.json import report_json
from runner.store.journal import Journal
from runner.store.ledger import Ledger

__all__ = ["ReportDocument", "build_report", "render"]


class ReportDocument(dict[str, Any]):
    """The JSON document of a report (``--format json``), with the model it was written from."""

    model: Report


def build_report(
    journal: Journal,
    *,
    show_recipients: bool = False,
    now: float | None = None,
    current: CurrentPlan | None = None,
    ledger: Ledger | None = None,
    running: int | bool = False,
) -> ReportDocument:
    """The report's JSON document (see ``runner.report.build.build`` for the arguments)."""
    model = build(
        journal,
        show_recipients=show_recipients,
        now=now,
        current=current,
        ledger=ledger,
        running=running,
    )
    doc = ReportDocument(report_json(model))
    doc.model = model
    return doc


def render(report: Report | ReportDocument, fmt: str, file: str | None = None) -> str:
    """The report in ``fmt`` (a reporter's name); ``file`` (the campaign's path) makes the hints
    runnable as shown."""
    model = report.model if isinstance(report, ReportDocument) else report
    return reporters.render(model, fmt, file)

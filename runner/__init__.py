"""runner: a declarative YAML campaign runner for the Blooio messaging API.

The library under the ``campaign`` CLI. Every call returns a result object and never prints::

    import runner

    campaign = runner.load_campaign("campaigns/spring-sale.yaml")  # -> Campaign
    outcome = runner.plan("campaigns/spring-sale.yaml")           # -> PlanOutcome (no network)
    sent = runner.send("campaigns/spring-sale.yaml", base_url=...)  # -> SendOutcome
    runner.track(...), runner.reach(...), runner.collect_optouts(...)
    runner.idempotency_key("spring-sale", 1, "intro", "+15551230001")  # the key it is sent with
    report = runner.report("campaigns/spring-sale.yaml")          # -> Report (typed, no network)
    runner.render(report, "markdown")                            # text, markdown, json, html

Errors a user can cause are ``CampaignError`` (``StoppedEarly`` when a run stopped and can be
resumed); each carries located ``Problem`` s. Exit codes are in ``runner.exitcodes``.

Importing ``runner`` stays cheap (no HTTP client, no SQLite): the names below are resolved on
first use through the explicit ``_LAZY`` table (PEP 562 module ``__getattr__``), so a script
that only plans never loads what sending needs. The ``TYPE_CHECKING`` block gives type
checkers and editors the same names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from runner.errors import CampaignError, Problem, StoppedEarly
from runner.version import __version__

# public name -> module that defines it (under the same name), or the package of that name.
_LAZY: dict[str, str] = {
    "load_campaign": "runner.campaign.load",
    "Campaign": "runner.campaign.load",
    "plan": "runner.run.dry_run",
    "PlanOutcome": "runner.run.dry_run",
    "send": "runner.run.session",
    "track": "runner.run.session",
    "SendSession": "runner.run.session",
    "SendOutcome": "runner.run.session",
    "TrackResult": "runner.run.track",
    "reach": "runner.run.reach_session",
    "ReachOutcome": "runner.run.reach_session",
    "collect_optouts": "runner.run.optouts_session",
    "OptoutsOutcome": "runner.run.optouts_session",
    "idempotency_key": "runner.planning.keys",
    "report": "runner.report",  # the package itself: it is callable (runner/report/__init__.py)
    "render": "runner.report.reporters",
    "Report": "runner.report.model",
}

# Spelled out (not built from _LAZY) so linters and `from runner import *` see every name;
# tests/test_library_api.py checks the two agree.
__all__ = [
    "Campaign",
    "CampaignError",
    "OptoutsOutcome",
    "PlanOutcome",
    "Problem",
    "ReachOutcome",
    "Report",
    "SendOutcome",
    "SendSession",
    "StoppedEarly",
    "TrackResult",
    "__version__",
    "collect_optouts",
    "idempotency_key",
    "load_campaign",
    "plan",
    "reach",
    "render",
    "report",
    "send",
    "track",
]

if TYPE_CHECKING:
    from runner.campaign.load import Campaign, load_campaign
    from runner.planning.keys import idempotency_key
    from runner.report.api import report
    from runner.report.model import Report
    from runner.report.reporters import render
    from runner.run.dry_run import PlanOutcome, plan
    from runner.run.optouts_session import OptoutsOutcome, collect_optouts
    from runner.run.reach_session import ReachOutcome, reach
    from runner.run.session import SendOutcome, SendSession, send, track
    from runner.run.track import TrackResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    value = importlib.import_module(module)
    if module != f"runner.{name}":  # a name of the module, not the (callable) package itself
        value = getattr(value, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

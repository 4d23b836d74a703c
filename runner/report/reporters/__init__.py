"""Reporters by name: each renders the one report model (runner.report.model) to text.

Looked up in one table, as check-jsonschema looks up its reporters, so the CLI's ``--format``
choices, ``runner.render`` and the docs all read the same names. A reporter is a function
``(report, file) -> str``; ``file`` is the campaign's path, which makes the hints in the output
commands that run as shown.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from runner.errors import CampaignError
from runner.report.model import Report

Reporter = Callable[[Report, str | None], str]

# name -> module whose ``render`` it is (imported on first use: the HTML page's code is only
# loaded by a report that asks for it).
REPORTERS: dict[str, str] = {
    "text": "runner.report.reporters.text",
    "json": "runner.report.reporters.json",
    "markdown": "runner.report.reporters.markdown",
    "html": "runner.report.reporters.html",
}
NAMES = tuple(REPORTERS)


def reporter(name: str) -> Reporter:
    """The reporter called ``name``, or a user error naming the ones there are."""
    module = REPORTERS.get(name)
    if module is None:
        raise CampaignError(
            f"no reporter named {name!r}", hint=f"choose one of: {', '.join(NAMES)}"
        )
    render: Reporter = import_module(module).render
    return render


def render(report: Report, name: str = "text", file: str | None = None) -> str:
    """``report`` as the reporter ``name`` writes it."""
    return reporter(name)(report, file)

"""Errors are data.

A ``Problem`` is one thing wrong with a user's input, located as precisely as we can (file,
line, column, the field's JSON path) and carrying a hint on how to fix it. ``CampaignError``
is the one root exception for everything a user can cause; it carries one or more problems.
The CLI turns it into text, JSON or GitHub annotations and exits non-zero, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from runner import exitcodes


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str = ""  # JSON-path-like: "steps[2].parts[0].text"
    hint: str | None = None
    severity: str = "error"  # "error" | "warning"
    layer: str = "rules"  # "yaml" | "schema" | "rules" | "template" | "recipients" | ...

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def location(self) -> str:
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def sort_key(self) -> tuple:
        return (self.file or "", self.line or 0, self.column or 0, self.path, self.message)


class CampaignError(Exception):
    """Root of every error a user can cause. Exit code 1 unless a subclass says otherwise."""

    exit_code = exitcodes.FAILED

    def __init__(self, problems: Problem | str | Iterable[Problem], **where: object) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems, **where)]  # type: ignore[arg-type]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("; ".join(f"{p.location()}: {p.message}" for p in self.problems))


class StoppedEarly(CampaignError):
    """A run stopped before it finished but can be resumed (bad key, caps, Ctrl-C)."""

    exit_code = exitcodes.STOPPED


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    best = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return best[0] if best else None

"""`campaign validate`: every layer, every recipient, every problem, for files and folders."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.campaign.load import load_campaign
from runner.errors import CampaignError, Problem
from runner.planning.planner import Planner

CAMPAIGN_SUFFIXES = (".yaml", ".yml")


@dataclass
class FileResult:
    file: str
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file, "valid": self.valid,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.problems if p.severity != "error"],
        }
        if self.summary is not None:
            out["summary"] = self.summary
        return out


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given; folders walked for *.yaml / *.yml (hidden folders skipped), sorted."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.suffix in CAMPAIGN_SUFFIXES and f.is_file() and not any(
                        part.startswith(".") for part in rel.parts):
                    yield f
        else:
            yield p


def validate_file(path: str | Path) -> FileResult:
    result = FileResult(file=str(path))
    try:
        campaign = load_campaign(path)
    except CampaignError as err:
        result.problems = sorted(err.problems, key=Problem.sort_key)
        return result
    planner = Planner(campaign)
    try:
        summary = planner.run()
    except CampaignError as err:  # e.g. an unreadable recipients file
        result.problems = planner.problems + err.problems
        return result
    except Exception as err:  # noqa: BLE001 - a bug of ours must not stop a folder's other files
        result.problems = planner.problems + [Problem(
            f"internal error while validating: {type(err).__name__}: {str(err)[:200]}",
            file=str(path), hint="please report it with this file; the other files were checked")]
        return result
    result.problems = planner.problems
    result.summary = {
        "campaign": campaign.id, "recipients": summary.recipients, "steps": len(campaign.steps),
        "requests": summary.requests, "messages": summary.messages,
    }
    return result


def validate_paths(paths: Iterable[str | Path]) -> list[FileResult]:
    files = list(expand_paths(paths))
    if not files:
        raise CampaignError(Problem("no campaign files found", hint="pass .yaml files or folders that contain them"))
    return [validate_file(f) for f in files]

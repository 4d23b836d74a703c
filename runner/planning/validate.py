"""`campaign validate`: every layer, every recipient, every problem, for files and folders."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runner.campaign.load import load_campaign
from runner.campaign.policy import DEFAULT as DEFAULT_POLICY
from runner.campaign.policy import Policy, find_policy, load_policy, policy_warnings
from runner.errors import CampaignError, Problem
from runner.planning.planner import Planner

CAMPAIGN_SUFFIXES = (".yaml", ".yml")


@dataclass
class FileResult:
    file: str
    problems: list[Problem] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    hidden: int = 0  # problems the collector dropped (too many kinds), said after the rest
    campaign_id: str | None = None  # once the file loads: ids must be unique across files

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "valid": self.valid,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.problems if p.severity != "error"],
        }
        if self.summary is not None:
            out["summary"] = self.summary
        if self.hidden:
            out["problems_not_shown"] = self.hidden
        return out


def expand_paths(paths: Iterable[str | Path], skipped: list[Path] | None = None) -> Iterator[Path]:
    """Files as given (always checked); folders walked for *.yaml / *.yml (hidden folders
    skipped), sorted, keeping the campaigns; other YAML files go to ``skipped``."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if (
                    f.suffix in CAMPAIGN_SUFFIXES
                    and f.is_file()
                    and not any(part.startswith(".") for part in rel.parts)
                ):
                    if is_campaign_file(f):
                        yield f
                    elif skipped is not None:
                        skipped.append(f)
        else:
            yield p


_CAMPAIGN_KEYS = ("version", "id", "recipients", "steps")
_TOP_KEY = re.compile(r"^(version|id|recipients|steps)\s*:", re.MULTILINE)
_SCHEMA_COMMENT = re.compile(r"^#.*\$schema=\S*campaign\.schema\.json", re.MULTILINE)
_SNIFF_BYTES = 1024 * 1024


def is_campaign_file(path: str | Path) -> bool:
    """Whether a YAML file found in a folder is a campaign: it carries the campaign `$schema`
    comment, or its top level has at least two of version, id, recipients, steps (so a
    campaign that lost its `steps` is still checked, and a docker-compose.yml is not).

    Read as text, not parsed: a campaign with a syntax error must still count as one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read(_SNIFF_BYTES)
    except OSError:
        return True  # let validate_file say why it cannot be read
    return looks_like_campaign(text)


def looks_like_campaign(text: str) -> bool:
    if _SCHEMA_COMMENT.search(text):
        return True
    return len(set(_TOP_KEY.findall(text))) >= 2


def validate_file(
    path: str | Path, *, strict: bool = False, policy: Policy | str | Path | None = None
) -> FileResult:
    """Every problem of one campaign file. ``strict``: values YAML changed (02134 read as
    1116) are errors, not warnings. ``policy``: the team policy (default: the repository's)."""
    result = _validate(path, policy)
    if strict:
        result.problems = [
            replace(p, severity="error") if p.layer == "yaml" and p.severity == "warning" else p
            for p in result.problems
        ]
    return result


def _validate(path: str | Path, policy: Policy | str | Path | None = None) -> FileResult:
    result = FileResult(file=str(path))
    try:
        campaign = load_campaign(path, policy=policy)
    except CampaignError as err:
        result.problems = sorted(err.problems, key=Problem.sort_key)
        return result
    result.campaign_id = campaign.id
    planner = Planner(campaign)
    try:
        summary = planner.run()
    except CampaignError as err:  # e.g. an unreadable recipients file
        result.problems = _kept(planner) + err.problems
        result.hidden = planner.collector.dropped
        return result
    except Exception as err:  # noqa: BLE001 - a bug of ours must not stop a folder's other files
        result.problems = _kept(planner) + [
            Problem(
                f"internal error while validating: {type(err).__name__}: {str(err)[:200]}",
                file=str(path),
                hint="please report it with this file; the other files were checked",
            )
        ]
        return result
    result.problems = _kept(planner)
    result.hidden = planner.collector.dropped
    result.summary = {
        "campaign": campaign.id,
        "recipients": summary.recipients,
        "steps": len(campaign.steps),
        "requests": summary.requests,
        "messages": summary.messages,
    }
    if summary.empty_rows:
        result.summary["empty_rows_skipped"] = summary.empty_rows
    if summary.no_chat:
        result.summary["rows_without_chat_skipped"] = summary.no_chat
    if summary.excluded:
        result.summary["excluded"] = summary.excluded
    if summary.read_as:
        result.summary["read_as"] = summary.read_as
    return result


def _kept(planner: Planner) -> list[Problem]:
    return planner.collector.result(with_dropped=False)


@dataclass
class ValidationRun:
    results: list[FileResult]
    skipped: list[Path] = field(
        default_factory=list
    )  # YAML files in folders that are not campaigns

    @property
    def valid(self) -> bool:
        return all(r.valid for r in self.results)


def validate_policy(path: str | Path) -> tuple[FileResult, Policy | None]:
    """A team policy file's own result (errors, and warnings such as a missing help_text)."""
    result = FileResult(file=str(path))
    try:
        policy = load_policy(path)
    except CampaignError as err:
        result.problems = sorted(err.problems, key=Problem.sort_key)
        return result, None
    result.problems = policy_warnings(policy)
    result.summary = {"policy": policy.describe()}
    return result, policy


def validate_run(
    paths: Iterable[str | Path], *, strict: bool = False, policy: str | Path | None = None
) -> ValidationRun:
    """Every campaign under ``paths``, and first the team policy each obeys (``policy``, else
    the runner.yaml at the root of each one's git repository), checked once."""
    skipped: list[Path] = []
    files = list(expand_paths(paths, skipped))
    if not files:
        hint = "pass .yaml files or folders that contain them"
        if skipped:
            hint = (
                f"{len(skipped)} YAML file(s) were skipped as not campaigns (e.g. {skipped[0]}); "
                "name a file to check it anyway"
            )
        raise CampaignError(Problem("no campaign files found", hint=hint))
    results: list[FileResult] = []
    policies: dict[Path | None, Policy | None] = {}
    checked: list[FileResult] = []
    for f in _unique(files):
        where = Path(policy) if policy is not None else find_policy(f)
        if where not in policies:
            if where is None:
                policies[where] = DEFAULT_POLICY
            else:
                result, policies[where] = validate_policy(where)
                results.append(result)
        team = policies[where]
        if team is None:
            checked.append(
                FileResult(
                    file=str(f),
                    problems=[
                        Problem(
                            f"not checked: its team policy {where} is invalid",
                            file=str(f),
                            hint=f"fix {where} (its errors are listed above)",
                            layer="policy",
                        )
                    ],
                )
            )
            continue
        checked.append(validate_file(f, strict=strict, policy=team))
    _same_ids(checked)
    # A policy file found in a folder was checked as a policy, not skipped as "not a campaign".
    checked_policies = {p.resolve() for p in policies if p is not None}
    skipped = [p for p in skipped if p.resolve() not in checked_policies]
    return ValidationRun(results + checked, skipped)


def _unique(files: Iterable[Path]) -> Iterator[Path]:
    """Each file once, however often it was named (a folder and a file in it)."""
    seen: set[Path] = set()
    for f in files:
        key = Path(f).resolve()
        if key not in seen:
            seen.add(key)
            yield f


def _same_ids(results: list[FileResult]) -> None:
    """Two files with one campaign id would share one journal and one set of idempotency keys:
    the second sends nothing that the first sent (same keys), or resumes the other's run. An
    error on each later file, naming the first."""
    first: dict[str, FileResult] = {}
    for r in results:
        if r.campaign_id is None:
            continue
        if r.campaign_id not in first:
            first[r.campaign_id] = r
            continue
        r.problems.append(
            Problem(
                f"campaign id '{r.campaign_id}' is also the id of {first[r.campaign_id].file}: the two "
                "would share one journal and one set of idempotency keys",
                file=r.file,
                path="id",
                layer="rules",
                hint="give each campaign its own id (the id names the journal and is part of every "
                "key: a changed id is a new campaign, sent again to everyone)",
            )
        )


@dataclass
class Listing:
    """What validate prints, in reading order: the problems to show (each with its file's
    result), how many more are not shown, then the files' summaries."""

    shown: list[tuple[FileResult, Problem]]
    hidden: int
    results: list[FileResult]
    skipped: list[Path]


def listing(run: ValidationRun, max_problems: int | None = None) -> Listing:
    """Problems file by file, sorted by place, at most ``max_problems`` of them (None or 0: all);
    the rest, with those the collector dropped, counted in ``hidden``."""
    shown: list[tuple[FileResult, Problem]] = []
    hidden = 0
    for r in run.results:
        hidden += r.hidden
        for p in r.problems:
            if max_problems and len(shown) >= max_problems:
                hidden += 1
            else:
                shown.append((r, p))
    return Listing(shown, hidden, run.results, run.skipped)


def summary_line(r: FileResult) -> str:
    """A file's closing line, without its mark (ok/✓, FAIL/✗)."""
    if r.valid and r.summary and "policy" in r.summary:
        p = r.summary["policy"]
        limits = f", limits {', '.join(p['limits'])}" if p["limits"] else ""
        return f"{r.file}: team policy, hours {p['hours']}{limits}"
    if r.valid and r.summary:
        s = r.summary
        line = (
            f"{r.file}: {s['recipients']:,} recipients, {s['steps']} steps, "
            f"{s['requests']:,} requests, {s['messages']:,} messages"
        )
        notes = []
        if s.get("empty_rows_skipped"):
            n = s["empty_rows_skipped"]
            notes.append(f"{n:,} empty row{'s' if n != 1 else ''} skipped")
        if s.get("rows_without_chat_skipped"):
            n = s["rows_without_chat_skipped"]
            notes.append(f"{n:,} row{'s' if n != 1 else ''} without a phone/email skipped")
        if s.get("excluded"):
            notes.append(f"{s['excluded']:,} excluded")
        if s.get("read_as"):
            notes.append(s["read_as"])
        return line + (f" ({'; '.join(notes)})" if notes else "")
    n = len(r.errors)
    return f"{r.file}: {n} error{'s' if n != 1 else ''}"

"""A plan file (`campaign plan --out`) and what ties it to its inputs.

The first line is a header object (``{"plan_format": 1, ...}``); every further line is one
request (``PlannedRequest.to_json_obj``). The header names the campaign and revision, the
counts, the runner's version, ``--at`` when given, and a SHA-256 of every input that shaped
the requests: the campaign file, its recipients file and each suppression file. `send --plan`
checks those digests against the files as they are at send time and refuses on any change,
except that suppression files may have grown: they are re-read at send time and an opt-out
since the plan wins.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from runner.campaign.load import Campaign
from runner.errors import CampaignError, Problem
from runner.planning.request import PlannedRequest
from runner.source.paths import repository_root
from runner.version import __version__

PLAN_FORMAT = 1
CAMPAIGN, RECIPIENTS, SUPPRESS = "campaign", "recipients", "suppress"
# Fields of a request line that must match what the campaign renders now, byte for byte.
_COMPARED = (
    "recipient",
    "step",
    "key",
    "method",
    "path",
    "body",
    "messages",
    "reply_to_step",
    "variant",
)


@dataclass(frozen=True)
class Input:
    """One file that shaped a plan. ``path``: as the campaign names it (relative to the
    campaign's folder), or the campaign file's own name."""

    role: str  # "campaign" | "recipients" | "suppress"
    path: str
    sha256: str | None  # None: the file is missing

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "path": self.path, "sha256": self.sha256}


def named_files(data: Any) -> list[tuple[str, str]]:
    """(role, path relative to the campaign's folder) of every data file a campaign's parsed
    YAML names, in a fixed order. Works on the raw mapping so that `campaign diff` can fetch
    the files of an older revision before it can load it."""
    if not isinstance(data, dict):
        return []
    out: list[tuple[str, str]] = []
    spec = data.get("recipients")
    if isinstance(spec, dict) and spec.get("file"):
        out.append((RECIPIENTS, str(spec["file"])))
    for name in data.get("suppress") or []:
        out.append((SUPPRESS, str(name)))
    return out


def file_sha256(path: str | Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return h.hexdigest()


def inputs_of(campaign: Campaign) -> list[Input]:
    """Every input of a loaded campaign, hashed as the files are now."""
    out = [Input(CAMPAIGN, campaign.path.name, file_sha256(campaign.path))]
    for role, name in named_files(campaign.doc.data):
        out.append(Input(role, name, file_sha256(campaign.base_dir / name)))
    return out


def input_paths(campaign: Campaign) -> list[Path]:
    """The files behind ``inputs_of``: the campaign file first."""
    return [campaign.path] + [
        campaign.base_dir / name for _, name in named_files(campaign.doc.data)
    ]


def digest(inputs: list[Input]) -> str:
    """One digest of all inputs (role, path and content): equal digests, equal requests."""
    h = hashlib.sha256()
    for i in inputs:
        h.update(f"{i.role}\0{i.path}\0{i.sha256 or '-'}\n".encode())
    return "sha256:" + h.hexdigest()


def header(
    campaign: Campaign, inputs: list[Input], *, requests: int, messages: int, at: str | None = None
) -> dict[str, Any]:
    """The first line of a plan file. Nothing time-dependent unless ``at`` is given, so the
    same inputs give a byte-identical plan."""
    out: dict[str, Any] = {
        "plan_format": PLAN_FORMAT,
        "campaign": campaign.id,
        "revision": campaign.revision,
        "requests": requests,
        "messages": messages,
        "runner": __version__,
        "digest": digest(inputs),
        "inputs": [i.to_dict() for i in inputs],
    }
    if at:
        out["at"] = at
    return out


_SEARCHED = 20_000  # files looked at in a repository for the planned campaign


def _same_named(root: Path, name: str) -> Iterator[Path]:
    """Files called ``name`` in the repository ``root`` (hidden folders skipped), at most
    _SEARCHED files looked at: the plan's campaign is found by its digest among them."""
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        seen += len(files)
        if name in files:
            yield Path(folder) / name
        if seen > _SEARCHED:
            return


def dump_header(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def is_header(obj: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(obj, dict) and "plan_format" in obj


@dataclass
class PlanFile:
    """A plan file opened for sending: its header, and its request lines streamed on demand."""

    path: Path
    header: dict[str, Any]

    @property
    def inputs(self) -> list[Input]:
        return [
            Input(str(i["role"]), str(i["path"]), i.get("sha256")) for i in self.header["inputs"]
        ]

    @property
    def digest(self) -> str:
        return str(self.header["digest"])

    @classmethod
    def read(cls, path: str | Path) -> PlanFile:
        p = Path(path)
        try:
            with open(p, encoding="utf-8") as fh:
                first = fh.readline()
        except OSError as err:
            raise CampaignError(f"cannot read the plan: {err.strerror}", file=str(p)) from None
        try:
            obj = json.loads(first) if first.strip() else None
        except json.JSONDecodeError:
            obj = None
        if not is_header(obj) or not isinstance(obj.get("inputs"), list):
            raise CampaignError(
                'not a plan file with a header (its first line must be {"plan_format": ...})',
                file=str(p),
                line=1,
                hint="write it with: campaign plan FILE --out PLAN",
            )
        if obj["plan_format"] != PLAN_FORMAT:
            raise CampaignError(
                f"plan format {obj['plan_format']} is not one this runner reads ({PLAN_FORMAT})",
                file=str(p),
                line=1,
                hint="plan again with this runner",
            )
        plan = cls(p, obj)
        try:
            recomputed = digest(plan.inputs)
        except (KeyError, TypeError, ValueError, AttributeError):
            recomputed = None
        if obj.get("digest") != recomputed:
            raise CampaignError(
                "the plan's digest is not the digest of the inputs it lists (the "
                "header was edited)",
                file=str(p),
                line=1,
                path="digest",
                hint="plan again (campaign plan FILE --out PLAN) and send that plan",
            )
        return plan

    def campaign_name(self) -> str:
        return next(i.path for i in self.inputs if i.role == CAMPAIGN)

    def lines(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, request object) after the header."""
        with open(self.path, encoding="utf-8") as fh:
            fh.readline()
            for n, line in enumerate(fh, start=2):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise CampaignError(
                        f"not a JSON request line: {err.msg}", file=str(self.path), line=n
                    ) from None
                yield n, obj

    def changes(self, campaign: Campaign) -> tuple[list[Problem], list[str]]:
        """Compare the plan's inputs with ``campaign``'s files now: (problems that refuse the
        send, suppression files that changed and are simply re-read)."""
        hint = "plan again (campaign plan FILE --out PLAN), review it, then send that plan"
        problems: list[Problem] = []
        reread: list[str] = []
        if (
            self.header.get("campaign") != campaign.id
            or self.header.get("revision") != campaign.revision
        ):
            problems.append(
                Problem(
                    f"the plan is of campaign {self.header.get('campaign')!r} revision "
                    f"{self.header.get('revision')}, the file is {campaign.id!r} revision {campaign.revision}",
                    file=str(campaign.path),
                    hint=hint,
                    layer="plan",
                )
            )
        current = inputs_of(campaign)
        # The campaign file may be given under another name (a copy): its content decides.
        old_campaign = [i for i in self.inputs if i.role == CAMPAIGN]
        if not old_campaign or old_campaign[0].sha256 != current[0].sha256:
            problems.append(
                Problem(
                    f"the campaign file {campaign.path} changed since the plan",
                    file=str(campaign.path),
                    hint=hint,
                    layer="plan",
                )
            )
        now = {(i.role, i.path): i for i in current[1:]}
        was = {(i.role, i.path): i for i in self.inputs if i.role != CAMPAIGN}
        for key in sorted(set(was) | set(now)):
            role, path = key
            before, after = was.get(key), now.get(key)
            where = str(campaign.base_dir / path)
            if before is None:
                problems.append(
                    Problem(
                        f"{role} file {path} is new since the plan",
                        file=str(campaign.path),
                        hint=hint,
                        layer="plan",
                    )
                )
            elif after is None:
                problems.append(
                    Problem(
                        f"{role} file {path} is no longer named by the campaign",
                        file=str(campaign.path),
                        hint=hint,
                        layer="plan",
                    )
                )
            elif after.sha256 is None:
                problems.append(
                    Problem(f"{role} file {path} is missing", file=where, hint=hint, layer="plan")
                )
            elif before.sha256 != after.sha256:
                if role == SUPPRESS:
                    reread.append(path)
                else:
                    problems.append(
                        Problem(
                            f"{role} file {path} changed since the plan",
                            file=where,
                            hint=hint,
                            layer="plan",
                        )
                    )
        return problems, reread


class PlanMatcher:
    """Streams the requests the campaign renders now, checked against the plan's lines in
    order: each must be the planned request (same key, body, ...). A planned request the
    campaign no longer renders is accepted only when its recipient is suppressed now (an
    opt-out since the plan); it is skipped and counted. Anything else stops with an error
    naming the line, so a check pass before sending finds every disagreement."""

    def __init__(self, plan: PlanFile, is_suppressed: Any) -> None:
        self.plan = plan
        self.is_suppressed = is_suppressed
        self.suppressed_since = 0  # requests skipped: their recipient opted out after the plan

    def _mismatch(self, n: int | None, message: str) -> CampaignError:
        return CampaignError(
            Problem(
                message,
                file=str(self.plan.path),
                line=n,
                layer="plan",
                hint="the campaign renders differently from the plan (another runner version?): "
                "plan again, review, then send that plan",
            )
        )

    def filter(self, requests: Iterator[PlannedRequest]) -> Iterator[PlannedRequest]:
        self.suppressed_since = 0
        planned = self.plan.lines()
        for req in requests:
            obj = req.to_json_obj()
            while True:
                n, line = next(planned, (None, None))
                if line is None:
                    raise self._mismatch(
                        None,
                        f"the campaign renders a request the plan does not "
                        f"have: step {req.step!r} for recipient line "
                        f"{req.recipient_index + 1}",
                    )
                if line.get("key") == req.key:
                    break
                self._skip_or_fail(n, line)
            for name in _COMPARED:
                if line.get(name) != obj.get(name):
                    raise self._mismatch(
                        n,
                        f"the planned request differs in '{name}' from what "
                        f"the campaign renders now",
                    )
            yield req
        for n, line in planned:
            self._skip_or_fail(n, line)

    def _skip_or_fail(self, n: int | None, line: dict[str, Any]) -> None:
        chat = str(line.get("recipient", ""))
        if self.is_suppressed(chat):
            self.suppressed_since += 1
            return
        raise self._mismatch(
            n, f"the plan has a request the campaign no longer renders (step {line.get('step')!r})"
        )


def find_campaign(plan: PlanFile, cwd: Path | None = None) -> Path:
    """The planned campaign file when `send --plan` is given no FILE: the header's name in the
    plan's folder or the current one, else anywhere in the git repository of either, whichever
    holds the very file that was planned (the same digest)."""
    name = plan.campaign_name()
    want = next(i.sha256 for i in plan.inputs if i.role == CAMPAIGN)
    candidates = [folder / name for folder in (plan.path.parent, cwd or Path.cwd())]
    for candidate in candidates:
        if file_sha256(candidate) == want:
            return candidate
    # `plan campaigns/x.yaml --out plans/x.jsonl`: the campaign is elsewhere in the repository.
    roots = {
        r
        for r in (
            repository_root(plan.path.resolve().parent),
            repository_root((cwd or Path.cwd()).resolve()),
        )
        if r is not None
    }
    for root in sorted(roots):
        for candidate in _same_named(root, name):
            if file_sha256(candidate) == want:
                return candidate
    for candidate in candidates:  # changed since: the digest check then names the change
        if candidate.is_file():
            return candidate
    raise CampaignError(
        f"the planned campaign file {name} is neither next to the plan nor here",
        file=str(plan.path),
        line=1,
        hint="give it: campaign send FILE --plan PLAN",
    )


def check_inputs(campaign: Campaign, plan: PlanFile) -> list[str]:
    """Refuse (CampaignError naming each change) if an input changed since the plan; returns
    the suppression files that changed (re-read at send time)."""
    problems, reread = plan.changes(campaign)
    if problems:
        raise CampaignError(problems)
    return reread

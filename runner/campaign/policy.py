"""The team policy: `runner.yaml` at the root of the campaigns' git repository (or `--policy
FILE`), what every campaign of the team obeys. A campaign may narrow it, never widen it.

Loaded with the located YAML loader and checked against schemas/policy.schema.json, so every
problem names the policy file, its line and the field. Without a file the defaults apply:
legal hours, no team limits.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from runner.campaign.loader import load_file
from runner.campaign.schedule import Schedule, ScheduleError, parse_hhmm
from runner.campaign.schema import validate_schema
from runner.campaign.steps import parse_delay
from runner.errors import CampaignError, Problem
from runner.law.legal import Law, Limit
from runner.source.document import Document, PathT
from runner.window import DAYS, Window

POLICY_FILE = "runner.yaml"
POLICY_SCHEMA = "policy.schema.json"


@dataclass(frozen=True)
class Policy:
    file: str | None = None  # None: no policy file, the defaults
    doc: Document | None = None
    state: str | None = None
    default_region: str | None = None
    hours: str = "legal"  # "legal" | "off" | "window" (a team window, legal hours on top)
    team_window: Window | None = None
    limits: tuple[Limit, ...] = ()
    optout_words: tuple[str, ...] = ()
    help_text: str | None = None
    optout_confirmation: str | None = None
    max_segments: int | None = None
    warnings: tuple[Problem, ...] = field(default=())

    @property
    def law(self) -> Law:
        return Law(legal=self.hours != "off", team_window=self.team_window)

    def line_of(self, path: PathT) -> str:
        """ "runner.yaml:4" for a policy field (what a campaign's error names)."""
        if self.doc is None:
            return "the default policy"
        line, _ = self.doc.locate(path)
        return f"{self.file}:{line}" if line else str(self.file)

    def describe(self) -> dict[str, Any]:
        """What a plan prints of the policy that applied."""
        hours = {
            "legal": "legal (federal and state hours at the recipient's place)",
            "off": "OFF: no legal hours are applied (hours: off in the policy)",
        }.get(self.hours)
        if self.team_window is not None:
            w = self.team_window
            hours = f"team window {w.start:%H:%M}-{w.end:%H:%M}, and legal hours"
        return {
            "file": self.file or "none (defaults)",
            "hours": hours,
            "hours_off": self.hours == "off",
            "limits": [lim.label for lim in self.limits],
            "max_segments": self.max_segments,
        }


DEFAULT = Policy()


def find_policy(start: Path) -> Path | None:
    """`runner.yaml` at the root of the git repository holding `start` (a campaign file or its
    folder); outside git, beside the campaign (where its state is too); else None."""
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            candidate = folder / POLICY_FILE
            return candidate if candidate.is_file() else None
    candidate = here / POLICY_FILE
    return candidate if candidate.is_file() else None


def policy_for(campaign_path: Path, explicit: str | Path | None = None) -> Policy:
    """The policy a campaign obeys: `explicit` (--policy), else the repository's runner.yaml,
    else the defaults. Raises CampaignError, located in the policy file."""
    path = Path(explicit) if explicit is not None else find_policy(campaign_path)
    if path is None:
        return DEFAULT
    if explicit is not None and not path.is_file():
        raise CampaignError(
            Problem(
                f"policy file {path} not found",
                file=str(path),
                hint="give --policy the path of a runner.yaml",
            )
        )
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = 0
    return _load(str(path), stamp)


@lru_cache(maxsize=8)
def _load(path: str, _stamp: int) -> Policy:
    return load_policy(path)


def load_policy(path: str | Path) -> Policy:
    doc = load_file(Path(path))
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise CampaignError(
            doc.problem((), "a policy file must be a mapping (hours, limits, ...)", layer="policy")
        )
    written = doc.surprises.get(("hours",), ("",))[0]
    if data_hours_off(doc.data.get("hours"), written):
        doc.data["hours"] = "off"  # YAML 1.1 reads a plain `off` as false; off is meant
    problems = validate_schema(doc, POLICY_SCHEMA)
    if problems:
        raise CampaignError([_as_policy(p) for p in problems])
    data = doc.data
    hours, window = "legal", None
    raw = data.get("hours", "legal")
    if isinstance(raw, dict):
        hours = "window"
        try:
            window = _window(raw)
        except ScheduleError as err:
            raise CampaignError(
                doc.problem(("hours",) + err.key, str(err), err.hint, layer="policy")
            ) from None
    else:
        hours = str(raw)
    if _url_password(data.get("state")):
        raise CampaignError(
            doc.problem(
                ("state",),
                "the state URL holds a password: runner.yaml is committed, so everyone "
                "who reads the repository would have it",
                "remove the password from the URL (postgresql://user@host/db) and give it the libpq "
                "way: PGPASSWORD in the environment (a CI secret), ~/.pgpass, or PGSERVICE",
                layer="policy",
            )
        )
    limits = []
    for i, item in enumerate(data.get("limits") or []):
        per = parse_delay(item["per"])
        if per is None:
            raise CampaignError(
                doc.problem(
                    ("limits", i, "per"),
                    f"{item['per']!r} is not a period",
                    "write e.g. 24h or 7d (at most a year)",
                    layer="policy",
                )
            )
        limits.append(
            Limit(
                int(item["messages"]),
                float(per),
                f"{item['messages']} per {str(item['per']).strip()}",
            )
        )
    return Policy(
        file=str(path),
        doc=doc,
        state=data.get("state"),
        default_region=data.get("default_region"),
        hours=hours,
        team_window=window,
        limits=tuple(limits),
        optout_words=tuple(data.get("optout_words") or ()),
        help_text=data.get("help_text"),
        optout_confirmation=data.get("optout_confirmation"),
        max_segments=data.get("max_segments"),
    )


def _url_password(state: object) -> bool:
    """A password written in a postgresql:// URL: user:secret@, or ?password= (libpq's)."""
    if not isinstance(state, str) or "://" not in state:
        return False
    if re.match(r"^[a-z]+://[^:/@?]*:[^@/?]*@", state):
        return True
    try:
        return bool(parse_qs(urlsplit(state).query).get("password"))
    except ValueError:
        return False


def data_hours_off(value: Any, written: str) -> bool:
    return value is False and written.strip().lower() == "off"


def _as_policy(p: Problem) -> Problem:
    return Problem(
        p.message,
        file=p.file,
        line=p.line,
        column=p.column,
        path=p.path,
        hint=p.hint,
        severity=p.severity,
        layer="policy",
    )


def _window(raw: dict[str, Any]) -> Window:
    start = parse_hhmm(raw.get("start"), ("start",))
    end = parse_hhmm(raw.get("end"), ("end",))
    if start == end:
        raise ScheduleError(
            (),
            "the window starts and ends at the same time",
            "give different start and end times (a window may cross midnight)",
        )
    days = (
        frozenset(DAYS.index(str(d).lower()[:3]) for d in raw["days"]) if raw.get("days") else None
    )
    return Window(start, end, days)


def _open_minutes(w: Window) -> set[int]:
    """The minutes of a week (Monday 00:00 = 0) inside a window (by the day it opens)."""
    start = w.start.hour * 60 + w.start.minute
    end = w.end.hour * 60 + w.end.minute
    length = (end - start) % 1440
    out: set[int] = set()
    for day in range(7):
        if w.days is None or day in w.days:
            base = day * 1440 + start
            out.update((base + m) % 10080 for m in range(length))
    return out


_FEDERAL = Window(parse_hhmm("08:00", ()), parse_hhmm("21:00", ()), None)


def check_campaign(policy: Policy, doc: Document, schedule: Schedule | None) -> list[Problem]:
    """A campaign narrows the policy, never widens it: a window wider than the team's is an
    error naming the policy's line; one wider than the federal hours under `hours: legal` is a
    warning (the law holds what falls outside)."""
    window = schedule.window if schedule is not None else None
    if window is None:
        return []
    where = ("schedule", "window")
    if policy.team_window is not None:
        outside = _open_minutes(window) - _open_minutes(policy.team_window)
        if outside:
            w = policy.team_window
            return [
                doc.problem(
                    where,
                    f"the window is wider than the team policy's hours "
                    f"({w.start:%H:%M}-{w.end:%H:%M}"
                    f"{', ' + ' '.join(DAYS[d] for d in sorted(w.days)) if w.days else ''}"
                    f", {policy.line_of(('hours',))})",
                    "narrow the window to lie inside the policy's hours; a campaign may "
                    "narrow the policy, never widen it",
                    layer="policy",
                )
            ]
    if policy.hours != "off" and _open_minutes(window) - _open_minutes(_FEDERAL):
        return [
            doc.problem(
                where,
                "the window reaches outside the federal 08:00-21:00 (47 CFR "
                "64.1200(c)(1)): messages due then wait for the legal hours",
                "keep the window within 08:00-21:00 (20:00 for FL, OK, MD, WA and other states)",
                layer="policy",
                severity="warning",
            )
        ]
    return []


def policy_warnings(policy: Policy) -> list[Problem]:
    """What `validate` says of a policy file beyond its errors."""
    if policy.doc is None:
        return []
    out = []
    if not policy.help_text:
        out.append(
            policy.doc.problem(
                (),
                "the policy has no help_text: a HELP or INFO reply cannot "
                "be answered (carriers require an answer)",
                'add help_text: "Acme: help at acme.example/help. Msg&data '
                'rates may apply. Reply STOP to cancel."',
                layer="policy",
                severity="warning",
            )
        )
    if policy.hours == "off":
        out.append(
            policy.doc.problem(
                ("hours",),
                "hours: off — no legal hours are applied to any campaign of this policy",
                "remove it to apply the federal and state hours",
                layer="policy",
                severity="warning",
            )
        )
    return out

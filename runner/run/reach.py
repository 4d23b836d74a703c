"""Reach: before sending, who gets iMessage, who only SMS, who nothing, and what that drops.

``GET /contacts/{contact}/capabilities`` answers per phone or email whether iMessage and SMS
reach it. Each check spends API quota, so the checker asks each contact once (a group chat's
members are checked one by one), bounded by concurrency and the rate ceiling, and keeps the
answers in a small cache under the state directory, reused while younger than ``max_age``.

The analysis is pure: recipients (with what each step would send them) and capabilities in,
counts out. An SMS-only recipient still gets the text but not an iMessage effect, a rich link
preview, the typing indicator or an inline reply; an email without iMessage gets nothing.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from runner.audience.mask import display_chat
from runner.contract import CAPABILITIES
from runner.errors import CampaignError
from runner.http.caller import ApiCaller
from runner.http.classify import Disposition, EndpointVerdict, Reading, read_exchange, read_response
from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.retry import StopReason, retrying

IMESSAGE, SMS_ONLY, UNREACHABLE, PARTIAL, UNKNOWN = (
    "imessage",
    "sms_only",
    "unreachable",
    "partial",
    "unknown",
)
CATEGORIES = (IMESSAGE, SMS_ONLY, UNREACHABLE, PARTIAL, UNKNOWN)
# What an SMS/RCS message loses, by the request field that asks for it.
FEATURES = ("effect", "link_preview", "typing_indicator", "reply")
CACHE_FILE = "capabilities.sqlite"
_MAX_TEXT = 300


@dataclass(frozen=True, slots=True)
class Capability:
    contact: str
    imessage: bool
    sms: bool
    checked_at: float
    invalid: str | None = None  # the API refused the contact (400): why


# -- the request ----------------------------------------------------------------------------
class CheckKind(StrEnum):
    OK = "ok"
    INVALID = "invalid"  # the API refused the contact: final, and cached as unreachable
    RETRY = "retry"
    UNAUTHORIZED = "unauthorized"
    STOPPED = "stopped"  # not asked: the check is stopping


@dataclass(slots=True)
class CapVerdict(EndpointVerdict[CheckKind]):
    """What one capabilities request says about the contact."""

    imessage: bool = False
    sms: bool = False
    error: str | None = None
    retry_after: float | None = None


def classify_capabilities(
    status: int, raw: bytes, headers: httpx.Headers | dict[str, str], now: float
) -> CapVerdict:
    """What a capabilities response says (API reference §5: 200, 400, 401, 503)."""
    return capability_verdict(read_response(status, raw, headers, now, CAPABILITIES))


_CHECK_KINDS = {
    Disposition.UNAUTHORIZED: CheckKind.UNAUTHORIZED,
    Disposition.GONE: CheckKind.INVALID,
}


def capability_verdict(reading: Reading) -> CapVerdict:
    """What a classified answer of the capabilities endpoint says about the contact."""
    if reading.disposition is Disposition.OK:
        caps = (reading.payload or {}).get("capabilities")
        if not isinstance(caps, dict):
            return CapVerdict(CheckKind.RETRY, error="unreadable capabilities response")
        return CapVerdict(
            CheckKind.OK, imessage=caps.get("imessage") is True, sms=caps.get("sms") is True
        )
    kind = _CHECK_KINDS.get(reading.disposition, CheckKind.RETRY)
    return CapVerdict(kind, error=reading.why, retry_after=reading.retry_after)


# -- the cache ------------------------------------------------------------------------------
class CapabilityCache:
    """Answers per (API base URL, contact), so a rehearsal never feeds a live run."""

    def __init__(self, state_dir: str | Path, base_url: str) -> None:
        self.path = path = Path(state_dir) / CACHE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.base = base_url.rstrip("/")
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS capabilities (base TEXT NOT NULL, contact TEXT NOT "
                "NULL, imessage INTEGER NOT NULL, sms INTEGER NOT NULL, invalid TEXT, "
                "checked_at REAL NOT NULL, PRIMARY KEY (base, contact))"
            )
        except sqlite3.DatabaseError as err:
            raise CampaignError(
                f"cannot open the reach cache: {err}",
                file=str(path),
                hint="delete it; it only saves repeated checks",
            ) from None

    def fresh(self, contacts: Iterable[str], max_age: float, now: float) -> dict[str, Capability]:
        found: dict[str, Capability] = {}
        wanted = list(contacts)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for contact, im, sms, invalid, at in self._db.execute(
                f"SELECT contact, imessage, sms, invalid, checked_at FROM capabilities "
                f"WHERE base = ? AND checked_at >= ? AND contact IN ({marks})",
                [self.base, now - max_age, *chunk],
            ):
                found[contact] = Capability(contact, bool(im), bool(sms), at, invalid)
        return found

    def put(self, caps: Iterable[Capability]) -> None:
        rows = [
            (self.base, c.contact, int(c.imessage), int(c.sms), c.invalid, c.checked_at)
            for c in caps
        ]
        if rows:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO capabilities VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


# -- the checker ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReachOptions(ApiOptions):
    max_attempts: int = 4  # a capability check is cheap to redo on the next run
    request_timeout: float = 30.0


@dataclass
class CheckResult:
    caps: dict[str, Capability]
    failed: dict[str, str]  # contact -> why no answer came (retries exhausted)
    requests: int = 0
    stop_reason: StopReason | None = None  # UNAUTHORIZED or INTERRUPTED


class CapabilityChecker(ApiCaller[ReachOptions]):
    def __init__(
        self,
        *,
        api_key: str,
        options: ReachOptions,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            api_key=api_key, options=options, transport=transport, limiter=limiter, rng=rng
        )
        self._clock = clock
        self._sleep = sleep

    async def check(self, contacts: list[str]) -> CheckResult:
        result = CheckResult({}, {})
        api = self.client(self.options.request_timeout)
        queue = iter(contacts)  # shared by the workers: each takes the next contact

        async def worker() -> None:
            for contact in queue:
                if self.stopping:
                    return
                await self._one(api, contact, result)

        try:
            await asyncio.gather(*(worker() for _ in range(self.options.concurrency)))
        finally:
            await api.aclose()
        result.stop_reason = self._stop_reason
        return result

    async def _one(self, api: ApiClient, contact: str, result: CheckResult) -> None:
        path = f"/contacts/{quote(contact, safe='')}/capabilities"

        async def try_once(attempt: int) -> CapVerdict:
            if self.stopping:
                return CapVerdict(CheckKind.STOPPED)
            await self._limiter.acquire()
            if self.stopping:  # released by a stop, not by its turn
                return CapVerdict(CheckKind.STOPPED)
            ex = await api.request("GET", path)
            result.requests += 1
            return capability_verdict(read_exchange(ex, CAPABILITIES, self._clock()))

        verdict = (await retrying(try_once, self.options, self._rng, self._sleep)).verdict
        if verdict.kind is CheckKind.OK:
            result.caps[contact] = Capability(contact, verdict.imessage, verdict.sms, self._clock())
        elif verdict.kind is CheckKind.INVALID:
            result.caps[contact] = Capability(
                contact, False, False, self._clock(), verdict.error or "invalid contact"
            )
        elif verdict.kind is CheckKind.UNAUTHORIZED:
            self.request_stop(StopReason.UNAUTHORIZED)
        elif verdict.kind is CheckKind.RETRY:
            result.failed[contact] = verdict.error or "no answer"


# -- the analysis (pure) --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Audience:
    """One recipient as reach sees it: its chat and, per step, what the step would use."""

    chat: str
    steps: dict[str, frozenset[str]]  # step id -> FEATURES used (only steps it is sent)


def step_features(body: dict[str, Any], replies: bool) -> frozenset[str]:
    """Which iMessage-only features one rendered request body relies on."""
    used = set()
    if body.get("effect"):
        used.add("effect")
    parts = body.get("parts") or []
    if body.get("link_preview") or any(
        isinstance(p, dict) and p.get("link_preview") for p in parts
    ):
        used.add("link_preview")
    if body.get("use_typing_indicator") is True:
        used.add("typing_indicator")
    if replies or body.get("reply_to"):
        used.add("reply")
    return frozenset(used)


def contacts_of(chat: str) -> list[str]:
    """The phones/emails to check for a chat; none for a group id (grp_...)."""
    if chat.startswith("grp_"):
        return []
    return chat.split(",")


def category(chat: str, caps: dict[str, Capability]) -> tuple[str, str]:
    """(category, reason) of one chat from its contacts' capabilities."""
    members = contacts_of(chat)
    known = [caps.get(m) for m in members]
    if any(c is None for c in known):
        return UNKNOWN, "the check got no answer"
    if len(members) > 1:
        # A multi-recipient chat is an iMessage group: members without iMessage are left out.
        without = [c.contact for c in known if not c.imessage]  # type: ignore[union-attr]
        if not without:
            return IMESSAGE, ""
        if len(without) == len(members):
            return UNREACHABLE, "no member has iMessage (a group chat needs it)"
        return PARTIAL, f"{len(without)} of {len(members)} members without iMessage"
    c = known[0]
    assert c is not None
    if c.invalid:
        return UNREACHABLE, f"refused by the API: {c.invalid}"
    if c.imessage:
        return IMESSAGE, ""
    if "@" in c.contact:
        return UNREACHABLE, "email without iMessage"
    if c.sms:
        return SMS_ONLY, ""
    return UNREACHABLE, "neither iMessage nor SMS"


def analyse(
    audience: Iterable[Audience],
    caps: dict[str, Capability],
    skipped_groups: int,
    show_recipients: bool,
    *,
    unreachable_limit: int = 200,
) -> dict[str, Any]:
    """The reach document (``reach --format json``, schema_version 1)."""
    counts = {c: 0 for c in CATEGORIES}
    emails_without = 0
    steps: dict[str, dict[str, Any]] = {}
    listed: list[dict[str, str]] = []
    total = 0
    for a in audience:
        total += 1
        cat, reason = category(a.chat, caps)
        counts[cat] += 1
        if cat == UNREACHABLE and reason == "email without iMessage":
            emails_without += 1
        if cat in (UNREACHABLE, PARTIAL, UNKNOWN) and len(listed) < unreachable_limit:
            listed.append(
                {
                    "recipient": display_chat(a.chat, show_recipients),
                    "category": cat,
                    "reason": reason,
                }
            )
        for step, used in a.steps.items():
            s = steps.setdefault(
                step,
                {"recipients": 0, **{c: 0 for c in CATEGORIES}, "drops": {f: 0 for f in FEATURES}},
            )
            s["recipients"] += 1
            s[cat] += 1
            if cat == SMS_ONLY:
                for f in used:
                    s["drops"][f] += 1
    return {
        "schema_version": 1,
        "recipients": total,
        "skipped_groups": skipped_groups,
        "contacts_checked": len(caps),
        "counts": counts,
        "emails_without_imessage": emails_without,
        "steps": steps,
        "unreachable": listed,
        "unreachable_listed": len(listed),
        "recipients_masked": not show_recipients,
    }


_DROP_TEXT = {
    "effect": "the effect",
    "link_preview": "the link preview",
    "typing_indicator": "the typing indicator",
    "reply": "the inline reply",
}


def render_text(doc: dict[str, Any]) -> str:
    c = doc["counts"]
    n = doc["recipients"]

    def pct(x: int) -> str:
        return f"{100.0 * x / n:.1f}%" if n else "-"

    lines = [
        f"Reach of {n:,} recipients ({doc['contacts_checked']:,} contacts checked"
        f"{', ' + doc['cache_note'] if doc.get('cache_note') else ''}):",
        f"  iMessage {c[IMESSAGE]:,} ({pct(c[IMESSAGE])}), SMS only {c[SMS_ONLY]:,} "
        f"({pct(c[SMS_ONLY])}), nothing {c[UNREACHABLE]:,} ({pct(c[UNREACHABLE])})"
        + (f", group chats with members left out {c[PARTIAL]:,}" if c[PARTIAL] else "")
        + (f", not checked (no answer) {c[UNKNOWN]:,}" if c[UNKNOWN] else ""),
    ]
    if doc.get("no_answer_reason"):
        lines.append(
            f"  no answer for {doc['no_answer']:,} contacts (most: {doc['no_answer_reason']})"
        )
    if doc["emails_without_imessage"]:
        lines.append(
            f"  of which emails without iMessage (they get nothing): "
            f"{doc['emails_without_imessage']:,}"
        )
    if doc["skipped_groups"]:
        lines.append(
            f"  {doc['skipped_groups']:,} group id(s) (grp_...) skipped: their "
            "members are not known to the runner, so they are not checked"
        )
    lines.append("Per step:")
    for step, s in doc["steps"].items():
        drops = [f"{s['drops'][f]:,} without {_DROP_TEXT[f]}" for f in FEATURES if s["drops"][f]]
        lost = s[UNREACHABLE]
        lines.append(
            f"  {step}: {s['recipients']:,} recipients, {s[SMS_ONLY]:,} by SMS"
            + (f" ({', '.join(drops)})" if drops else "")
            + (f", {lost:,} get nothing" if lost else "")
        )
    if doc["unreachable"]:
        lines.append(
            "Unreachable or partly reachable"
            + (" (masked; --show-recipients to see them)" if doc["recipients_masked"] else "")
            + ":"
        )
        for u in doc["unreachable"]:
            lines.append(f"  {u['recipient']}  {u['category']}: {u['reason']}")
        if doc["unreachable_listed"] < c[UNREACHABLE] + c[PARTIAL] + c[UNKNOWN]:
            lines.append("  ... (list truncated; --format json has the same first entries)")
    if doc.get("stop_reason"):
        why = {
            StopReason.UNAUTHORIZED: "the API key was refused (401)",
            StopReason.INTERRUPTED: "interrupted",
        }.get(doc["stop_reason"], doc["stop_reason"])
        lines.append(f"Stopped early: {why}; the counts above are incomplete")
    return "\n".join(lines) + "\n"

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
import json
import random
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from runner.audience.mask import display_chat
from runner.errors import CampaignError
from runner.http.client import MAX_ERROR_TEXT, ApiClient, ApiOptions, parse_retry_after, retry_delay
from runner.http.ratelimit import RateLimiter

IMESSAGE, SMS_ONLY, UNREACHABLE, PARTIAL, UNKNOWN = (
    "imessage", "sms_only", "unreachable", "partial", "unknown")
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
@dataclass(slots=True)
class CapVerdict:
    kind: str  # "ok" | "invalid" | "retry" | "unauthorized"
    imessage: bool = False
    sms: bool = False
    error: str | None = None
    retry_after: float | None = None


def classify_capabilities(status: int, raw: bytes, headers: httpx.Headers | dict[str, str],
                          now: float) -> CapVerdict:
    """What a capabilities response says (API reference §5: 200, 400, 401, 503)."""
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = None
    if 200 <= status < 300:
        caps = payload.get("capabilities") if isinstance(payload, dict) else None
        if not isinstance(caps, dict):
            return CapVerdict("retry", error="unreadable capabilities response")
        return CapVerdict("ok", imessage=caps.get("imessage") is True, sms=caps.get("sms") is True)
    message = None
    if isinstance(payload, dict):
        text = payload.get("message") or payload.get("error")
        message = str(text)[:MAX_ERROR_TEXT] if text else None
    if status == 401:
        return CapVerdict("unauthorized", error=message)
    if status in (400, 404, 422):
        return CapVerdict("invalid", error=message or f"HTTP {status}")
    return CapVerdict("retry", error=message or f"HTTP {status}",
                      retry_after=parse_retry_after(headers.get("retry-after"), now))


# -- the cache ------------------------------------------------------------------------------
class CapabilityCache:
    """Answers per (API base URL, contact), so a rehearsal never feeds a live run."""

    def __init__(self, state_dir: str | Path, base_url: str) -> None:
        path = Path(state_dir) / CACHE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.base = base_url.rstrip("/")
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS capabilities (base TEXT NOT NULL, contact TEXT NOT "
                "NULL, imessage INTEGER NOT NULL, sms INTEGER NOT NULL, invalid TEXT, "
                "checked_at REAL NOT NULL, PRIMARY KEY (base, contact))")
        except sqlite3.DatabaseError as err:
            raise CampaignError(f"cannot open the reach cache: {err}", file=str(path),
                                hint="delete it; it only saves repeated checks") from None

    def fresh(self, contacts: Iterable[str], max_age: float, now: float) -> dict[str, Capability]:
        found: dict[str, Capability] = {}
        wanted = list(contacts)
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for contact, im, sms, invalid, at in self._db.execute(
                f"SELECT contact, imessage, sms, invalid, checked_at FROM capabilities "
                f"WHERE base = ? AND checked_at >= ? AND contact IN ({marks})",
                [self.base, now - max_age, *chunk],
            ):
                found[contact] = Capability(contact, bool(im), bool(sms), at, invalid)
        return found

    def put(self, caps: Iterable[Capability]) -> None:
        rows = [(self.base, c.contact, int(c.imessage), int(c.sms), c.invalid, c.checked_at)
                for c in caps]
        if rows:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO capabilities VALUES (?, ?, ?, ?, ?, ?)", rows)
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
    stop_reason: str | None = None  # "unauthorized" | "interrupted"


class CapabilityChecker:
    def __init__(self, *, api_key: str, options: ReachOptions,
                 transport: httpx.AsyncBaseTransport | None = None,
                 limiter: RateLimiter | None = None, rng: random.Random | None = None,
                 clock: Any = time.time) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.options = options
        self._api_key = api_key
        self._transport = transport
        self._limiter = limiter or RateLimiter(options.rate_per_second)
        self._rng = rng or random.Random()
        self._clock = clock
        self._stop_reason: str | None = None

    def request_stop(self, reason: str = "interrupted") -> None:
        if self._stop_reason is None:
            self._stop_reason = reason

    async def check(self, contacts: list[str]) -> CheckResult:
        result = CheckResult({}, {})
        opts = self.options
        api = ApiClient(opts.base_url, self._api_key, timeout=opts.request_timeout,
                        concurrency=opts.concurrency, transport=self._transport,
                        user_agent=opts.user_agent)
        queue = iter(contacts)  # shared by the workers: each takes the next contact

        async def worker() -> None:
            for contact in queue:
                if self._stop_reason is not None:
                    return
                await self._one(api, contact, result)

        try:
            await asyncio.gather(*(worker() for _ in range(self.options.concurrency)))
        finally:
            await api.aclose()
        result.stop_reason = self._stop_reason
        return result

    async def _one(self, api: ApiClient, contact: str, result: CheckResult) -> None:
        opts = self.options
        path = f"/contacts/{quote(contact, safe='')}/capabilities"
        why = "no answer"
        for attempt in range(1, opts.max_attempts + 1):
            if self._stop_reason is not None:
                return
            await self._limiter.acquire()
            ex = await api.request("GET", path)
            verdict = (CapVerdict("retry", error=ex.error) if ex.status is None
                       else classify_capabilities(ex.status, ex.body, ex.headers, self._clock()))
            result.requests += 1
            if verdict.kind == "ok":
                result.caps[contact] = Capability(contact, verdict.imessage, verdict.sms,
                                                  self._clock())
                return
            if verdict.kind == "invalid":
                result.caps[contact] = Capability(contact, False, False, self._clock(),
                                                  verdict.error or "invalid contact")
                return
            if verdict.kind == "unauthorized":
                self.request_stop("unauthorized")
                return
            why = verdict.error or "no answer"
            if attempt == opts.max_attempts:
                break
            delay = retry_delay(attempt, verdict.retry_after, opts, self._rng)
            if delay is None:
                break
            await asyncio.sleep(delay)
        result.failed[contact] = why

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
    if body.get("link_preview") or any(isinstance(p, dict) and p.get("link_preview")
                                       for p in parts):
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


def analyse(audience: Iterable[Audience], caps: dict[str, Capability], skipped_groups: int,
            show_recipients: bool, *, unreachable_limit: int = 200) -> dict[str, Any]:
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
            listed.append({"recipient": display_chat(a.chat, show_recipients),
                           "category": cat, "reason": reason})
        for step, used in a.steps.items():
            s = steps.setdefault(step, {"recipients": 0, **{c: 0 for c in CATEGORIES},
                                        "drops": {f: 0 for f in FEATURES}})
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


_DROP_TEXT = {"effect": "the effect", "link_preview": "the link preview",
              "typing_indicator": "the typing indicator", "reply": "the inline reply"}


def render_text(doc: dict[str, Any]) -> str:
    c = doc["counts"]
    n = doc["recipients"]

    def pct(x: int) -> str:
        return f"{100.0 * x / n:.1f}%" if n else "-"

    lines = [f"Reach of {n:,} recipients ({doc['contacts_checked']:,} contacts checked"
             f"{', ' + doc['cache_note'] if doc.get('cache_note') else ''}):",
             f"  iMessage {c[IMESSAGE]:,} ({pct(c[IMESSAGE])}), SMS only {c[SMS_ONLY]:,} "
             f"({pct(c[SMS_ONLY])}), nothing {c[UNREACHABLE]:,} ({pct(c[UNREACHABLE])})"
             + (f", group chats with members left out {c[PARTIAL]:,}" if c[PARTIAL] else "")
             + (f", not checked (no answer) {c[UNKNOWN]:,}" if c[UNKNOWN] else "")]
    if doc["emails_without_imessage"]:
        lines.append(f"  of which emails without iMessage (they get nothing): "
                     f"{doc['emails_without_imessage']:,}")
    if doc["skipped_groups"]:
        lines.append(f"  {doc['skipped_groups']:,} group id(s) (grp_...) skipped: their "
                     "members are not known to the runner, so they are not checked")
    lines.append("Per step:")
    for step, s in doc["steps"].items():
        drops = [f"{s['drops'][f]:,} without {_DROP_TEXT[f]}" for f in FEATURES if s["drops"][f]]
        lost = s[UNREACHABLE]
        lines.append(f"  {step}: {s['recipients']:,} recipients, {s[SMS_ONLY]:,} by SMS"
                     + (f" ({', '.join(drops)})" if drops else "")
                     + (f", {lost:,} get nothing" if lost else ""))
    if doc["unreachable"]:
        lines.append("Unreachable or partly reachable"
                     + (" (masked; --show-recipients to see them)" if doc["recipients_masked"]
                        else "") + ":")
        for u in doc["unreachable"]:
            lines.append(f"  {u['recipient']}  {u['category']}: {u['reason']}")
        if doc["unreachable_listed"] < c[UNREACHABLE] + c[PARTIAL] + c[UNKNOWN]:
            lines.append("  ... (list truncated; --format json has the same first entries)")
    if doc.get("stop_reason"):
        why = {"unauthorized": "the API key was refused (401)",
               "interrupted": "interrupted"}.get(doc["stop_reason"], doc["stop_reason"])
        lines.append(f"Stopped early: {why}; the counts above are incomplete")
    return "\n".join(lines) + "\n"

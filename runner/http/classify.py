"""What one HTTP exchange with the API says, the same way for every endpoint.

The response classifier shared by send, track, reach and optouts: which statuses mean "ask
again" (with the server's Retry-After), "the API does not know it", "the key was refused",
"an account cap", or "failed for good", read from the endpoint's facts in runner.contract.
What the body means beyond that (an accepted message's ids, a delivery status, capabilities)
is each caller's business, on top of the :class:`Reading` this returns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from itertools import accumulate
from typing import Any, Generic, TypeVar

from runner.contract import CAP_CODES, TRANSIENT_STATUSES, UNAUTHORIZED_STATUS, Endpoint
from runner.http.client import MAX_ERROR_TEXT, Exchange
from runner.limits import MAX_JSON_DEPTH


class Disposition(StrEnum):
    OK = "ok"  # 2xx: what the body says is the caller's to read
    GONE = "gone"  # the API does not know the thing asked about
    FAILED = "failed"  # refused for good: asking again gets the same answer
    RETRY = "retry"  # transient, or no answer at all (network error)
    UNAUTHORIZED = "unauthorized"  # the key was refused: nothing else will work either
    CAP = "cap"  # an account cap (CapCode): not a blip, so not retried now


@dataclass(frozen=True, slots=True)
class Reading:
    disposition: Disposition
    http_status: int | None  # None: no answer (network error)
    payload: dict[str, Any] | None  # the JSON object answered; None if unreadable or not one
    code: str | None = None  # the API's error `code`
    message: str | None = None  # the API's message, or the network error (redacted), cut
    retry_after: float | None = None  # seconds the server asked to wait (RETRY only)
    error_kind: str | None = None  # the network error's class name

    @property
    def retry(self) -> bool:
        return self.disposition is Disposition.RETRY

    @property
    def why(self) -> str | None:
        """What went wrong, in a few words: the API's message, else the status."""
        if self.message or self.http_status is None:
            return self.message
        return f"HTTP {self.http_status}"


K = TypeVar("K", bound=StrEnum)


@dataclass(slots=True)
class EndpointVerdict(Generic[K]):
    """What an answer means to one command: its own kinds of outcome, and the HTTP status
    (None: no answer). Each command adds what it reads from the body."""

    kind: K
    http_status: int | None = None

    @property
    def retry(self) -> bool:
        return self.kind == Disposition.RETRY  # every command's kinds spell "retry" alike


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def error_text(value: Any) -> str | None:
    """A text from a response body as journals and reports keep it: JSON if not a string, cut."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:MAX_ERROR_TEXT]


def disposition(status: int, code: str | None, endpoint: Endpoint) -> Disposition:
    if 200 <= status < 300:
        return Disposition.OK
    if status == UNAUTHORIZED_STATUS:
        return Disposition.UNAUTHORIZED
    if status in endpoint.gone:
        return Disposition.GONE
    if endpoint.caps and status == 429 and code in CAP_CODES:
        return Disposition.CAP
    if status in TRANSIENT_STATUSES or status >= 500 or status < 200 or 300 <= status < 400:
        return Disposition.RETRY
    return Disposition.RETRY if endpoint.retry_other_4xx else Disposition.FAILED


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


UNREADABLE = "unreadable_answer"  # the runner's code (not the API's) for an answer it cannot read


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped), without parsing
    it: Python's json recurses once a level, so a hostile ``[`` * 100000 would raise
    RecursionError (a traceback, a row left "sending")."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return 0  # cannot be too deep: the common case costs two counts
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw)).translate(_DEPTH_STEPS)
    deepest = 0
    for depth in accumulate(b if b == 1 else -1 for b in brackets):
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                break
    return deepest


def read_response(
    status: int, raw: bytes, headers: Mapping[str, str] | None, now: float, endpoint: Endpoint
) -> Reading:
    """Classify one HTTP answer (``now`` is the wall clock, for an HTTP-date Retry-After).

    An answer nested deeper than MAX_JSON_DEPTH is no answer: asked again (the retry policy
    of each command bounds how often), whatever its status."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        return Reading(
            Disposition.RETRY,
            status,
            None,
            code=UNREADABLE,
            message=f"unreadable answer: JSON nested deeper than {MAX_JSON_DEPTH} levels",
        )
    try:
        payload = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        payload = None
    body = payload or {}
    code = body.get("code") if isinstance(body.get("code"), str) else None
    kind = disposition(status, code, endpoint)
    retry_after = None
    if kind is Disposition.RETRY and headers is not None:
        retry_after = parse_retry_after(headers.get("retry-after"), now)
    return Reading(
        kind,
        status,
        payload,
        code,
        error_text(body.get("message") or body.get("error")),
        retry_after,
    )


def read_exchange(exchange: Exchange, endpoint: Endpoint, now: float) -> Reading:
    """Classify an exchange; one that got no answer is worth another try."""
    if exchange.status is None:
        return Reading(
            Disposition.RETRY, None, None, message=exchange.error, error_kind=exchange.error_kind
        )
    return read_response(exchange.status, exchange.body, exchange.headers, now, endpoint)

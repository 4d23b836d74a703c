"""The one retry loop: how long to wait before the next try of a request, and when to stop.

Send, track, reach and optouts all pace their retries here: full-jitter exponential backoff,
at least the server's Retry-After, and a give-up after ``max_attempts`` tries or when the
server asks for a wait longer than ``max_retry_after`` (the request is then left for a later
run instead of holding a worker). Why a run stopped is one vocabulary, :class:`StopReason`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from runner.contract import CapCode
from runner.http.client import ApiOptions


class StopReason(StrEnum):
    """Why a run of requests ended early (stored as these strings in journals and reports)."""

    UNAUTHORIZED = "unauthorized"  # the key was refused (401)
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    TIMEOUT = "timeout"  # the run's own time limit (track)
    RETRIES_EXHAUSTED = "retries_exhausted"  # some requests are left for a later run
    OUTBOUND_LIMIT = CapCode.OUTBOUND_LIMIT.value
    NEW_CONVERSATION_LIMIT = CapCode.NEW_CONVERSATION_LIMIT.value


class Verdict(Protocol):
    """What the loop needs of an endpoint's verdict."""

    @property
    def retry(self) -> bool: ...

    @property
    def retry_after(self) -> float | None: ...


V = TypeVar("V", bound=Verdict)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return rng.uniform(0.0, min(cap, base * (2 ** (attempt - 1))))


def retry_delay(
    attempt: int, retry_after: float | None, options: ApiOptions, rng: random.Random
) -> float | None:
    """How long to wait before try ``attempt + 1``, or None to give up for this run."""
    if attempt >= options.max_attempts:
        return None
    delay = backoff_delay(attempt, options.backoff_base, options.backoff_cap, rng)
    if retry_after is not None:
        if retry_after > options.max_retry_after:
            return None
        delay = max(delay, retry_after)
    return delay


@dataclass(frozen=True, slots=True)
class Retried(Generic[V]):
    """What the retry loop ended on: the last verdict, and whether the policy gave up on it
    (a retryable verdict, with no attempt left or a Retry-After beyond the limit)."""

    verdict: V
    gave_up: bool = False


async def retrying(
    try_once: Callable[[int], Awaitable[V]],
    options: ApiOptions,
    rng: random.Random,
    wait: Callable[[float], Awaitable[None]],
) -> Retried[V]:
    """Call ``try_once(attempt)`` until its verdict is not a retry or the policy gives up."""
    attempt = 1
    while True:
        verdict = await try_once(attempt)
        if not verdict.retry:
            return Retried(verdict)
        delay = retry_delay(attempt, verdict.retry_after, options, rng)
        if delay is None:
            return Retried(verdict, gave_up=True)
        await wait(delay)
        attempt += 1

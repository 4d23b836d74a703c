"""A client-side rate ceiling shared by all workers of a run.

A token bucket of capacity one: requests leave about ``1/rate`` seconds apart, so no
one-second window ever holds more than ``rate`` requests, and idle time never builds up a burst.
Each caller reserves its slot before awaiting, which is race-free on a single event loop.
The clock and sleep are injected so tests can check the ceiling without real time passing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# Any ``rate + 1`` consecutive requests span at least one second plus this guard. Without it,
# evenly spaced requests sit exactly on the window's edge and the smallest jitter between
# client and server (a connect, a busy event loop) shows the server ``rate + 1`` in a second.
# It costs 2% of the rate; it also keeps float rounding from squeezing in an extra request.
GUARD_SECONDS = 0.02


class RateLimiter:
    def __init__(
        self,
        rate_per_second: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_second is not None and rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        self._interval = (1.0 + GUARD_SECONDS) / rate_per_second if rate_per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")

    def reserve(self) -> float:
        """Reserve the next free slot and return how long the caller must wait for it."""
        if not self.rate:
            return 0.0
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        return slot - now

    async def acquire(self) -> None:
        """Wait until this caller may send one request."""
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)

"""A client-side rate ceiling shared by all workers of a run.

A token bucket of capacity one: requests leave about ``1/rate`` seconds apart, so no
one-second window ever holds more than ``rate`` requests, and idle time never builds up a burst.
Each caller reserves its slot before awaiting, which is race-free on a single event loop.
The clock and sleep are injected so tests can check the ceiling without real time passing.
``interrupt()`` releases every waiter at once: a stopping run must not wait out slots reserved
far ahead (64 workers at 2/s hold slots up to 32 s away; at 1e-300/s, forever).
"""

from __future__ import annotations

import asyncio
import math
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
        if rate_per_second is not None and not (
            math.isfinite(rate_per_second) and rate_per_second > 0
        ):
            raise ValueError("rate_per_second must be finite and positive")
        self.rate = rate_per_second
        self._interval = (1.0 + GUARD_SECONDS) / rate_per_second if rate_per_second else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")
        self._interrupted = False
        self._waiting: set[asyncio.Future[None]] = set()

    def reserve(self) -> float:
        """Reserve the next free slot and return how long the caller must wait for it."""
        if not self.rate:
            return 0.0
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        return slot - now

    async def acquire(self) -> None:
        """Wait until this caller may send one request, or until ``interrupt()``: the caller
        checks whether its run is stopping before it sends."""
        if self._interrupted:
            return
        delay = self.reserve()
        if delay <= 0:
            return
        if self._sleep is not asyncio.sleep:  # an injected sleep (tests) keeps its own time
            await self._sleep(delay)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        # call_later takes any float; a timer past the loop's horizon simply never fires.
        handle = loop.call_later(min(delay, 1e9), _release, fut)
        self._waiting.add(fut)
        try:
            await fut
        finally:
            handle.cancel()
            self._waiting.discard(fut)

    def interrupt(self) -> None:
        """Release every waiting caller now, and let every later caller through at once."""
        self._interrupted = True
        for fut in list(self._waiting):
            _release(fut)


def _release(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)

"""What every command that talks to the API holds: the key, the options, the transport, the
rate ceiling shared by its workers, the jitter source of its retries, and why it stopped."""

from __future__ import annotations

import random
from typing import Generic, TypeVar

import httpx

from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.retry import StopReason

Opts = TypeVar("Opts", bound=ApiOptions)


class ApiCaller(Generic[Opts]):
    """Base of send's executor, track's tracker and reach's checker."""

    def __init__(
        self,
        *,
        api_key: str,
        options: Opts,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.options: Opts = options
        self.transport = transport  # None: the runner's own (tests pass a mock or the emulator)
        self._api_key = api_key
        self._limiter = limiter or RateLimiter(options.rate_per_second)
        self._rng = rng or random.Random()
        self._stop_reason: StopReason | None = None

    def client(self, timeout: float) -> ApiClient:
        """A client for one run (``timeout``: the deadline of each request)."""
        opts = self.options
        return ApiClient(
            opts.base_url,
            self._api_key,
            timeout=timeout,
            concurrency=opts.concurrency,
            transport=self.transport,
            user_agent=opts.user_agent,
            stack=opts.http_stack,
        )

    def request_stop(self, reason: StopReason = StopReason.INTERRUPTED) -> None:
        """No new requests; those in flight finish (and are journalled where there is one)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._limiter.interrupt()  # workers waiting for a rate slot check `stopping` now
        self._wake_on_stop()

    def _wake_on_stop(self) -> None:
        """Cut short whatever the run waits on (a retry's sleep, the next poll)."""

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

"""A clock tests can move by hand, to walk the delivery lifecycle without sleeping."""

from __future__ import annotations

import threading


class ManualClock:
    """Epoch seconds that only change when ``advance`` or ``set`` is called (thread-safe)."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now

"""Checking a paced run: did the sender keep to ``--rate`` messages per second?"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RateStats:
    count: int
    max_in_window: int  # most requests in any window of ``window`` seconds
    average_rate: float  # requests per second between the first and the last
    window: float = 1.0


def rate_stats(timestamps: Sequence[float], window: float = 1.0) -> RateStats:
    """Max requests in any sliding ``window`` (half-open ``[t, t + window)``) and mean rate.

    The busiest window can always be slid right until it starts at a request, so checking
    the windows that start at each timestamp covers every window. Perfect 50/s pacing already
    puts 51 requests in some closed 1 s span (and float rounding can tip the half-open one),
    so check a paced run against a window shortened by the jitter you forgive, e.g. 0.99 s.
    """
    times = sorted(timestamps)
    n = len(times)
    most = 0
    for i, start in enumerate(times):
        most = max(most, bisect.bisect_left(times, start + window, lo=i) - i)
    span = times[-1] - times[0] if n > 1 else 0.0
    average = (n - 1) / span if span > 0 else 0.0
    return RateStats(count=n, max_in_window=most, average_rate=average, window=window)

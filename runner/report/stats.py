"""Intervals for reply rates: Wilson's score interval for one proportion and Newcombe's
method 10 (the hybrid score interval built from two Wilson intervals) for the difference of
two independent proportions. Pure, no dependencies.

Why these: the plain Wald interval p ± z·sqrt(p(1−p)/n) collapses to a point at 0 or n
replies and overshoots [0, 1] for small samples, exactly the situation of a reply rate of a
few percent. Newcombe (1998), "Interval estimation for the difference between independent
proportions", Statistics in Medicine 17:873-890, recommends method 10; its Table II values are
reproduced by tests/test_report_stats.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
MIN_DELIVERED = 30  # per variant: below this a comparison is called too small to tell


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for ``successes`` of ``n`` (``(0.0, 1.0)`` when n is 0)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and {n}, not {successes}")
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denom = 1 + z2 / n
    return max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """The interval of p1 − p2 (p1 = x1/n1, p2 = x2/n2) by Newcombe's method 10."""
    if n1 <= 0 or n2 <= 0:
        return -1.0, 1.0
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, lower), min(1.0, upper)


@dataclass(frozen=True)
class Comparison:
    """One variant's reply rate against another's (``a`` − ``b``)."""

    a: str
    b: str
    difference: float  # reply rate of a minus that of b
    low: float
    high: float
    verdict: str  # "too_small", "no_clear_difference", "a_higher", "b_higher"

    def to_dict(self) -> dict[str, object]:
        return {
            "a": self.a,
            "b": self.b,
            "difference": round(self.difference, 4),
            "ci95": [round(self.low, 4), round(self.high, 4)],
            "verdict": self.verdict,
        }


def compare(
    a: str,
    replied_a: int,
    delivered_a: int,
    b: str,
    replied_b: int,
    delivered_b: int,
    min_n: int = MIN_DELIVERED,
) -> Comparison:
    """The difference in reply rate of ``a`` and ``b`` with its 95% interval and what it says:
    too small to tell (fewer than ``min_n`` delivered to either), no clear difference (the
    interval spans 0), or which one is higher."""
    low, high = newcombe(replied_a, delivered_a, replied_b, delivered_b)
    d = (replied_a / delivered_a if delivered_a else 0.0) - (
        replied_b / delivered_b if delivered_b else 0.0
    )
    if min(delivered_a, delivered_b) < min_n:
        verdict = "too_small"
    elif low <= 0.0 <= high:
        verdict = "no_clear_difference"
    else:
        verdict = "a_higher" if low > 0 else "b_higher"
    return Comparison(a, b, d, low, high, verdict)

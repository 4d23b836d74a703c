"""A daily window in local time ("09:00-20:00", optionally on some weekdays only): the
campaign's own schedule window, the team policy's hours and the law's hours all use it.

A module of its own, outside runner.campaign and runner.law, because both read it and the
campaign builds the law: neither package imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    start: time
    end: time
    days: frozenset[int] | None  # weekday numbers (Monday 0) on which a window OPENS

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def opened_on(self, local: datetime) -> datetime | None:
        """The opening (local) of the window that contains `local`, or None if outside."""
        t = local.time().replace(tzinfo=None)
        if not self.crosses_midnight:
            if not (self.start <= t < self.end):
                return None
            day = local.date()
        elif t >= self.start:
            day = local.date()
        elif t < self.end:
            day = local.date() - timedelta(days=1)
        else:
            return None
        if self.days is not None and day.weekday() not in self.days:
            return None
        return datetime.combine(day, self.start, tzinfo=local.tzinfo)

    def next_open(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The first instant >= `after` inside the window (UTC), DST changes included: on a
        fall-back day an opening time happens twice (both are candidates); on a spring-forward
        day it may not happen at all, and the window then opens when the clock jumps past it."""
        if self.opened_on(after.astimezone(tz)) is not None:
            return after
        day = after.astimezone(tz).date()
        for i in range(0, 9):
            d = day + timedelta(days=i)
            if self.days is not None and d.weekday() not in self.days:
                continue
            naive = datetime.combine(d, self.start)
            early, late = sorted(naive.replace(tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1))
            if early.astimezone(tz).replace(tzinfo=None) != naive:
                # In the gap: the first instant between the two readings that is inside.
                opened = self._first_inside(early, late, tz)
                if opened is not None and opened >= after:
                    return opened
                continue
            for candidate in (early, late):
                if candidate >= after:
                    return candidate
        raise AssertionError(
            "a window with at least one day opens within 8 days"
        )  # pragma: no cover

    def _first_inside(self, lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime | None:
        if self.opened_on(hi.astimezone(tz)) is None:
            return None
        # Bisection to the second: local time is monotonic across a spring-forward gap.
        while (hi - lo) > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if self.opened_on(mid.astimezone(tz)) is None:
                lo = mid
            else:
                hi = mid
        return (
            hi.replace(microsecond=0)
            if self.opened_on(hi.replace(microsecond=0).astimezone(tz))
            else hi
        )

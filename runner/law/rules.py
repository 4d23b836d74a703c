"""The legal hours of a place: the federal rule and each state's stricter one, from the table in
us_states.toml (data, with its sources), intersected into one `LegalHours` per place.

Pure: no clock is read; `next_open` answers "from this instant, when may a message go?".
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

TABLE = Path(__file__).with_name("us_states.toml")
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Span = tuple[time, time] | None  # allowed [start, end) on one weekday; None: closed all day


@dataclass(frozen=True)
class LegalHours:
    """Allowed local hours for each weekday (Monday 0), and whether US federal holidays are
    closed. `label` names the rule in plans: "FL 08:00-20:00"."""

    label: str
    spans: tuple[Span, ...]  # seven entries
    holidays_closed: bool = False

    def open_at(self, local: datetime) -> bool:
        span = self.spans[local.weekday()]
        if span is None or (
            self.holidays_closed and local.date() in us_federal_holidays(local.year)
        ):
            return False
        t = local.time().replace(tzinfo=None)
        return span[0] <= t < span[1]

    def next_open(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The first instant >= `after` (aware) inside the hours at zone `tz`, in UTC. Legal hours
        lie between 08:00 and 21:00, away from DST changes (which happen at night)."""
        local = after.astimezone(tz)
        if self.open_at(local):
            return after  # the common case: inside the hours
        for i in range(0, 15):
            d = local.date() + timedelta(days=i)
            span = self.spans[d.weekday()]
            if span is None or (self.holidays_closed and d in us_federal_holidays(d.year)):
                continue
            start = datetime.combine(d, span[0], tzinfo=tz)
            end = datetime.combine(d, span[1], tzinfo=tz)
            t = max(after, start.astimezone(UTC))
            if t < end.astimezone(UTC):
                return t
        raise AssertionError("legal hours open within two weeks")  # pragma: no cover

    def intersect(self, other: LegalHours, label: str) -> LegalHours:
        spans: list[Span] = []
        for a, b in zip(self.spans, other.spans, strict=True):
            if a is None or b is None:
                spans.append(None)
                continue
            start, end = max(a[0], b[0]), min(a[1], b[1])
            spans.append((start, end) if start < end else None)
        return LegalHours(label, tuple(spans), self.holidays_closed or other.holidays_closed)


@dataclass(frozen=True)
class Rule:
    """One row of the table."""

    code: str  # "FL"; "US" for the federal row
    name: str
    hours: LegalHours
    cap: int | None  # messages per 24 h, per person, on the same subject
    source: str
    kind: str  # "statute" | "secondary"
    read: str  # ISO date the source was read
    note: str = ""

    def describe_hours(self) -> str:
        return describe(self.hours)


def describe(hours: LegalHours) -> str:
    """ "08:00-20:00", "09:00-21:00, Sun 12:00-21:00", "08:00-20:00, not Sun, not holidays"."""
    common: dict[Span, int] = {}
    for span in hours.spans:
        common[span] = common.get(span, 0) + 1
    main = max((s for s in common if s is not None), key=lambda s: common[s], default=None)
    out = [_fmt(main)] if main else ["closed"]
    for i, span in enumerate(hours.spans):
        if span != main:
            out.append(f"{_DAY_NAMES[i]} {_fmt(span)}" if span else f"not {_DAY_NAMES[i]}")
    if hours.holidays_closed:
        out.append("not holidays")
    return ", ".join(out)


def _fmt(span: Span) -> str:
    return "closed" if span is None else f"{span[0]:%H:%M}-{span[1]:%H:%M}"


def _span(text: str) -> Span:
    if text == "closed":
        return None
    a, b = text.split("-")
    return (time.fromisoformat(a), time.fromisoformat(b))


def _rule(code: str, row: dict) -> Rule:
    every = _span(row["hours"])
    spans = [every] * 7
    if "saturday" in row:
        spans[5] = _span(row["saturday"])
    if "sunday" in row:
        spans[6] = _span(row["sunday"])
    hours = LegalHours("", tuple(spans), row.get("holidays") == "closed")
    hours = LegalHours(f"{code} {describe(hours)}", hours.spans, hours.holidays_closed)
    return Rule(
        code,
        row["name"],
        hours,
        row.get("cap"),
        row["source"],
        row["kind"],
        row["read"],
        row.get("note", ""),
    )


@dataclass(frozen=True)
class Table:
    federal: Rule
    states: dict[str, Rule]


@lru_cache(maxsize=1)
def table() -> Table:
    data = tomllib.loads(TABLE.read_text(encoding="utf-8"))
    return Table(
        _rule("US", data["federal"]),
        {code: _rule(code, row) for code, row in sorted(data["states"].items())},
    )


@lru_cache(maxsize=256)
def hours_for(states: tuple[str, ...]) -> LegalHours:
    """Federal hours intersected with every listed state's rule (several states: a group chat
    or an ambiguous place gets the strictest of them). The label names the strictest rules."""
    t = table()
    hours = t.federal.hours
    names = []
    for code in states:
        rule = t.states.get(code)
        if rule is not None:
            hours = hours.intersect(rule.hours, "")
            names.append(code)
    label = f"{'+'.join(names) if names else 'US'} {describe(hours)}"
    return LegalHours(label, hours.spans, hours.holidays_closed)


def statutory_cap(states: tuple[str, ...]) -> int | None:
    """The smallest per-24-hours cap among the states' rows, or None."""
    caps = [r.cap for code in states if (r := table().states.get(code)) is not None and r.cap]
    return min(caps) if caps else None


@lru_cache(maxsize=64)
def us_federal_holidays(year: int) -> frozenset[date]:
    """The eleven US federal holidays of 5 U.S.C. 6103, with their observed days (a Saturday
    holiday is observed on Friday, a Sunday one on Monday); both days are kept closed."""

    def nth(month: int, weekday: int, n: int) -> date:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))

    def last(month: int, weekday: int) -> date:
        d = date(year, month + 1, 1) - timedelta(days=1)
        return d - timedelta(days=(d.weekday() - weekday) % 7)

    fixed = [
        date(year, 1, 1),
        date(year, 6, 19),
        date(year, 7, 4),
        date(year, 11, 11),
        date(year, 12, 25),
    ]
    floating = [nth(1, 0, 3), nth(2, 0, 3), last(5, 0), nth(9, 0, 1), nth(10, 0, 2), nth(11, 3, 4)]
    days = set(floating)
    for d in fixed:
        days.add(d)
        if d.weekday() == 5:
            days.add(d - timedelta(days=1))
        elif d.weekday() == 6:
            days.add(d + timedelta(days=1))
    return frozenset(days)

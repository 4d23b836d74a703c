"""When a message may be sent: a window in the recipient's local time, a campaign-wide
[not_before, not_after) range, and per-step delays counted from the previous step's acceptance.

Pure functions of (now, schedule, zone, previous acceptance): no clock is read here, so every
rule is tested with a controlled `now`, DST changes and midnight crossings included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.states import Wait
from runner.window import DAYS, Window


class ScheduleError(ValueError):
    def __init__(self, key: tuple, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.hint = hint


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone, or ScheduleError (zoneinfo also accepts file paths; we do not)."""
    text = str(name).strip()
    if not text or text.startswith(("/", ".")) or ".." in text:
        raise ScheduleError(
            (), f"unknown time zone {name!r}", "use an IANA name such as America/New_York"
        )
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder, a too-long name
        raise ScheduleError(
            (),
            f"unknown time zone {name!r}",
            "use an IANA name such as America/New_York or Europe/Paris",
        ) from None


def parse_hhmm(value: Any, key: tuple) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 9:30 as the sexagesimal number 570.
        raise ScheduleError(key, f"the time was read as the number {value}", 'quote it: "09:30"')
    text = str(value).strip()
    try:
        hh, mm = text.split(":")
        if len(mm) != 2 or not hh.isdigit() or not mm.isdigit():
            raise ValueError
        return time(int(hh), int(mm))
    except ValueError:
        raise ScheduleError(
            key, f"{text!r} is not a time of day", 'write 24-hour "HH:MM", e.g. "09:00" or "20:30"'
        ) from None


def parse_instant(value: Any, key: tuple) -> datetime:
    text = str(value).strip()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ScheduleError(
            key,
            f"{text!r} is not an ISO 8601 date-time",
            'write e.g. "2026-12-01T14:00:00Z" or "2026-12-01T09:00:00-05:00"',
        ) from None
    if dt.tzinfo is None:
        raise ScheduleError(
            key,
            f"{text!r} has no UTC offset, so it is ambiguous",
            'add Z or an offset: "2026-12-01T14:00:00Z"',
        )
    if not 2000 <= dt.year <= 2999:
        raise ScheduleError(
            key,
            f"{text!r} is not a date this runner can schedule (years 2000-2999)",
            "check the year",
        )
    return dt.astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    default_zone: ZoneInfo | None
    zone_var: str | None
    window: Window | None
    not_before: datetime | None
    not_after: datetime | None

    def zone_for(self, variables: dict[str, Any]) -> ZoneInfo:
        """The recipient's zone: its own variable when set, else the campaign default, else UTC."""
        if self.zone_var:
            value = variables.get(self.zone_var)
            if value not in (None, ""):
                return zone(str(value))
        return self.default_zone or ZoneInfo("UTC")

    def state(
        self,
        now: datetime,
        tz: ZoneInfo,
        *,
        delay: float | None = None,
        previous_accepted: float | None = None,
        has_previous: bool = False,
    ) -> tuple[Wait, datetime | None]:
        """(state, when it becomes due) for one message at `now` (aware UTC): the tests' short form of
        `timing`."""
        t = self.timing(
            now, (tz,), delay=delay, previous_accepted=previous_accepted, has_previous=has_previous
        )
        return t.state, t.when

    def timing(
        self,
        now: datetime,
        zones: Sequence[ZoneInfo],
        *,
        delay: float | None = None,
        previous_accepted: float | None = None,
        has_previous: bool = False,
        holds: Sequence[Hold] = (),
    ) -> Timing:
        """When one message may go at `now` (aware UTC): the campaign's window in every zone of
        the recipient (several: the strictest intersection), then each hold (the law's hours,
        the team's hours, a frequency cap). `held_by` names the hold that first held it."""
        if self.not_after is not None and now >= self.not_after:
            return Timing(Wait.EXPIRED)
        if has_previous and delay and previous_accepted is None:
            return Timing(Wait.PREVIOUS)
        reason = Wait.DUE
        held_by: str | None = None
        t = now
        # Each constraint can push `t` later; rounds reach the fixed point (a window opening
        # may not move past a delay, a delay never moves past a window opening). Bounded: an
        # empty intersection only ends in a later `t`, which the executor asks about again.
        for _ in range(8 + 2 * len(holds) + 2 * len(zones)):
            before = t
            if self.not_before is not None and t < self.not_before:
                t, reason = self.not_before, reason if reason != Wait.DUE else Wait.START
            if delay and previous_accepted is not None:
                ready = datetime.fromtimestamp(previous_accepted + delay, tz=UTC)
                if t < ready:
                    t, reason = ready, reason if reason != Wait.DUE else Wait.DELAY
            if self.window is not None:
                for tz in zones:
                    opened = self.window.next_open(t, tz)
                    if opened > t:
                        t, reason = opened, reason if reason != Wait.DUE else Wait.WINDOW
            for hold in holds:
                opened = hold.next_open(t)
                if opened > t:
                    if reason == Wait.DUE:
                        reason, held_by = hold.reason, hold.label
                    t = opened
            if t == before:
                break
        if self.not_after is not None and t >= self.not_after:
            # Only a wait moves t, and `now` is before not_after: it expired waiting.
            return Timing(Wait.EXPIRED, None, held_by)
        return Timing(reason, None if reason == Wait.DUE else t, held_by)


@dataclass(frozen=True)
class Timing:
    """When one message may go: its state, when it falls due (None: now, or never), and what
    held it when that was a hold ("FL 08:00-20:00", "3 per 24h")."""

    state: Wait
    when: datetime | None = None
    held_by: str | None = None


class Hold(Protocol):
    """A rule beside the campaign's own schedule that may hold a message (runner.law)."""

    @property
    def label(self) -> str: ...
    @property
    def reason(self) -> Wait: ...  # Wait.LAW or Wait.CAP

    def next_open(self, after: datetime) -> datetime: ...


def parse_schedule(spec: dict[str, Any] | None) -> Schedule | None:
    """A Schedule, or ScheduleError naming the key (relative to `schedule`)."""
    if not spec:
        return None
    try:
        default_zone = zone(spec["timezone"]) if spec.get("timezone") else None
    except ScheduleError as err:
        raise ScheduleError(("timezone",), str(err), err.hint) from None
    window = None
    w = spec.get("window")
    if w is not None:
        start = parse_hhmm(w.get("start"), ("window", "start"))
        end = parse_hhmm(w.get("end"), ("window", "end"))
        if start == end:
            raise ScheduleError(
                ("window",),
                "the window starts and ends at the same time",
                "give different start and end times (a window may cross midnight)",
            )
        days = None
        if w.get("days") is not None:
            bad = [d for d in w["days"] if str(d).lower()[:3] not in DAYS]
            if bad:
                raise ScheduleError(
                    ("window", "days"),
                    f"unknown day(s): {', '.join(map(str, bad))}",
                    "use mon, tue, wed, thu, fri, sat, sun",
                )
            days = frozenset(DAYS.index(str(d).lower()[:3]) for d in w["days"])
            if not days:
                raise ScheduleError(
                    ("window", "days"), "the window has no days", "list at least one day"
                )
        if default_zone is None and not spec.get("timezone_var"):
            raise ScheduleError(
                ("window",),
                "a window needs a time zone",
                "set schedule.timezone (and optionally timezone_var for per-recipient zones)",
            )
        window = Window(start, end, days)
    nb = parse_instant(spec["not_before"], ("not_before",)) if spec.get("not_before") else None
    na = parse_instant(spec["not_after"], ("not_after",)) if spec.get("not_after") else None
    if nb and na and na <= nb:
        raise ScheduleError(
            ("not_after",), "not_after is not later than not_before", "swap or fix the dates"
        )
    return Schedule(default_zone, spec.get("timezone_var"), window, nb, na)


def parse_at(text: str) -> datetime:
    """`--at` for plan: an ISO 8601 instant with an offset, or 'now'."""
    if text == "now":
        return datetime.now(UTC).replace(microsecond=0)
    return parse_instant(text, ())


class TimedStep(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def delay_seconds(self) -> float | None: ...


class HoldSource(Protocol):
    """Rules beyond the campaign's schedule (the law, the team policy, frequency caps): which
    holds apply to one chat in its zones."""

    @property
    def active(self) -> bool: ...

    def holds_for(self, chat: str, zones: Sequence[ZoneInfo]) -> Sequence[Hold]: ...


def zones_of(name: str | None, default: ZoneInfo | None) -> tuple[ZoneInfo, ...]:
    """A request's zones: its `zone` ("America/Chicago", or several comma-separated when the
    number's area code spans zones), else the campaign's default, else UTC."""
    if name:
        return _zones(name)
    return (default or ZoneInfo("UTC"),)


@lru_cache(maxsize=1024)
def _zones(names: str) -> tuple[ZoneInfo, ...]:
    return tuple(zone(n) for n in names.split(","))


class ScheduledCampaign(Protocol):
    """What the gate reads of a campaign (runner.campaign.load.Campaign)."""

    @property
    def schedule_rules(self) -> Schedule | None: ...
    @property
    def steps(self) -> Sequence[TimedStep]: ...
    @property
    def law(self) -> HoldSource: ...


class ScheduledRequest(Protocol):
    """What the gate reads of a request (runner.planning.request.PlannedRequest)."""

    @property
    def recipient(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def zone(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Readiness:
    """The gate's answer for one request: its state, and when it falls due (epoch seconds; None
    when due now, or never)."""

    state: Wait
    due_at: float | None = None


# (request, previous step accepted at, has a previous step, now) -> its readiness
Gate = Callable[[ScheduledRequest, float | None, bool, float], Readiness]
_DUE_NOW = Readiness(Wait.DUE)


def gate_for(campaign: ScheduledCampaign, extra: Sequence[HoldSource] = ()) -> Gate | None:
    """The executor's gate for a campaign: its schedule and delays, the law and the team policy
    (`campaign.law`), and `extra` holds (frequency caps read from the state). None when nothing
    can hold a message (everything is always due)."""
    rules = campaign.schedule_rules
    delays = {s.id: s.delay_seconds for s in campaign.steps}
    sources = [src for src in (campaign.law, *extra) if src.active]
    if rules is None and not any(delays.values()) and not sources:
        return None
    timing = rules or Schedule(None, None, None, None, None)
    # Only the holds can keep a message waiting: with none for a chat it is due at once.
    plain = (
        timing.window is None
        and timing.not_before is None
        and timing.not_after is None
        and not any(delays.values())
    )

    def gate(
        req: ScheduledRequest, previous_accepted: float | None, has_previous: bool, now: float
    ) -> Readiness:
        zones = zones_of(req.zone, timing.default_zone)
        holds = [h for src in sources for h in src.holds_for(req.recipient, zones)]
        if plain and not holds:
            return _DUE_NOW
        t = timing.timing(
            datetime.fromtimestamp(now, tz=UTC),
            zones,
            delay=delays.get(req.step),
            previous_accepted=previous_accepted,
            has_previous=has_previous,
            holds=holds,
        )
        return Readiness(t.state, t.when.timestamp() if t.when is not None else None)

    return gate

"""The holds the law and the team policy put on a message, beside the campaign's own schedule:
legal hours at the recipient's place (federal and state), the team's hours, and frequency caps.

Each is a `Hold` (runner.campaign.schedule's protocol, which this package does not import): `next_open(after)` says when it lets a message go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from runner.law.place import Place, place_of
from runner.law.rules import LegalHours, hours_for, statutory_cap
from runner.states import Wait
from runner.window import Window


@dataclass(frozen=True)
class HoursHold:
    """Legal (or team) hours in one zone of the recipient."""

    label: str
    hours: LegalHours | Window
    tz: ZoneInfo
    reason: Wait = Wait.LAW

    def next_open(self, after: datetime) -> datetime:
        return self.hours.next_open(after, self.tz)


@dataclass(frozen=True)
class Law:
    """What the team policy's `hours` asks: `legal` (the default: federal and state hours at
    the recipient's place), `off`, and optionally a team window on top."""

    legal: bool = True
    team_window: Window | None = None

    @property
    def active(self) -> bool:
        return self.legal or self.team_window is not None

    def holds_for(self, chat: str, zones: Sequence[ZoneInfo]) -> tuple[HoursHold, ...]:
        place = place_of(chat)
        if not place.us and self.team_window is None:
            return ()
        return self._holds(place, tuple(zones))

    @lru_cache(maxsize=4096)  # noqa: B019 - a few Law objects a process; places and zones repeat
    def _holds(self, place: Place, zones: tuple[ZoneInfo, ...]) -> tuple[HoursHold, ...]:
        out: list[HoursHold] = []
        if self.legal and place.us:
            hours = hours_for(place.states)
            out += [HoursHold(hours.label, hours, tz) for tz in zones]
        if self.team_window is not None:
            w = self.team_window
            label = f"team hours {w.start:%H:%M}-{w.end:%H:%M}"
            out += [HoursHold(label, w, tz) for tz in zones]
        return tuple(out)

    def rule_for(self, chat: str) -> LegalHours | None:
        """The legal hours of a chat's place, when it is a placed US number."""
        place = place_of(chat)
        return hours_for(place.states) if self.legal and place.us else None


@dataclass(frozen=True)
class Limit:
    """At most `messages` per chat in any `per_seconds`, across every campaign of the state."""

    messages: int
    per_seconds: float
    label: str  # "3 per 24h", "FL: 3 per 24h"


@dataclass(frozen=True)
class CapHold:
    limit: Limit
    caps: Caps
    chat: str
    reason: Wait = Wait.CAP

    @property
    def label(self) -> str:
        return self.limit.label

    def next_open(self, after: datetime) -> datetime:
        t = after.timestamp()
        # Later ones count too: a clock read to the second, or another machine's clock, may
        # put a message just sent after `t`.
        window = sorted(s for s in self.caps.times(self.chat) if t - self.limit.per_seconds < s)
        if len(window) < self.limit.messages:
            return after
        # The oldest message that must leave the window for one more to fit.
        oldest = window[len(window) - self.limit.messages]
        return datetime.fromtimestamp(oldest + self.limit.per_seconds, tz=UTC) + timedelta(
            seconds=1
        )


class Caps:
    """Frequency caps per chat: the policy's `limits`, and a state's statutory cap (FL, OK, MD:
    three per 24 hours) for numbers placed there. ``sent`` holds each chat's accepted messages
    across every campaign of the state (epoch seconds, runner.store.sent); ``note`` adds those
    accepted since (by this run, or assumed sent by a plan)."""

    def __init__(
        self, limits: Sequence[Limit], sent: dict[str, list[float]], statutory: bool = True
    ) -> None:
        self.limits = tuple(limits)
        self.sent = sent
        self.statutory = statutory

    @property
    def active(self) -> bool:
        return True

    @property
    def longest(self) -> float:
        """The longest period of any limit (how far back the state must be read)."""
        return max([lim.per_seconds for lim in self.limits] + [24 * 3600.0])

    def times(self, chat: str) -> Sequence[float]:
        return self.sent.get(chat, ())

    def note(self, chat: str, when: float, messages: int = 1) -> None:
        self.sent.setdefault(chat, []).extend([when] * messages)

    def limits_for(self, chat: str) -> list[Limit]:
        out = list(self.limits)
        if self.statutory:
            out += _statutory(place_of(chat))
        return out

    def holds_for(self, chat: str, zones: Sequence[ZoneInfo]) -> list[CapHold]:
        return [CapHold(limit, self, chat) for limit in self.limits_for(chat)]


@lru_cache(maxsize=64)
def _statutory(place: Place) -> tuple[Limit, ...]:
    if not place.us:
        return ()
    cap = statutory_cap(place.states)
    if cap is None:
        return ()
    return (Limit(cap, 24 * 3600.0, f"{'+'.join(place.states)}: {cap} per 24h"),)

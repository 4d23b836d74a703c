"""Where a chat stands, from the consent events recorded about it. Pure.

Events are applied in time order: an opt-out stands until the chat opts in again (START,
UNSTOP); a hold stands until a person releases it (`campaign optouts review`) or the chat opts
in; a hold never weakens an opt-out, and a release only ends a hold. A chat with no standing is
clear to message (by this ledger: the campaign's own suppression files still apply).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class EventKind(StrEnum):
    """One row of the ledger's history (stored as these strings)."""

    OPTED_OUT = "opted_out"
    HELD = "held"
    RELEASED = "released"  # a person dismissed a hold
    OPTED_IN = "opted_in"  # START / UNSTOP
    HELP = "help"  # HELP / INFO asked: changes no standing


class Standing(StrEnum):
    """A chat the ledger keeps from every campaign of the state."""

    OPTED_OUT = "opted_out"
    HELD = "held"


@dataclass(frozen=True, slots=True)
class Step:
    """What one event does: its kind and when (API milliseconds, or the runner's clock for a
    person's decision), with its id as the tie-break."""

    kind: EventKind
    at_ms: int
    id: int = 0


def standing_after(events: Iterable[Step], start: Standing | None = None) -> Standing | None:
    """The standing once ``events`` are applied, in time order, to ``start``."""
    state = start
    for e in sorted(events, key=lambda e: (e.at_ms, e.id)):
        if e.kind is EventKind.OPTED_OUT:
            state = Standing.OPTED_OUT
        elif e.kind is EventKind.HELD:
            if state is not Standing.OPTED_OUT:
                state = Standing.HELD
        elif e.kind is EventKind.RELEASED:
            if state is Standing.HELD:
                state = None
        elif e.kind is EventKind.OPTED_IN:
            state = None
    return state


def standing_of(chat: str, standings: Mapping[str, Standing]) -> Standing | None:
    """A chat's standing; a multi-recipient chat (``a,b``) takes its strictest member's, since
    one member's opt-out keeps the whole chat from being messaged."""
    if not standings:
        return None
    found = standings.get(chat)
    if found is Standing.OPTED_OUT or "," not in chat:
        return found
    for member in chat.split(","):
        m = standings.get(member)
        if m is Standing.OPTED_OUT:
            return m
        found = found or m
    return found

"""Consent at run time: what a chat's replies record in the state's ledger, and the gate a
`send` passes before it messages a chat again.

``events_of`` turns one chat's inbound messages into ledger events (runner.consent.match says
what each means; in a group the member who wrote it is the one who opted out). `send`, `track`
and `optouts` all record through it, so a reply means the same whichever command read it.

``ConsentGate`` is the executor's: before the first message a run sends to a chat, it checks
the ledger (re-read whenever another command or campaign wrote to it) and, when some campaign
of the state messaged that chat before, reads the chat's new replies (one request, from its
reply cursor, through runner.run.replies) and records them. A STOP between two steps always
wins. A chat whose replies cannot be read is not messaged in that run, never messaged blind.
What it learns is written to the ledger in batches: losing a batch to a crash loses nothing,
since the reply cursors move in the same transaction and the next run reads those replies again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.mask import reply_excerpt
from runner.consent.match import Meaning, Vocabulary, read_reply
from runner.consent.standing import EventKind, Standing, Step, standing_after, standing_of
from runner.run.replies import (
    ChatToCheck,
    Fetcher,
    ReadFailed,
    ReadUnauthorized,
    inbound_messages,
)
from runner.store.ledger import ConsentEvent, Contact, Ledger

_FLUSH_EVENTS = 256  # pending ledger writes that trigger a commit
_RECHECK_S = 0.05  # how often, at most, the gate asks whether another process wrote to the ledger
# The share of the run's time that asking may take. On a PostgreSQL state it is a round trip that
# blocks the event loop: on a slow or loaded link it is asked less often rather than stall every
# request (at 10 ms a question, every 0.5 s); a SQLite ledger answers in microseconds.
_RECHECK_SHARE = 0.02

_KIND = {
    Meaning.OPT_OUT: EventKind.OPTED_OUT,
    Meaning.HOLD: EventKind.HELD,
    Meaning.OPT_IN: EventKind.OPTED_IN,
    Meaning.HELP: EventKind.HELP,
}


@dataclass(frozen=True, slots=True)
class ChatReading:
    """What one chat's replies recorded: events, and where the next reading starts."""

    events: list[ConsentEvent]
    cursor_ms: int | None  # API ms of the newest reply read (minus one), None if none


def events_of(
    chat: str, messages: Iterable[Any], vocab: Vocabulary, *, campaign: str | None, step: str | None
) -> ChatReading:
    """The ledger events of one chat's inbound messages (oldest first). ``campaign`` and
    ``step``: what the replies answered (the last message the state sent the chat)."""
    events: list[ConsentEvent] = []
    newest: int | None = None
    group = "," in chat or chat.startswith("grp_")
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("direction", "inbound") != "inbound":
            continue
        at = msg.get("time_sent")
        at_ms = int(at) if isinstance(at, int | float) and not isinstance(at, bool) else 0
        newest = at_ms if newest is None else max(newest, at_ms)
        reading = read_reply(msg.get("text"), vocab)
        if reading is None:
            continue
        who = chat
        sender = msg.get("sender")
        if group and isinstance(sender, str) and sender.strip():
            try:
                who = normalize_chat(sender)
            except ChatIdError:
                who = chat  # a sender we cannot read: the whole chat, on the safe side
        mid = msg.get("message_id")
        events.append(
            ConsentEvent(
                chat=who,
                kind=_KIND[reading.meaning],
                at_ms=at_ms,
                word=reading.word,
                excerpt=reply_excerpt(msg["text"]),
                campaign=campaign,
                step=step,
                reply_id=mid if isinstance(mid, str) and mid else None,
            )
        )
    # One millisecond back: replies sharing the newest one's millisecond are read again, never
    # lost (a reply read twice is recorded once).
    return ChatReading(events, None if newest is None else newest - 1)


class Clearance(StrEnum):
    """What the gate says of a chat about to be messaged."""

    CLEAR = "clear"
    KEPT = "kept"  # opted out or held: not messaged
    UNREAD = "unread"  # its replies could not be read: not messaged this run
    STOPPED = "stopped"  # the key was refused while reading: the run stops


@dataclass
class ConsentStats:
    """What the gate did in one run (the run's summary prints it)."""

    chats_read: int = 0  # chats whose replies were read before messaging them again
    requests: int = 0  # HTTP requests those readings took
    opted_out: int = 0  # chats found opted out by those readings
    held: int = 0  # chats found held by those readings
    kept: int = 0  # chats not messaged this run: opted out or held (found now or before)
    unread: list[tuple[str, str]] = field(default_factory=list)  # (chat, why)

    def add(self, other: ConsentStats) -> None:
        """Count another run's too (`send --wait` runs again and again)."""
        self.chats_read += other.chats_read
        self.requests += other.requests
        self.opted_out += other.opted_out
        self.held += other.held
        self.kept += other.kept
        self.unread = other.unread  # the last run's: earlier ones were read again since


class ConsentGate:
    """The executor's check before the first message of a run to each chat."""

    def __init__(
        self, ledger: Ledger, vocab: Vocabulary, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ledger = ledger
        self.vocab = vocab
        self.stats = ConsentStats()
        self._standings = ledger.standings()
        self._contacts: dict[str, Contact] = ledger.contacts()
        self._pending: list[ConsentEvent] = []
        self._cursors: dict[str, int] = {}
        self._clock = clock
        self._checked_at = clock()
        self._recheck_s = _RECHECK_S

    def standing(self, chat: str) -> Standing | None:
        """The chat's standing now, with what other commands recorded meanwhile."""
        now = self._clock()
        if now - self._checked_at >= self._recheck_s:
            changed = self.ledger.changed_elsewhere()
            self._checked_at = self._clock()
            self._recheck_s = max(_RECHECK_S, (self._checked_at - now) / _RECHECK_SHARE)
            if changed:
                self._standings = {**self.ledger.standings(), **self._unflushed()}
        return standing_of(chat, self._standings)

    def _unflushed(self) -> dict[str, Standing]:
        """Standings learnt by this run and not committed yet (a re-read must not lose them)."""
        touched = {e.chat for e in self._pending}
        return {c: s for c in touched if (s := self._standings.get(c)) is not None}

    def kept_now(self, chat: str) -> bool:
        """Whether the ledger keeps a chat already cleared in this run (a webhook's opt-out
        since): no reading, only what another process recorded."""
        if self.standing(chat) is None:
            return False
        self.stats.kept += 1
        return True

    def quick(self, chat: str) -> Clearance | None:
        """KEPT when the ledger keeps the chat, CLEAR when the state never messaged it (nothing
        to read), None when its new replies must be read first (``read``)."""
        if self.standing(chat) is not None:
            self.stats.kept += 1
            return Clearance.KEPT
        return Clearance.CLEAR if chat not in self._contacts else None

    async def read(self, chat: str, fetcher: Fetcher) -> Clearance:
        """Read a chat's new replies, record them, and say whether it may be messaged."""
        contact = self._contacts[chat]
        try:
            got = await inbound_messages(
                fetcher, ChatToCheck(chat, contact.api_id, contact.since_ms)
            )
        except ReadUnauthorized:
            return Clearance.STOPPED
        except ReadFailed as exc:
            self.stats.unread.append((chat, str(exc)))
            return Clearance.UNREAD
        finally:
            # The run's fetcher reads for the gate alone: its count is the gate's requests.
            self.stats.requests = fetcher.requests
        self.stats.chats_read += 1
        if got is None:
            return Clearance.CLEAR  # the API does not know the chat: nobody answered
        found = events_of(
            chat, got.messages, self.vocab, campaign=contact.last_campaign, step=contact.last_step
        )
        self._learn(chat, found)
        after = standing_of(chat, self._standings)
        if after is None:
            return Clearance.CLEAR
        if after is Standing.OPTED_OUT:
            self.stats.opted_out += 1
        else:
            self.stats.held += 1
        self.stats.kept += 1
        return Clearance.KEPT

    def _learn(self, chat: str, found: ChatReading) -> None:
        # A reading starts a millisecond before the newest reply it had seen, so the first
        # replies may be known: the standing already holds them (a released hold stays
        # released).
        ids = [e.reply_id for e in found.events if e.reply_id]
        known = self.ledger.known_replies(ids) if ids else set()
        known |= {e.reply_id for e in self._pending if e.reply_id in ids}
        fresh = [e for e in found.events if e.reply_id is None or e.reply_id not in known]
        found = ChatReading(fresh, found.cursor_ms)
        by_chat: dict[str, list[Step]] = {}
        for e in found.events:
            if e.kind is not EventKind.HELP:
                by_chat.setdefault(e.chat, []).append(Step(e.kind, e.at_ms))
        for who, steps in by_chat.items():
            after = standing_after(steps, self._standings.get(who))
            if after is None:
                self._standings.pop(who, None)
            else:
                self._standings[who] = after
        self._pending.extend(found.events)
        if found.cursor_ms is not None:
            self._cursors[chat] = max(found.cursor_ms, self._cursors.get(chat, 0))
        if len(self._pending) >= _FLUSH_EVENTS or len(self._cursors) >= _FLUSH_EVENTS:
            self.flush()

    def flush(self) -> None:
        """Commit what was learnt (events and reply cursors, one transaction)."""
        if self._pending or self._cursors:
            events, cursors = self._pending, self._cursors
            self._pending, self._cursors = [], {}
            self.ledger.record(events, cursors)

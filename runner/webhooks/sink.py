"""Writing verified webhook events into a state (a folder or a PostgreSQL database), in batches.

A reply (message.received) goes into the consent ledger by the same rule as every reply pass
(runner.run.consent.events_of: opt-outs, holds, opt-ins, HELP), answering the campaign and step
the state last sent that chat; a webhook from a chat no campaign messaged is recorded all the
same (an opt-out from anyone counts). A status (message.sent/.delivered/.failed/.read) goes into
the ``deliveries`` row of the journal that holds the message; a message no journal holds is
counted and dropped (another sender of the account). Replays change nothing: the ledger keeps a
reply once, and a final delivery status never moves again.

Both backends go through runner.store.backend (the journals and ledger every command opens), so
a database state is written by the same code as a folder.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from runner.consent.match import Vocabulary
from runner.contract import FINAL_DELIVERY_STATUSES
from runner.run.consent import events_of
from runner.store.backend import list_campaigns, open_journal, open_ledger
from runner.store.journal import DeliveryPush, Journal, JournalOp
from runner.store.ledger import ConsentEvent
from runner.store.state import State, open_state
from runner.webhooks.events import EventType, WebhookEvent

_STATUS = {
    EventType.SENT: "sent",
    EventType.DELIVERED: "delivered",
    EventType.FAILED: "failed",
    EventType.READ: "delivered",
}  # read implies delivered (the status endpoint's word)
_RESEED_EVERY_S = 1.0  # how often a message no journal knows makes the journals look again
_CACHE = 200_000  # message id -> campaign, remembered (bounded)


@dataclass
class SinkStats:
    replies: int = 0
    statuses: int = 0
    unknown_messages: int = 0  # statuses of messages no journal of the state holds
    consent_changes: int = 0
    by_event: Counter = field(default_factory=Counter)


class WebhookSink:
    """One state's ledger and journals, written by ``apply`` (one batch at a time)."""

    def __init__(self, state: str | Path | State, vocab: Vocabulary) -> None:
        self.state = open_state(state)
        self.vocab = vocab
        self.ledger = open_ledger(self.state, command="listen")
        self.stats = SinkStats()
        self._journals: dict[str, Journal] = {}
        self._where: dict[str, str] = {}
        self._reseeded_at = 0.0

    def close(self) -> None:
        for j in self._journals.values():
            j.close()
        self.ledger.close()

    def _journal_of(self, message_id: str, now: float) -> str | None:
        """The campaign whose journal holds the message, or None."""
        campaign = self._where.get(message_id)
        if campaign is not None:
            return campaign
        for attempt in range(2):
            if attempt or not self._journals:
                self._open_journals()  # a campaign sent since the listener started
            for name, journal in self._journals.items():
                if journal.has_delivery(message_id):
                    if len(self._where) >= _CACHE:
                        self._where.clear()
                    self._where[message_id] = name
                    return name
            if attempt == 1 or now - self._reseeded_at < _RESEED_EVERY_S:
                return None
            # Accepted since the journals were last seeded (a send running now): seed again.
            self._reseeded_at = now
            for journal in self._journals.values():
                for revision in journal.revisions():
                    journal.seed_deliveries(revision)
        return None

    def _open_journals(self) -> None:
        for name in list_campaigns(self.state):
            if name not in self._journals:
                self._journals[name] = open_journal(self.state, name)

    def apply(self, events: Iterable[WebhookEvent], now: float | None = None) -> None:
        """Write one batch: the ledger in one transaction, each journal in one."""
        at = time.time() if now is None else now
        consent: list[ConsentEvent] = []
        pushes: dict[str, list[JournalOp]] = {}
        events = list(events)
        # What the state last sent each replying chat (the events' campaign and step): one
        # indexed read per batch, fresh (a send running meanwhile moves it on).
        contacts = self.ledger.contacts({e.chat for e in events if e.type is EventType.RECEIVED})
        for e in events:
            self.stats.by_event[e.type.value] += 1
            if e.type is EventType.RECEIVED:
                self.stats.replies += 1
                last = contacts.get(e.chat)
                found = events_of(
                    e.chat,
                    [
                        {
                            "message_id": e.message_id,
                            "text": e.text,
                            "time_sent": e.at_ms,
                            "direction": "inbound",
                        }
                    ],
                    self.vocab,
                    campaign=last.last_campaign if last else None,
                    step=last.last_step if last else None,
                )
                consent.extend(found.events)
                continue
            campaign = self._journal_of(e.message_id, at)
            if campaign is None:
                self.stats.unknown_messages += 1
                continue
            self.stats.statuses += 1
            status = _STATUS[e.type]
            pushes.setdefault(campaign, []).append(
                DeliveryPush(
                    e.message_id,
                    status=status,
                    protocol=e.protocol,
                    time_delivered=e.at_ms if status == "delivered" else None,
                    error=e.error if e.type is EventType.FAILED else None,
                    final=status in FINAL_DELIVERY_STATUSES,
                    now=at,
                )
            )
        if consent:
            self.stats.consent_changes += len(self.ledger.record(consent, now=at))
        for name, ops in pushes.items():
            self._journals[name].apply(ops)

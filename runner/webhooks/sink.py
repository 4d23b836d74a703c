"""Writing verified webhook events into a state folder, in batches.

A reply (message.received) goes into the consent ledger by the same rule as every reply pass
(runner.run.consent.events_of: opt-outs, holds, opt-ins, HELP), answering the campaign and step
the state last sent that chat; a webhook from a chat no campaign messaged is recorded all the
same (an opt-out from anyone counts). A status (message.sent/.delivered/.failed/.read) goes into
the ``deliveries`` row of the journal that holds the message; a message no journal holds is
counted and dropped (another sender of the account). Replays change nothing: the ledger keeps a
reply once, and a final delivery status never moves again.
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
from runner.store.journal import DeliveryPush, Journal, JournalOp
from runner.store.ledger import ConsentEvent, Contact, Ledger
from runner.store.paths import LEDGER_FILE
from runner.webhooks.events import EventType, WebhookEvent

_STATUS = {EventType.SENT: "sent", EventType.DELIVERED: "delivered", EventType.FAILED: "failed",
           EventType.READ: "delivered"}  # read implies delivered (the status endpoint's word)
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
    """One state folder's ledger and journals, written by ``apply`` (one batch at a time)."""

    def __init__(self, state_dir: str | Path, vocab: Vocabulary) -> None:
        self.state_dir = Path(state_dir)
        self.vocab = vocab
        self.ledger = Ledger.for_state(state_dir)
        self.stats = SinkStats()
        self._journals: dict[str, Journal] = {}
        self._where: dict[str, str] = {}
        self._reseeded_at = 0.0
        self._contacts: dict[str, Contact] = {}
        self._contacts_at = -_RESEED_EVERY_S

    def close(self) -> None:
        for j in self._journals.values():
            j.close()
        self.ledger.close()

    def _contact(self, chat: str, now: float) -> Contact | None:
        """What the state last sent this chat (for the events' campaign and step): the ledger's
        contacts, read again at most once a second when a chat is not among them."""
        found = self._contacts.get(chat)
        if found is None and now - self._contacts_at >= _RESEED_EVERY_S:
            self._contacts, self._contacts_at = self.ledger.contacts(), now
            found = self._contacts.get(chat)
        return found

    def _journal_of(self, message_id: str, now: float) -> Journal | None:
        campaign = self._where.get(message_id)
        if campaign is not None:
            return self._journals[campaign]
        for attempt in range(2):
            if attempt or not self._journals:
                self._open_journals()  # a campaign sent since the listener started
            for name, journal in self._journals.items():
                if journal.has_delivery(message_id):
                    if len(self._where) >= _CACHE:
                        self._where.clear()
                    self._where[message_id] = name
                    return journal
            if attempt == 1 or now - self._reseeded_at < _RESEED_EVERY_S:
                return None
            # Accepted since the journals were last seeded (a send running now): seed again.
            self._reseeded_at = now
            for journal in self._journals.values():
                for revision in journal.revisions():
                    journal.seed_deliveries(revision)
        return None

    def _open_journals(self) -> None:
        for path in sorted(self.state_dir.glob("*.sqlite")):
            if path.name != LEDGER_FILE and path.stem not in self._journals:
                self._journals[path.stem] = Journal(path)

    def apply(self, events: Iterable[WebhookEvent], now: float | None = None) -> None:
        """Write one batch: the ledger in one transaction, each journal in one."""
        at = time.time() if now is None else now
        consent: list[ConsentEvent] = []
        pushes: dict[str, list[JournalOp]] = {}
        for e in events:
            self.stats.by_event[e.type.value] += 1
            if e.type is EventType.RECEIVED:
                self.stats.replies += 1
                last = self._contact(e.chat, at)
                found = events_of(e.chat, [{"message_id": e.message_id, "text": e.text,
                                            "time_sent": e.at_ms, "direction": "inbound"}],
                                  self.vocab, campaign=last.last_campaign if last else None,
                                  step=last.last_step if last else None)
                consent.extend(found.events)
                continue
            journal = self._journal_of(e.message_id, at)
            if journal is None:
                self.stats.unknown_messages += 1
                continue
            self.stats.statuses += 1
            status = _STATUS[e.type]
            pushes.setdefault(journal.path.stem, []).append(DeliveryPush(
                e.message_id, status=status, protocol=e.protocol,
                time_delivered=e.at_ms if status == "delivered" else None,
                error=e.error if e.type is EventType.FAILED else None,
                final=status in FINAL_DELIVERY_STATUSES, now=at))
        if consent:
            self.stats.consent_changes += len(self.ledger.record(consent, now=at))
        for name, ops in pushes.items():
            self._journals[name].apply(ops)

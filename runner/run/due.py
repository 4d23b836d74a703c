"""What a campaign has due at an instant, read from its journal: `send --due-only` asks it
before taking the campaign's lock, so a scheduled resume opens no run for a campaign with
nothing due.

The counting is the plan's (runner.planning.planner.ScheduleCounter over the journal's
overlay): a step's delay runs from its previous step's accepted time in the journal, so a late
or skipped scheduler run changes when a message leaves, never how long the delay was.
Requests the journal holds as failed for good or expired are not due: no run sends them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from runner.campaign.load import Campaign
from runner.planning.planner import JournalOverlay, Planner, ScheduleCounter
from runner.run.caps import caps_of
from runner.states import RequestStatus, Wait
from runner.store.backend import existing_ledger, open_journal
from runner.store.state import State

_NEVER_AGAIN = (RequestStatus.FAILED, RequestStatus.EXPIRED)


@dataclass(frozen=True)
class Due:
    campaign: str
    sent_before: bool  # the state holds a journal of it
    messages: int = 0  # due at the instant and not accepted yet
    next_due: datetime | None = None  # when the first waiting message falls due


def due_at(campaign: Campaign, state: State, at: datetime | None = None) -> Due:
    """Messages of ``campaign`` due at ``at`` (default: now) in ``state``; ``sent_before``
    False (and nothing counted) when the state has no journal of it."""
    if not state.has_journal(campaign.id):
        return Due(campaign.id, sent_before=False)
    when = at or datetime.now(UTC)
    with existing_ledger(state) as ledger:
        consent = ledger.standings() if ledger is not None else None
    caps = caps_of(campaign, state, when.timestamp(), "send --due-only")
    counter = ScheduleCounter(campaign, when, caps)
    messages = 0
    with open_journal(state, campaign.id) as journal, journal.snapshot("send --due-only"):
        overlay = JournalOverlay(journal, campaign.revision)
        requests = Planner(campaign, previews=0, consent=consent).requests()
        for req, entry in overlay.annotate(requests):
            state_now = counter.observe(req, entry)
            if state_now == Wait.DUE and (entry is None or entry.status not in _NEVER_AGAIN):
                messages += req.messages
    return Due(campaign.id, True, messages, counter.next_due)

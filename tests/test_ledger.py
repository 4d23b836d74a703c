"""The state's consent ledger (runner.store.ledger): events recorded once, standings derived from
them, contacts synced from the journals, reply cursors that never move back, a damaged ledger a
clear error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runner.consent.standing import EventKind, Standing
from runner.errors import CampaignError
from runner.states import RequestStatus
from runner.store.backend import open_journal, open_ledger, sync_contacts
from runner.store.journal import ACCEPTED, PENDING, Attempt, Mark, Outcome
from runner.store.ledger import SKEW_MS, Change, ConsentEvent, Ledger, Source
from runner.store.paths import ledger_path
from runner.store.state import open_state

A, B, C = "+15550100001", "+15550100002", "+15550100003"


def ledger_of(state: str) -> Ledger:
    """The state's ledger (a folder's file or the database's tables: the same interface)."""
    return open_ledger(open_state(state))


def ev(chat: str, kind: EventKind, at: int, reply: str | None = None, **kw) -> ConsentEvent:
    return ConsentEvent(chat, kind, at, word="STOP", reply_id=reply, **kw)


def test_events_give_standings_and_a_reply_is_recorded_once(state: str):
    with ledger_of(state) as ledger:
        assert ledger.is_empty()
        changes = ledger.record(
            [
                ev(A, EventKind.OPTED_OUT, 10, "m1"),
                ev(B, EventKind.HELD, 11, "m2"),
                ev(C, EventKind.HELP, 12, "m3"),
            ]
        )
        assert changes == [Change(A, None, Standing.OPTED_OUT), Change(B, None, Standing.HELD)]
        # The same replies read again (track after send, a crash): nothing new.
        assert (
            ledger.record([ev(A, EventKind.OPTED_OUT, 10, "m1"), ev(B, EventKind.HELD, 11, "m2")])
            == []
        )
        assert len(list(ledger.events())) == 3
        assert ledger.standings() == {A: Standing.OPTED_OUT, B: Standing.HELD}
        # START after the opt-out: clear again; a person releases the hold.
        assert ledger.record(
            [
                ev(A, EventKind.OPTED_IN, 20, "m4"),
                ConsentEvent(B, EventKind.RELEASED, 21, source=Source.REVIEW, actor="ops@example"),
            ]
        ) == [Change(A, Standing.OPTED_OUT, None), Change(B, Standing.HELD, None)]
        assert ledger.standings() == {}
        released = list(ledger.events([B], [EventKind.RELEASED]))
        assert [(e.actor, e.source) for e in released] == [("ops@example", "review")]


def test_standing_rows_name_the_event(state: str):
    with ledger_of(state) as ledger:
        ledger.record(
            [
                ev(A, EventKind.HELD, 5, "m1", excerpt="don't stop", campaign="c", step="hello"),
                ev(B, EventKind.OPTED_OUT, 6, "m2"),
            ]
        )
        [held] = ledger.standing_rows(Standing.HELD)
        assert (held.chat, held.event.excerpt, held.event.campaign, held.event.step) == (
            A,
            "don't stop",
            "c",
            "hello",
        )
        assert [r.chat for r in ledger.standing_rows(chats=[B])] == [B]


def test_another_connection_is_noticed(state: str):
    with ledger_of(state) as mine, ledger_of(state) as theirs:
        assert not mine.changed_elsewhere()
        mine.record([ev(A, EventKind.OPTED_OUT, 1, "m1")])
        assert not mine.changed_elsewhere()  # its own commit is no news
        theirs.record([ev(B, EventKind.OPTED_OUT, 2, "m2")])
        assert mine.changed_elsewhere() and not mine.changed_elsewhere()
        assert set(mine.standings()) == {A, B}


def _journal_rows(state: str, campaign: str, rows: list[tuple[str, str, float]]) -> None:
    ops = []
    for i, (chat, step, at) in enumerate(rows):
        ops += [
            Attempt(f"{campaign}-{i}", chat, step, 1, i, 0, 1, "h", None, at),
            Outcome(f"{campaign}-{i}", ACCEPTED, message_id=f"m{i}", now=at),
        ]
    with open_journal(open_state(state), campaign) as j:
        j.apply(ops)


def test_contacts_come_from_every_journal_of_the_state(state: str):
    _journal_rows(state, "a", [(A, "hello", 1000.0), (A, "nudge", 3000.0), (B, "hello", 1001.0)])
    _journal_rows(state, "b", [(A, "promo", 2000.0)])
    where = open_state(state)
    with open_journal(where, "c") as j:  # only marked, never tried: not a contact
        j.apply(
            [
                Mark(
                    "c-0",
                    C,
                    "x",
                    1,
                    0,
                    0,
                    1,
                    status=PENDING,
                    error_code=None,
                    error_message=None,
                    content_hash="h",
                    run_id=None,
                    now=5.0,
                )
            ]
        )
    with ledger_of(state) as ledger:
        assert sync_contacts(where, ledger) == 3
        contacts = ledger.contacts()
        assert set(contacts) == {A, B}
        a = contacts[A]
        assert (a.first_ms, a.last_ms, a.last_campaign, a.last_step) == (
            1_000_000,
            3_000_000,
            "a",
            "nudge",
        )
        assert a.since_ms == 1_000_000 - SKEW_MS
        # Synced again: nothing new. A later attempt moves the contact on.
        assert sync_contacts(where, ledger) in (0, 1, 2, 3)  # a second of overlap is re-read
        _journal_rows(state, "b", [(A, "promo", 2000.0), (A, "promo2", 4000.0)])
        sync_contacts(where, ledger)
        a = ledger.contacts()[A]
        assert (a.first_ms, a.last_ms, a.last_campaign, a.last_step) == (
            1_000_000,
            4_000_000,
            "b",
            "promo2",
        )


def test_reply_cursors_never_move_back(state: str):
    _journal_rows(state, "a", [(A, "hello", 1000.0)])
    with ledger_of(state) as ledger:
        sync_contacts(open_state(state), ledger)
        ledger.record([], {A: 5_000_000})
        ledger.record([], {A: 4_000_000})
        assert ledger.contacts()[A].cursor_ms == 5_000_000
        assert ledger.contacts()[A].since_ms == 5_000_000


def test_a_damaged_ledger_is_a_clear_error(tmp_path: Path):
    ledger_path(tmp_path).write_bytes(b"not a database at all " * 100)
    with pytest.raises(CampaignError) as info:
        Ledger.for_state(tmp_path)
    text = str(info.value.problems[0].message) + str(info.value.problems[0].hint)
    assert "consent ledger" in text and "damaged" in text


def test_a_newer_ledger_is_refused(tmp_path: Path):
    db = sqlite3.connect(ledger_path(tmp_path))
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(CampaignError, match="schema version 99"):
        Ledger.for_state(tmp_path)


def test_answers_count_attempts_and_keep_outcomes(state: str):
    with ledger_of(state) as ledger:
        ledger.answer_attempt("ak1", A, "help", 1, 10.0)
        ledger.answer_attempt("ak1", A, "help", 1, 11.0)  # a retry, or after a crash
        ledger.answer_outcome("ak1", RequestStatus.ACCEPTED, "m1", None, 12.0)
        row = ledger.answers()["ak1"]
        assert (row.attempts, row.status, row.message_id) == (2, RequestStatus.ACCEPTED, "m1")
        assert type(row.status) is RequestStatus

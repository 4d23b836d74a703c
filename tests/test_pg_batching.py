"""The PostgreSQL state writes in few statements: a batch of rows is one statement, not one per
row (benchmarks/send_pg.py measures what that is worth; these tests pin the shape)."""

from __future__ import annotations

import pytest

from runner.store.backend import open_journal, open_ledger
from runner.store.journal import Attempt
from runner.store.state import open_state

pytestmark = pytest.mark.usefixtures("pg_url")


def _attempts(n: int, now: float) -> list[Attempt]:
    return [Attempt(f"k{i}", f"+1555000{i:04d}", "hello", 1, i, 0, 1, "h", 1, now)
            for i in range(n)]


def test_syncing_many_contacts_moves_the_ledger_version_by_a_statement_not_by_a_row(pg_url):
    """Each statement on ``contacts`` bumps the one ``ledger_version`` row: one per chat made a
    20,000-chat sync quadratic (100 s). One statement for the whole sync moves it twice."""
    state = open_state(pg_url)
    with open_journal(state, "c") as journal:
        journal.apply(_attempts(300, now=1000.0))
    with open_ledger(state) as ledger:
        before = ledger._data_version()
        assert ledger.sync_journal("c", None) == 300
        # One upsert statement fires the trigger twice (its INSERT and its UPDATE), not 600.
        assert ledger._data_version() - before <= 2
        contacts = ledger.contacts()
    assert len(contacts) == 300
    c = contacts["+15550000007"]
    assert (c.api_id, c.first_ms, c.last_ms, c.last_campaign, c.last_step) == (
        "+15550000007", 1_000_000, 1_000_000, "c", "hello")


def test_a_later_sync_keeps_the_earliest_first_and_the_latest_last_message(pg_url):
    state = open_state(pg_url)
    with open_journal(state, "a") as a:
        a.apply(_attempts(3, now=1000.0))
    with open_journal(state, "b") as b:
        b.apply([Attempt("kb", "+15550000001", "remind", 1, 0, 0, 1, "h", 1, 2000.0)])
    with open_ledger(state) as ledger:
        ledger.sync_journal("b", None)
        ledger.sync_journal("a", None)  # older rows synced last: the newer last message stays
        c = ledger.contacts()["+15550000001"]
    assert (c.first_ms, c.last_ms, c.last_campaign, c.last_step) == (
        1_000_000, 2_000_000, "b", "remind")

"""The PostgreSQL state writes in few statements: a batch of rows is one statement, not one per
row, one round trip per batch (benchmarks/send_pg.py measures what that is worth). These tests
pin the shape, and that the batch path writes what the row path writes, in order, all or
nothing, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from runner.errors import CampaignError
from runner.store.backend import open_journal, open_ledger
from runner.store.journal import ACCEPTED, FAILED, SENDING, Attempt, Outcome
from runner.store.state import open_state


def _attempts(n: int, now: float) -> list[Attempt]:
    return [
        Attempt(f"k{i}", f"+1555000{i:04d}", "hello", 1, i, 0, 1, "h", 1, now) for i in range(n)
    ]


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
        "+15550000007",
        1_000_000,
        1_000_000,
        "c",
        "hello",
    )


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
        1_000_000,
        2_000_000,
        "b",
        "remind",
    )


def _rows(state: str, campaign: str) -> dict[str, tuple]:
    with open_journal(open_state(state), campaign) as j:
        return {
            e.key: (
                e.chat,
                e.step,
                e.revision,
                e.recipient_index,
                e.step_index,
                e.messages,
                e.status,
                e.attempts,
                e.message_id,
                e.message_ids,
                e.group_id,
                e.error_code,
                e.error_message,
                e.http_status,
                e.content_hash,
                e.first_attempt_at,
                e.last_attempt_at,
                e.finished_at,
                e.run_id,
                e.variant,
            )
            for e in j.entries()
        }


def _ops(keys: list[str]) -> tuple[list[Attempt], list[Outcome]]:
    attempts = [
        Attempt(
            k,
            f"+1555000{i:04d}",
            "s",
            2,
            i,
            1,
            2,
            f"h{i}",
            None if i % 2 else 7,
            10.0 + i,
            variant=None if i % 2 else "B",
        )
        for i, k in enumerate(keys)
    ]
    outcomes = [
        Outcome(
            keys[0],
            ACCEPTED,
            message_id="m0",
            message_ids=["m0", "m0b"],
            group_id="g",
            http_status=202,
            now=20.0,
        ),
        Outcome(
            keys[1], FAILED, error_code="blocked", error_message="no ✓", http_status=400, now=21.0
        ),
        Outcome(keys[2], SENDING, now=22.0),
    ]
    return attempts, outcomes


def test_a_batch_writes_the_same_rows_as_one_op_at_a_time(state):
    """Batches take the one-statement path on PostgreSQL; each op alone takes the row path:
    the rows must not differ, NULLs and every column's type included (and SQLite agrees)."""
    keys = ["a", "b", "c"]
    attempts, outcomes = _ops(keys)
    with open_journal(open_state(state), "batched") as j:
        j.apply(attempts)
        j.apply(outcomes)
    with open_journal(open_state(state), "single") as j:
        for op in [*attempts, *outcomes]:
            j.apply([op])
    assert _rows(state, "batched") == _rows(state, "single")
    assert _rows(state, "batched")["a"][6:10] == (ACCEPTED, 1, "m0", ["m0", "m0b"])


def test_one_batch_keeps_the_order_of_attempt_and_outcome_of_a_key(state):
    """A retry's attempt after the outcome of the try before it, in one batch: the row ends
    'sending' with two attempts; a key twice in one kind goes row by row, in order."""
    st = open_state(state)
    with open_journal(st, "c") as j:
        j.apply([att("k", 1.0), att("j", 1.0)])
        j.apply(
            [
                Outcome("k", FAILED, error_code="http_500", now=2.0),
                Outcome("j", ACCEPTED, message_id="mj", now=2.0),
                att("k", 3.0),
                att("x", 3.0),
                att("x", 4.0),
            ]
        )
        got = {e.key: (e.status, e.attempts, e.last_attempt_at) for e in j.entries()}
    assert got == {"j": (ACCEPTED, 1, 1.0), "k": (SENDING, 2, 3.0), "x": (SENDING, 2, 4.0)}


def test_a_batch_that_fails_writes_none_of_its_rows(pg_url):
    """All or nothing: a batch the database refuses (in its last statement, after the batch
    statements ran) leaves the batch before it intact and the journal usable; the error is a
    user error, not a traceback. (SQLite would store the text: its columns take any type.)"""
    st = open_state(pg_url)
    with open_journal(st, "c") as j:
        j.apply([att("ok1"), att("ok2")])
        bad = Outcome("ok1", ACCEPTED, http_status="not a number", now=2.0)  # type: ignore[arg-type]
        with pytest.raises(CampaignError):
            j.apply([att("new1"), att("new2"), Outcome("ok2", ACCEPTED, now=2.0), bad])
        assert {e.key: e.status for e in j.entries()} == {"ok1": SENDING, "ok2": SENDING}
        j.apply([Outcome("ok1", ACCEPTED, now=3.0)])
        assert {e.key: e.status for e in j.entries()}["ok1"] == ACCEPTED


def test_the_writer_runs_no_prepared_statement(pg_url):
    """Prepared statements run a generic plan chosen while the table was nearly empty (a
    sequential scan), kept as the journal grows: every UPDATE by key then read every row."""
    with open_journal(open_state(pg_url), "c") as j:
        for n in range(8):
            j.apply([att(f"k{n}"), att(f"j{n}")])
            j.apply([Outcome(f"k{n}", ACCEPTED, now=2.0)])
            j.lookup([f"k{n}"])
        assert j._writes.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        assert j.database.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0


def att(key: str, now: float = 1.0) -> Attempt:
    return Attempt(key, "+15551230001", "hello", 1, 0, 0, 1, "hash", 1, now)


def test_lookups_on_the_loop_see_a_batch_whole_or_not_at_all(pg_url):
    """The feeder's lookups and the writer's batches share the loop's connection, one at a
    time: a lookup made while a batch commits never sees half of it, nor joins its pipeline."""
    keys = [f"k{i}" for i in range(200)]

    async def main(j):
        seen = []

        async def look():
            for _ in range(5):
                seen.append(len(await j.lookup_async(keys)))
                await asyncio.sleep(0)

        await asyncio.gather(
            j.apply_async([att(k) for k in keys]),
            look(),
            j.apply_async([Outcome(k, ACCEPTED, now=2.0) for k in keys]),
        )
        after = await j.lookup_async(keys)
        await j.close_async()
        return seen, after

    with open_journal(open_state(pg_url), "c") as j:
        seen, after = asyncio.run(main(j))
        assert set(seen) <= {0, 200} and len(seen) == 5
        assert {e.status for e in after.values()} == {ACCEPTED} and len(after) == 200
        assert j.lookup(keys) == after  # the blocking lookup reads the same rows


@pytest.mark.parametrize(("ahead", "workers"), [(None, 8 + 2), (1.0, 8 + 8)])
def test_a_journal_with_slow_commits_has_more_attempts_committed_ahead(tmp_path, ahead, workers):
    """The executor's extra workers commit their next attempt while waiting for a slot: a
    quarter of the concurrency for a local journal, as many as the concurrency for a database
    (PgJournal.commit_ahead), whose commit may take most of an API answer's time."""
    import httpx

    from runner.run.send import Executor, SendOptions
    from runner.store.journal import Journal
    from runner.store.pgjournal import PgJournal

    class Slow(Journal):
        pass

    if ahead is not None:
        Slow.commit_ahead = ahead  # type: ignore[attr-defined]
        assert PgJournal.commit_ahead == ahead
    with Slow(tmp_path / "c.sqlite") as j:
        ex = Executor(
            j,
            api_key="k",
            options=SendOptions(base_url="http://api.test/v2/api", concurrency=8),
            transport=httpx.MockTransport(lambda r: httpx.Response(500)),
        )
        asyncio.run(ex.run([], total=0))
    assert ex._workers == workers

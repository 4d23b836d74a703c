"""The journal: schema, WAL, batching, durability before send, crash safety."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from runner.errors import CampaignError
from runner.planning.keys import content_hash
from runner.store.backend import open_journal
from runner.store.journal import (
    ACCEPTED,
    SCHEMA_VERSION,
    SENDING,
    Attempt,
    Journal,
    JournalWriter,
    Outcome,
)
from runner.store.paths import journal_path
from runner.store.state import PgState, open_state


def journal(state: str, campaign: str = "c", **kw):
    """The campaign's journal in ``state`` (a folder or a PostgreSQL URL: the same interface)."""
    return open_journal(open_state(state), campaign, **kw)


def att(key, now=1.0, run_id=1):
    return Attempt(key, "+15551230001", "hello", 1, 0, 0, 1, "hash", run_id, now)


def test_schema_version_and_wal(tmp_path):
    with Journal(tmp_path / "a.sqlite") as j:
        assert j.schema_version == SCHEMA_VERSION == 5
        mode = j.pragma("journal_mode")
        assert mode == "wal"
    # Reopening an existing journal does not migrate it again or lose rows.
    with Journal(tmp_path / "a.sqlite") as j:
        j.apply([att("k1")])
    with Journal(tmp_path / "a.sqlite") as j:
        assert [e.key for e in j.entries()] == ["k1"]


def test_newer_schema_is_refused(state):
    with journal(state) as j:  # made by this runner, then by a newer one
        if isinstance(open_state(state), PgState):
            j.database.execute("UPDATE runner_schema SET version = 99")
        else:
            j._db.execute("PRAGMA user_version = 99")
    with pytest.raises(CampaignError, match="schema version 99") as err:
        journal(state)
    assert "upgrade the runner" in str(err.value.problems[0].hint)


def test_not_a_database_is_a_user_error(tmp_path):
    path = tmp_path / "a.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CampaignError, match="cannot open the journal"):
        Journal(path)


def test_attempts_count_and_outcomes(state):
    with journal(state) as j, journal(state, "other") as other:
        other.apply([att("k1", 9.0)])  # another campaign's row of the same key: apart
        j.apply([att("k1", 1.0), att("k1", 2.0)])
        e = j.lookup(["k1"])["k1"]
        assert (e.status, e.attempts, e.first_attempt_at, e.last_attempt_at) == (
            SENDING,
            2,
            1.0,
            2.0,
        )
        j.apply(
            [
                Outcome(
                    "k1",
                    ACCEPTED,
                    message_ids=["m1", "m2"],
                    group_id="grp_1",
                    http_status=202,
                    now=3.0,
                )
            ]
        )
        e = j.lookup(["k1"])["k1"]
        assert (e.status, e.message_ids, e.group_id, e.finished_at) == (
            ACCEPTED,
            ["m1", "m2"],
            "grp_1",
            3.0,
        )
        assert [(o.status, o.attempts) for o in other.entries()] == [(SENDING, 1)]


def test_bulk_lookup_beyond_one_chunk(state):
    with journal(state) as j:
        j.apply([att(f"k{i}") for i in range(1200)])
        found = j.lookup([f"k{i}" for i in range(0, 2400, 2)])
        assert len(found) == 600 and "k1198" in found and "k1199" not in found


def test_runs_are_stored(state):
    with journal(state) as j:
        assert j.last_run() is None
        rid = j.start_run("c", 2, {"rate_per_second": 5}, {"requests": 3})
        j.finish_run(rid, {"accepted": 3}, 0, None)
        run = j.last_run()
        assert (
            run["campaign"],
            run["revision"],
            run["options"],
            run["counts"],
            run["exit_code"],
        ) == ("c", 2, {"rate_per_second": 5}, {"accepted": 3}, 0)
        assert run["ended_at"] >= run["started_at"]


def test_journal_path_is_per_campaign(tmp_path):
    assert journal_path(tmp_path, "spring-sale") == tmp_path / "spring-sale.sqlite"


def test_content_hash_ignores_reply_to_and_key_order():
    body = {"text": "Hi Ada ✓", "effect": "confetti", "attachments": ["https://x/a.png"]}
    assert content_hash(body) == content_hash(dict(reversed(body.items())))
    assert content_hash({**body, "reply_to": {"message_id": "m"}}) == content_hash(body)
    assert content_hash({**body, "text": "Hi Ada!"}) != content_hash(body)


def test_writer_commits_before_attempt_returns_and_batches(state):
    j = journal(state)
    other = journal(state)  # a second connection: sees only what is committed

    async def one(i):
        await writer.attempt(att(f"k{i}"))
        visible = len(other.lookup([f"k{i}"]))
        writer.write(Outcome(f"k{i}", ACCEPTED, message_id=f"m{i}", now=2.0))
        return visible

    async def main():
        nonlocal writer
        writer = JournalWriter(j)
        writer.start()
        seen = await asyncio.gather(*(one(i) for i in range(200)))
        await writer.close()
        return seen

    writer = None
    seen = asyncio.run(main())
    assert seen == [1] * 200
    assert writer.commits <= 5  # 200 attempts started together share a few commits
    assert all(e.status == ACCEPTED for e in j.entries())
    other.close()
    j.close()


_CRASH_WRITER = """
import sys, time
from runner.store.backend import open_journal
from runner.store.journal import Attempt
from runner.store.state import open_state
j = open_journal(open_state(sys.argv[1]), "crash")
i = 0
while True:
    j.apply([Attempt(f"k{i}-{n}", "+1", "s", 1, i, 0, 1, "h", 1, time.time())
             for n in range(50)])
    i += 1
    print(i, flush=True)
"""


def test_sigkill_mid_write_leaves_a_consistent_journal(state):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_WRITER, state], stdout=subprocess.PIPE, text=True
    )
    try:
        committed = 0
        deadline = time.monotonic() + 20
        while committed < 20 and time.monotonic() < deadline:
            committed = int(proc.stdout.readline() or committed)
        proc.kill()
    finally:
        proc.wait(timeout=10)
        proc.stdout.close()
    assert committed >= 20
    with journal(state, "crash") as j:
        if not isinstance(open_state(state), PgState):
            assert j.pragma("integrity_check") == "ok"
        n = sum(1 for _ in j.entries())
    # Every batch it reported committed survived, and no batch is half-written.
    assert n >= committed * 50 and n % 50 == 0

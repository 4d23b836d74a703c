"""Delivery tracking: the poll verdicts, per-message backoff, the journal's v1 → v2 migration,
and the tracker against the local emulator (final states, re-runs, faults, a refused key)."""

from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest

from runner.contract import DeliveryStatus
from runner.emulator import EmulatorConfig, ManualClock
from runner.http.ratelimit import RateLimiter
from runner.run.track import Tracker, TrackOptions, classify_poll, poll_interval, status_path
from runner.store.journal import (
    ACCEPTED,
    SCHEMA_VERSION,
    Attempt,
    Journal,
    Outcome,
)

pytest_plugins = ["emulator_fixtures"]

KEY = "bl_track_SECRET_0a1b2c3d"


# -- verdicts ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status,body,kind,final",
    [
        (
            200,
            b'{"status":"delivered","protocol":"sms","time_sent":1,"time_delivered":5}',
            "status",
            True,
        ),
        (200, b'{"status":"failed","protocol":"unknown","error":"nope"}', "status", True),
        (200, b'{"status":"cancelled","protocol":"pending"}', "status", True),
        (200, b'{"status":"queued","protocol":"pending"}', "status", False),
        (200, b'{"status":"cancellation_requested","protocol":"pending"}', "status", False),
        (200, b'{"status":null,"protocol":"pending"}', "status", False),
        (200, b"not json", "retry", False),
        (401, b'{"message":"bad key"}', "unauthorized", False),
        (404, b'{"message":"Message not found"}', "gone", True),
        (400, b"{}", "gone", True),
        (429, b"{}", "retry", False),
        (503, b'{"message":"No active number available"}', "retry", False),
        (500, b"", "retry", False),
    ],
)
def test_classify_poll(status, body, kind, final):
    v = classify_poll(status, body, {}, 0.0)
    assert (v.kind, v.final) == (kind, final)


def test_classify_poll_reads_fields_and_retry_after():
    v = classify_poll(
        200,
        b'{"status":"delivered","protocol":"imessage","time_sent":1000,'
        b'"time_delivered":1250,"error":null}',
        {},
        0.0,
    )
    assert (v.status, v.protocol, v.time_sent, v.time_delivered, v.error) == (
        "delivered",
        "imessage",
        1000,
        1250,
        None,
    )
    assert classify_poll(429, b"{}", {"retry-after": "3"}, 0.0).retry_after == 3.0
    assert classify_poll(404, b"{}", {}, 0.0).status == DeliveryStatus.NOT_FOUND


def test_poll_interval_grows_geometrically_with_jitter_and_a_cap():
    opts = TrackOptions(first_poll=1.0, poll_factor=2.0, poll_cap=60.0)
    rng = random.Random(1)
    for polls, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (30, 60.0)]:
        for _ in range(50):
            assert ceiling / 2 <= poll_interval(polls, opts, rng) <= ceiling


def test_status_path_encodes_chat_and_message():
    assert status_path("+15551230001", "msg_1") == "/chats/%2B15551230001/messages/msg_1/status"
    assert status_path("+1555,a@b.co", "m") == "/chats/%2B1555%2Ca%40b.co/messages/m/status"


# -- the journal's migration ---------------------------------------------------------------
# The v1 schema exactly as runner 0.1 (journal schema 1) created it: frozen here on purpose,
# so the migration is always tested against what real v1 journals on disk contain.
_V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY, chat TEXT NOT NULL, step TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1, recipient_index INTEGER NOT NULL DEFAULT 0,
    step_index INTEGER NOT NULL DEFAULT 0, messages INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, message_id TEXT,
    message_ids TEXT, group_id TEXT, error_code TEXT, error_message TEXT, http_status INTEGER,
    content_hash TEXT, first_attempt_at REAL, last_attempt_at REAL, finished_at REAL,
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS requests_revision ON requests (revision, recipient_index, step_index);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, campaign TEXT NOT NULL, revision INTEGER NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, options TEXT NOT NULL DEFAULT '{}',
    plan TEXT NOT NULL DEFAULT '{}', counts TEXT, exit_code INTEGER, stop_reason TEXT
);
"""


def make_v1_journal(path):
    db = sqlite3.connect(path)
    db.executescript(f"BEGIN;{_V1_SCHEMA}PRAGMA user_version = 1;COMMIT;")
    db.execute(
        "INSERT INTO runs (campaign, revision, started_at, plan) VALUES ('c', 1, 1.0, "
        '\'{"steps": {"hello": {"requests": 2, "messages": 3}}}\')'
    )
    db.execute(
        "INSERT INTO requests (key, chat, step, status, attempts, message_id, finished_at,"
        " run_id) VALUES ('k1', '+15551230001', 'hello', 'accepted', 1, 'msg_a', 2.0, 1)"
    )
    db.execute(
        "INSERT INTO requests (key, chat, step, status, attempts, message_ids, group_id,"
        " finished_at, run_id, recipient_index, messages) VALUES ('k2', "
        "'+15551230002,+15551230003', 'hello', 'accepted', 1, '[\"msg_b\", \"msg_c\"]', "
        "'grp_x', 2.0, 1, 1, 2)"
    )
    db.commit()
    db.close()


def test_a_v1_journal_is_migrated_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "c.sqlite"
    make_v1_journal(path)
    with Journal(path) as j:
        assert j.schema_version == SCHEMA_VERSION == 5
        assert [(e.key, e.status, e.message_ids) for e in j.entries()] == [
            ("k1", ACCEPTED, None),
            ("k2", ACCEPTED, ["msg_b", "msg_c"]),
        ]
        assert j.last_run()["plan"]["steps"]["hello"]["messages"] == 3
        assert j.seed_deliveries(1) == 3
        assert j.seed_deliveries(1) == 0  # idempotent
        rows = [(d.message_id, d.chat, d.part, d.status, d.final) for d in j.deliveries(1)]
    # The group chat is polled through the group the API made.
    assert rows == [
        ("msg_a", "+15551230001", 0, None, False),
        ("msg_b", "grp_x", 0, None, False),
        ("msg_c", "grp_x", 1, None, False),
    ]
    with Journal(path) as j:  # opening again migrates nothing and loses nothing
        assert j.schema_version == SCHEMA_VERSION and len(list(j.deliveries())) == 3


def test_a_fresh_journal_gets_every_table(tmp_path):
    with Journal(tmp_path / "new.sqlite") as j:
        names = j.tables()
        assert {"requests", "runs", "deliveries"} <= names


# -- the tracker against the emulator -------------------------------------------------------
def accepted_journal(emu, path, n: int, texts: int = 1) -> Journal:
    """A journal as `send` leaves it: n accepted requests (of `texts` messages each)."""
    j = Journal(path)
    run_id = j.start_run("c", 1, {}, {"steps": {"hello": {"requests": n, "messages": n * texts}}})
    ops = []
    with emu.client() as client:
        for i in range(n):
            chat = f"+1555300{i:04d}"
            body = {"text": "hi"} if texts == 1 else {"text": ["a"] * texts}
            resp = client.post(
                f"/chats/%2B{chat[1:]}/messages", json=body, headers={"Idempotency-Key": f"k{i}"}
            ).json()
            ops.append(Attempt(f"k{i}", chat, "hello", 1, i, 0, texts, "h", run_id, 1.0))
            ops.append(
                Outcome(
                    f"k{i}",
                    ACCEPTED,
                    message_id=resp.get("message_id"),
                    message_ids=resp.get("message_ids"),
                    http_status=202,
                    now=__import__("time").time(),
                )
            )
    j.apply(ops)
    return j


def fast(emu, **kw) -> TrackOptions:
    settings = dict(
        base_url=emu.base_url,
        concurrency=8,
        first_poll=0.02,
        poll_cap=0.2,
        backoff_base=0.01,
        backoff_cap=0.05,
        timeout=20.0,
    )
    settings.update(kw)
    return TrackOptions(**settings)


def track(journal, options, key=KEY, **kw):
    tracker = Tracker(journal, api_key=key, options=options, revision=1, rng=random.Random(3), **kw)
    return tracker, asyncio.run(tracker.run())


def test_tracker_polls_until_final_and_stores_what_it_learnt(make_emulator, tmp_path):
    emu = make_emulator(
        api_key=KEY,
        seed=7,
        p_delivery_failed=0.3,
        p_unreachable=0.1,
        share_imessage=0.5,
        share_sms=0.3,
        share_rcs=0.2,
    )
    with accepted_journal(emu, tmp_path / "c.sqlite", 40, texts=2) as j:
        _, result = track(j, fast(emu))
        assert result.exit_code == 0 and result.stop_reason is None
        assert result.stats.total == 80 and result.stats.open == 0
        truth = {}
        for m in emu.messages():
            for mid, status in zip(m["ids"], m["statuses"], strict=True):
                truth[mid] = status
        rows = {d.message_id: d for d in j.deliveries(1)}
        assert {mid: d.status for mid, d in rows.items()} == truth
        assert all(
            d.final and d.protocol in ("imessage", "sms", "rcs", "unknown") for d in rows.values()
        )
        failed = [d for d in rows.values() if d.status == "failed"]
        assert failed and all(d.error for d in failed)
        delivered = [d for d in rows.values() if d.status == "delivered"]
        assert delivered and all(d.time_delivered >= d.time_sent for d in delivered)
        # A second run has nothing left to ask.
        _, again = track(j, fast(emu))
        assert again.stats.polls == 0 and again.exit_code == 0


def test_backoff_per_message_then_a_rerun_finishes(make_emulator, tmp_path):
    clock = ManualClock(1_800_000_000.0)
    emu = make_emulator(EmulatorConfig(api_key=KEY, clock=clock))
    with accepted_journal(emu, tmp_path / "c.sqlite", 10) as j:
        # The emulator's time stands still: every message stays queued for the whole second.
        _, result = track(
            j, fast(emu, first_poll=0.05, poll_factor=2.0, poll_cap=10.0, timeout=1.0)
        )
        assert result.exit_code == 3 and result.stop_reason == "timeout"
        assert result.stats.open == 10
        per_message = result.stats.polls / 10
        # Intervals 0.05, 0.1, 0.2, 0.4, ... (jittered): a handful of polls in a second, not 20.
        assert 2 <= per_message <= 7
        assert all(d.status == "queued" and not d.final for d in j.deliveries(1))
        clock.advance(60)
        _, result = track(j, fast(emu, first_poll=0.05))
        assert result.exit_code == 0 and result.stats.became_final == 10


def test_transient_errors_are_retried_with_backoff(make_emulator, tmp_path):
    emu = make_emulator(api_key=KEY, retry_after_s=0.05)
    with accepted_journal(emu, tmp_path / "c.sqlite", 5) as j:
        # (No "drop" here: the transport silently re-sends on a reused connection that died,
        # so whether a drop reaches the tracker depends on connection reuse.)
        emu.configure(fault_script=["503", "500", "429"])
        _, result = track(j, fast(emu))
        assert result.exit_code == 0
        assert result.stats.poll_errors == 3
        assert all(d.status == "delivered" for d in j.deliveries(1))


def test_a_refused_key_stops_at_once_and_marks_nothing(make_emulator, tmp_path):
    emu = make_emulator(api_key=KEY)
    with accepted_journal(emu, tmp_path / "c.sqlite", 20) as j:
        _, result = track(j, fast(emu), key="bl_wrong_key_123")
        assert result.exit_code == 3 and result.stop_reason == "unauthorized"
        assert result.stats.polls <= 8  # only those already in flight
        assert not any(d.final for d in j.deliveries(1))
    raw = (tmp_path / "c.sqlite").read_bytes()
    assert b"bl_wrong_key_123" not in raw and KEY.encode() not in raw


def test_an_unknown_message_is_final_as_not_found(make_emulator, tmp_path):
    emu = make_emulator(api_key=KEY)
    with Journal(tmp_path / "c.sqlite") as j:
        j.start_run("c", 1, {}, {})
        j.apply(
            [
                Attempt("k", "+15553000000", "hello", 1, 0, 0, 1, "h", 1, 1.0),
                Outcome("k", ACCEPTED, message_id="msg_nope", now=1.0),
            ]
        )
        _, result = track(j, fast(emu))
        assert result.exit_code == 0
        [d] = list(j.deliveries(1))
        assert (d.status, d.final) == (DeliveryStatus.NOT_FOUND, True)


def test_every_poll_waits_for_the_rate_limiter(make_emulator, tmp_path):
    class Counting(RateLimiter):
        calls = 0

        async def acquire(self) -> None:
            Counting.calls += 1
            await super().acquire()

    emu = make_emulator(api_key=KEY)
    with accepted_journal(emu, tmp_path / "c.sqlite", 12) as j:
        _, result = track(j, fast(emu), limiter=Counting(1000.0))
        assert result.exit_code == 0
        assert Counting.calls == result.stats.polls >= 12

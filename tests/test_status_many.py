"""`campaign status` reads a state in aggregates: every run state and count right on both
backends, one connection for a whole database, no row per request read from a folder
(benchmarks/status_many.py times 100 campaigns)."""

from __future__ import annotations

import json

from runner.consent.standing import EventKind
from runner.run.status_session import status
from runner.store import pgconn
from runner.store.backend import open_journal, open_ledger
from runner.store.journal import ACCEPTED, FAILED, Attempt, Journal, Outcome
from runner.store.ledger import ConsentEvent
from runner.store.state import PgState, open_state


def _campaign(
    state,
    cid: str,
    chats: list[str],
    *,
    exit_code: int | None,
    counts: dict | None = None,
    failed: int = 0,
) -> None:
    with open_journal(state, cid) as j:
        run = j.start_run(cid, 1, {}, {"messages": len(chats)}, {"user": "ada"})
        j.apply(
            [
                Attempt(f"{cid}-{i}", chat, "hello", 1, i, 0, 1, "h", run, 100.0)
                for i, chat in enumerate(chats)
            ]
        )
        j.apply(
            [
                Outcome(f"{cid}-{i}", FAILED if i < failed else ACCEPTED, now=101.0)
                for i in range(len(chats))
            ]
        )
        if exit_code is not None:
            j.finish_run(run, counts or {}, exit_code, None)


def _opt_out(state, chats: list[str]) -> None:
    with open_ledger(state) as ledger:
        ledger.record(
            [
                ConsentEvent(
                    chat=c,
                    kind=EventKind.OPTED_OUT,
                    at_ms=5,
                    word="STOP",
                    excerpt="STOP",
                    campaign="a",
                    step="hello",
                    reply_id=f"r{c}",
                )
                for c in chats
            ]
        )


def test_every_run_state_and_count_on_both_backends(state):
    st = open_state(state)
    people = [f"+1555300{i:04d}" for i in range(6)]
    _campaign(st, "done", people, exit_code=0, failed=2)
    _campaign(st, "later", people[:2], exit_code=4, counts={"next_due": 5000.0})
    _campaign(st, "crashed", people[4:], exit_code=None)
    _campaign(st, "stopped", people[:1], exit_code=3)
    _opt_out(st, [people[0], people[5], "+15559999999"])
    label, rows = status(st)
    got = {r.campaign: (r.state, r.requests, r.opted_out, r.next_due, r.last_run_by) for r in rows}
    assert list(got) == ["crashed", "done", "later", "stopped"]
    assert got == {
        "crashed": ("died", {"accepted": 2}, 1, None, "ada"),
        "done": ("finished", {"accepted": 4, "failed": 2}, 2, None, "ada"),
        "later": ("waiting", {"accepted": 2}, 1, 5000.0, "ada"),
        "stopped": ("stopped", {"accepted": 1}, 1, None, "ada"),
    }
    assert "Passw0rd" not in label and "Passw0rd" not in json.dumps([r.to_dict() for r in rows])


def test_a_running_campaign_names_its_holder(state):
    st = open_state(state)
    _campaign(st, "busy", ["+15553000001"], exit_code=None)
    with open_journal(st, "busy", lock="send"):
        (row,) = status(st)[1]
    assert row.state == "running" and row.holder
    assert status(st)[1][0].state == "died"  # the holder let go without ending its run


def test_many_opted_out_chats_are_matched_too(tmp_path):
    """Past a few hundred opted-out chats the folder journal matches its own chats instead of
    one IN (...) list; both ways count the same."""
    st = open_state(str(tmp_path / "state"))
    people = [f"+1555400{i:04d}" for i in range(40)]
    _campaign(st, "big", people, exit_code=0)
    _opt_out(st, people[:30] + [f"+1555500{i:04d}" for i in range(600)])
    assert status(st)[1][0].opted_out == 30


def test_a_folder_status_reads_no_request_row(tmp_path, monkeypatch):
    st = open_state(str(tmp_path / "state"))
    for cid in ("a", "b"):
        _campaign(st, cid, ["+15553000001"], exit_code=0)

    def no_rows(*_a, **_k):
        raise AssertionError("status read the journal row by row")

    monkeypatch.setattr(Journal, "entries", no_rows)
    monkeypatch.setattr(Journal, "runs", no_rows)
    assert [r.state for r in status(st)[1]] == ["finished", "finished"]


def test_a_database_status_is_one_connection_whatever_the_campaigns(pg_url, monkeypatch):
    st = open_state(pg_url)
    assert isinstance(st, PgState)
    for cid in ("a", "b", "c", "d", "e"):
        _campaign(st, cid, ["+15553000001"], exit_code=0)
    opened = []
    real = pgconn.connect

    def counting(url, **kw):
        opened.append(url)
        return real(url, **kw)

    monkeypatch.setattr(pgconn, "connect", counting)
    assert len(status(st)[1]) == 5
    assert len(opened) <= 2  # the ledger's and the campaigns' (was 2 per campaign, plus 2)


def test_an_empty_folder_state_lists_nothing(tmp_path):
    assert status(str(tmp_path / "nothing"))[1] == []

"""Idempotency under faults, caps, and the seeded fault draws of the emulator."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from runner.emulator import EmulatorConfig
from runner.emulator.app import App
from runner.emulator.state import Stats

pytest_plugins = ["emulator_fixtures"]

PHONE = "%2B15551230001"


def post(client, body: object, key: str | None = None, chat: str = PHONE):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(f"/chats/{chat}/messages", json=body, headers=headers)


def test_replay_answers_200_with_the_original_body(emulator):
    with emulator.client() as client:
        first = post(client, {"text": ["a", "b"]}, key="k-1")
        second = post(client, {"text": ["a", "b"]}, key="k-1")
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == first.json()
    stats = emulator.stats()
    assert (stats["messages_accepted"], stats["replays"], stats["accepted_requests"]) == (2, 1, 1)


def _concurrently(emu, requests: list[tuple[float, dict, str]]) -> list[httpx.Response]:
    """Send each (delay before sending, body, key) on its own thread and connection."""
    results: list[httpx.Response | None] = [None] * len(requests)

    def run(i: int, delay: float, body: dict, key: str) -> None:
        time.sleep(delay)
        with emu.client() as client:
            results[i] = post(client, body, key=key)

    threads = [threading.Thread(target=run, args=(i, *req)) for i, req in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def test_same_key_in_flight_waits_and_gets_the_same_ids(make_emulator):
    emu = make_emulator(latency_ms=300)
    first, second = _concurrently(emu, [(0, {"text": "x"}, "k"), (0.1, {"text": "x"}, "k")])
    assert sorted([first.status_code, second.status_code]) == [200, 202]
    assert first.json()["message_id"] == second.json()["message_id"]
    stats = emu.stats()
    assert stats["messages_accepted"] == 1 and stats["replays"] == 1
    assert stats["peak_in_flight"] == 2


def test_same_key_behind_an_uncommitted_attempt_is_processed_normally(make_emulator):
    emu = make_emulator(latency_ms=300, fault_script=["500", ""])
    first, second = _concurrently(emu, [(0, {"text": "x"}, "k"), (0.1, {"text": "x"}, "k")])
    assert first.status_code == 500 and "code" not in first.json()
    assert second.status_code == 202
    assert emu.stats()["messages_accepted"] == 1


def test_accept_then_500_then_retry_with_the_same_key_is_a_replay(make_emulator):
    emu = make_emulator(fault_script=["accept_then_500"])
    with emu.client() as client:
        lost = post(client, {"text": "x"}, key="k")
        retry = post(client, {"text": "x"}, key="k")
    assert lost.status_code == 500
    assert retry.status_code == 200
    committed = emu.messages()
    assert len(committed) == 1 and retry.json()["message_id"] == committed[0]["ids"][0]
    stats = emu.stats()
    assert (stats["messages_accepted"], stats["replays"], stats["duplicates"]) == (1, 1, 0)


def test_duplicate_counter_catches_retries_without_the_same_key(make_emulator):
    emu = make_emulator(fault_script=["accept_then_500"])
    with emu.client() as client:
        assert post(client, {"text": "x"}).status_code == 500  # committed, answer lost
        assert post(client, {"text": "x"}).status_code == 202  # naive retry: sent twice
        assert post(client, {"text": "x"}, chat="%2B15551230002").status_code == 202
    stats = emu.stats()
    assert stats["duplicates"] == 1 and stats["messages_accepted"] == 3


def test_plain_429_has_retry_after_and_no_code(make_emulator):
    emu = make_emulator(p_429=1.0, retry_after_s=0.05)
    with emu.client() as client:
        r = post(client, {"text": "x"}, key="k")
    assert r.status_code == 429 and r.headers["Retry-After"] == "0.05"
    assert "code" not in r.json()
    emu.configure(retry_after_s=2)
    with emu.client() as client:
        assert post(client, {"text": "x"}, key="k").headers["Retry-After"] == "2"
    emu.configure(retry_after_s=None)
    with emu.client() as client:
        assert "Retry-After" not in post(client, {"text": "x"}, key="k").headers
    assert emu.stats()["messages_accepted"] == 0


def test_503_and_500_bodies(make_emulator):
    emu = make_emulator(fault_script=["503", "500"])
    with emu.client() as client:
        a, b = post(client, {"text": "x"}, key="k"), post(client, {"text": "x"}, key="k")
        c = post(client, {"text": "x"}, key="k")
    assert a.json() == {"error": "ApiError", "message": "No active number available", "status": 503}
    assert b.status_code == 500 and c.status_code == 202
    assert emu.stats()["errors"] == {"500": 1, "503": 1}


def test_drop_closes_the_connection_without_committing(make_emulator):
    emu = make_emulator(fault_script=["drop"])
    with emu.client() as client:
        with pytest.raises(httpx.TransportError):
            post(client, {"text": "x"}, key="k")
        assert post(client, {"text": "x"}, key="k").status_code == 202
    stats = emu.stats()
    assert stats["drops"] == 1 and stats["messages_accepted"] == 1 and stats["replays"] == 0


def test_slow_answer_is_not_committed_by_default(make_emulator):
    emu = make_emulator(fault_script=["slow"], slow_ms=300)
    with emu.client(timeout=0.1) as client:
        with pytest.raises(httpx.ReadTimeout):
            post(client, {"text": "x"}, key="k")
    with emu.client() as client:
        retry = post(client, {"text": "x"}, key="k")
    assert retry.status_code == 202 and emu.stats()["messages_accepted"] == 1


def test_slow_commits_when_configured_so_a_retry_is_a_replay(make_emulator):
    emu = make_emulator(fault_script=["slow"], slow_ms=300, slow_commits=True)
    with emu.client(timeout=0.1) as client:
        with pytest.raises(httpx.ReadTimeout):
            post(client, {"text": "x"}, key="k")
    with emu.client() as client:
        retry = post(client, {"text": "x"}, key="k")
    assert retry.status_code == 200
    assert emu.stats()["messages_accepted"] == 1


def test_replays_may_fail_but_never_create_a_second_message(make_emulator):
    emu = make_emulator(seed=7)
    with emu.client() as client:
        assert post(client, {"text": "x"}, key="k").status_code == 202
        emu.configure(p_500=0.3, p_503=0.2, p_drop=0.1, p_accept_then_500=0.2)
        codes = []
        for _ in range(40):
            try:
                codes.append(post(client, {"text": "x"}, key="k").status_code)
            except httpx.TransportError:
                codes.append("drop")
    assert {200, 500, 503, "drop"} <= set(codes)
    stats = emu.stats()
    assert stats["messages_accepted"] == 1 and stats["duplicates"] == 0


def _fault_sequence(emu, n: int) -> list[object]:
    out: list[object] = []
    with emu.client() as client:
        for i in range(n):
            try:
                out.append(post(client, {"text": str(i)}, key=f"k{i}").status_code)
            except httpx.TransportError:
                out.append("drop")
    return out


def test_faults_are_reproducible_from_the_seed(make_emulator):
    settings = dict(
        p_500=0.2, p_503=0.2, p_429=0.1, p_drop=0.1, p_accept_then_500=0.1, retry_after_s=0
    )
    a = _fault_sequence(make_emulator(seed=3, **settings), 40)
    b = _fault_sequence(make_emulator(seed=3, **settings), 40)
    c = _fault_sequence(make_emulator(seed=4, **settings), 40)
    assert a == b and a != c
    assert {202, 500, 503, 429, "drop"} <= set(a)


def test_fault_scope_send_leaves_reads_alone(make_emulator):
    emu = make_emulator(p_503=1.0, fault_scope="send")
    with emu.client() as client:
        assert client.get("/me/numbers").status_code == 200
        assert post(client, {"text": "x"}).status_code == 503
    emu.configure(fault_scope="all")
    with emu.client() as client:
        assert client.get("/me/numbers").status_code == 503


def test_outbound_limit_counts_distinct_contacts(make_emulator):
    emu = make_emulator(outbound_limit=2)
    with emu.client() as client:
        assert post(client, {"text": "x"}, chat="%2B15551230001").status_code == 202
        assert post(client, {"text": "x"}, chat="%2B15551230002").status_code == 202
        capped = post(client, {"text": "x"}, chat="%2B15551230003")
        group = post(client, {"text": "x"}, chat="%2B15551230001%2C%2B15551230004")
        known = post(client, {"text": "again"}, chat="%2B15551230002")
    assert capped.status_code == 429
    assert capped.json() == {
        "error": "ApiError",
        "message": capped.json()["message"],
        "status": 429,
        "code": "outbound_limit_reached",
        "limit": 2,
        "current": 2,
        "mode": "org",
    }
    assert "Retry-After" not in capped.headers
    assert group.status_code == 429 and known.status_code == 202


def test_new_conversation_cap_lets_existing_chats_continue(make_emulator):
    emu = make_emulator(new_conversation_cap=1, plan_id="plan_x")
    emu.reply("+15551230009", "hi there")  # they wrote first: not a new conversation
    with emu.client() as client:
        assert post(client, {"text": "x"}, chat="%2B15551230001").status_code == 202
        capped = post(client, {"text": "x"}, chat="%2B15551230002")
        assert post(client, {"text": "y"}, chat="%2B15551230001").status_code == 202
        assert post(client, {"text": "y"}, chat="%2B15551230009").status_code == 202
    body = capped.json()
    assert capped.status_code == 429 and body["code"] == "new_conversation_limit_reached"
    assert (body["plan_id"], body["cap"], body["current"]) == ("plan_x", 1, 1)


def test_config_endpoint_rejects_unknown_and_bad_settings(emulator):
    with pytest.raises(ValueError, match="unknown setting"):
        emulator.configure(p_teapot=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        emulator.configure(p_500=2)
    with pytest.raises(ValueError, match="more than 1"):
        emulator.configure(p_500=0.6, p_503=0.6)
    assert emulator.config()["p_500"] == 0


def test_reset_forgets_messages_and_keys(emulator):
    with emulator.client() as client:
        assert post(client, {"text": "x"}, key="k").status_code == 202
        emulator.reset()
        assert emulator.stats()["messages_accepted"] == 0
        assert post(client, {"text": "x"}, key="k").status_code == 202


def test_peak_rate_is_the_most_accepts_in_any_one_second_window():
    stats = Stats()
    for t in (0.0, 0.2, 0.9, 1.1, 1.5, 1.95, 2.0, 5.0):
        stats.note_accept(t)
    assert stats.peak_rate_1s == 4  # 1.1, 1.5, 1.95, 2.0


def test_rejected_requests_are_not_accepted(emulator):
    with emulator.client() as client:
        for i in range(3):
            post(client, {"text": str(i)})
        post(client, {})
    stats = emulator.stats()
    assert stats["accepted_requests"] == 3 and stats["errors"] == {"400": 1}
    assert 1 <= stats["peak_rate_1s"] <= 3


def test_in_flight_wait_without_timing():
    """The same-key wait, driven inside one event loop so the order is certain, not timed."""
    app = App(EmulatorConfig(latency_ms=1, fault_script=["500", "", ""]))
    headers = {"authorization": "Bearer test-key", "idempotency-key": "k"}
    body = json.dumps({"text": "x"}).encode()

    async def scenario():
        def one():
            return app.handle("POST", f"/v2/api/chats/{PHONE}/messages", headers, body, "127.0.0.1")

        # first: 500 before commit; second waits, then commits; third waits, then replays
        return await asyncio.gather(one(), one(), one())

    results = asyncio.run(scenario())
    assert [r[0] for r in results] == [500, 202, 200]
    assert results[1][1] == results[2][1]
    stats = app.state.stats_dict()
    assert stats["messages_accepted"] == 1 and stats["peak_in_flight"] == 3


def test_configuring_does_not_rearm_a_consumed_fault_script(make_emulator):
    emu = make_emulator(fault_script=["503"])
    with emu.client() as client:
        assert post(client, {"text": "x"}).status_code == 503
        emu.configure(retry_after_s=0.5)
        assert post(client, {"text": "y"}).status_code == 202
        emu.configure(fault_script=["500"])
        assert post(client, {"text": "z"}).status_code == 500

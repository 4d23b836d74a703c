"""Issue 27 items 5 and 6 for `track` and `optouts`: bounded memory whatever the journal's size
(a window of open messages, a window of chats), on both state backends; `listen` writing a
PostgreSQL state (issue 24 item 1); a STOP stops that chat's later messages within a second.

The 1M-message figures are benchmarks/track_memory.py's; these tests pin the mechanisms with
windows of a few rows, so every page boundary is crossed."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from pathlib import Path

import runner
from runner.consent.standing import EventKind, Standing
from runner.emulator import EmulatorConfig
from runner.http.server import Server
from runner.run import replies as replies_module
from runner.run.consent import _RECHECK_S, ConsentGate
from runner.run.optouts import stop_words
from runner.run.track import ReplyOptions, Tracker, TrackOptions
from runner.store import journal as journal_module
from runner.store.backend import open_journal, open_ledger, sync_contacts
from runner.store.journal import ACCEPTED, Attempt, Outcome
from runner.store.state import open_state
from runner.webhooks.events import EventType, WebhookEvent
from runner.webhooks.listener import DEFAULT_PATH, Listener
from runner.webhooks.sink import WebhookSink

pytest_plugins = ["emulator_fixtures"]

KEY = "bl_scale_SECRET_9f8e7d"


def _fill(journal, n: int) -> None:
    """n accepted requests to n chats (request 3 a group of two messages), one run."""
    ops = []
    for i in range(n):
        chat = f"+1555600{i:04d}" if i != 3 else "+15556009998,+15556009999"
        ids = [f"m{i}a", f"m{i}b"] if i == 3 else None
        ops.append(
            Attempt(f"k{i:03d}", chat, "hello", 1, i, 0, 2 if ids else 1, "h", None, 1000.0 + i)
        )
        ops.append(
            Outcome(
                f"k{i:03d}",
                ACCEPTED,
                message_id=None if ids else f"m{i}",
                message_ids=ids,
                group_id="grp_3" if ids else None,
                now=1000.5 + i,
            )
        )
    journal.apply(ops)


def test_the_journal_is_walked_in_pages_on_both_backends(state: str, monkeypatch):
    monkeypatch.setattr(journal_module, "PAGE_ROWS", 3)
    with open_journal(open_state(state), "scale") as j:
        _fill(j, 8)
        assert j.seed_deliveries(1) == 9  # 8 requests, one of two messages
        assert j.seed_deliveries(1) == 0  # seeded already: nothing read again
        seen, after = [], 0
        while page := j.open_deliveries(1, after, 4).rows:
            assert len(page) <= 4
            seen += [d.message_id for d in page]
            after = j.open_deliveries(1, after, 4).after
        # Every open message once, in campaign order (the order `track` polls them in).
        assert seen == ["m0", "m1", "m2", "m3a", "m3b", "m4", "m5", "m6", "m7"]
        counts = j.delivery_counts(1)
        assert (counts.total, counts.open, counts.final_unpolled) == (9, 9, 0)
        chats = j.attempted_chats(3)
        pages = list(chats.pages)
        assert chats.count == 8 and [len(p) for p in pages] == [3, 3, 2]
        flat = [c.chat for p in pages for c in p]
        assert flat == sorted(flat)
        group = next(c for p in pages for c in p if "," in c.chat)
        assert group.group_id == "grp_3" and group.first_attempt_at == 1003.0


def _accepted(emu, path: Path, n: int):
    j = journal_module.Journal(path)
    ops = []
    with emu.client() as client:
        for i in range(n):
            chat = f"+1555610{i:04d}"
            resp = client.post(
                f"/chats/%2B{chat[1:]}/messages",
                json={"text": "hi"},
                headers={"Idempotency-Key": f"k{i}"},
            ).json()
            ops.append(Attempt(f"k{i}", chat, "hello", 1, i, 0, 1, "h", None, 1.0))
            ops.append(Outcome(f"k{i}", ACCEPTED, message_id=resp["message_id"], now=1.0))
    j.apply(ops)
    return j


def test_track_holds_a_window_of_open_messages_and_still_finishes_them_all(make_emulator, tmp_path):
    emu = make_emulator(api_key=KEY, seed=4, p_delivery_failed=0.2)
    with _accepted(emu, tmp_path / "c.sqlite", 25) as j:
        tracker = Tracker(
            j,
            api_key=KEY,
            revision=1,
            rng=random.Random(2),
            window=4,
            options=TrackOptions(
                base_url=emu.base_url, concurrency=4, first_poll=0.0, poll_cap=0.05, timeout=20.0
            ),
        )
        held: list[int] = []
        refill = tracker._refill

        def watched() -> None:
            refill()
            held.append(len(tracker._heap))

        tracker._refill = watched  # type: ignore[method-assign]
        result = asyncio.run(tracker.run())
        assert result.exit_code == 0 and result.stats.total == 25 and result.stats.open == 0
        assert max(held) <= 4  # never more than the window in memory
        assert all(d.final for d in j.deliveries(1))


def test_reply_readings_go_a_window_of_chats_at_a_time(
    make_emulator, tmp_path, monkeypatch, campaign_cli, state: str
):
    """`track`'s reply pass and `optouts` read 2 chats at a time here: every chat is read,
    every STOP recorded, the pass's record counts them all."""
    monkeypatch.setattr(replies_module, "CHAT_WINDOW", 2)
    emu = make_emulator(
        EmulatorConfig(
            api_key=KEY,
            seed=5,
            sent_after_ms=0,
            delivered_after_ms=0,
            delivery_jitter_ms=0,
            reply_rate=1.0,
            reply_text="STOP",
            reply_after_s=0,
        )
    )
    chats = [f"+1555620{i:04d}" for i in range(5)]
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nid: w\nrecipients:\n"
        + "".join(f'  - to: "{c}"\n' for c in chats)
        + "steps:\n  - id: hello\n    text: Hi\n"
    )
    runner.send(path, state_dir=state, rate="unlimited", base_url=emu.base_url, api_key=KEY)
    with open_journal(open_state(state), "w") as j, open_ledger(open_state(state)) as led:
        tracker = Tracker(
            j,
            api_key=KEY,
            revision=1,
            rng=random.Random(1),
            options=TrackOptions(
                base_url=emu.base_url,
                concurrency=2,
                first_poll=0.0,
                poll_cap=0.05,
                timeout=20.0,
                replies=ReplyOptions(stop_words(), ledger=led, campaign="w"),
            ),
        )
        result = asyncio.run(tracker.run())
        assert result.stats.reply_chats == 5 and result.stats.replies_new == 5
        assert result.stats.reply_stops == 5 and result.stats.reply_requests == 5
        [done] = j.reply_passes()
        assert done.complete and (done.chats, done.chats_read, done.replies_new) == (5, 5, 5)
        assert led.standings() == dict.fromkeys(chats, Standing.OPTED_OUT)
    out = campaign_cli("optouts", str(path), "--state", state, "--format", "json", env=emu.env())
    assert out.returncode == 0, out.stderr
    assert '"chats_checked": 5' in out.stdout and '"requests": 5' in out.stdout


def test_listen_writes_a_postgresql_state_by_the_same_path(
    make_emulator, pg_url, campaign_cli, tmp_path
):
    emu = make_emulator(EmulatorConfig(api_key=KEY, sent_after_ms=0, delivered_after_ms=3_600_000))
    chats = ["+15556300001", "+15556300002"]
    path = tmp_path / "pgh.yaml"
    path.write_text(
        "version: 1\nid: pgh\nrecipients:\n"
        + "".join(f'  - to: "{c}"\n' for c in chats)
        + "steps:\n  - id: hello\n    text: Hi\n"
    )
    runner.send(path, state_dir=pg_url, rate="unlimited", base_url=emu.base_url, api_key=KEY)
    ids = {m["chat"]: m["ids"][0] for m in emu.messages()}
    sink = WebhookSink(pg_url, stop_words())
    try:
        events = [
            WebhookEvent(EventType.DELIVERED, ids[chats[0]], chats[0], "sms", 5, None),
            WebhookEvent(EventType.RECEIVED, "in_pg", chats[1], "sms", 6, "STOP"),
        ]
        sink.apply(events, now=100.0)
        sink.apply(events, now=101.0)  # a replay changes nothing
    finally:
        sink.close()
    assert sink.stats.statuses == 2 and sink.stats.unknown_messages == 0
    state = open_state(pg_url)
    with open_journal(state, "pgh") as j:
        rows = {d.message_id: d for d in j.deliveries(1)}
        assert rows[ids[chats[0]]].final and rows[ids[chats[0]]].status == "delivered"
        assert rows[ids[chats[0]]].polls == 0 and not rows[ids[chats[1]]].final
    with open_ledger(state) as ledger:
        assert ledger.standings() == {chats[1]: Standing.OPTED_OUT}
        [row] = ledger.standing_rows(chats=[chats[1]])
        assert (row.event.campaign, row.event.step) == ("pgh", "hello")
        assert len([e for e in ledger.events() if e.kind is EventKind.OPTED_OUT]) == 1
    # track then asks only about the message no webhook finished.
    tracked = runner.track(
        path,
        state_dir=pg_url,
        base_url=emu.base_url,
        api_key=KEY,
        replies=False,
        timeout=0.5,
        first_poll=0.0,
    )
    assert tracked.stats.polls_saved == 1 and tracked.stats.polls >= 1
    # The CLI no longer refuses a database state (it would stop at the missing secret first).
    refused = campaign_cli("listen", "--state", pg_url, env={"BLOOIO_WEBHOOK_SECRET": None})
    assert refused.returncode == 1 and "secret" in refused.stderr
    assert "folder state only" not in refused.stderr


def test_a_stop_written_by_listen_keeps_that_chat_within_a_second_of_a_10000_message_send(tmp_path):
    """Issue 27's "Done when": the send's gate (runner.run.consent) checks each of 10,000
    messages against the ledger, one millisecond of injected clock apart; `listen`'s sink
    records a STOP for a chat at message 5,000; every check of that chat from 1 s later on says
    KEPT (in fact from the gate's next re-read, ``_RECHECK_S``)."""
    state = open_state(tmp_path / "st")
    chats = [f"+1555640{i:04d}" for i in range(100)]
    target = chats[7]
    now = [0.0]
    with open_ledger(state) as ledger:
        gate = ConsentGate(ledger, stop_words(), clock=lambda: now[0])
        sink = WebhookSink(state, stop_words())
        stopped_at, first_kept = None, None
        try:
            for n in range(10_000):
                now[0] = n / 1000
                chat = chats[n % len(chats)]
                if n == 5_000:
                    sink.apply(
                        [WebhookEvent(EventType.RECEIVED, "in_stop", target, "sms", n, "STOP")],
                        now=now[0],
                    )
                    stopped_at = now[0]
                kept = gate.standing(chat) is not None
                if chat == target and stopped_at is not None:
                    if first_kept is None and kept:
                        first_kept = now[0]
                    if now[0] - stopped_at >= 1.0:
                        assert kept, f"message {n} to the stopped chat was let through"
                elif chat != target:
                    assert not kept
        finally:
            sink.close()
        assert first_kept is not None and first_kept - stopped_at <= _RECHECK_S + 0.1


def test_the_emulator_feeds_listen_on_postgresql_and_track_then_polls_nothing(
    make_emulator, pg_url, tmp_path
):
    """End to end on a database state: the emulator posts signed lifecycle webhooks and a STOP
    to a listener writing the PostgreSQL state; the statuses land in the journal, the STOP in
    the ledger, and `track` afterwards asks the API nothing."""
    secret = "whsec_pg_SECRET"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def up() -> tuple[Listener, Server, int]:
        listener = Listener(WebhookSink(pg_url, stop_words()), [secret])
        server = Server(listener, listener.max_body)
        return listener, server, await server.start(0)

    listener, server, port = asyncio.run_coroutine_threadsafe(up(), loop).result(10)
    try:
        emu = make_emulator(
            EmulatorConfig(
                api_key=KEY,
                sent_after_ms=0,
                delivered_after_ms=0,
                delivery_jitter_ms=0,
                webhook_url=f"http://127.0.0.1:{port}{DEFAULT_PATH}",
                webhook_secret=secret,
            )
        )
        chats = ["+15556500001", "+15556500002"]
        path = tmp_path / "pgw.yaml"
        path.write_text(
            "version: 1\nid: pgw\nrecipients:\n"
            + "".join(f'  - to: "{c}"\n' for c in chats)
            + "steps:\n  - id: hello\n    text: Hi\n"
        )
        runner.send(path, state_dir=pg_url, rate="unlimited", base_url=emu.base_url, api_key=KEY)
        emu.reply(chats[1], "stop please")
        state = open_state(pg_url)
        for _ in range(200):  # bounded: the emulator retries until acknowledged
            with open_journal(state, "pgw") as j:
                done = j.delivery_counts(1).final_unpolled == 2
            if done and listener.sink.stats.replies:
                break
            time.sleep(0.05)
        with open_ledger(state) as ledger:
            assert ledger.standings() == {chats[1]: Standing.OPTED_OUT}
        before = emu.stats()["requests"]
        tracked = runner.track(
            path, state_dir=pg_url, base_url=emu.base_url, api_key=KEY, replies=False, timeout=5
        )
        assert tracked.stats.polls == 0 and tracked.stats.polls_saved == 2
        assert emu.stats()["requests"] == before and listener.stats.refused == 0
    finally:

        async def down() -> None:
            await listener.close()
            await server.close()
            listener.sink.close()

        asyncio.run_coroutine_threadsafe(down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_contacts_sync_a_page_at_a_time_the_same_as_at_once(state: str, monkeypatch):
    """The ledger merges a journal's requests into ``contacts`` a page at a time: with pages of
    one row, a chat spread over pages (its first and latest attempts, a group's id on a later
    row) comes out as it does from one page."""
    from runner.store import ledger as ledger_module
    from runner.store import pgledger as pgledger_module

    group = "+15556600003,+15556600004"
    rows = [
        ("+15556600001", "hello", 1000.0),
        ("+15556600002", "hello", 1001.0),
        ("+15556600001", "nudge", 3000.0),
        (group, "hello", 1500.0),
        ("+15556600001", "promo", 2000.0),
        (group, "nudge", 2500.0),
    ]
    where = open_state(state)
    with open_journal(where, "sync") as j:
        j.apply(
            [
                Attempt(f"k{i}", chat, step, 1, i, 0, 1, "h", None, at)
                for i, (chat, step, at) in enumerate(rows)
            ]
            + [Outcome("k5", ACCEPTED, message_id="mg", group_id="grp_9", now=2501.0)]
        )
    with open_ledger(where) as ledger:
        monkeypatch.setattr(ledger_module, "_SYNC_PAGE", 1)
        monkeypatch.setattr(pgledger_module, "_PAGE", 1)
        sync_contacts(where, ledger)
        contacts = ledger.contacts()
    a = contacts["+15556600001"]
    assert (a.first_ms, a.last_ms, a.last_campaign, a.last_step) == (
        1_000_000,
        3_000_000,
        "sync",
        "nudge",
    )
    g = contacts[group]
    assert (g.api_id, g.first_ms, g.last_ms, g.last_step) == (
        "grp_9",
        1_500_000,
        2_500_000,
        "nudge",
    )
    assert set(contacts) == {"+15556600001", "+15556600002", group}

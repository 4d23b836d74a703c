"""Issue 15 item 2: replies and opt-outs in the report. The journal's schema 4 (variant,
replies), who replied to which step and variant (pure, rows written through the journal's
API), and the whole loop in process against the emulator's automatic replies: send → the
clock moves → track reads one page per chat → the report in every format."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time

import pytest

import runner
from runner.emulator import EmulatorConfig
from runner.report.data import build_report, render
from runner.report.engagement import engagement
from runner.run.optouts import stop_words
from runner.run.track import ReplyOptions, Tracker, TrackOptions
from runner.store import journal as journal_module
from runner.store.journal import (
    ACCEPTED,
    Attempt,
    DeliveryPoll,
    DeliverySeed,
    Journal,
    Outcome,
    Reply,
)

pytest_plugins = ["emulator_fixtures"]

KEY = "test-key"
T0 = 1_800_000_000_000  # API ms


# -- the journal --------------------------------------------------------------------------------


def test_a_schema_3_journal_gains_variant_and_replies(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for v in (1, 2, 3):
        db.executescript(f"BEGIN;{journal_module._MIGRATIONS[v]}PRAGMA user_version = {v};COMMIT;")
    db.execute(
        "INSERT INTO requests (key, chat, step, status) VALUES ('k', '+15550000001', "
        "'hello', 'accepted')"
    )
    db.close()
    with Journal(path) as j:
        assert j.schema_version == 5 and "replies" in j.tables()
        [e] = list(j.entries())
        assert e.variant is None  # rows of older runners have none
        j.apply(
            [Attempt("k2", "+15550000002", "hello", 1, 1, 0, 1, "h", None, 1.0, variant="short")]
        )
        assert j.lookup(["k2"])["k2"].variant == "short"


def test_a_reply_is_stored_once_and_its_text_only_when_given(tmp_path):
    with Journal(tmp_path / "j.sqlite") as j:
        ops = [
            Reply("m1", "+1", T0, 4, True, now=1.0),
            Reply("m2", "+1", T0 + 5, 9, False, text="yes please", now=1.0),
            Reply("m1", "+1", T0, 4, True, now=2.0),
        ]
        j.apply(ops)
        rows = list(j.replies())
        assert [(r.message_id, r.text, r.is_stop) for r in rows] == [
            ("m1", None, True),
            ("m2", "yes please", False),
        ]
        assert j.reply_cursors() == {"+1": T0 + 4}


# -- who replied to what (pure over journal rows) ------------------------------------------------


def _sent(
    j: Journal,
    key: str,
    chat: str,
    step: str,
    step_index: int,
    variant: str | None,
    at_ms: int,
    delivered: bool = True,
) -> None:
    """A request accepted and (unless not) delivered, its message sent at ``at_ms``."""
    mid = f"msg-{key}"
    j.apply(
        [
            Attempt(key, chat, step, 1, 0, step_index, 1, "h", None, at_ms / 1000, variant=variant),
            Outcome(key, ACCEPTED, message_id=mid, now=at_ms / 1000),
            DeliverySeed(mid, key, 0, chat, 1, step, at_ms / 1000),
            DeliveryPoll(
                mid,
                status="delivered" if delivered else "failed",
                protocol="sms",
                time_sent=at_ms,
                time_delivered=at_ms + 1000,
                error=None,
                now=0.0,
                next_poll_at=None,
                final=True,
            ),
        ]
    )


def _doc(j: Journal) -> dict:
    return engagement(j.entries(1), j.deliveries(1), j.replies())


def test_a_reply_counts_for_the_step_it_follows_until_the_next_is_sent(tmp_path):
    a, b, c = "+15550000001", "+15550000002", "+15550000003"
    with Journal(tmp_path / "j.sqlite") as j:
        for chat in (a, b, c):
            _sent(j, f"{chat}-1", chat, "hello", 0, None, T0)
            _sent(j, f"{chat}-2", chat, "follow", 1, None, T0 + 3_600_000)
        j.apply(
            [
                Reply("r1", a, T0 + 60_000, 3, False, now=0),  # hello, after 60 s
                Reply("r2", a, T0 + 120_000, 4, True, now=0),  # hello again: a STOP
                Reply("r3", b, T0 + 3_600_000 + 30_000, 3, False, now=0),  # after follow
                Reply("r4", c, T0 - 5_000, 3, False, now=0),  # before anything was sent
                Reply("r5", "+19999999999", T0 + 1, 3, False, now=0),  # not a chat of ours
            ]
        )
        doc = _doc(j)
    [hello] = doc["steps"]["hello"]["variants"]
    [follow] = doc["steps"]["follow"]["variants"]
    assert hello["variant"] is None and hello["delivered"] == 3
    assert (hello["replied"], hello["opted_out"], hello["median_time_to_reply_s"]) == (1, 1, 60.0)
    assert (follow["replied"], follow["opted_out"], follow["median_time_to_reply_s"]) == (
        1,
        0,
        30.0,
    )
    assert hello["reply_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert doc["steps"]["hello"]["comparisons"] == []
    assert doc["replies_stored"] == 4  # r5 belongs to no chat of the campaign


def test_variants_are_compared_and_small_samples_said_plainly(tmp_path):
    with Journal(tmp_path / "j.sqlite") as j:
        # short: 40 delivered, 20 replied; code: 40 delivered, 4 replied (2 STOP); 5 undelivered.
        for i in range(85):
            variant = "short" if i % 2 == 0 else "code"
            chat = f"+1555100{i:04d}"
            _sent(j, f"k{i}", chat, "hello", 0, variant, T0, delivered=i < 80)
        ops = []
        short = [i for i in range(80) if i % 2 == 0][:20]
        code = [i for i in range(80) if i % 2 == 1][:4]
        for n, i in enumerate(short + code):
            stop = i in code[:2]
            ops.append(Reply(f"r{i}", f"+1555100{i:04d}", T0 + 1000 * (n + 1), 4, stop, now=0))
        j.apply(ops)
        doc = _doc(j)
    rows = {v["variant"]: v for v in doc["steps"]["hello"]["variants"]}
    assert (rows["short"]["delivered"], rows["short"]["replied"]) == (40, 20)
    assert (rows["code"]["delivered"], rows["code"]["replied"], rows["code"]["opted_out"]) == (
        40,
        4,
        2,
    )
    [c] = doc["steps"]["hello"]["comparisons"]
    assert (c["a"], c["b"]) == ("code", "short")  # sorted by id
    assert c["difference"] == pytest.approx(-0.4)
    assert c["ci95"][1] < 0 and c["verdict"] == "b_higher"

    with Journal(tmp_path / "small.sqlite") as j:
        for i in range(20):
            _sent(j, f"k{i}", f"+1555200{i:04d}", "hello", 0, "ab"[i % 2], T0)
        j.apply(
            [Reply(f"r{i}", f"+1555200{i:04d}", T0 + 10, 2, False, now=0) for i in range(0, 20, 2)]
        )
        [c] = _doc(j)["steps"]["hello"]["comparisons"]
    assert c["verdict"] == "too_small" and c["difference"] == pytest.approx(1.0)


# -- the whole loop, in process -------------------------------------------------------------------


def _variant_journal(emu, path, n: int) -> Journal:
    """Requests sent straight to the emulator with two wordings, journalled with their
    variant through the journal's API (as `send` will once steps have variants)."""
    j = Journal(path)
    run_id = j.start_run("ab", 1, {}, {"steps": {"hello": {"requests": n, "messages": n}}})
    ops = []
    with emu.client() as client:
        for i in range(n):
            chat = f"+1555300{i:04d}"
            variant = "short" if i % 2 == 0 else "code"
            text = "Hi, 20% off today" if variant == "short" else "Your code: SAVE20"
            resp = client.post(
                f"/chats/%2B{chat[1:]}/messages",
                json={"text": text},
                headers={"Idempotency-Key": f"k{i}"},
            ).json()
            ops.append(
                Attempt(
                    f"k{i}", chat, "hello", 1, i, 0, 1, "h", run_id, time.time(), variant=variant
                )
            )
            ops.append(
                Outcome(
                    f"k{i}",
                    ACCEPTED,
                    message_id=resp["message_id"],
                    http_status=202,
                    now=time.time(),
                )
            )
    j.apply(ops)
    j.finish_run(run_id, {}, 0, None)
    return j


def _track(j: Journal, emu, keep_text: bool = False):
    options = TrackOptions(
        base_url=emu.base_url,
        concurrency=8,
        first_poll=0.0,
        poll_cap=0.2,
        timeout=20.0,
        rate_per_second=None,
        replies=ReplyOptions(stop_words(), keep_text),
    )
    tracker = Tracker(j, api_key=KEY, options=options, revision=1, rng=random.Random(1))
    return asyncio.run(tracker.run())


def test_variants_loop_track_reads_one_page_per_chat_and_the_report_compares(
    make_emulator, tmp_path
):
    emu = make_emulator(
        EmulatorConfig(
            api_key=KEY,
            seed=3,
            sent_after_ms=0,
            delivered_after_ms=1000,
            delivery_jitter_ms=0,
            reply_after_s=90,
            reply_rules=["^Hi=0.6:Yes please", "code=0.1:STOP"],
        )
    )
    n = 120
    with _variant_journal(emu, tmp_path / "ab.sqlite", n) as j:
        emu.advance(30)  # delivered, no reply yet
        before = emu.stats()["requests"]
        first = _track(j, emu)
        s = first.stats
        assert first.exit_code == 0 and s.reply_chats == n and s.replies_new == 0
        assert s.reply_requests == n  # one request per messaged chat
        assert emu.stats()["requests"] - before == s.polls + s.reply_requests
        emu.advance(120)  # the replies arrive
        before = emu.stats()["requests"]
        second = _track(j, emu, keep_text=True)
        assert second.stats.polls == 0 and second.stats.reply_requests == n
        assert emu.stats()["requests"] - before == n
        truth = {m["chat"]: [r["text"] for r in m["replies"]] for m in emu.messages()}
        answered = {chat for chat, texts in truth.items() if texts}
        stops = {chat for chat, texts in truth.items() if "STOP" in texts}
        assert second.stats.replies_new == sum(len(t) for t in truth.values())
        assert second.stats.reply_stops == len(stops)
        assert {r.text for r in j.replies()} <= {"Yes please", "STOP"}
        # A third pass finds nothing new (the cursor moved on).
        third = _track(j, emu)
        assert third.stats.replies_new == 0 and third.stats.reply_requests == n

        report = build_report(j, now=0)
    rows = {v["variant"]: v for v in report["replies"]["steps"]["hello"]["variants"]}
    replied = {
        v: sum(1 for i in range(v == "code", n, 2) if f"+1555300{i:04d}" in answered) for v in rows
    }
    assert {v: r["replied"] for v, r in rows.items()} == replied
    assert rows["code"]["opted_out"] == len(stops) and rows["short"]["opted_out"] == 0
    assert rows["short"]["delivered"] == rows["code"]["delivered"] == n // 2
    assert rows["short"]["median_time_to_reply_s"] == pytest.approx(91.0)  # delivery + 90 s
    [c] = report["replies"]["steps"]["hello"]["comparisons"]
    assert c["verdict"] == "b_higher" and c["ci95"][1] < 0  # code − short: clearly lower

    assert report["schema_version"] == 6
    text = render(report, "text")
    assert "hello / short: 60 delivered" in text and "short replies more" in text
    md = render(report, "markdown")
    assert "### Replies and opt-outs" in md and "| `hello` | code | 60 |" in md
    assert json.loads(render(report, "json"))["replies"] == report["replies"]
    page = render(report, "html")
    assert "Variants of <code>hello</code>" in page and "short replies more" in page
    assert "Yes please" not in page  # texts stay in the journal


def test_send_track_report_loop_with_the_library_and_automatic_replies(make_emulator, tmp_path):
    phones = [f"+1555400{i:04d}" for i in range(40)]
    (tmp_path / "people.csv").write_text("phone\n" + "\n".join(phones) + "\n")
    campaign = tmp_path / "c.yaml"
    campaign.write_text("""\
version: 1
id: reply-report
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi {{ recipient }}, 20% off this week"
""")
    emu = make_emulator(
        EmulatorConfig(
            api_key=KEY,
            seed=9,
            sent_after_ms=0,
            delivered_after_ms=500,
            delivery_jitter_ms=0,
            reply_after_s=60,
            reply_rate=0.5,
            reply_rules=["20% off=0.2:STOP"],
        )
    )
    api = dict(api_key=KEY, base_url=emu.base_url, rate="unlimited")
    state = tmp_path / "st"
    sent = runner.send(campaign, state_dir=state, **api)
    assert sent.exit_code == 0
    emu.advance(120)
    before = emu.stats()["requests"]
    tracked = runner.track(campaign, state_dir=state, first_poll=0.0, timeout=20.0, **api)
    assert tracked.exit_code == 0 and tracked.stats.reply_requests == len(phones)
    assert emu.stats()["requests"] - before == tracked.stats.polls + len(phones)
    stopped = {m["chat"] for m in emu.messages() if m["replies"]}
    assert 2 <= len(stopped) <= 20
    with Journal(sent.journal) as j:
        assert all(r.text is None and r.length == 4 and r.is_stop for r in j.replies())
        report = build_report(j)
    [row] = report["replies"]["steps"]["hello"]["variants"]
    assert (row["variant"], row["delivered"]) == (None, len(phones))
    assert row["replied"] == row["opted_out"] == len(stopped)
    assert report["replies"]["steps"]["hello"]["comparisons"] == []
    page = render(report, "html")
    assert "Replies to <code>hello</code>" in page and "Variants of" not in page


def test_track_cli_keeps_reply_text_only_when_asked_and_can_skip_replies(
    make_emulator, tmp_path, campaign_cli
):
    (tmp_path / "people.csv").write_text("phone\n+15554100001\n+15554100002\n")
    campaign = tmp_path / "c.yaml"
    campaign.write_text(
        "version: 1\nid: cli-replies\nrecipients: {file: people.csv, to: phone}\n"
        "steps:\n  - id: hello\n    text: Hi there\n"
    )
    emu = make_emulator(
        EmulatorConfig(api_key=KEY, reply_rate=1.0, reply_text="Sure, thanks", reply_after_s=10)
    )
    env = emu.env()
    state = str(tmp_path / "st")
    fast = ("--state", state, "--rate", "unlimited", "--no-progress")
    assert campaign_cli("send", str(campaign), "--yes", *fast, env=env).returncode == 0
    emu.advance(60)
    before = emu.stats()["requests"]
    skipped = campaign_cli("track", str(campaign), *fast, "--no-replies", env=env)
    assert skipped.returncode == 0 and "replies:" not in skipped.stdout
    assert emu.stats()["requests"] - before == 2  # the two status polls, no reply reading
    kept = campaign_cli("track", str(campaign), *fast, "--keep-reply-text", env=env)
    assert kept.returncode == 0, kept.stderr
    assert "replies: 2 new (0 stop words) from 2 chats, 2 requests" in kept.stdout
    with Journal(tmp_path / "st" / "cli-replies.sqlite") as j:
        assert [r.text for r in j.replies()] == ["Sure, thanks"] * 2


def test_a_chat_whose_replies_cannot_be_read_is_said_and_read_next_pass(make_emulator, tmp_path):
    emu = make_emulator(EmulatorConfig(api_key=KEY, seed=3, reply_rate=1.0, reply_after_s=5))
    with _variant_journal(emu, tmp_path / "ab.sqlite", 4) as j:
        emu.advance(30)
        options = dict(
            base_url=emu.base_url,
            concurrency=1,
            first_poll=0.0,
            timeout=20.0,
            max_attempts=1,
            replies=ReplyOptions(),
        )
        first = asyncio.run(
            Tracker(j, api_key=KEY, options=TrackOptions(**options), revision=1).run()
        )
        assert first.exit_code == 0 and first.stats.replies_new == 4
        emu.reply("+15553000000", "one more")
        # The first reply page of this pass fails: the first chat's (one at a time, in order).
        emu.configure(fault_script=["503"])
        second = asyncio.run(
            Tracker(j, api_key=KEY, options=TrackOptions(**options), revision=1).run()
        )
        assert second.stats.reply_failed == 1 and second.stop_reason == "retries_exhausted"
        assert second.exit_code == 3 and second.stats.replies_new == 0
        third = asyncio.run(
            Tracker(j, api_key=KEY, options=TrackOptions(**options), revision=1).run()
        )
        assert third.exit_code == 0 and third.stats.replies_new == 1
        assert len(list(j.replies())) == 5

"""The run report: masking, grouping of failures, per-step totals, the JSON document."""

from __future__ import annotations

import json

import pytest

from runner.audience.mask import mask_chat
from runner.contract import DeliveryStatus
from runner.errors import CampaignError
from runner.report.build import histogram, percentile
from runner.report.data import build_report, render
from runner.report.model import REPORT_SCHEMA_VERSION, Histogram
from runner.store.journal import (
    ACCEPTED,
    FAILED,
    PENDING,
    Attempt,
    DeliveryPoll,
    Journal,
    Mark,
    Outcome,
)


@pytest.mark.parametrize(
    "chat,masked",
    [
        ("+15551230001", "+1555•••0001"),
        ("ada@example.com", "a•••@example.com"),
        ("+15551230002,bob@example.com", "+1555•••0002,b•••@example.com"),
        ("grp_7f3a9c2e1b4d", "grp_7f3a9c2e1b4d"),
        ("+1234", "+1•••"),
    ],
)
def test_masking(chat, masked):
    assert mask_chat(chat) == masked


CHATS = [f"+1555123{i:04d}" for i in range(6)]


def populated(tmp_path):
    j = Journal(tmp_path / "c.sqlite")
    run_id = j.start_run(
        "c",
        1,
        {"rate_per_second": 5, "concurrency": 2},
        {
            "requests": 14,
            "messages": 16,
            "steps": {
                "hello": {"requests": 6, "messages": 6},
                "picks": {"requests": 6, "messages": 8},
                "extra": {"requests": 2, "messages": 2},
            },
        },
    )
    ops = []
    for i, chat in enumerate(CHATS):
        ops.append(Attempt(f"k:hello:{i}", chat, "hello", 1, i, 0, 1, "h", run_id, 1.0))
        ops.append(Attempt(f"k:picks:{i}", chat, "picks", 1, i, 1, 2, "h", run_id, 1.0))
    for i in range(4):
        ops.append(Outcome(f"k:hello:{i}", ACCEPTED, message_id=f"m{i}", http_status=202, now=2.0))
    ops.append(
        Outcome(
            "k:hello:4",
            FAILED,
            error_code="inbound_only_no_prior_inbound",
            error_message="inbound only",
            http_status=403,
            now=2.0,
        )
    )
    ops.append(Outcome("k:hello:5", PENDING, error_code="http_503", http_status=503, now=2.0))
    for i in range(3):
        ops.append(Outcome(f"k:picks:{i}", ACCEPTED, message_ids=["a", "b"], now=2.0))
    ops.append(Outcome("k:picks:3", FAILED, http_status=400, error_message="bad", now=2.0))
    ops.append(
        Mark(
            "k:picks:4",
            CHATS[4],
            "picks",
            1,
            4,
            1,
            2,
            status=FAILED,
            error_code="previous_step_failed",
            error_message="not sent",
            content_hash="h",
            run_id=run_id,
            now=2.0,
        )
    )
    # k:picks:5 stays "sending": the process died before its outcome.
    # A row of an older revision must not count.
    ops.append(Attempt("old", CHATS[0], "hello", 0, 0, 0, 1, "h", None, 0.5))
    j.apply(ops)
    j.finish_run(
        run_id,
        {"http_requests": 20, "duration_s": 4.0, "accepted": 7, "already_accepted": 1},
        3,
        "retries_exhausted",
    )
    return j


def test_report_totals_steps_and_failures(tmp_path):
    with populated(tmp_path) as j:
        rep = build_report(j, now=0.0)
    assert rep["schema_version"] == REPORT_SCHEMA_VERSION
    assert rep["generated_at"] == "1970-01-01T00:00:00Z"
    assert rep["totals"] == {
        "requests": 14,
        "messages": 16,
        "accepted": 7,
        "failed": 3,
        "pending": 4,
        "scheduled": 0,
        "expired": 0,
        "suppressed_recipients": 0,
        "messages_accepted": 10,
    }
    hello = rep["steps"]["hello"]
    assert {
        k: hello[k]
        for k in ("requests", "messages", "accepted", "failed", "pending", "messages_accepted")
    } == {
        "requests": 6,
        "messages": 6,
        "accepted": 4,
        "failed": 1,
        "pending": 1,
        "messages_accepted": 4,
    }
    assert rep["steps"]["extra"]["pending"] == 2  # planned, never tried
    reasons = {g["reason"]: g for g in rep["failures"]}
    assert set(reasons) == {"inbound_only_no_prior_inbound", "http_400", "previous_step_failed"}
    assert reasons["inbound_only_no_prior_inbound"]["http_status"] == 403
    assert reasons["inbound_only_no_prior_inbound"]["examples"] == ["+1555•••0004"]
    assert reasons["http_400"]["steps"] == {"picks": 1}
    assert {p["reason"]: p["count"] for p in rep["pending"]} == {
        "http_503": 1,
        "unconfirmed": 1,
        "not_attempted": 2,
    }
    # 20 requests span 19 intervals: a run limited to 5/s never reads above 5/s.
    assert rep["run"]["achieved_rate"] == 4.75
    assert rep["run"]["stop_reason"] == "retries_exhausted"
    assert rep["run"]["accepted_this_run"] == 6


def test_report_formats_mask_by_default(tmp_path):
    with populated(tmp_path) as j:
        rep = build_report(j)
        shown = build_report(j, show_recipients=True)
    for fmt in ("text", "markdown", "json"):
        out = render(rep, fmt)
        assert "+15551230004" not in out and "+1555•••0004" in out
        assert CHATS[4] in render(shown, fmt)
    doc = json.loads(render(rep, "json"))
    assert doc["recipients_masked"] is True
    assert "| `hello` | 6 | 4 | 1 | 1 |" in render(rep, "markdown")
    text = render(rep, "text")
    assert "inbound_only_no_prior_inbound (HTTP 403): inbound only" in text
    assert "4.75 requests/s (limited to 5/s)" in text


def test_report_without_a_run_is_a_user_error(tmp_path):
    with Journal(tmp_path / "c.sqlite") as j, pytest.raises(CampaignError, match="no run"):
        build_report(j)


# -- schema 2: delivery -----------------------------------------------------------------------
def poll(mid, status, protocol, sent=None, delivered=None, error=None):
    final = status in ("delivered", "failed", "cancelled", DeliveryStatus.NOT_FOUND)
    return DeliveryPoll(
        mid,
        status=status,
        protocol=protocol,
        time_sent=sent,
        time_delivered=delivered,
        error=error,
        now=5.0,
        next_poll_at=None if final else 6.0,
        final=final,
    )


def tracked(tmp_path):
    j = populated(tmp_path)
    # Accepted: hello m0..m3 (4 messages), picks 3 requests x ["a","b"]: ids are shared in the
    # fixture, so give them distinct ids first.
    j.apply(
        [
            Outcome(f"k:picks:{i}", ACCEPTED, message_ids=[f"p{i}a", f"p{i}b"], now=2.0)
            for i in range(3)
        ]
    )
    assert j.seed_deliveries(1) == 10
    j.apply(
        [
            poll("m0", "delivered", "imessage", 1000, 1400),
            poll("m1", "delivered", "sms", 1000, 3000),
            poll("m2", "failed", "unknown", 1000, error="Recipient is not reachable"),
            poll("m3", "queued", "pending", 1000),
            poll("p0a", "delivered", "imessage", 1000, 1200),
            poll("p0b", "delivered", "rcs", 1000, 11000),
            poll("p1a", "failed", "sms", 1000, error="Message could not be delivered"),
            poll("p1b", "failed", "sms", 1000, error="Message could not be delivered"),
            poll("p2a", DeliveryStatus.NOT_FOUND, None, error="HTTP 404"),
            # p2b never polled
        ]
    )
    return j


def test_delivery_counts_protocols_times_and_errors(tmp_path):
    with tracked(tmp_path) as j:
        rep = build_report(j, now=0.0)
    d = rep["delivery"]
    assert d["tracked"] is True
    assert d["messages"] == {
        "planned": 16,
        "accepted": 10,
        "delivered": 4,
        "failed": 3,
        "cancelled": 0,
        "in_flight": 2,
        "never_accepted": 6,
        "untracked": 1,
        "outside_plan": 0,
    }
    assert d["protocols"] == {"imessage": 2, "sms": 3, "rcs": 1, "unknown": 1, "pending": 2}
    t = d["time_to_delivery_s"]
    assert (t["count"], t["p50"], t["p95"], t["max"]) == (4, 0.4, 10.0, 10.0)
    assert sum(t["histogram"]["counts"]) == 4
    assert [(g["error"], g["count"]) for g in d["failures"]] == [
        ("Message could not be delivered", 2),
        ("Recipient is not reachable", 1),
    ]
    assert d["failures"][0]["examples"] == ["+1555•••0001"]
    picks = rep["steps"]["picks"]
    assert (
        picks["delivered"],
        picks["failed_delivery"],
        picks["in_flight"],
        picks["never_accepted"],
        picks["untracked"],
    ) == (2, 2, 1, 2, 1)
    assert rep["steps"]["extra"]["never_accepted"] == 2


def test_delivery_in_every_format(tmp_path):
    with tracked(tmp_path) as j:
        rep = build_report(j)
    text = render(rep, "text")
    assert "4 delivered, 3 failed after acceptance, 2 in flight, 6 never accepted" in text
    assert "protocols: iMessage 2, SMS 3, RCS 1, unknown 1, not yet known 2" in text
    assert "p50 0.40 s, p95 10.0 s" in text
    md = render(rep, "markdown")
    assert "| `picks` | 8 | 2 | 2 | 1 | 2 |" in md
    assert "| Message could not be delivered | 2 | +1555•••0001 |" in md
    doc = json.loads(render(rep, "json"))
    assert doc["schema_version"] == 6 and doc["delivery"]["messages"]["delivered"] == 4
    for fmt in ("text", "markdown", "json"):
        assert "+15551230001" not in render(rep, fmt)


def test_untracked_report_says_so(tmp_path):
    with populated(tmp_path) as j:
        rep = build_report(j)
    assert rep["delivery"]["tracked"] is False
    assert rep["delivery"]["messages"]["in_flight"] == rep["totals"]["messages_accepted"]
    assert "not tracked yet" in render(rep, "text")
    assert "campaign track FILE" in render(rep, "markdown")


@pytest.mark.parametrize(
    "values,q,expected",
    [
        ([], 50, None),
        ([1.0], 95, 1.0),
        ([1.0, 2.0], 50, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([float(i) for i in range(1, 101)], 95, 95.0),
        ([float(i) for i in range(1, 21)], 95, 19.0),
    ],
)
def test_nearest_rank_percentile(values, q, expected):
    assert percentile(values, q) == expected


def test_histogram_bins_are_round_and_hold_every_value():
    h = histogram([0.1, 0.2, 0.25, 1.1, 2.3])
    assert h.bin_s == 0.2 and sum(h.counts) == 5 and len(h.counts) == 12
    assert histogram([]) == Histogram(None, ())


def test_report_counts_scheduled_expired_and_suppressed(tmp_path):
    from runner.store.journal import EXPIRED, SCHEDULED, Mark

    with Journal.for_campaign(tmp_path, "sched") as j:
        run = j.start_run(
            "sched",
            1,
            {},
            {
                "requests": 4,
                "messages": 4,
                "suppressed": 2,
                "steps": {"a": {"requests": 2, "messages": 2}, "b": {"requests": 2, "messages": 2}},
            },
        )
        j.apply(
            [
                Mark(
                    "k1",
                    "+15551230001",
                    "a",
                    1,
                    0,
                    0,
                    1,
                    status=SCHEDULED,
                    error_code="window",
                    error_message="due at X",
                    content_hash="h",
                    run_id=run,
                    now=1.0,
                ),
                Mark(
                    "k2",
                    "+15551230001",
                    "b",
                    1,
                    0,
                    1,
                    1,
                    status=SCHEDULED,
                    error_code="previous",
                    error_message="waits",
                    content_hash="h",
                    run_id=run,
                    now=1.0,
                ),
                Mark(
                    "k3",
                    "+15551230002",
                    "a",
                    1,
                    1,
                    0,
                    1,
                    status=EXPIRED,
                    error_code="expired",
                    error_message="late",
                    content_hash="h",
                    run_id=run,
                    now=1.0,
                ),
            ]
        )
        j.finish_run(run, {"next_due": 86400.0}, 4, None)
        rep = build_report(j, now=0.0)
    t = rep["totals"]
    assert (t["scheduled"], t["expired"], t["pending"], t["suppressed_recipients"]) == (2, 1, 1, 2)
    assert rep["steps"]["a"]["scheduled"] == 1 and rep["steps"]["a"]["expired"] == 1
    assert rep["run"]["next_due"] == "1970-01-02T00:00:00Z"
    text = render(rep, "text")
    assert (
        "2 scheduled, 1 expired, 2 recipients suppressed (never sent); next due 1970-01-02T00:00:00Z"
        in text
    )


def test_every_stop_reason_has_its_words_in_the_one_table():
    from runner.contract import CAP_CODES
    from runner.report.words import STOP_TEXT, stop_text

    send_reasons = {
        None,
        "interrupted",
        "unauthorized",
        "retries_exhausted",
        "unfinished",
        *CAP_CODES,
    }
    track_reasons = {None, "interrupted", "unauthorized", "retries_exhausted", "timeout"}
    assert {r for c, r in STOP_TEXT if c == "send"} == send_reasons
    assert {r for c, r in STOP_TEXT if c == "track"} == track_reasons
    assert stop_text("send", "martians") == "stopped: martians"  # a new reason still reads

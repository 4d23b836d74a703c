"""The run report: masking, grouping of failures, per-step totals, the JSON document."""

from __future__ import annotations

import json

import pytest

from runner.errors import CampaignError
from runner.journal import ACCEPTED, FAILED, PENDING, Journal, attempt_op, mark_op, outcome_op
from runner.mask import mask_chat
from runner.report import REPORT_SCHEMA_VERSION, build_report, render


@pytest.mark.parametrize("chat,masked", [
    ("+15551230001", "+1555•••0001"),
    ("ada@example.com", "a•••@example.com"),
    ("+15551230002,bob@example.com", "+1555•••0002,b•••@example.com"),
    ("grp_7f3a9c2e1b4d", "grp_7f3a9c2e1b4d"),
    ("+1234", "+1•••"),
])
def test_masking(chat, masked):
    assert mask_chat(chat) == masked


CHATS = [f"+1555123{i:04d}" for i in range(6)]


def populated(tmp_path):
    j = Journal(tmp_path / "c.sqlite")
    run_id = j.start_run("c", 1, {"rate_per_second": 5, "concurrency": 2},
                         {"requests": 14, "messages": 16,
                          "steps": {"hello": {"requests": 6, "messages": 6},
                                    "picks": {"requests": 6, "messages": 8},
                                    "extra": {"requests": 2, "messages": 2}}})
    ops = []
    for i, chat in enumerate(CHATS):
        ops.append(attempt_op(f"k:hello:{i}", chat, "hello", 1, i, 0, 1, "h", run_id, 1.0))
        ops.append(attempt_op(f"k:picks:{i}", chat, "picks", 1, i, 1, 2, "h", run_id, 1.0))
    for i in range(4):
        ops.append(outcome_op(f"k:hello:{i}", ACCEPTED, message_id=f"m{i}", http_status=202,
                              now=2.0))
    ops.append(outcome_op("k:hello:4", FAILED, error_code="inbound_only_no_prior_inbound",
                          error_message="inbound only", http_status=403, now=2.0))
    ops.append(outcome_op("k:hello:5", PENDING, error_code="http_503", http_status=503,
                          now=2.0))
    for i in range(3):
        ops.append(outcome_op(f"k:picks:{i}", ACCEPTED, message_ids=["a", "b"], now=2.0))
    ops.append(outcome_op("k:picks:3", FAILED, http_status=400, error_message="bad", now=2.0))
    ops.append(mark_op("k:picks:4", CHATS[4], "picks", 1, 4, 1, 2, FAILED,
                       "previous_step_failed", "not sent", "h", run_id, 2.0))
    # k:picks:5 stays "sending": the process died before its outcome.
    # A row of an older revision must not count.
    ops.append(attempt_op("old", CHATS[0], "hello", 0, 0, 0, 1, "h", None, 0.5))
    j.apply(ops)
    j.finish_run(run_id, {"http_requests": 20, "duration_s": 4.0, "accepted": 7,
                          "already_accepted": 1}, 3, "retries_exhausted")
    return j


def test_report_totals_steps_and_failures(tmp_path):
    with populated(tmp_path) as j:
        rep = build_report(j, now=0.0)
    assert rep["schema_version"] == REPORT_SCHEMA_VERSION
    assert rep["generated_at"] == "1970-01-01T00:00:00Z"
    assert rep["totals"] == {"requests": 14, "messages": 16, "accepted": 7, "failed": 3,
                             "pending": 4, "messages_accepted": 10}
    assert rep["steps"]["hello"] == {"requests": 6, "messages": 6, "accepted": 4, "failed": 1,
                                     "pending": 1, "messages_accepted": 4}
    assert rep["steps"]["extra"]["pending"] == 2  # planned, never tried
    reasons = {g["reason"]: g for g in rep["failures"]}
    assert set(reasons) == {"inbound_only_no_prior_inbound", "http_400", "previous_step_failed"}
    assert reasons["inbound_only_no_prior_inbound"]["http_status"] == 403
    assert reasons["inbound_only_no_prior_inbound"]["examples"] == ["+1555•••0004"]
    assert reasons["http_400"]["steps"] == {"picks": 1}
    assert {p["reason"]: p["count"] for p in rep["pending"]} == {
        "http_503": 1, "unconfirmed": 1, "not_attempted": 2}
    assert rep["run"]["achieved_rate"] == 5.0
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
    assert "5.0 requests/s" in text


def test_report_without_a_run_is_a_user_error(tmp_path):
    with Journal(tmp_path / "c.sqlite") as j, pytest.raises(CampaignError, match="no run"):
        build_report(j)

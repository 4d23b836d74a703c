"""The report's JSON validates against schemas/report.schema.json: reports of real journals in
every state (finished with variants and read replies, a consent ledger with opt-outs and holds,
waiting, stopped, running, replies never read, rows outside the plan), through the library and
through `campaign report --format json`; and the reporters are looked up by name."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import runner
from runner.consent.standing import EventKind
from runner.errors import CampaignError
from runner.planning.keys import idempotency_key
from runner.report.build import build
from runner.report.model import Report, RunStateName
from runner.report.reporters import NAMES, REPORTERS, render, reporter
from runner.report.reporters.json import report_json
from runner.store.backend import open_journal
from runner.store.journal import (
    ACCEPTED,
    FAILED,
    SCHEDULED,
    Attempt,
    DeliveryPoll,
    DeliverySeed,
    Journal,
    Mark,
    Outcome,
    Reply,
    ReplyPassEnd,
)
from runner.store.ledger import ConsentEvent, Ledger
from runner.store.state import open_state

SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "schemas" / "report.schema.json").read_text(
        encoding="utf-8"
    )
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
CHATS = [f"+1555820{i:04d}" for i in range(40)]
T0 = 1_780_000_000.0


def _valid(doc: object) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)
    ]
    assert errors == []


def _send(
    j: Journal,
    run_id: int,
    i: int,
    chat: str,
    step: str,
    step_index: int,
    variant: str | None,
    status: str,
    *,
    delivered: bool | None = True,
    key: str | None = None,
) -> None:
    key = key or f"k-{step}-{i}"
    at = T0 + i + step_index * 3600
    ops: list = [Attempt(key, chat, step, 1, i, step_index, 1, "h", run_id, at, variant=variant)]
    if status == ACCEPTED:
        mid = f"m-{key}"
        ops += [
            Outcome(key, ACCEPTED, message_id=mid, now=at),
            DeliverySeed(mid, key, 0, chat, 1, step, at),
        ]
        if delivered is not None:
            ops.append(
                DeliveryPoll(
                    mid,
                    status="delivered" if delivered else "failed",
                    protocol="imessage" if i % 2 else "sms",
                    time_sent=int(at * 1000),
                    time_delivered=int(at * 1000) + 900,
                    error=None if delivered else "carrier said <no>",
                    now=at + 60,
                    next_poll_at=None,
                    final=True,
                )
            )
    elif status == FAILED:
        ops.append(
            Outcome(
                key,
                FAILED,
                error_code="invalid_recipient",
                http_status=400,
                error_message="not a phone",
                now=at,
            )
        )
    j.apply(ops)


def finished_with_variants(
    tmp_path: Path, *, read: bool = True, journal: Journal | None = None
) -> Journal:
    j = journal if journal is not None else Journal(tmp_path / "j.sqlite")
    run_id = j.start_run(
        "camp",
        1,
        {"rate_per_second": 5},
        {
            "steps": {
                "hello": {"requests": 40, "messages": 40},
                "nudge": {"requests": 10, "messages": 10},
            }
        },
    )
    for i, chat in enumerate(CHATS):
        status = FAILED if i == 39 else ACCEPTED
        _send(j, run_id, i, chat, "hello", 0, "a" if i % 2 else "b", status, delivered=i % 7 != 0)
    for i, chat in enumerate(CHATS[:10]):
        _send(j, run_id, i, chat, "nudge", 1, None, ACCEPTED)
    if read:
        pass_id = j.start_reply_pass(len(CHATS), T0 + 9000)
        j.apply(
            [
                *(
                    Reply(
                        f"r{i}", CHATS[i], int((T0 + i + 60) * 1000), 4, i % 6 == 0, now=T0 + 9000
                    )
                    for i in range(0, 30, 3)
                ),
                ReplyPassEnd(
                    pass_id,
                    chats_read=len(CHATS),
                    chats_failed=0,
                    requests=40,
                    replies_new=10,
                    stop_reason=None,
                    now=T0 + 9001,
                ),
            ]
        )
    j.finish_run(run_id, {"http_requests": 50, "duration_s": 12.5, "accepted": 49}, 0, None)
    return j


def a_ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.record(
        [
            ConsentEvent(
                CHATS[0],
                EventKind.OPTED_OUT,
                int((T0 + 100) * 1000),
                word="STOP",
                campaign="camp",
                step="hello",
            ),
            ConsentEvent(
                CHATS[3],
                EventKind.HELD,
                int((T0 + 100) * 1000),
                word="remove me?",
                excerpt="please <b>remove</b> me?",
                campaign="camp",
                step="hello",
            ),
            ConsentEvent("+15559999999", EventKind.OPTED_OUT, int(T0 * 1000), word="STOP"),
        ]
    )
    return ledger


def waiting(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "w.sqlite")
    run_id = j.start_run("camp", 1, {}, {"steps": {"hello": {"requests": 4, "messages": 4}}})
    for i in range(2):
        _send(j, run_id, i, CHATS[i], "hello", 0, None, ACCEPTED, delivered=None)
    j.apply(
        [
            Mark(
                f"k-hello-{i}",
                CHATS[i],
                "hello",
                1,
                i,
                0,
                1,
                status=SCHEDULED,
                error_code="law" if i == 2 else None,
                error_message=None,
                content_hash="h",
                run_id=run_id,
                now=T0,
            )
            for i in (2, 3)
        ]
    )
    j.finish_run(run_id, {"http_requests": 2, "duration_s": 0.5, "next_due": T0 + 86400}, 0, None)
    return j


def stopped(tmp_path: Path, *, finish: bool = True) -> Journal:
    j = Journal(tmp_path / "s.sqlite")
    run_id = j.start_run("camp", 1, {}, {"steps": {"hello": {"requests": 5, "messages": 5}}})
    _send(j, run_id, 0, CHATS[0], "hello", 0, None, ACCEPTED, delivered=None)
    j.apply(
        [
            Attempt("k-hello-1", CHATS[1], "hello", 1, 1, 0, 1, "h", run_id, T0),
            Outcome(
                "k-hello-1",
                "pending",
                error_code="network_error",
                error_message="connect to api: refused",
                now=T0,
            ),
        ]
    )
    if finish:
        j.finish_run(run_id, {"http_requests": 2, "duration_s": 1.0}, 3, "retries_exhausted")
    return j


CASES = {
    "finished, variants, replies read, consent": lambda p: build(
        finished_with_variants(p), ledger=a_ledger(p), now=T0
    ),
    "replies never read": lambda p: build(finished_with_variants(p, read=False), now=T0),
    "waiting on the schedule": lambda p: build(waiting(p), now=T0),
    "stopped early": lambda p: build(stopped(p), now=T0),
    "running now": lambda p: build(stopped(p, finish=False), running=4242, now=T0),
    "shown unmasked": lambda p: build(finished_with_variants(p), show_recipients=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_state_of_a_report_validates_against_the_schema(tmp_path, case):
    model = CASES[case](tmp_path)
    _valid(report_json(model))
    _valid(json.loads(render(model, "json")))
    for name in NAMES:  # every reporter renders the one model
        assert render(model, name)


def test_the_cases_cover_what_they_say(tmp_path):
    """The states above are the states they are named for (else the schema test proves less)."""
    states = {case: CASES[case](tmp_path / str(i)) for i, case in enumerate(CASES)}
    full = states["finished, variants, replies read, consent"]
    assert full.state.name is RunStateName.FAILED and full.replies.read
    assert [v.variant for v in full.replies.steps[0].variants] == ["a", "b"]
    assert full.replies.steps[0].comparisons and full.failures and full.delivery.failures
    assert full.consent is not None and full.consent.opted_out == 1 and len(full.consent.held) == 1
    assert full.delivery.time_to_delivery_s.p95 == 0.9
    unread = states["replies never read"].replies
    assert not unread.read and unread.steps[0].variants[0].replied is None
    assert states["waiting on the schedule"].state.name is RunStateName.WAITING
    assert states["waiting on the schedule"].totals.held_by_law == 1
    assert states["stopped early"].state.name is RunStateName.STOPPED
    assert [p.most for p in states["stopped early"].pending if p.reason == "network_error"] == [
        "connect to api: refused"
    ]
    assert states["running now"].state.pid == 4242


def test_a_document_the_schema_refuses_is_refused(tmp_path):
    """The schema is strict enough to catch a drift of the JSON reporter."""
    model = CASES["waiting on the schedule"](tmp_path)
    doc = report_json(model)
    doc["totals"]["surprise"] = 1
    assert not VALIDATOR.is_valid(doc)
    doc = report_json(model)
    doc["state"]["name"] = "paused"
    assert not VALIDATOR.is_valid(doc)
    doc = report_json(model)
    doc["generated_at"] = "yesterday"
    assert not VALIDATOR.is_valid(doc)


def test_campaign_report_format_json_validates(tmp_path, campaign_cli):
    """Through the CLI: a campaign file, a journal in its state (a request the file still
    plans and one it no longer does), `campaign report --format json`."""
    (tmp_path / "people.csv").write_text("phone\n" + "\n".join(CHATS[:3]) + "\n")
    camp = tmp_path / "c.yaml"
    camp.write_text(
        'version: 1\nid: camp\nsender: {from_number: "+15551234567"}\n'
        "recipients: {file: people.csv, to: phone}\n"
        "steps:\n  - id: hello\n    text: Hello\n"
    )
    state = tmp_path / "state"
    j = Journal.for_campaign(state, "camp")
    run_id = j.start_run("camp", 1, {}, {"steps": {"hello": {"requests": 3, "messages": 3}}})
    _send(
        j,
        run_id,
        0,
        CHATS[0],
        "hello",
        0,
        None,
        ACCEPTED,
        key=idempotency_key("camp", 1, "hello", CHATS[0]),
    )
    _send(j, run_id, 5, CHATS[5], "hello", 0, None, ACCEPTED)  # a recipient removed since
    j.finish_run(run_id, {"http_requests": 2, "duration_s": 0.2}, 0, None)
    j.close()
    done = campaign_cli("report", str(camp), "--state", str(state), "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    _valid(doc)
    assert doc["outside_plan"]["requests"] == 1 and doc["totals"]["requests"] == 3
    assert doc["consent"] is None or doc["consent"]["opted_out"] == 0
    # The library says the same as the CLI.
    model = runner.report(camp, state=state)
    assert isinstance(model, Report) and report_json(model)["totals"] == doc["totals"]
    assert runner.render(model, "json") == runner.render(model, "json")


def test_reporters_are_found_by_name_and_an_unknown_name_is_a_user_error():
    assert set(NAMES) == {"text", "markdown", "json", "html"} == set(REPORTERS)
    assert reporter("json") is reporter("json")
    with pytest.raises(CampaignError) as err:
        reporter("pdf")
    assert "text, json, markdown, html" in str(err.value.problems[0].hint)


def test_both_state_backends_report_the_same(tmp_path, state):
    """The report's SQL (counts, the chat-ordered walk of the replies) is the journal's, in
    SQLite and in PostgreSQL: the same rows give the same document, byte for byte."""
    reference = report_json(build(finished_with_variants(tmp_path / "ref"), now=T0))
    with open_journal(open_state(state), "camp") as j:
        finished_with_variants(tmp_path, journal=j)
        with j.snapshot("report"):
            doc = report_json(build(j, now=T0))
    _valid(doc)
    for d in (doc, reference):  # the run's clock times are the runner's now (time.time())
        d["run"].update(started_at=None, ended_at=None)
    assert json.dumps(doc) == json.dumps(reference)


def test_replies_of_every_chat_are_found_whatever_its_spelling(tmp_path, state):
    """The reply figures walk the requests and the replies, both ordered by chat, side by side:
    the database's order must be Python's (code points) for every kind of chat id, or a
    chat's replies would be passed over."""
    chats = [
        "+15558300001",
        "+15558300001,+15558300002",
        "Zed@example.com",
        "ann@example.com",
        "émile@example.com",
        "grp_A1",
        "grp_a1",
        "ünïcode@example.com",
        "~tilde@example.com",
    ]
    with open_journal(open_state(state), "camp") as j:
        run_id = j.start_run(
            "camp", 1, {}, {"steps": {"hello": {"requests": len(chats), "messages": len(chats)}}}
        )
        for i, chat in enumerate(reversed(chats)):
            _send(j, run_id, i, chat, "hello", 0, None, ACCEPTED)
        pass_id = j.start_reply_pass(len(chats), T0 + 9000)
        j.apply(
            [
                *(
                    Reply(f"r{i}", chat, int((T0 + 500) * 1000), 2, False, now=T0 + 9000)
                    for i, chat in enumerate(chats)
                ),
                ReplyPassEnd(
                    pass_id,
                    chats_read=len(chats),
                    chats_failed=0,
                    requests=9,
                    replies_new=9,
                    stop_reason=None,
                    now=T0 + 9001,
                ),
            ]
        )
        j.finish_run(run_id, {"http_requests": 9, "duration_s": 1.0}, 0, None)
        with j.snapshot("report"):
            model = build(j, now=T0)
    row = model.replies.steps[0].variants[0]
    assert (row.delivered, row.replied, model.replies.replies_stored) == (9, 9, 9)


class _NoRowLists(Journal):
    """A journal whose row-by-row readers fail: the report must stream its few columns
    (``report_*``) instead of making a Python object of every request and delivery."""

    def entries(self, revision=None):  # noqa: ANN001, ANN201
        raise AssertionError("the report read every request as an Entry")

    def deliveries(self, revision=None, *, open_only=False):  # noqa: ANN001, ANN201
        raise AssertionError("the report read every delivery as a Delivery")


def test_the_report_streams_the_journal_instead_of_reading_every_row(tmp_path):
    finished_with_variants(tmp_path).close()
    with _NoRowLists(tmp_path / "j.sqlite") as j, j.snapshot("report"):
        model = build(j, now=T0)
    assert model.totals.requests == 50 and model.delivery.messages.delivered > 0

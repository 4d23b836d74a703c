"""Records that cross module boundaries are built by name: a row for a planned request reads the
request's fields by name (swapping two of them would not be caught by types: most are ints)."""

from __future__ import annotations

from runner.planning.request import PlannedRequest
from runner.states import RequestStatus
from runner.store.journal import Attempt, Mark

REQ = PlannedRequest(
    recipient="+15551230001",
    step="hello",
    key="k1",
    method="POST",
    path="/chats/%2B15551230001/messages",
    body={"text": "Hi"},
    messages=2,
    recipient_index=7,
    step_index=3,
    variant="b",
)


def test_a_row_of_a_planned_request_takes_each_field_by_name():
    attempt = Attempt.of(REQ, 5, content_hash="h", run_id=9, now=1.5)
    assert attempt == Attempt("k1", "+15551230001", "hello", 5, 7, 3, 2, "h", 9, 1.5, variant="b")
    mark = Mark.of(
        REQ,
        5,
        status=RequestStatus.SCHEDULED,
        error_code="window",
        error_message="due at 09:00",
        content_hash="h",
        run_id=None,
        now=2.0,
    )
    assert (
        mark.key,
        mark.chat,
        mark.step,
        mark.revision,
        mark.recipient_index,
        mark.step_index,
        mark.messages,
        mark.variant,
    ) == ("k1", "+15551230001", "hello", 5, 7, 3, 2, "b")
    assert (mark.status, mark.error_code, mark.now) == (RequestStatus.SCHEDULED, "window", 2.0)

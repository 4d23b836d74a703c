"""The classifier and retry loop that send, track, reach and optouts share."""

from __future__ import annotations

import asyncio
import random

import pytest

from runner.contract import CAPABILITIES, INBOUND_MESSAGES, MESSAGE_STATUS, SEND_MESSAGE
from runner.http.classify import Disposition, Reading, disposition, read_exchange, read_response
from runner.http.client import ApiOptions, Exchange
from runner.http.retry import retrying

OK, GONE, FAILED, RETRY, UNAUTH, CAP = (
    Disposition.OK,
    Disposition.GONE,
    Disposition.FAILED,
    Disposition.RETRY,
    Disposition.UNAUTHORIZED,
    Disposition.CAP,
)


@pytest.mark.parametrize(
    "status,code,send,poll,caps,inbound",
    [
        (202, None, OK, OK, OK, OK),
        (401, None, UNAUTH, UNAUTH, UNAUTH, UNAUTH),
        (400, None, FAILED, GONE, GONE, FAILED),
        (403, None, FAILED, RETRY, RETRY, FAILED),
        (404, None, FAILED, GONE, GONE, GONE),
        (410, None, FAILED, GONE, RETRY, FAILED),
        (422, None, FAILED, RETRY, GONE, FAILED),
        (429, None, RETRY, RETRY, RETRY, RETRY),
        (429, "outbound_limit_reached", CAP, RETRY, RETRY, RETRY),
        (408, None, RETRY, RETRY, RETRY, RETRY),
        (302, None, RETRY, RETRY, RETRY, RETRY),
        (503, None, RETRY, RETRY, RETRY, RETRY),
    ],
)
def test_each_endpoint_reads_statuses_by_its_own_facts(status, code, send, poll, caps, inbound):
    got = [
        disposition(status, code, e)
        for e in (SEND_MESSAGE, MESSAGE_STATUS, CAPABILITIES, INBOUND_MESSAGES)
    ]
    assert got == [send, poll, caps, inbound]


def test_a_reading_keeps_code_message_and_retry_after_only_when_retrying():
    r = read_response(
        503, b'{"code":"busy","message":"try later"}', {"retry-after": "4"}, 0.0, SEND_MESSAGE
    )
    assert (r.disposition, r.code, r.message, r.retry_after, r.why) == (
        RETRY,
        "busy",
        "try later",
        4.0,
        "try later",
    )
    r = read_response(404, b"not json", {"retry-after": "4"}, 0.0, MESSAGE_STATUS)
    assert (r.disposition, r.payload, r.retry_after, r.why) == (GONE, None, None, "HTTP 404")


def test_no_answer_is_a_retry_carrying_the_redacted_error():
    r = read_exchange(
        Exchange(None, error="ConnectError: refused", error_kind="ConnectError"), SEND_MESSAGE, 0.0
    )
    assert (r.disposition, r.http_status, r.why, r.error_kind) == (
        RETRY,
        None,
        "ConnectError: refused",
        "ConnectError",
    )


def run_loop(answers: list[Reading], options: ApiOptions) -> tuple[Reading, bool, list, list]:
    tries: list[int] = []
    waits: list[float] = []

    async def try_once(attempt: int) -> Reading:
        tries.append(attempt)
        return answers[min(attempt, len(answers)) - 1]

    async def wait(seconds: float) -> None:
        waits.append(seconds)

    retried = asyncio.run(retrying(try_once, options, random.Random(3), wait))
    last, gave_up = retried.verdict, retried.gave_up
    return last, gave_up, tries, waits


def reading(kind: Disposition, retry_after: float | None = None) -> Reading:
    return Reading(kind, 503 if kind is RETRY else 200, {}, retry_after=retry_after)


def test_the_loop_retries_until_an_answer_that_is_not_a_retry():
    last, gave_up, tries, waits = run_loop(
        [reading(RETRY, 2.0), reading(RETRY), reading(OK)], ApiOptions(max_attempts=5)
    )
    assert (last.disposition, gave_up, tries) == (OK, False, [1, 2, 3])
    assert len(waits) == 2 and waits[0] >= 2.0


def test_the_loop_gives_up_after_max_attempts_or_a_retry_after_past_the_limit():
    last, gave_up, tries, waits = run_loop([reading(RETRY)], ApiOptions(max_attempts=3))
    assert (last.disposition, gave_up, tries, len(waits)) == (RETRY, True, [1, 2, 3], 2)
    _, gave_up, tries, waits = run_loop(
        [reading(RETRY, 121.0)], ApiOptions(max_attempts=5, max_retry_after=120.0)
    )
    assert (gave_up, tries, waits) == (True, [1], [])

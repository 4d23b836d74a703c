"""The executor against httpx.MockTransport: every response rule, resume, stops, rate ceiling."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from runner.contract import SEND_MESSAGE
from runner.http.classify import parse_retry_after, read_response
from runner.http.ratelimit import RateLimiter
from runner.http.retry import backoff_delay
from runner.planning.request import PlannedRequest
from runner.run.send import (
    Executor,
    SendOptions,
    install_signal_handlers,
    verdict_of,
)
from runner.store.journal import ACCEPTED, FAILED, PENDING, SENDING, Attempt, Journal, Outcome

KEY = "bl_test_SECRET_key_123"
BASE = "http://api.test/v2/api"


def make_plan(n: int, steps=(("hello", None), ("nudge", "hello")), campaign="c") -> list:
    plan = []
    for r in range(n):
        chat = f"+1555123{r:04d}"
        for s, (step, reply) in enumerate(steps):
            plan.append(
                PlannedRequest(
                    recipient=chat,
                    step=step,
                    key=f"{campaign}:1:{step}:{chat}:0",
                    method="POST",
                    path=f"/chats/%2B1555123{r:04d}/messages",
                    body={"text": f"{step} {r}"},
                    messages=1,
                    reply_to_step=reply,
                    recipient_index=r,
                    step_index=s,
                )
            )
    return plan


class FakeApi:
    """A tiny idempotent API: scripted responses per key first, then 202 / 200 replay."""

    def __init__(self, script=None, default=None):
        self.script = defaultdict(list, script or {})
        self.default = default  # callable(request) -> Response | None
        self.calls: list[tuple[str, dict, httpx.Headers]] = []
        self.accepted: dict[str, str] = {}
        self.fresh = Counter()  # key -> number of 202s (must never exceed 1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.headers["idempotency-key"]
        body = json.loads(request.content)
        self.calls.append((key, body, request.headers))
        if self.script[key]:
            item = self.script[key].pop(0)
            if isinstance(item, Exception):
                raise item
            return item
        if self.default is not None:
            resp = self.default(request)
            if resp is not None:
                return resp
        if key in self.accepted:
            return httpx.Response(200, json={"message_id": self.accepted[key], "status": "queued"})
        self.accepted[key] = f"msg_{len(self.accepted)}"
        self.fresh[key] += 1
        return httpx.Response(202, json={"message_id": self.accepted[key], "status": "queued"})

    def keys(self):
        return [c[0] for c in self.calls]


def run(journal, plan, api, *, total=None, stop_after=None, **opts):
    options = SendOptions(
        base_url=BASE, backoff_base=0.001, backoff_cap=0.002, **{"concurrency": 4, **opts}
    )
    ex = Executor(journal, api_key=KEY, options=options, transport=httpx.MockTransport(api))
    if stop_after is not None:
        inner = api.__call__

        def stopping(request):
            if len(api.calls) + 1 == stop_after:
                ex.request_stop()
            return inner(request)

        ex.transport = httpx.MockTransport(stopping)
    return asyncio.run(ex.run(plan, total=len(plan) if total is None else total))


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "c.sqlite")
    yield j
    j.close()


def rows(journal):
    return {e.key: e for e in journal.entries()}


# -- classify: the response rules ------------------------------------------------------------
def v(status, body=None, headers=None):
    raw = json.dumps(body).encode() if body is not None else b""
    return verdict_of(
        read_response(status, raw, httpx.Headers(headers or {}), 1_000_000.0, SEND_MESSAGE)
    )


def test_classify_accepted_and_replay():
    a = v(202, {"message_id": "msg_1", "status": "queued", "group_id": "grp_1"})
    assert (a.kind, a.message_id, a.group_id) == ("accepted", "msg_1", "grp_1")
    assert v(200, {"message_id": "msg_1"}).kind == "accepted"
    batch = v(202, {"message_ids": ["msg_1", "msg_2"], "count": 2})
    assert batch.message_ids == ["msg_1", "msg_2"]


def test_classify_2xx_failed_is_failed_for_good():
    f = v(202, {"message_id": "msg_1", "status": "failed"})
    assert (f.kind, f.code) == ("failed", "rejected_before_dispatch")


@pytest.mark.parametrize(
    "status,code",
    [
        (400, "reply_target_expired"),
        (404, None),
        (403, "inbound_only_no_prior_inbound"),
        (400, None),
    ],
)
def test_classify_4xx_failed_with_code(status, code):
    body = {"error": "ApiError", "message": "nope", "status": status}
    if code:
        body["code"] = code
    f = v(status, body)
    assert f.kind == "failed"
    assert f.code == (code or f"http_{status}")
    assert f.message == "nope"


def test_classify_401_caps_and_transients():
    assert v(401, {"message": "bad key"}).kind == "unauthorized"
    cap = v(429, {"code": "outbound_limit_reached", "limit": 100, "current": 100})
    assert (cap.kind, cap.details) == ("cap", {"limit": 100, "current": 100})
    assert v(429, {"code": "new_conversation_limit_reached"}).kind == "cap"
    for status in (429, 500, 502, 503, 504, 408):
        assert v(status, {"message": "busy"}).kind == "retry"
    assert v(503, None, {"Retry-After": "7"}).retry_after == 7.0
    assert v(500, None).kind == "retry"  # no body at all


def test_parse_retry_after_seconds_and_http_date():
    now = 1_700_000_000.0
    assert parse_retry_after("3", now) == 3.0
    date = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert 29.0 <= parse_retry_after(date, now) <= 30.0
    assert parse_retry_after("garbage", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_full_jitter_bounds():
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # full jitter spans the range, not a fixed delay


# -- runs ------------------------------------------------------------------------------------
def test_all_accepted_with_headers_and_reply_to(journal):
    plan = make_plan(5)
    api = FakeApi()
    result = run(journal, plan, api)
    assert result.exit_code == 0
    assert result.stats.accepted == 10 and result.stats.failed == 0
    got = rows(journal)
    assert all(e.status == ACCEPTED and e.message_id for e in got.values())
    for key, body, headers in api.calls:
        assert headers["authorization"] == f"Bearer {KEY}"
        assert headers["content-type"] == "application/json"
        assert headers["idempotency-key"] == key
        if ":nudge:" in key:
            parent = got[key.replace(":nudge:", ":hello:")]
            assert body["reply_to"] == {"message_id": parent.message_id}
        else:
            assert "reply_to" not in body
    # Steps of one recipient in order: hello before nudge for every chat.
    order = api.keys()
    for r in plan[::2]:
        assert order.index(r.key) < order.index(r.key.replace(":hello:", ":nudge:"))


def test_replay_200_counts_as_accepted(journal):
    plan = make_plan(1, steps=(("hello", None),))
    api = FakeApi({plan[0].key: [httpx.Response(200, json={"message_id": "msg_old"})]})
    result = run(journal, plan, api)
    assert result.exit_code == 0
    assert rows(journal)[plan[0].key].message_id == "msg_old"


def test_4xx_failures_are_final_and_block_later_steps(journal):
    plan = make_plan(3)
    bad = plan[0].key
    api = FakeApi(
        {
            bad: [
                httpx.Response(
                    403, json={"code": "inbound_only_no_prior_inbound", "message": "inbound only"}
                )
            ],
            plan[3].key: [
                httpx.Response(400, json={"code": "reply_target_expired", "message": "too old"})
            ],
        }
    )
    result = run(journal, plan, api)
    assert result.exit_code == 1
    got = rows(journal)
    assert (got[bad].status, got[bad].error_code, got[bad].http_status) == (
        FAILED,
        "inbound_only_no_prior_inbound",
        403,
    )
    assert got[bad].error_message == "inbound only"
    assert got[plan[1].key].error_code == "previous_step_failed"
    assert plan[1].key not in api.keys()  # never sent
    assert got[plan[3].key].error_code == "reply_target_expired"
    assert result.stats.failed == 3 and result.stats.accepted == 3
    # A failed-for-good request with unchanged content is not resent by a later run.
    api2 = FakeApi()
    again = run(journal, plan, api2)
    assert again.exit_code == 1 and api2.calls == []


def test_changed_content_of_a_failed_request_is_resent(journal):
    plan = make_plan(1, steps=(("hello", None),))
    run(journal, plan, FakeApi({plan[0].key: [httpx.Response(400, json={"message": "bad"})]}))
    fixed = [
        PlannedRequest(
            **{**{f: getattr(plan[0], f) for f in plan[0].__slots__}, "body": {"text": "fixed"}}
        )
    ]
    api = FakeApi()
    assert run(journal, fixed, api).exit_code == 0
    assert api.keys() == [plan[0].key]


def test_401_stops_at_once_nobody_failed(journal):
    plan = make_plan(20)
    api = FakeApi(default=lambda r: httpx.Response(401, json={"message": "invalid key"}))
    result = run(journal, plan, api, concurrency=1)
    assert result.exit_code == 3 and result.stop_reason == "unauthorized"
    assert len(api.calls) == 1
    assert result.stats.failed == 0 and result.stats.pending == 40
    rows = list(journal.entries())
    assert {e.status for e in rows} == {PENDING}
    # One request left; the workers that stood ready (their attempt committed, waiting for the
    # one slot) never sent theirs and say so.
    sent = [e for e in rows if e.http_status == 401]
    assert len(sent) == 1
    assert all(
        e.error_code == "interrupted" and e.http_status is None for e in rows if e not in sent
    )


def test_outbound_cap_stops_and_later_run_resumes(journal):
    plan = make_plan(10)
    capped = {"n": 0}

    def cap_after_five(request):
        capped["n"] += 1
        if capped["n"] > 5:
            return httpx.Response(
                429, json={"code": "outbound_limit_reached", "limit": 5, "current": 5}
            )
        return None

    api = FakeApi(default=cap_after_five)
    result = run(journal, plan, api, concurrency=1)
    assert result.exit_code == 3 and result.stop_reason == "outbound_limit_reached"
    assert result.cap["limit"] == 5
    assert result.stats.accepted == 5 and result.stats.failed == 0
    assert len(api.calls) == 6
    api2 = FakeApi()
    api2.accepted = dict(api.accepted)
    second = run(journal, plan, api2)
    assert second.exit_code == 0 and second.stats.already == 5
    assert not set(api2.keys()) & set(api.accepted)  # accepted ones are never resent
    assert all(n == 1 for n in (api.fresh + api2.fresh).values())


def test_new_conversation_cap_keeps_existing_conversations(journal):
    plan = make_plan(6)
    # Recipients 0-2 got step hello in an earlier run: they are existing conversations.
    first = FakeApi()
    run(journal, [r for r in plan if r.step == "hello" and r.recipient_index < 3], first, total=3)
    api = FakeApi(
        default=lambda r: (
            httpx.Response(
                429, json={"code": "new_conversation_limit_reached", "cap": 3, "current": 3}
            )
            if ":hello:" in r.headers["idempotency-key"]
            else None
        )
    )
    api.accepted = dict(first.accepted)
    result = run(journal, plan, api, concurrency=1)
    assert result.exit_code == 3 and result.stop_reason == "new_conversation_limit_reached"
    got = rows(journal)
    for r in plan:
        if r.recipient_index < 3:
            assert got[r.key].status == ACCEPTED  # nudge still went to existing chats
    hellos_sent = [k for k in api.keys() if ":hello:" in k]
    assert len(hellos_sent) == 1  # one new conversation tried, then no more
    assert result.stats.pending == 6


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"message": "oops"}),
        httpx.Response(503, json={"message": "No active number available"}),
        httpx.Response(429, json={"message": "slow down"}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("dropped"),
    ],
)
def test_transient_failures_retry_with_the_same_key(journal, failure):
    plan = make_plan(2)
    api = FakeApi({plan[0].key: [failure, failure]})
    result = run(journal, plan, api)
    assert result.exit_code == 0
    assert api.keys().count(plan[0].key) == 3
    assert rows(journal)[plan[0].key].attempts == 3


def test_retries_exhausted_leave_pending_and_later_run_sends(journal):
    plan = make_plan(2)
    api = FakeApi({plan[0].key: [httpx.Response(503)] * 3})
    result = run(journal, plan, api, max_attempts=3)
    assert result.exit_code == 3 and result.stop_reason == "retries_exhausted"
    got = rows(journal)
    assert got[plan[0].key].status == PENDING and got[plan[0].key].http_status == 503
    assert plan[1].key not in got  # the reply waits for its parent
    assert result.stats.pending == 2 and result.stats.accepted == 2
    api2 = FakeApi()
    api2.accepted = dict(api.accepted)
    assert run(journal, plan, api2).exit_code == 0
    assert sorted(api2.keys()) == sorted([plan[0].key, plan[1].key])


def test_retry_after_is_honoured(journal):
    plan = make_plan(1, steps=(("hello", None),))
    api = FakeApi({plan[0].key: [httpx.Response(503, headers={"Retry-After": "2"})]})
    delays = []

    async def fake_sleep(d):
        delays.append(d)

    ex = Executor(
        journal,
        api_key=KEY,
        transport=httpx.MockTransport(api),
        sleep=fake_sleep,
        options=SendOptions(base_url=BASE, backoff_base=0.001, backoff_cap=0.002),
    )
    assert asyncio.run(ex.run(plan)).exit_code == 0
    assert delays and delays[0] >= 2.0


def test_resume_after_crash_resends_only_unconfirmed(journal):
    plan = make_plan(3, steps=(("hello", None),))
    # Simulate a crash: one accepted, one attempt written without outcome, one never started.
    journal.apply(
        [
            Attempt(plan[0].key, plan[0].recipient, "hello", 1, 0, 0, 1, "h", 1, 1.0),
            Outcome(plan[0].key, ACCEPTED, message_id="msg_a", http_status=202, now=2.0),
            Attempt(plan[1].key, plan[1].recipient, "hello", 1, 1, 0, 1, "h", 1, 1.0),
        ]
    )
    assert rows(journal)[plan[1].key].status == SENDING
    api = FakeApi()
    result = run(journal, plan, api)
    assert result.exit_code == 0 and result.stats.already == 1
    assert sorted(api.keys()) == sorted([plan[1].key, plan[2].key])
    assert rows(journal)[plan[1].key].attempts == 2


def test_reply_to_resolved_from_the_journal_of_an_earlier_run(journal):
    plan = make_plan(2)
    first = FakeApi()
    run(journal, [r for r in plan if r.step == "hello"], first, total=2)
    api = FakeApi()
    assert run(journal, plan, api).exit_code == 0
    got = rows(journal)
    for key, body, _ in api.calls:
        assert body["reply_to"]["message_id"] == got[key.replace(":nudge:", ":hello:")].message_id


def test_reply_parent_without_message_id_fails_that_step(journal):
    plan = make_plan(1)
    api = FakeApi({plan[0].key: [httpx.Response(202, json={"status": "queued"})]})
    result = run(journal, plan, api)
    assert result.exit_code == 1
    assert rows(journal)[plan[1].key].error_code == "reply_parent_missing"


def test_request_stop_is_graceful_and_resumable(journal):
    plan = make_plan(30)
    api = FakeApi()
    result = run(journal, plan, api, stop_after=5, concurrency=3)
    assert result.exit_code == 3 and result.stop_reason == "interrupted"
    got = rows(journal)
    # Every request that left was journalled with its outcome; none is left "sending".
    assert all(e.status in (ACCEPTED, PENDING) for e in got.values())
    assert {k for k, e in got.items() if e.status == ACCEPTED} == set(api.accepted)
    assert len(api.calls) < 10
    api2 = FakeApi()
    api2.accepted = dict(api.accepted)
    assert run(journal, plan, api2).exit_code == 0
    assert all(n == 1 for n in (api.fresh + api2.fresh).values())
    assert set(api.fresh) | set(api2.fresh) == {r.key for r in plan}


def test_sigint_handler_stops_the_run(journal):
    plan = make_plan(40, steps=(("hello", None),))
    api = FakeApi()

    async def main():
        ex = Executor(
            journal,
            api_key=KEY,
            transport=httpx.MockTransport(slow),
            options=SendOptions(base_url=BASE, concurrency=2),
        )
        remove = install_signal_handlers(ex)
        try:
            return await ex.run(plan, total=len(plan))
        finally:
            remove()

    killed = []

    async def slow(request):
        if len(api.calls) >= 3 and not killed:
            killed.append(True)
            os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.001)
        return api(request)

    result = asyncio.run(main())
    assert result.stop_reason == "interrupted" and result.exit_code == 3
    assert 3 <= len(api.calls) < 40
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_api_key_never_reaches_the_journal(journal, tmp_path):
    plan = make_plan(3)
    api = FakeApi(default=lambda r: httpx.Response(400, json={"message": f"bad {KEY}"}))
    run(journal, plan, api)
    journal.close()
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes()


def test_rate_ceiling_with_a_fake_clock():
    now = [0.0]
    limiter = RateLimiter(50, clock=lambda: now[0])
    rng = random.Random(3)
    sends = []
    for _ in range(2000):
        now[0] += rng.choice([0.0, 0.0, 0.001, 0.05, 0.3])  # bursts, trickles and idle gaps
        sends.append(now[0] + limiter.reserve())
    sends.sort()
    j = 0
    for i, t in enumerate(sends):  # any window [t, t+1) starting at a send holds <= 50
        while j < len(sends) and sends[j] < t + 1.0:
            j += 1
        assert j - i <= 50
    # Idle time does not build up a burst: after a pause the next two are still spaced.
    assert all(b - a >= 1 / 50 for a, b in zip(sends, sends[1:], strict=False))


def test_executor_respects_the_rate(journal):
    plan = make_plan(25, steps=(("hello", None),))
    times = []
    api = FakeApi()

    class Recording(RateLimiter):
        async def acquire(self):
            await super().acquire()
            times.append(asyncio.get_running_loop().time())

    ex = Executor(
        journal,
        api_key=KEY,
        transport=httpx.MockTransport(api),
        limiter=Recording(100),
        options=SendOptions(base_url=BASE, concurrency=8),
    )
    asyncio.run(ex.run(plan))
    assert len(times) == 25
    # 25 requests at 100/s cannot leave in less than 24 intervals.
    assert times[-1] - times[0] >= 24 / 100 * 0.99


def test_send_options_campaign_defaults_and_cli_overrides(monkeypatch):
    from runner.errors import CampaignError
    from runner.run.session import resolve_options

    monkeypatch.setenv("BLOOIO_BASE_URL", "http://127.0.0.1:9/v2/api")
    camp = {"rate_per_second": 5, "concurrency": 3}
    o = resolve_options(camp, base_url=None, rate=None, concurrency=None, timeout=9, max_attempts=2)
    assert (o.base_url, o.rate_per_second, o.concurrency, o.timeout, o.max_attempts) == (
        "http://127.0.0.1:9/v2/api",
        5.0,
        3,
        9,
        2,
    )
    o = resolve_options(
        camp, base_url="https://x.test/v2/api", rate=50, concurrency=32, timeout=30, max_attempts=6
    )
    assert (o.base_url, o.rate_per_second, o.concurrency) == ("https://x.test/v2/api", 50, 32)
    monkeypatch.delenv("BLOOIO_BASE_URL")
    assert (
        resolve_options(
            {}, base_url=None, rate=None, concurrency=None, timeout=30, max_attempts=6
        ).base_url
        == "https://api.blooio.com/v2/api"
    )
    with pytest.raises(CampaignError):
        resolve_options(
            {}, base_url="ftp://x", rate=None, concurrency=None, timeout=30, max_attempts=6
        )


def test_past_not_after_an_unconfirmed_attempt_is_not_called_expired(journal):
    """A request tried before a crash may have gone out: past not_after it is neither resent
    nor reported as 'expired, never sent'; one never tried is expired."""
    from runner.campaign.schedule import Readiness
    from runner.states import Wait
    from runner.store.journal import EXPIRED

    plan = make_plan(2, steps=(("hello", None),))
    tried = plan[0]
    journal.apply([Attempt(tried.key, tried.recipient, tried.step, 1, 0, 0, 1, "h", None, 1.0)])
    api = FakeApi()
    options = SendOptions(base_url=BASE, concurrency=2)
    ex = Executor(
        journal,
        api_key=KEY,
        options=options,
        transport=httpx.MockTransport(api),
        gate=lambda req, prev, has_prev, now: Readiness(Wait.EXPIRED),
    )
    result = asyncio.run(ex.run(plan, total=len(plan)))
    assert api.calls == []  # nothing is sent past not_after
    rows = {e.key: (e.status, e.error_code) for e in journal.entries()}
    assert rows[tried.key] == (FAILED, "unconfirmed_past_not_after")
    assert rows[plan[1].key] == (EXPIRED, "expired")
    assert (result.stats.failed, result.stats.expired, result.exit_code) == (1, 1, 1)


def test_a_journal_that_cannot_be_written_stops_the_run_instead_of_hanging(tmp_path):
    import sqlite3

    class FullDisk(Journal):
        calls = 0

        def apply(self, ops):
            FullDisk.calls += 1
            if FullDisk.calls >= 3:
                raise sqlite3.OperationalError("database or disk is full")
            return super().apply(ops)

    j = FullDisk(tmp_path / "full.sqlite")
    try:
        options = SendOptions(base_url=BASE, concurrency=2)
        ex = Executor(j, api_key=KEY, options=options, transport=httpx.MockTransport(FakeApi()))
        plan = make_plan(200)

        async def bounded():
            return await asyncio.wait_for(ex.run(plan, total=len(plan)), timeout=20)

        with pytest.raises(sqlite3.OperationalError):
            asyncio.run(bounded())
    finally:
        j.close()


@pytest.mark.parametrize(
    "value,ok",
    [
        ("bl_live_abc123", True),
        ("", False),
        ("bl live", False),
        ("bl_live_abc’", False),
        ("bl\x01x", False),
    ],
)
def test_api_key_from_env_is_checked_without_echoing_it(monkeypatch, value, ok):
    from runner.errors import CampaignError
    from runner.http.client import api_key_from_env

    monkeypatch.setenv("BLOOIO_API_KEY", value)
    if ok:
        assert api_key_from_env("send") == value
    else:
        with pytest.raises(CampaignError) as err:
            api_key_from_env("send")
        assert value.strip() == "" or value not in str(err.value)


@pytest.mark.parametrize(
    "value,ok",
    [
        ("http://127.0.0.1:8765/v2/api", True),
        ("https://api.blooio.com/v2/api", True),
        ("ftp://x", False),
        ("http://[::1", False),
        ("http://", False),
        ("http://h/v2?x=1", False),
    ],
)
def test_base_url_is_checked_before_anything_is_sent(monkeypatch, value, ok):
    from runner.errors import CampaignError
    from runner.http.client import base_url_from

    monkeypatch.delenv("BLOOIO_BASE_URL", raising=False)
    if ok:
        assert base_url_from(value) == value
    else:
        with pytest.raises(CampaignError):
            base_url_from(value)


def test_retry_delay_honours_retry_after_and_gives_up_past_the_limit():
    import random

    from runner.http.client import ApiOptions
    from runner.http.retry import retry_delay

    opts = ApiOptions(backoff_base=0.5, backoff_cap=30.0, max_retry_after=120.0, max_attempts=8)
    rng = random.Random(1)
    for attempt in range(1, 8):
        assert 0 <= retry_delay(attempt, None, opts, rng) <= min(30.0, 0.5 * 2 ** (attempt - 1))
    assert retry_delay(1, 7.5, opts, rng) >= 7.5
    assert retry_delay(1, 121.0, opts, rng) is None
    assert retry_delay(8, None, opts, rng) is None  # the last try: nothing follows it

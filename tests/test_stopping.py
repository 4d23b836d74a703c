"""Issue 16.10: stopping is prompt. Workers waiting for a rate slot are released by a stop,
`--rate` is finite and positive, a second Ctrl-C exits 3, and `reach` exits 3 when no check
got an answer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runner.errors import CampaignError
from runner.http.ratelimit import RateLimiter
from runner.planning.request import PlannedRequest
from runner.run.send import Executor, SendOptions
from runner.run.session import resolve_options
from runner.store.journal import PENDING, Journal

pytest_plugins = ["emulator_fixtures"]

KEY = "bl_stop_test_key"


@pytest.mark.parametrize("rate", [2.0, 1e-300])
def test_interrupt_releases_every_waiter_at_once(rate):
    async def go() -> float:
        limiter = RateLimiter(rate)
        waiters = [asyncio.create_task(limiter.acquire()) for _ in range(64)]
        await asyncio.sleep(0.05)
        assert sum(w.done() for w in waiters) == 1  # only the first slot is free
        started = time.monotonic()
        limiter.interrupt()
        await asyncio.wait_for(asyncio.gather(*waiters), 1.0)
        await asyncio.wait_for(limiter.acquire(), 0.1)  # and later callers pass too
        return time.monotonic() - started

    assert asyncio.run(go()) < 0.5


def plan(n: int) -> list[PlannedRequest]:
    return [
        PlannedRequest(
            recipient=f"+1555123{i:04d}",
            step="hello",
            key=f"c:1:hello:{i}:0",
            method="POST",
            path=f"/chats/%2B1555123{i:04d}/messages",
            body={"text": "hi"},
            messages=1,
            reply_to_step=None,
            recipient_index=i,
            step_index=0,
        )
        for i in range(n)
    ]


def test_a_stop_does_not_wait_out_the_rate_limiter(tmp_path):
    calls: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["idempotency-key"])
        return httpx.Response(202, json={"message_id": f"m{len(calls)}", "status": "queued"})

    async def go(journal: Journal) -> tuple[float, object]:
        ex = Executor(
            journal,
            api_key=KEY,
            transport=httpx.MockTransport(api),
            options=SendOptions(
                base_url="http://api.test/v2/api", rate_per_second=2, concurrency=64
            ),
        )
        run = asyncio.create_task(ex.run(plan(64), total=64))
        await asyncio.sleep(0.3)  # 64 workers now hold slots up to 32 s ahead
        started = time.monotonic()
        ex.request_stop()
        result = await asyncio.wait_for(run, 5)
        return time.monotonic() - started, result

    with Journal(tmp_path / "c.sqlite") as journal:
        elapsed, result = asyncio.run(go(journal))
        statuses = [e.status for e in journal.entries()]
    assert elapsed < 1.0
    assert result.stats.accepted == len(calls) == 1 and result.exit_code == 3
    assert statuses.count(PENDING) == len(statuses) - 1  # every waiter left resumable


@pytest.mark.parametrize("rate", ["nan", "inf", "-inf", "0", "-1"])
def test_the_rate_must_be_finite_and_positive(rate, campaign_cli, tmp_path):
    with pytest.raises(ValueError, match="finite and positive"):
        RateLimiter(float(rate))
    out = campaign_cli(
        "optouts", str(tmp_path / "c.yaml"), "--rate", rate, env={"BLOOIO_API_KEY": KEY}
    )
    assert out.returncode in (1, 2) and "Traceback" not in out.stderr  # 2: click's own range
    if rate == "nan":  # click's range lets nan through: refused by the runner itself
        assert out.returncode == 1 and "positive number" in out.stderr
    with pytest.raises(CampaignError, match="positive"):
        resolve_options({}, base_url="http://127.0.0.1:9/v2/api", rate=float(rate), concurrency=1)
    with pytest.raises(CampaignError, match="positive"):
        resolve_options(
            {"rate_per_second": float(rate)},
            base_url="http://127.0.0.1:9/v2/api",
            rate=None,
            concurrency=1,
        )


CAMPAIGN = """\
version: 1
id: stopping
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi"
"""


def write_campaign(folder: Path, n: int) -> Path:
    rows = "\n".join(f"+1555300{i:04d}" for i in range(n))
    (folder / "people.csv").write_text(f"phone\n{rows}\n", encoding="utf-8")
    path = folder / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    return path


def start_send(emu, campaign: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": emu.api_key}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "send",
            str(campaign),
            "--yes",
            "--state",
            str(campaign.parent / "state"),
            "--no-progress",
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_requests(emu, n: int) -> None:
    deadline = time.monotonic() + 30
    while emu.stats()["send_requests"] < n and time.monotonic() < deadline:
        time.sleep(0.02)


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_sigterm_stops_a_rate_limited_send_within_a_second(emulator, tmp_path):
    proc = start_send(emulator, write_campaign(tmp_path, 64), "--rate", "2", "--concurrency", "64")
    wait_for_requests(emulator, 1)
    time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc)
    assert time.monotonic() - started < 2.0  # it took 32 s before: every slot was waited out
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    assert emulator.stats()["send_requests"] <= 2


def test_a_second_ctrl_c_stops_at_once_with_exit_3(make_emulator, tmp_path):
    emu = make_emulator(latency_ms=20_000)  # the first Ctrl-C would wait for these answers
    proc = start_send(emu, write_campaign(tmp_path, 4), "--concurrency", "4")
    wait_for_requests(emu, 1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = finish(proc)
    assert proc.returncode == 3, err
    assert "Traceback" not in err and "Ctrl-C twice" in err


def test_reach_exits_3_when_no_check_got_an_answer(campaign_cli, tmp_path):
    campaign = write_campaign(tmp_path, 2)
    # A port nothing listens on: every check runs out of tries.
    out = campaign_cli(
        "reach",
        str(campaign),
        "--state",
        str(tmp_path / "st"),
        "--backoff-base",
        "0",
        "--request-timeout",
        "1",
        env={"BLOOIO_API_KEY": KEY, "BLOOIO_BASE_URL": "http://127.0.0.1:9/v2/api"},
    )
    assert out.returncode == 3, out.stderr
    assert "no check got an answer" in out.stderr

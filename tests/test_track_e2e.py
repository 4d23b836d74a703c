"""`send`, `track` and `report` end to end against the emulator.

The emulator's own counters (GET /__emulator/stats: delivered, failed, by_protocol) are the
ground truth; the report must match them exactly, also after `track` was SIGKILLed mid-way
(a real subprocess; the other commands run in-process). The emulator's clock is moved by hand,
so deliveries happen when a test says, not after real waits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.emulator import EmulatorConfig, ManualClock, run_in_thread

KEY = "bl_track_e2e_SECRET_77aa"


CLI = [sys.executable, "-m", "runner"]
# --rate unlimited: the default pace (10/s) is for real accounts, not the local emulator.
FAST = [
    "--first-poll",
    "0.05",
    "--poll-cap",
    "0.4",
    "--backoff-base",
    "0.02",
    "--backoff-cap",
    "0.2",
    "--no-progress",
    "--rate",
    "unlimited",
]
CONFIG = EmulatorConfig(
    api_key=KEY,
    seed=4,
    p_delivery_failed=0.15,
    p_unreachable=0.05,
    share_imessage=0.6,
    share_sms=0.3,
    share_rcs=0.1,
    delivered_after_ms=150,
    delivery_jitter_ms=300,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(time.time())


@pytest.fixture
def emulator(clock):
    with run_in_thread(dataclasses.replace(CONFIG, clock=clock)) as emu:
        yield emu


def write_campaign(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"+1555400{i:04d}" for i in range(n))
    (folder / "people.csv").write_text(f"phone\n{rows}\n")
    path = folder / "campaign.yaml"
    path.write_text("""\
version: 1
id: trk
sender: {from_number: "+15551234567"}
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi {{ recipient }}"
    effect: confetti
  - id: pair
    text: ["one", "two"]
send: {concurrency: 16}
""")
    return path


@pytest.fixture
def run(campaign_cli):
    """``run(emu, *args, key=KEY)``: `campaign *args` in this process against ``emu``."""

    def invoke(emu, *args: str, key: str = KEY) -> subprocess.CompletedProcess:
        return campaign_cli(*args, env={"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": key})

    return invoke


def send_args(campaign: Path, state: Path, *extra: str) -> list[str]:
    return [
        "send",
        str(campaign),
        "--yes",
        "--state",
        str(state),
        "--no-progress",
        "--rate",
        "unlimited",
        *extra,
    ]


def report_json(run, emu, campaign: Path, state: Path) -> dict:
    r = run(emu, "report", str(campaign), "--state", str(state), "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def assert_matches_truth(doc: dict, emu) -> None:
    stats = emu.stats()
    d = doc["delivery"]
    assert doc["schema_version"] == 6
    assert d["messages"]["delivered"] == stats["delivered"]
    assert d["messages"]["failed"] == stats["failed"]
    assert d["messages"]["in_flight"] == 0
    assert {k: v for k, v in d["protocols"].items() if v} == stats["by_protocol"]
    assert sum(s["delivered"] for s in doc["steps"].values()) == stats["delivered"]


def test_send_track_report_equal_the_emulators_ground_truth(emulator, clock, run, tmp_path):
    campaign = write_campaign(tmp_path / "c", 120)
    state = tmp_path / "state"
    assert run(emulator, *send_args(campaign, state)).returncode == 0
    before = report_json(run, emulator, campaign, state)
    assert before["delivery"]["tracked"] is False
    clock.advance(1)  # every message has settled (150 ms + up to 300 ms)
    r = run(emulator, "track", str(campaign), "--state", str(state), *FAST)
    assert r.returncode == 0, r.stderr
    assert "360 final, 0 in flight" in r.stdout
    doc = report_json(run, emulator, campaign, state)
    assert_matches_truth(doc, emulator)
    stats = emulator.stats()
    assert stats["failed"] > 0 and len(stats["by_protocol"]) >= 3  # the test means something
    t = doc["delivery"]["time_to_delivery_s"]
    assert t["count"] == stats["delivered"] and 0 < t["p50"] <= t["p95"] <= t["max"]
    errors = {g["error"]: g["count"] for g in doc["delivery"]["failures"]}
    assert sum(errors.values()) == stats["failed"]
    md = run(emulator, "report", str(campaign), "--state", str(state), "--format", "markdown")
    assert (
        "### Delivery" in md.stdout and f"| **total** | 360 | {stats['delivered']:,} |" in md.stdout
    )
    text = run(emulator, "report", str(campaign), "--state", str(state)).stdout
    assert f"{stats['delivered']:,} delivered" in text and "+1555400" not in text
    # Everything final: another run asks nothing and still exits 0.
    again = run(emulator, "track", str(campaign), "--state", str(state), *FAST)
    assert again.returncode == 0 and "this run 0 status requests" in again.stdout


def _final_rows(state: Path) -> int:
    try:
        db = sqlite3.connect(state / "trk.sqlite", timeout=1)
        try:
            return db.execute("SELECT count(*) FROM deliveries WHERE final = 1").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_track_killed_mid_way_then_rerun_ends_with_the_same_counts(tmp_path, run):
    clock = ManualClock(time.time())
    config = EmulatorConfig(
        api_key=KEY,
        seed=9,
        p_delivery_failed=0.2,
        share_imessage=0.5,
        share_sms=0.4,
        share_rcs=0.1,
        delivered_after_ms=300,
        delivery_jitter_ms=3000,
        clock=clock,
    )
    with run_in_thread(config) as emu:
        campaign = write_campaign(tmp_path / "c", 150)
        state = tmp_path / "state"
        assert run(emu, *send_args(campaign, state)).returncode == 0
        env = {**os.environ, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}
        proc = subprocess.Popen(
            [*CLI, "track", str(campaign), "--state", str(state), *FAST],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 30
            sent_requests = emu.stats()["requests"]
            while emu.stats()["requests"] == sent_requests and time.monotonic() < deadline:
                time.sleep(0.01)  # until the tracker polls
            # Then the emulator's time runs about four times faster than the tracker's, so
            # deliveries keep arriving (and being written) when the kill lands.
            while _final_rows(state) < 50 and time.monotonic() < deadline:
                clock.advance(0.02)
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.communicate(timeout=30)
        killed_at = _final_rows(state)
        assert 50 <= killed_at < 450, "the kill should land mid-way"
        clock.advance(10)  # every message has settled (300 ms + up to 3 s)
        r = run(emu, "track", str(campaign), "--state", str(state), *FAST)
        assert r.returncode == 0, r.stderr
        assert_matches_truth(report_json(run, emu, campaign, state), emu)


def test_a_refused_key_stops_track_with_exit_3(emulator, run, tmp_path):
    campaign = write_campaign(tmp_path / "c", 10)
    state = tmp_path / "state"
    assert run(emulator, *send_args(campaign, state)).returncode == 0
    r = run(
        emulator, "track", str(campaign), "--state", str(state), *FAST, key="bl_revoked_key_999"
    )
    assert r.returncode == 3
    assert "401" in r.stdout and "bl_revoked_key_999" not in r.stdout + r.stderr
    assert _final_rows(state) == 0
    assert report_json(run, emulator, campaign, state)["delivery"]["messages"]["in_flight"] == 30


def test_track_needs_the_key_and_a_journal(emulator, run, tmp_path):
    campaign = write_campaign(tmp_path / "c", 3)
    r = run(emulator, "track", str(campaign), "--state", str(tmp_path / "none"), *FAST)
    assert r.returncode == 1 and "no journal" in r.stderr and "Traceback" not in r.stderr
    r = run(emulator, "track", str(campaign), "--state", str(tmp_path / "none"), *FAST, key="")
    assert r.returncode == 1 and "BLOOIO_API_KEY" in r.stderr


def test_send_with_track_tracks_after_sending(run, tmp_path):
    # One command sends then tracks: the emulator's clock is the wall clock here, with
    # deliveries that settle quickly.
    config = dataclasses.replace(
        CONFIG, sent_after_ms=10, delivered_after_ms=20, delivery_jitter_ms=60
    )
    with run_in_thread(config) as emu:
        campaign = write_campaign(tmp_path / "c", 30)
        state = tmp_path / "state"
        r = run(emu, *send_args(campaign, state, "--track", "--report", str(tmp_path / "r.json")))
        assert r.returncode == 0, r.stderr
        assert "tracked 90 messages: 90 final" in r.stderr
        assert "Delivery of 90 messages" in r.stdout
        assert_matches_truth(json.loads((tmp_path / "r.json").read_text()), emu)

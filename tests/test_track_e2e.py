"""`send`, `track` and `report` end to end: the real CLI in subprocesses against the emulator.

The emulator's own counters (GET /__emulator/stats: delivered, failed, by_protocol) are the
ground truth; the report must match them exactly, also after `track` was SIGKILLed mid-way.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.emulator import EmulatorConfig, run_in_thread

KEY = "bl_track_e2e_SECRET_77aa"


CLI = [sys.executable, "-m", "runner"]
FAST = ["--first-poll", "0.05", "--poll-cap", "0.4", "--backoff-base", "0.02",
        "--backoff-cap", "0.2", "--no-progress"]


@pytest.fixture
def emulator():
    config = EmulatorConfig(api_key=KEY, seed=4, p_delivery_failed=0.15, p_unreachable=0.05,
                            share_imessage=0.6, share_sms=0.3, share_rcs=0.1,
                            delivered_after_ms=150, delivery_jitter_ms=300)
    with run_in_thread(config) as emu:
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


def run(emu, *args: str, key: str = KEY, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": key}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def send(emu, campaign: Path, state: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    return run(emu, "send", str(campaign), "--yes", "--state", str(state), "--no-progress",
               *extra, **kw)


def report_json(emu, campaign: Path, state: Path) -> dict:
    r = run(emu, "report", str(campaign), "--state", str(state), "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def assert_matches_truth(doc: dict, emu) -> None:
    stats = emu.stats()
    d = doc["delivery"]
    assert doc["schema_version"] == 2
    assert d["messages"]["delivered"] == stats["delivered"]
    assert d["messages"]["failed"] == stats["failed"]
    assert d["messages"]["in_flight"] == 0
    assert {k: v for k, v in d["protocols"].items() if v} == stats["by_protocol"]
    assert sum(s["delivered"] for s in doc["steps"].values()) == stats["delivered"]


def test_send_track_report_equal_the_emulators_ground_truth(emulator, tmp_path):
    campaign = write_campaign(tmp_path / "c", 120)
    state = tmp_path / "state"
    assert send(emulator, campaign, state).returncode == 0
    before = report_json(emulator, campaign, state)
    assert before["delivery"]["tracked"] is False
    r = run(emulator, "track", str(campaign), "--state", str(state), *FAST)
    assert r.returncode == 0, r.stderr
    assert "360 final, 0 in flight" in r.stdout
    doc = report_json(emulator, campaign, state)
    assert_matches_truth(doc, emulator)
    stats = emulator.stats()
    assert stats["failed"] > 0 and len(stats["by_protocol"]) >= 3  # the test means something
    t = doc["delivery"]["time_to_delivery_s"]
    assert t["count"] == stats["delivered"] and 0 < t["p50"] <= t["p95"] <= t["max"]
    errors = {g["error"]: g["count"] for g in doc["delivery"]["failures"]}
    assert sum(errors.values()) == stats["failed"]
    md = run(emulator, "report", str(campaign), "--state", str(state), "--format", "markdown")
    assert "### Delivery" in md.stdout and f"| **total** | 360 | {stats['delivered']:,} |" in md.stdout
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


def test_track_killed_mid_way_then_rerun_ends_with_the_same_counts(tmp_path):
    config = EmulatorConfig(api_key=KEY, seed=9, p_delivery_failed=0.2, share_imessage=0.5,
                            share_sms=0.4, share_rcs=0.1, delivered_after_ms=300,
                            delivery_jitter_ms=3000)
    with run_in_thread(config) as emu:
        campaign = write_campaign(tmp_path / "c", 150)
        state = tmp_path / "state"
        assert send(emu, campaign, state).returncode == 0
        env = {**os.environ, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}
        proc = subprocess.Popen([*CLI, "track", str(campaign), "--state", str(state), *FAST],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while _final_rows(state) < 50 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.communicate(timeout=30)
        killed_at = _final_rows(state)
        assert 50 <= killed_at < 450, "the kill should land mid-way"
        r = run(emu, "track", str(campaign), "--state", str(state), *FAST)
        assert r.returncode == 0, r.stderr
        assert_matches_truth(report_json(emu, campaign, state), emu)


def test_a_refused_key_stops_track_with_exit_3(emulator, tmp_path):
    campaign = write_campaign(tmp_path / "c", 10)
    state = tmp_path / "state"
    assert send(emulator, campaign, state).returncode == 0
    r = run(emulator, "track", str(campaign), "--state", str(state), *FAST,
            key="bl_revoked_key_999")
    assert r.returncode == 3
    assert "401" in r.stdout and "bl_revoked_key_999" not in r.stdout + r.stderr
    assert _final_rows(state) == 0
    assert report_json(emulator, campaign, state)["delivery"]["messages"]["in_flight"] == 30


def test_track_needs_the_key_and_a_journal(emulator, tmp_path):
    campaign = write_campaign(tmp_path / "c", 3)
    r = run(emulator, "track", str(campaign), "--state", str(tmp_path / "none"), *FAST)
    assert r.returncode == 1 and "no journal" in r.stderr and "Traceback" not in r.stderr
    r = run(emulator, "track", str(campaign), "--state", str(tmp_path / "none"), *FAST, key="")
    assert r.returncode == 1 and "BLOOIO_API_KEY" in r.stderr


def test_send_with_track_tracks_after_sending(emulator, tmp_path):
    campaign = write_campaign(tmp_path / "c", 30)
    state = tmp_path / "state"
    r = send(emulator, campaign, state, "--track", "--report", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert "tracked 90 messages: 90 final" in r.stderr
    assert "Delivery of 90 messages" in r.stdout
    assert_matches_truth(json.loads((tmp_path / "r.json").read_text()), emulator)

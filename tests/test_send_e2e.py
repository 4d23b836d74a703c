"""`campaign send` end to end against the local API emulator.

The emulator's counters are the ground truth: every planned key committed exactly once
(0 duplicates, 0 lost), whatever faults, kills and stops happen on the way. The CLI runs
in-process; SIGKILL, SIGINT and what reaches the terminal are tested on a real subprocess.

RUNNER_SOAK=1 repeats the SIGKILL test for 10 rounds instead of 2 (about 15 s).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.emulator import EmulatorConfig, run_in_thread

KEY = "bl_e2e_SECRET_9f8e7d6c5b4a"
REPO = Path(__file__).resolve().parent.parent
CAMPAIGNS = sorted((REPO / "campaigns").glob("*.yaml"))
CLI = [sys.executable, "-m", "runner"]


@pytest.fixture
def emulator():
    config = EmulatorConfig(
        api_key=KEY, seed=1, share_imessage=1.0, share_sms=0.0, share_rcs=0.0, retry_after_s=0.05
    )
    with run_in_thread(config) as emu:
        yield emu


def write_campaign(folder: Path, n: int, cid: str = "e2e") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"+1555300{i:04d}" for i in range(n))
    (folder / "people.csv").write_text(f"phone\n{rows}\n")
    path = folder / "campaign.yaml"
    path.write_text(f"""\
version: 1
id: {cid}
sender: {{from_number: "+15551234567"}}
recipients: {{file: people.csv, to: phone}}
steps:
  - id: hello
    text: "Hi {{{{ recipient }}}}"
  - id: nudge
    text: "Still there?"
    reply_to: {{step: hello}}
send: {{concurrency: 16}}
""")
    return path


def send_args(campaign: Path, state: Path, *args: str) -> list[str]:
    # --rate unlimited: the default pace (10/s) is for real accounts, not the local emulator.
    return [
        "send",
        str(campaign),
        "--yes",
        "--state",
        str(state),
        "--no-progress",
        "--rate",
        "unlimited",
        "--backoff-base",
        "0.02",
        "--backoff-cap",
        "0.2",
        *args,
    ]


@pytest.fixture
def send(campaign_cli):
    """``send(emu, campaign, state, *args, key=KEY)``: `campaign send` in this process."""

    def run(
        emu, campaign: Path, state: Path, *args: str, key: str = KEY
    ) -> subprocess.CompletedProcess:
        env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": key}
        return campaign_cli(*send_args(campaign, state, *args), env=env)

    return run


def send_process(
    emu,
    campaign: Path,
    state: Path,
    *args: str,
    key: str = KEY,
    wait: bool = True,
    timeout: float = 60,
):
    """`campaign send` in a real subprocess: started (wait=False) or run to its end."""
    env = {**os.environ, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": key}
    cmd = [*CLI, *send_args(campaign, state, *args)]
    if not wait:
        return subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def keys_committed(emu) -> list[str]:
    return [m["key"] for m in emu.messages()]


def journal_rows(state: Path, cid: str = "e2e") -> list[tuple]:
    db = sqlite3.connect(state / f"{cid}.sqlite")
    try:
        return db.execute("SELECT key, status, error_code FROM requests").fetchall()
    finally:
        db.close()


def assert_exactly_once(emu, requests: int) -> None:
    stats = emu.stats()
    keys = keys_committed(emu)
    assert stats["duplicates"] == 0
    assert len(keys) == len(set(keys)) == requests  # none twice, none lost


def sendable_copy(path: Path, folder: Path) -> Path:
    """The example with its schedule and delays removed (their fixed dates have passed; the
    schedule itself is tested in test_schedule_send_e2e.py), beside copies of its data files."""
    import shutil

    import yaml

    shutil.copytree(path.parent, folder, dirs_exist_ok=True)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.pop("schedule", None)
    for step in doc["steps"]:
        step.pop("delay", None)
    out = folder / path.name
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


@pytest.mark.parametrize("path", CAMPAIGNS, ids=[p.stem for p in CAMPAIGNS])
def test_example_campaigns_send_completely(emulator, send, tmp_path, path):
    from runner.campaign.load import load_campaign
    from runner.planning.planner import iter_plan

    path = sendable_copy(path, tmp_path / "campaigns")
    plan = list(iter_plan(load_campaign(path)))
    # The account the examples were written for has their named group chats (grp_...) and
    # the earlier messages their replies target (reply_to: {message_id: ...}).
    history = [
        {
            "message_id": r.body["reply_to"]["message_id"],
            "chat": r.recipient,
            "from_number": r.body.get("from_number"),
        }
        for r in plan
        if "message_id" in (r.body.get("reply_to") or {})
    ]
    emulator.configure(groups=["*"], history=history)
    result = send(
        emulator, path, tmp_path / "state", "--report", str(tmp_path / "r.json"), "--rate", "500"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(keys_committed(emulator)) == {r.key for r in plan}
    assert emulator.stats()["duplicates"] == 0
    assert report["totals"]["accepted"] == len(plan) and report["totals"]["failed"] == 0
    assert report["totals"]["messages_accepted"] == sum(r.messages for r in plan)


def test_a_reply_to_a_message_the_account_never_sent_fails_for_that_recipient_only(
    emulator, send, tmp_path
):
    path = sendable_copy(REPO / "campaigns" / "store-opening-staff.yaml", tmp_path / "campaigns")
    emulator.configure(groups=["*"])  # groups, but no earlier messages to reply to
    result = send(
        emulator, path, tmp_path / "state", "--report", str(tmp_path / "r.json"), "--rate", "500"
    )
    assert result.returncode == 1
    report = json.loads((tmp_path / "r.json").read_text())
    reasons = {g["reason"]: g["count"] for g in report["failures"]}
    # Each group's kickoff reply is refused (404), and its later steps are not sent.
    assert reasons == {"reply_target_not_found": 3, "previous_step_failed": 6}
    assert report["totals"]["accepted"] == 3  # the briefing of each group


@pytest.mark.parametrize("name", ["vip-midnight-drop", "members-renewal"])
def test_examples_past_their_not_after_send_nothing(emulator, send, tmp_path, name):
    result = send(emulator, REPO / "campaigns" / f"{name}.yaml", tmp_path / "state")
    assert result.returncode == 1, result.stderr  # expired: will never be sent
    assert emulator.stats()["send_requests"] == 0
    statuses = {status for _, status, _ in journal_rows(tmp_path / "state", cid=_cid(name))}
    assert statuses == {"expired"}


def _cid(name: str) -> str:
    import yaml

    return yaml.safe_load((REPO / "campaigns" / f"{name}.yaml").read_text())["id"]


def test_faults_end_with_every_message_accepted_exactly_once(emulator, send, tmp_path):
    emulator.configure(
        p_500=0.05, p_503=0.03, p_429=0.05, p_drop=0.02, p_accept_then_500=0.03, latency_ms=2
    )
    campaign = write_campaign(tmp_path, 150)
    state = tmp_path / "state"
    codes = []
    for _ in range(4):  # a request unlucky six times in a row is left for the next run
        result = send(emulator, campaign, state, "--timeout", "5")
        codes.append(result.returncode)
        if result.returncode == 0:
            break
    assert codes[-1] == 0, result.stdout + result.stderr
    assert_exactly_once(emulator, 300)
    stats = emulator.stats()
    assert stats["replays"] > 0 and sum(stats["errors"].values()) > 0  # faults did happen
    assert all(status == "accepted" for _, status, _ in journal_rows(state))


KILL_ROUNDS = 10 if os.environ.get("RUNNER_SOAK") else 2


def test_sigkill_at_random_moments_never_duplicates_or_loses(emulator, send, tmp_path):
    emulator.configure(latency_ms=3, jitter_ms=3, p_503=0.02, p_accept_then_500=0.02)
    rng = random.Random(5)
    campaign = write_campaign(tmp_path, 60)
    mid_run_kills = 0
    for rep in range(KILL_ROUNDS):
        emulator.reset()
        state = tmp_path / f"state{rep}"
        for _ in range(2):
            # --rate keeps a run long enough (~0.4 s) to be killed in the middle of it.
            proc = send_process(emulator, campaign, state, "--rate", "300", wait=False)
            # Kill once the API has seen a random number more requests: mid-run, at a
            # random point of the send loop (journal write, in flight, outcome).
            target = emulator.stats()["send_requests"] + rng.randint(1, 90)
            deadline = time.monotonic() + 20
            while (
                emulator.stats()["send_requests"] < target
                and proc.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.003)
            proc.kill()
            proc.communicate(timeout=30)
            if 0 < len(keys_committed(emulator)) < 120:
                mid_run_kills += 1
        # Then runs until one ends well (a request unlucky with faults is left for the next).
        results = []
        for _ in range(6):
            results.append(send(emulator, campaign, state))
            if results[-1].returncode == 0:
                break
        assert results[-1].returncode == 0, f"repetition {rep} did not finish: {results[-1]}"
        assert_exactly_once(emulator, 120)
    # Two kills a round: at least half of them landed mid-run, not before or after it.
    assert mid_run_kills >= KILL_ROUNDS


def test_bad_key_stops_at_once_and_marks_nobody_failed(emulator, send, tmp_path):
    campaign = write_campaign(tmp_path, 40)
    state = tmp_path / "state"
    result = send(emulator, campaign, state, "--concurrency", "2", key="bl_wrong_key")
    assert result.returncode == 3
    assert "401" in result.stdout or "refused" in result.stdout
    assert emulator.stats()["send_requests"] <= 2  # the in-flight ones, nothing after
    assert all(status != "failed" for _, status, _ in journal_rows(state))
    assert "bl_wrong_key" not in result.stdout + result.stderr
    assert send(emulator, campaign, state).returncode == 0
    assert_exactly_once(emulator, 80)


def test_caps_exit_3_and_a_later_run_resumes(emulator, send, tmp_path):
    emulator.configure(outbound_limit=10)
    campaign = write_campaign(tmp_path, 30)
    state = tmp_path / "state"
    result = send(emulator, campaign, state, "--report", str(tmp_path / "r.json"))
    assert result.returncode == 3, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["run"]["stop_reason"] == "outbound_limit_reached"
    assert report["run"]["cap"]["limit"] == 10
    assert report["totals"]["failed"] == 0 and report["totals"]["pending"] > 0
    emulator.configure(outbound_limit=None)
    assert send(emulator, campaign, state).returncode == 0
    assert_exactly_once(emulator, 60)


def test_new_conversation_cap_keeps_existing_chats(emulator, send, tmp_path):
    campaign = write_campaign(tmp_path, 20)
    state = tmp_path / "state"
    emulator.configure(new_conversation_cap=8)
    result = send(emulator, campaign, state, "--concurrency", "1")
    assert result.returncode == 3
    replies = [m for m in emulator.messages() if "reply_to" in m["body"]]
    # The 8 chats that were started got their reply step too: existing conversations go on.
    assert len(replies) == 8 and len(emulator.messages()) == 16
    emulator.configure(new_conversation_cap=None)
    assert send(emulator, campaign, state).returncode == 0
    assert_exactly_once(emulator, 40)


def test_sigint_stops_gracefully_and_resumes(emulator, send, tmp_path):
    emulator.configure(latency_ms=20)
    campaign = write_campaign(tmp_path, 200)
    state = tmp_path / "state"
    proc = send_process(emulator, campaign, state, "--concurrency", "4", wait=False)
    try:
        deadline = time.monotonic() + 30
        while emulator.stats()["send_requests"] < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    rows = journal_rows(state)
    assert rows and all(status in ("accepted", "pending") for _, status, _ in rows)
    assert len(rows) < 400
    emulator.configure(latency_ms=0)  # the slow answers only had to keep the run going
    assert send(emulator, campaign, state).returncode == 0
    assert_exactly_once(emulator, 400)


def test_the_key_never_appears_in_output_or_files(emulator, campaign_cli, tmp_path):
    emulator.configure(p_503=0.1, p_drop=0.05)
    campaign = write_campaign(tmp_path, 20)
    state = tmp_path / "state"
    # A real process: everything it writes to the terminal is checked, whatever writes it.
    result = send_process(emulator, campaign, state, "--report", str(tmp_path / "r.json"))
    reports = [
        campaign_cli(
            "report",
            str(campaign),
            "--state",
            str(state),
            "--format",
            fmt,
            env={"BLOOIO_API_KEY": KEY},
        )
        for fmt in ("text", "json", "markdown")
    ]
    assert all(r.returncode == 0 for r in reports)
    texts = [result.stdout, result.stderr] + [r.stdout + r.stderr for r in reports]
    assert all(KEY not in t for t in texts)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in written)
    for p in written:
        assert KEY.encode() not in p.read_bytes(), p
    assert all("+15553000" not in r.stdout for r in reports)  # masked by default


def test_missing_key_and_invalid_campaign_send_nothing(emulator, send, tmp_path):
    campaign = write_campaign(tmp_path, 3)
    result = send(emulator, campaign, tmp_path / "s", key="")
    assert result.returncode != 0 and "BLOOIO_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(campaign.read_text().replace("{{ recipient }}", "{{ nope }}"))
    result = send(emulator, bad, tmp_path / "s")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert emulator.stats()["send_requests"] == 0

"""Audience safety end to end: the CLI (in-process) against the local emulator.

The emulator records when it accepted each message; these tests check every one of them
against the recipient's local window and the step delays, and read opt-outs and counts from
the emulator's own ground truth. The delays are real seconds: the executor reads the wall clock.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from runner.emulator import EmulatorConfig, run_in_thread

KEY = "bl_sched_SECRET_1a2b3c"


@pytest.fixture
def emulator():
    with run_in_thread(EmulatorConfig(api_key=KEY, seed=3)) as emu:
        yield emu


@pytest.fixture
def run(campaign_cli):
    """``run(emu, *args, cwd=folder)``: `campaign *args` in ``folder``, against ``emu``."""

    def invoke(emu, *args: str, cwd: Path) -> subprocess.CompletedProcess:
        proc = campaign_cli(
            *args, env={"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}, cwd=cwd
        )
        assert KEY not in proc.stdout + proc.stderr
        return proc

    return invoke


def by_chat(emu) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for m in sorted(emu.messages(), key=lambda m: m["accepted_at"]):
        out.setdefault(m["chat"], []).append(m)
    return out


PEOPLE = ["+15551230001", "+15551230002", "+15551230003", "+15551230004"]


def test_drip_with_delays_and_a_stop_reply_between_steps(emulator, run, tmp_path: Path):
    (tmp_path / "optouts.txt").write_text("# opt-outs\n")
    recipients = "\n".join(f'  - to: "{p}"\n    vars: {{name: P{i}}}' for i, p in enumerate(PEOPLE))
    (tmp_path / "drip.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        id: drip-e2e
        suppress: [optouts.txt]
        recipients:
        """)
        + recipients
        + textwrap.dedent("""
        steps:
          - id: welcome
            text: "Welcome {{ name }}"
          - id: tip
            delay: 2s
            text: "A tip for {{ name }}"
          - id: offer
            delay: 1s
            text: "An offer for {{ name }}"
            reply_to: {step: welcome}
        """)
    )
    first = run(emulator, "send", "drip.yaml", "--yes", "--no-progress", cwd=tmp_path)
    assert first.returncode == 4, first.stderr  # step 1 sent, the rest waits on its delay
    assert "wait for their schedule" in first.stderr
    assert emulator.stats()["messages_accepted"] == len(PEOPLE)

    # Recipient 2 answers STOP after the first step. Nothing else is run: the next send reads
    # the replies of the chats it messaged before, and the STOP wins.
    emulator.reply(PEOPLE[1], "  stop ")
    done = run(emulator, "send", "drip.yaml", "--yes", "--no-progress", "--wait", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stats = emulator.stats()
    assert stats["duplicates"] == 0
    chats = by_chat(emulator)
    assert len(chats[PEOPLE[1]]) == 1  # nothing after the STOP
    for person in (PEOPLE[0], PEOPLE[2], PEOPLE[3]):
        msgs = chats[person]
        assert [m["body"]["text"].split(" for")[0].split()[0] for m in msgs] == [
            "Welcome",
            "A",
            "An",
        ]
        assert len(msgs) == 3
        welcome, tip, offer = msgs
        # Each delay counts from the previous step's acceptance.
        assert tip["accepted_at"] - welcome["accepted_at"] >= 2.0
        assert offer["accepted_at"] - tip["accepted_at"] >= 1.0
        assert offer["body"]["reply_to"] == {"message_id": welcome["ids"][0]}
    assert stats["messages_accepted"] == len(PEOPLE) + 2 * (len(PEOPLE) - 1)

    assert "read the new replies of" in done.stderr and "1 opted out" in done.stderr

    # The opt-out is in the state's ledger (the plan of the state leaves it out), and --export
    # writes it once into the suppression file, for review in git.
    plan = run(emulator, "plan", "drip.yaml", "--format", "json", cwd=tmp_path)
    doc = json.loads(plan.stdout)
    assert doc["suppressed"] == 1 and doc["journal"]["accepted"] == 3 * (len(PEOPLE) - 1)
    assert doc["consent"] == {"opted_out": 1, "held": 0}
    for _ in range(2):  # safe to run twice
        opt = run(emulator, "optouts", "drip.yaml", "--export", cwd=tmp_path)
        assert opt.returncode == 0, opt.stderr
    lines = [
        ln for ln in (tmp_path / "optouts.txt").read_text().splitlines() if not ln.startswith("#")
    ]
    assert [ln.split()[0] for ln in lines] == [PEOPLE[1]]


# Zones without daylight saving, so "now" lands inside the window for UTC only.
ZONES = {
    "+15552000001": "UTC",
    "+15552000002": "Asia/Dhaka",
    "+15552000003": "Asia/Tokyo",
    "+15552000004": "America/Panama",
    "+15552000005": "UTC",
}


def test_nothing_is_sent_outside_a_recipients_local_window(emulator, run, tmp_path: Path):
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=1)).strftime("%H:%M")
    recipients = "\n".join(f'  - to: "{p}"\n    vars: {{tz: {z}}}' for p, z in ZONES.items())
    (tmp_path / "w.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        id: window-e2e
        schedule:
          timezone: UTC
          timezone_var: tz
          window: {{start: "{start}", end: "{end}"}}
        recipients:
        """)
        + recipients
        + textwrap.dedent("""
        steps:
          - id: hello
            text: "Hello"
          - id: later
            delay: 1s
            text: "Later"
        """)
    )
    plan = run(emulator, "plan", "w.yaml", "--format", "json", cwd=tmp_path)
    counts = json.loads(plan.stdout)["schedule"]["messages"]
    assert counts["due"] == 2 and counts["window"] == 3
    first = run(emulator, "send", "w.yaml", "--yes", "--no-progress", cwd=tmp_path)
    assert first.returncode == 4, first.stderr
    assert len(emulator.messages()) == 2  # step 1 to the two UTC recipients
    time.sleep(1.2)  # the second step's delay (a real one: the executor reads the wall clock)
    result = run(emulator, "send", "w.yaml", "--yes", "--no-progress", cwd=tmp_path)
    # The UTC recipients get both steps; the others wait for their own window (hours away).
    assert result.returncode == 4, result.stderr
    messages = emulator.messages()
    assert sorted({m["chat"] for m in messages}) == ["+15552000001", "+15552000005"]
    assert len(messages) == 4
    lo, hi = (datetime.strptime(t, "%H:%M").time() for t in (start, end))
    for m in messages:
        local = datetime.fromtimestamp(m["accepted_at"], ZoneInfo(ZONES[m["chat"]])).time()
        inside = lo <= local < hi if lo < hi else (local >= lo or local < hi)
        assert inside, (m["chat"], local, start, end)
    report = json.loads(run(emulator, "report", "w.yaml", "--format", "json", cwd=tmp_path).stdout)
    totals = report["totals"]
    # Three recipients wait for their window: each step 1 (window) and step 2 (previous step).
    assert (totals["accepted"], totals["scheduled"], totals["pending"]) == (4, 6, 0)
    assert report["run"]["next_due"] is not None

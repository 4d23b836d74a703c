"""Rehearsal time (issue 25): a 2-day drip rehearsed in seconds against the emulator, the
runner reading the emulator's clock (`--now emulator`) after it is advanced by hand; refused
against the live API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import exitcodes
from runner.errors import CampaignError
from runner.run.rehearsal import rehearsal_now
from runner.store.journal import Journal

pytest_plugins = ["emulator_fixtures"]

DRIP = """\
version: 1
id: drip
sender: {from_number: "+15551234567"}
recipients:
  - to: "+12128675301"
  - to: "+12128675302"
steps:
  - id: hello
    text: Welcome!
  - id: reminder
    delay: 2d
    text: Two days in, a reminder.
"""


@pytest.fixture(autouse=True)
def _any_hour(tmp_path: Path) -> None:
    """The runs here read the wall clock (or the emulator's, which starts at it): the legal
    hours at these New York numbers would make them depend on when the suite runs. A team
    policy beside the campaigns turns the hours off, as a rehearsal may."""
    (tmp_path / "runner.yaml").write_text('hours: "off"\n', encoding="utf-8")


def send(campaign_cli, emu, path: Path, state: Path, *extra: str):
    return campaign_cli(
        "send",
        str(path),
        "--yes",
        "--no-progress",
        "--rate",
        "unlimited",
        "--state",
        str(state),
        *extra,
        env=emu.env(),
    )


def test_a_two_day_drip_is_rehearsed_on_the_emulators_clock(tmp_path: Path, emulator, campaign_cli):
    path = tmp_path / "drip.yaml"
    path.write_text(DRIP, encoding="utf-8")
    state = tmp_path / "state"
    first = send(campaign_cli, emulator, path, state, "--now", "emulator")
    assert first.returncode == exitcodes.WAITING, first.stderr  # the reminder waits 2 days
    assert emulator.stats()["accepted_requests"] == 2
    # On the wall clock nothing more is due; on the emulator's, two days on, the reminder is.
    emulator.advance(2 * 86400 + 60)
    plan = campaign_cli(
        "plan",
        str(path),
        "--now",
        "emulator",
        "--format",
        "json",
        "--state",
        str(state),
        env=emulator.env(),
    )
    assert json.loads(plan.stdout)["schedule"]["messages"].get("due") == 2, plan.stdout
    second = send(campaign_cli, emulator, path, state, "--now", "emulator")
    assert second.returncode == exitcodes.OK, second.stderr
    assert emulator.stats()["accepted_requests"] == 4
    with Journal.for_campaign(state, "drip") as journal:
        assert sorted(e.step for e in journal.entries(1) if e.status == "accepted") == [
            "hello",
            "hello",
            "reminder",
            "reminder",
        ]


def test_without_now_the_reminder_stays_due_on_the_wall_clock(
    tmp_path: Path, emulator, campaign_cli
):
    # What the issue saw: advancing the emulator did not make the runner send the reminder.
    path = tmp_path / "drip.yaml"
    path.write_text(DRIP, encoding="utf-8")
    state = tmp_path / "state"
    assert send(campaign_cli, emulator, path, state).returncode == exitcodes.WAITING
    emulator.advance(2 * 86400 + 60)
    assert send(campaign_cli, emulator, path, state).returncode == exitcodes.WAITING
    assert emulator.stats()["accepted_requests"] == 2


def test_now_is_refused_against_the_live_api():
    with pytest.raises(CampaignError) as info:
        rehearsal_now("2026-12-09T10:00:00Z", "https://api.blooio.com/v2/api")
    [p] = info.value.problems
    assert "live API" in p.message and p.hint


def test_now_takes_an_iso_time_against_another_base_url():
    assert rehearsal_now("2026-12-09T10:00:00Z", "http://127.0.0.1:9/v2/api") == 1796810400.0


def test_the_emulator_exposes_its_clock(emulator):
    before = emulator.clock()
    emulator.advance(3600)
    assert 3599 < emulator.clock() - before < 3700


def test_the_report_counts_rows_excluded_by_exclude_when(tmp_path: Path, emulator, campaign_cli):
    (tmp_path / "people.csv").write_text("to,SMS Opt Out\n+12128675301,\n+12128675302,1\n")
    path = tmp_path / "c.yaml"
    path.write_text(
        'version: 1\nid: excl\nsender: {from_number: "+15551234567"}\n'
        "recipients: {file: people.csv, exclude_when: \"sms_opt_out == '1'\"}\n"
        "steps:\n  - id: hello\n    text: Hi\n",
        encoding="utf-8",
    )
    state = tmp_path / "state"
    assert send(campaign_cli, emulator, path, state).returncode == exitcodes.OK
    report = campaign_cli("report", str(path), "--state", str(state), "--format", "json")
    totals = json.loads(report.stdout)["totals"]
    assert (totals["excluded_recipients"], totals["excluded_by"]) == (1, "SMS Opt Out")
    text = campaign_cli("report", str(path), "--state", str(state)).stdout
    assert "1 recipients excluded (SMS Opt Out, never sent)" in text


def test_track_reads_on_the_emulators_clock_too(tmp_path: Path, emulator, campaign_cli):
    path = tmp_path / "drip.yaml"
    path.write_text(DRIP, encoding="utf-8")
    state = tmp_path / "state"
    assert (
        send(campaign_cli, emulator, path, state, "--now", "emulator").returncode
        == exitcodes.WAITING
    )
    emulator.advance(3600)  # past the delivery lifecycle, on the emulator's clock
    tracked = campaign_cli(
        "track",
        str(path),
        "--state",
        str(state),
        "--now",
        "emulator",
        "--no-progress",
        "--timeout",
        "20",
        "--first-poll",
        "0",
        env=emulator.env(),
    )
    assert tracked.returncode == exitcodes.OK, tracked.stderr + tracked.stdout
    live = campaign_cli(
        "track",
        str(path),
        "--state",
        str(state),
        "--now",
        "emulator",
        "--base-url",
        "https://api.blooio.com/v2/api",
        env=emulator.env(),
    )
    assert live.returncode == 1 and "live API" in live.stderr + live.stdout

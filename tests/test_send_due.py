"""Issue 24 item 6b: `campaign send DIR --due-only`, what a scheduler runs every 15 minutes.

Every campaign file under the folder is checked: those with something due are sent (one lock
each), the others skipped and named (nothing due, or never sent: a schedule never starts a
campaign), one locked by a run elsewhere is reported without stopping the others, and one exit
code merges them (1 > 3 > 4 > 0). A step's delay runs from the journal's accepted time, so a
scheduler that runs late or skips runs sends the reminder at its first run after it is due."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_state_pg import KEY, chats

from runner.emulator import EmulatorConfig
from runner.store.backend import open_journal
from runner.store.state import open_state

pytest_plugins = ["emulator_fixtures"]

FAST = (
    "--yes",
    "--rate",
    "unlimited",
    "--no-progress",
    "--backoff-base",
    "0",
    "--backoff-cap",
    "0",
)
DAY = 86400.0


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def drip(folder: Path, cid: str, people: list[str], delay: str = "2d") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    to = "".join(f'  - to: "{c}"\n' for c in people)
    path = folder / f"{cid}.yaml"
    path.write_text(
        f"version: 1\nid: {cid}\nrecipients:\n{to}steps:\n"
        f'  - id: welcome\n    text: "welcome {cid}"\n'
        f'  - id: reminder\n    text: "reminder {cid}"\n    delay: {delay}\n'
    )
    return path


@pytest.fixture
def cli(campaign_cli, make_emulator, tmp_path, state):
    """`campaign` in process with the state (a folder, or a PostgreSQL database: conftest's
    ``state``) in RUNNER_STATE."""
    emu = make_emulator(EmulatorConfig(api_key=KEY, seed=6))
    env = {"BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY, "RUNNER_STATE": state}

    def run(*args: str):
        result = campaign_cli(*args, env=env, cwd=tmp_path)
        out = result.stdout + result.stderr
        assert "Traceback" not in out and KEY not in out and "Passw0rd" not in out
        return result

    run.emu, run.state = emu, state
    return run


def texts(emu) -> list[str]:
    return sorted(m["body"]["text"] for m in emu.messages())


def test_a_folder_resumes_what_is_due_and_names_what_it_skips(cli, tmp_path):
    t0 = time.time()
    folder = tmp_path / "campaigns"
    a = drip(folder, "alpha", chats(2))
    b = drip(folder / "sub", "beta", chats(1, 10), delay="5d")
    drip(folder, "gamma", chats(1, 20))  # merged, never sent: the schedule leaves it alone
    (folder / "notes.yaml").write_text("title: not a campaign\n")
    for f in (a, b):
        first = cli("send", str(f), *FAST, "--now", iso(t0))
        assert first.returncode == 4, first.stderr  # the reminders wait 2 (5) days
    assert texts(cli.emu) == ["welcome alpha"] * 2 + ["welcome beta"]

    early = cli("send", str(folder), "--due-only", *FAST, "--now", iso(t0 + DAY))
    assert early.returncode == 0, early.stderr
    assert f"{a}: skipped, nothing due (next due" in early.stdout
    assert "gamma.yaml: skipped, never sent" in early.stdout and "notes.yaml" not in early.stdout
    assert "3 campaign(s): 0 sent, 2 nothing due, 1 never sent, 0 not sent; exit 0" in early.stdout
    assert len(cli.emu.messages()) == 3

    # The scheduler ran late (a day after alpha's reminder fell due): sent once, then nothing.
    late = cli("send", str(folder), "--due-only", *FAST, "--now", iso(t0 + 3 * DAY))
    assert late.returncode == 0, late.stdout + late.stderr
    assert f"{a}: sent 2 accepted, 0 failed, 0 pending (exit 0)" in late.stdout
    assert f"{b}: skipped, nothing due" in late.stdout
    again = cli("send", str(folder), "--due-only", *FAST, "--now", iso(t0 + 3 * DAY + 900))
    assert "0 sent, 2 nothing due" in again.stdout
    assert texts(cli.emu) == (["reminder alpha"] * 2 + ["welcome alpha"] * 2 + ["welcome beta"])
    assert cli.emu.stats()["duplicates"] == 0


def test_a_campaign_locked_elsewhere_is_reported_and_the_others_are_sent(cli, tmp_path):
    t0 = time.time()
    folder = tmp_path / "campaigns"
    a, b = drip(folder, "aa", chats(1), "1h"), drip(folder, "bb", chats(1, 5), "1h")
    for f in (a, b):
        assert cli("send", str(f), *FAST, "--now", iso(t0)).returncode == 4
    with open_journal(open_state(cli.state), "aa", lock="send"):  # another run
        both = cli("send", str(folder), "--due-only", *FAST, "--now", iso(t0 + 7200))
    assert both.returncode == 3, both.stdout + both.stderr  # locked: run again
    assert f"{a}: not sent (exit 3)" in both.stdout and str(os.getpid()) in both.stderr
    assert f"{b}: sent 1 accepted" in both.stdout and "1 sent" in both.stdout
    assert texts(cli.emu) == ["reminder bb", "welcome aa", "welcome bb"]


def test_a_folder_needs_due_only_and_refuses_what_it_cannot_do(cli, tmp_path):
    folder = tmp_path / "campaigns"
    drip(folder, "x", chats(1))
    plain = cli("send", str(folder), *FAST)
    assert plain.returncode == 1 and "--due-only" in plain.stderr
    wait = cli("send", str(folder), "--due-only", "--wait", *FAST)
    assert wait.returncode == 1 and "--wait" in wait.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    none = cli("send", str(empty), "--due-only", *FAST)
    assert none.returncode == 1 and "no campaign file" in none.stderr
    assert cli.emu.messages() == []


def test_an_invalid_campaign_fails_the_folder_but_not_the_others(cli, tmp_path):
    t0 = time.time()
    folder = tmp_path / "campaigns"
    good = drip(folder, "good", chats(1), "1h")
    assert cli("send", str(good), *FAST, "--now", iso(t0)).returncode == 4
    (folder / "bad.yaml").write_text("version: 1\nid: bad\nrecipients: []\nsteps: nope\n")
    mixed = cli("send", str(folder), "--due-only", *FAST, "--now", iso(t0 + 7200))
    assert mixed.returncode == 1
    assert "bad.yaml: not sent (exit 1)" in mixed.stdout and "bad.yaml" in mixed.stderr
    assert f"{good}: sent 1 accepted" in mixed.stdout

"""Issue 16.9: what the disk and the system do to the state folder ends in one error line with
the path and what to do, never a traceback: a damaged journal (send, report, plan --state), a
read-only capability cache (reach), a report written to a full device after sending (the
send's exit code stands), a journal on a read-only mount (report)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runner.run.reach import CapabilityCache
from runner.store.journal import ACCEPTED, Attempt, Journal, Outcome
from runner.store.paths import journal_path

pytest_plugins = ["emulator_fixtures"]

CAMPAIGN = """\
version: 1
id: damaged
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "hi"
"""
N = 300  # enough rows for the table to span many pages


@pytest.fixture
def project(tmp_path: Path) -> Path:
    rows = "\n".join(f"+1555300{i:04d}" for i in range(N))
    (tmp_path / "people.csv").write_text(f"phone\n{rows}\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(CAMPAIGN, encoding="utf-8")
    return tmp_path


def journal_of(project: Path) -> Path:
    return journal_path(project / "st", "damaged")


def write_journal(project: Path) -> Path:
    path = journal_of(project)
    with Journal(path) as j:
        run = j.start_run("damaged", 1, {}, {"requests": N})
        ops: list = []
        for i in range(N):
            ops += [
                Attempt(f"k{i}", f"+1555300{i:04d}", "hello", 1, i, 0, 1, "h" * 40, run, 1.0),
                Outcome(f"k{i}", ACCEPTED, message_id=f"msg_{i:020d}", http_status=202, now=1.0),
            ]
        j.apply(ops)
        j.finish_run(run, {"requests": N, "accepted": N}, 0, None)
    return path  # closed: the WAL is checkpointed into the file


def damage(path: Path) -> None:
    """Overwrite every page after the first (the schema stays readable, the rows do not)."""
    data = path.read_bytes()
    path.write_bytes(data[:4096] + b"\xa5" * (len(data) - 4096))


def assert_one_line_error(out, path: Path, *, code: int = 1) -> None:
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    assert str(path) in out.stderr


@pytest.mark.parametrize("command", ["send", "report", "plan"])
def test_a_damaged_journal_page(campaign_cli, project, command):
    path = write_journal(project)
    damage(path)
    extra = ["--yes"] if command == "send" else []
    out = campaign_cli(
        command,
        str(project / "c.yaml"),
        "--state",
        str(project / "st"),
        *extra,
        env={"BLOOIO_API_KEY": "k", "BLOOIO_BASE_URL": "http://127.0.0.1:9/v2/api"},
    )
    assert_one_line_error(out, path)
    assert "malformed" in out.stderr and "move it aside" in out.stderr
    assert "idempotency keys make a re-run safe" in out.stderr


def test_a_journal_on_a_read_only_mount(campaign_cli, project, monkeypatch):
    path = write_journal(project)
    real = sqlite3.connect

    def read_only(target, *args, **kwargs):
        if str(target) == str(path):
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real(target, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    out = campaign_cli("report", str(project / "c.yaml"), "--state", str(project / "st"))
    assert_one_line_error(out, path)
    assert "--state" in out.stderr and "writable" in out.stderr


def test_reach_on_a_read_only_state(campaign_cli, project, emulator, monkeypatch):
    def refuse(self, caps):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(CapabilityCache, "put", refuse)
    env = {"BLOOIO_API_KEY": emulator.api_key, "BLOOIO_BASE_URL": emulator.base_url}
    out = campaign_cli(
        "reach", str(project / "c.yaml"), "--state", str(project / "st"), "--rate", "10000", env=env
    )
    assert_one_line_error(out, project / "st" / "capabilities.sqlite")
    assert "readonly" in out.stderr and "--state" in out.stderr


def test_reach_on_a_state_path_that_is_a_file(campaign_cli, project):
    (project / "st").write_text("not a folder", encoding="utf-8")
    out = campaign_cli(
        "reach",
        str(project / "c.yaml"),
        "--state",
        str(project / "st"),
        env={"BLOOIO_API_KEY": "k", "BLOOIO_BASE_URL": "http://127.0.0.1:9/v2/api"},
    )
    assert_one_line_error(out, project / "st", code=2)  # refused as a usage error


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_report_to_a_full_device_keeps_the_send_exit_code(campaign_cli, project, emulator):
    env = {"BLOOIO_API_KEY": emulator.api_key, "BLOOIO_BASE_URL": emulator.base_url}
    out = campaign_cli(
        "send",
        str(project / "c.yaml"),
        "--state",
        str(project / "st"),
        "--yes",
        "--no-progress",
        "--rate",
        "unlimited",
        "--report",
        "/dev/full",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "/dev/full" in out.stderr
    assert "requests" in out.stdout  # the text report still came out
    assert len(emulator.messages()) == N

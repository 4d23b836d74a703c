"""Every OSError a user can cause ends as one line with the path and exit 1, never a traceback."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from runner.cli import main
from runner.cli._base import user_errors

pytest_plugins = ["emulator_fixtures"]

CAMPAIGN = """\
version: 1
id: oserr
sender: {from_number: "+15551234567"}
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "people.csv").write_text("phone\n+15553000001\n+15553000002\n")
    (tmp_path / "c.yaml").write_text(CAMPAIGN)
    (tmp_path / "a-file").write_text("not a folder\n")
    return tmp_path


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if "error" in line]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    "exc, fmt",
    [
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp/x/optouts.txt"), "text"),
        (PermissionError(errno.EACCES, "Permission denied", "/srv/state"), "text"),
        (OSError(errno.ENOSPC, "No space left on device", "/tmp/report.json"), "json"),
    ],
)
def test_user_errors_turns_an_oserror_into_one_located_line(exc, fmt):
    @click.command()
    @click.option("--format", "fmt", default="text")
    @user_errors()
    def cmd(fmt: str) -> None:
        raise exc

    result = CliRunner().invoke(cmd, ["--format", fmt])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if fmt == "json":
        problem = json.loads(result.output)["problems"][0]
        assert (problem["file"], problem["message"]) == (exc.filename, exc.strerror)
    else:
        assert one_error_line(result.output) == f"{exc.filename}: error: {exc.strerror}"


def test_an_oserror_without_a_path_still_says_why():
    @click.command()
    @user_errors(None)
    def cmd() -> None:
        raise OSError(errno.EIO, "Input/output error")

    result = CliRunner().invoke(cmd, [])
    assert result.exit_code == 1 and one_error_line(result.output) == "error: Input/output error"


def test_reach_with_a_state_dir_under_a_file(project: Path):
    state = project / "a-file" / "state"
    result = CliRunner().invoke(
        main,
        ["reach", str(project / "c.yaml"), "--state", str(state)],
        env={"BLOOIO_BASE_URL": "http://127.0.0.1:9/v2/api"},
    )
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert str(state) in line and "Not a directory" in line


def test_send_report_under_a_file_is_one_line_after_the_send(project: Path, emulator):
    report = project / "a-file" / "report.json"
    result = CliRunner().invoke(
        main,
        [
            "send",
            str(project / "c.yaml"),
            "--yes",
            "--no-progress",
            "--state",
            str(project / "st"),
            "--report",
            str(report),
        ],
        env=emulator.env(),
    )
    assert result.exit_code == 0  # the send's own exit code: the report's failure is only told
    line = one_error_line(result.output)
    assert str(project / "a-file") in line
    assert emulator.stats()["messages_accepted"] == 2  # the send itself went through


def test_plan_out_under_a_file(project: Path):
    out = project / "a-file" / "plan.jsonl"
    result = CliRunner().invoke(main, ["plan", str(project / "c.yaml"), "--out", str(out)])
    assert result.exit_code == 1
    assert str(out) in one_error_line(result.output)

"""The malformed-campaign corpus: every file in tests/malformed/ has exactly one defect and says,
in its leading comments, where `campaign validate` must report it and with what words:

    # expect-line: 12                      (1-based line of the defect)
    # expect-message: unknown key 'efect'  (a substring of the error message)
    # expect-hint: rename it               (optional: a substring of the hint)
    # expect-file: data/rows.csv           (optional: the error is in this data file)

Each must be rejected with exit code 1, at that line, with that message, and no traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "malformed"
FILES = sorted(CORPUS.glob("*.yaml"))

HEADER = re.compile(r"^# expect-(line|message|hint|file): (.*)$")


@dataclass(frozen=True)
class Expectation:
    path: Path
    line: int
    message: str
    hint: str | None
    file: Path  # where the error must be reported: the campaign or one of its data files


def expectation(path: Path) -> Expectation:
    found: dict[str, str] = {}
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.startswith("#"):
            break
        m = HEADER.match(text)
        if m:
            found[m.group(1)] = m.group(2).strip()
    assert "line" in found and "message" in found, (
        f"{path.name} lacks its expect-line/expect-message header"
    )
    data = found.get("file")
    return Expectation(
        path=path,
        line=int(found["line"]),
        message=found["message"],
        hint=found.get("hint"),
        file=(path.parent / data) if data else path,
    )


def same_file(reported: str | None, expected: Path) -> bool:
    return reported is not None and Path(reported).resolve() == expected.resolve()


def test_corpus_is_big_enough_and_every_file_states_its_expectations():
    assert len(FILES) >= 40
    for path in FILES:
        exp = expectation(path)
        assert exp.line >= 1
        assert exp.file.is_file() or "not found" in exp.message, (
            f"{path.name}: {exp.file} is missing"
        )


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_campaign_is_rejected_at_the_right_line(cli: CliRunner, path: Path):
    exp = expectation(path)
    result = cli.invoke(main, ["validate", "--format", "json", str(path)])
    assert not isinstance(result.exception, Exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is False
    [file_result] = report["files"]
    errors = file_result["errors"]
    matching = [e for e in errors if exp.message in e["message"]]
    assert matching, f"no error says {exp.message!r}: {[e['message'] for e in errors]}"
    err = matching[0]
    assert same_file(err.get("file"), exp.file), err
    assert err.get("line") == exp.line, err
    if exp.hint:
        assert exp.hint in (err.get("hint") or ""), err
    # One defect, one place: nothing else is reported elsewhere (no cascades of noise).
    elsewhere = [
        e for e in errors if not (same_file(e.get("file"), exp.file) and e.get("line") == exp.line)
    ]
    assert not elsewhere, elsewhere


TEXT_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::\d+)?: error: (?P<message>.*)$")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_malformed_campaign_text_output_names_file_and_line(cli: CliRunner, path: Path):
    exp = expectation(path)
    result = cli.invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert not isinstance(result.exception, Exception)
    located = [m for m in map(TEXT_LINE.match, result.output.splitlines()) if m]
    assert any(
        same_file(m["file"], exp.file)
        and int(m["line"]) == exp.line
        and exp.message in m["message"]
        for m in located
    ), result.output
    assert f"FAIL {path}: " in result.output


# --- the command line, as CI runs it (the whole corpus through a real process) -----------------

SECRET = "sk-live-THIS-KEY-MUST-NEVER-BE-PRINTED"


def run_cli(*args: str, cwd: Path = ROOT, process: bool = False) -> subprocess.CompletedProcess:
    env = {"BLOOIO_API_KEY": SECRET, "NO_COLOR": "1"}
    if process:
        proc = subprocess.run(
            [sys.executable, "-m", "runner", "validate", *args],
            cwd=cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
    else:
        with contextlib.chdir(cwd):
            result = CliRunner().invoke(main, ["validate", *args], env=env)
        assert not isinstance(result.exception, Exception), result.exc_info
        proc = subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream
        assert SECRET not in stream
    return proc


def test_cli_github_annotations():
    rel = "tests/malformed/unknown-key-efect.yaml"
    proc = run_cli("--format", "github", rel)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("::error ")]
    assert len(lines) == 1
    assert lines[0].startswith(f"::error file={rel},line=12,col=5,")
    assert "unknown key 'efect' — did you mean 'effect'?" in lines[0].split("::", 2)[2]
    assert "0 of 1 campaign file(s) valid" in proc.stdout


def test_cli_github_annotation_points_into_the_data_file():
    proc = run_cli("--format", "github", "tests/malformed/csv-undefined-for-one-row.yaml")
    assert proc.returncode == 1
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith("::error ")]
    assert line.startswith("::error file=tests/malformed/data/forty.csv,line=38")


def test_cli_json_format():
    proc = run_cli(
        "--format",
        "json",
        "tests/malformed/duplicate-yaml-key.yaml",
        "tests/malformed/sandbox-class-mro.yaml",
    )
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["valid"] is False
    by_file = {Path(f["file"]).name: f for f in report["files"]}
    assert by_file["duplicate-yaml-key.yaml"]["errors"][0]["line"] == 10
    assert by_file["duplicate-yaml-key.yaml"]["errors"][0]["layer"] == "yaml"
    sandbox = by_file["sandbox-class-mro.yaml"]["errors"][0]
    assert sandbox["line"] == 6 and "unsafe" in sandbox["message"]


def test_cli_alias_bomb_is_refused():
    proc = run_cli("tests/malformed/alias-bomb.yaml")
    assert proc.returncode == 1
    assert "alias bomb" in proc.stdout + proc.stderr


def test_cli_python_tag_is_not_executed(tmp_path: Path):
    marker = tmp_path / "pwned"
    source = (CORPUS / "tag-python-object-apply.yaml").read_text(encoding="utf-8")
    assert "/tmp/pwned-by-campaign" in source
    campaign = tmp_path / "apply.yaml"
    campaign.write_text(source.replace("/tmp/pwned-by-campaign", str(marker)), encoding="utf-8")
    proc = run_cli(str(campaign))
    assert proc.returncode == 1
    assert "unsupported YAML tag !!python/object/apply" in proc.stdout
    assert not marker.exists()


def test_subprocess_whole_corpus_folder_fails_file_by_file():
    proc = run_cli("tests/malformed", process=True)
    assert proc.returncode == 1
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL ")]
    # In a folder, files that are not campaigns (empty, a list, a scalar) are listed as skipped;
    # named one by one they fail (test_malformed_campaign_is_rejected_at_the_right_line).
    skipped = sorted(
        ln.split()[1].rstrip(":").rsplit("/", 1)[-1]
        for ln in proc.stdout.splitlines()
        if ln.startswith("skipped ")
    )
    assert skipped == ["empty-file.yaml", "list-not-mapping.yaml", "scalar-not-mapping.yaml"]
    assert len(failed) + len(skipped) == len(FILES)

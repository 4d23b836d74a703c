"""`campaign validate`: exit codes, output formats, folders, the valid examples, and
validation that renders every recipient of a large data file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from runner.cli import main

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGNS = ROOT / "campaigns"
VALID_EXAMPLES = ["spring-sale.yaml", "store-opening-staff.yaml"]

MINIMAL = """\
version: 1
id: cli-test
recipients:
  - to: "+15551230001"
    vars: {first_name: Ada}
steps:
  - id: hello
    text: "Hi {{ first_name }}"
"""


def validate(*args: str) -> tuple[int, str, dict | None]:
    result = CliRunner().invoke(main, ["validate", *args])
    assert not isinstance(result.exception, Exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    data = json.loads(result.stdout) if "json" in args else None
    return result.exit_code, result.output, data


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- valid campaigns ---------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_valid_examples_pass(name: str):
    path = CAMPAIGNS / name
    code, out, _ = validate(str(path))
    assert code == 0, out
    assert f"ok {path}: " in out
    source = yaml.safe_load(path.read_text(encoding="utf-8"))
    _, _, data = validate("--format", "json", str(path))
    [result] = data["files"]
    assert result["valid"] is True and result["errors"] == []
    assert result["summary"]["campaign"] == source["id"]
    assert result["summary"]["steps"] == len(source["steps"])
    assert result["summary"]["recipients"] == len(source["recipients"])


def test_the_examples_folder_is_valid():
    code, out, _ = validate(str(CAMPAIGNS))
    assert code == 0, out
    examples = sorted(CAMPAIGNS.glob("*.yaml"))
    assert len(examples) >= 4
    assert out.count("\nok ") + out.startswith("ok ") == len(examples)


def test_minimal_campaign_passes(tmp_path: Path):
    code, out, _ = validate(str(write(tmp_path, "c.yaml", MINIMAL)))
    assert code == 0 and "1 recipients, 1 steps, 1 requests, 1 messages" in out


# --- output formats ----------------------------------------------------------------------


def test_json_shape(tmp_path: Path):
    good = write(tmp_path, "good.yaml", MINIMAL)
    bad = write(tmp_path, "bad.yaml", MINIMAL.replace("version: 1", "version: 2"))
    code, _, data = validate("--format", "json", str(good), str(bad))
    assert code == 1
    assert data["schema_version"] == 1 and data["valid"] is False
    by_name = {Path(f["file"]).name: f for f in data["files"]}
    assert by_name["good.yaml"]["valid"] is True and "summary" in by_name["good.yaml"]
    [err] = by_name["bad.yaml"]["errors"]
    assert err == {
        **err,
        "line": 1,
        "column": 10,
        "path": "version",
        "severity": "error",
        "layer": "schema",
    }
    assert err["file"] == str(bad) and "hint" in err


def test_github_annotations_escape_and_locate(tmp_path: Path):
    bad = write(
        tmp_path,
        "bad, file.yaml",
        MINIMAL.replace("  - id: hello", "  - id: hello\n    efect: slam"),
    )
    code, out, _ = validate("--format", "github", str(bad))
    assert code == 1
    [line] = [ln for ln in out.splitlines() if ln.startswith("::error ")]
    escaped = str(bad).replace(":", "%3A").replace(",", "%2C")
    assert line.startswith(f"::error file={escaped},line=8,col=5,title=steps[0].efect::")
    assert "did you mean 'effect'?" in line and "(hint: rename it to 'effect')" in line
    assert out.rstrip().endswith("0 of 1 campaign file(s) valid")


def test_text_output_shows_the_hint(tmp_path: Path):
    bad = write(tmp_path, "c.yaml", MINIMAL.replace("recipients:", "recipents:"))
    code, out, _ = validate(str(bad))
    assert code == 1
    assert f"{bad}:3:1: error: unknown key 'recipents' — did you mean 'recipients'?" in out
    assert "    hint: rename it to 'recipients'" in out


# --- did you mean ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("recipients:", "recipents:", "unknown key 'recipents' — did you mean 'recipients'?"),
        ("steps:", "stpes:", "unknown key 'stpes' — did you mean 'steps'?"),
        (
            '    text: "Hi {{ first_name }}"',
            '    txt: "Hi {{ first_name }}"',
            "unknown key 'txt' — did you mean 'text'?",
        ),
        (
            "    vars: {first_name: Ada}",
            "    var: {first_name: Ada}",
            "unknown key 'var' — did you mean 'vars'?",
        ),
        (
            '    text: "Hi {{ first_name }}"',
            '    text: "Hi {{ first_name }}"\n    effect: Invisble Ink',
            "unknown effect 'Invisble Ink' — did you mean 'invisible-ink'?",
        ),
    ],
)
def test_did_you_mean(tmp_path: Path, old: str, new: str, message: str):
    assert old in MINIMAL
    code, out, _ = validate(str(write(tmp_path, "c.yaml", MINIMAL.replace(old, new))))
    assert code == 1 and message in out


def test_no_suggestion_for_a_key_unlike_any_other(tmp_path: Path):
    code, out, _ = validate(str(write(tmp_path, "c.yaml", MINIMAL + "zzzzzz: 1\n")))
    assert code == 1
    assert "unknown key 'zzzzzz'" in out and "did you mean" not in out
    assert "allowed here: version, id" in out


# --- paths -------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path):
    code, out, _ = validate(str(tmp_path / "nope.yaml"))
    assert code == 1 and "cannot read file" in out


def test_folder_without_campaigns(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    code, out, _ = validate(str(tmp_path))
    assert code == 1 and "no campaign files found" in out


def test_folder_without_campaigns_in_json_is_still_json(tmp_path: Path):
    code, _, data = validate("--format", "json", str(tmp_path))
    assert code == 1 and data["valid"] is False


def test_folder_walks_yaml_and_yml_and_skips_hidden(tmp_path: Path):
    write(tmp_path, "a.yaml", MINIMAL)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "b.yml", MINIMAL.replace("id: cli-test", "id: cli-test-b"))
    (tmp_path / ".state").mkdir()
    write(tmp_path / ".state", "broken.yaml", "{")
    code, out, _ = validate(str(tmp_path))
    assert code == 0, out
    assert out.count("ok ") == 2


def test_one_bad_file_fails_the_run_but_every_file_is_reported(tmp_path: Path):
    good = write(tmp_path, "a.yaml", MINIMAL)
    bad = write(tmp_path, "b.yaml", "- not a mapping\n")
    code, out, _ = validate(str(good), str(bad))
    assert code == 1
    assert f"ok {good}" in out and f"FAIL {bad}: 1 error" in out


@pytest.mark.parametrize("content", [b"", b"---\n", b"--- []\n", b"42\n", b"null\n"])
def test_degenerate_files_are_rejected(tmp_path: Path, content: bytes):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    code, out, _ = validate(str(path))
    assert code == 1 and f"FAIL {path}: 1 error" in out


def test_file_over_10_mb_is_rejected(tmp_path: Path):
    path = tmp_path / "huge.yaml"
    recipient = '  - to: "+15551230001"\n    vars: {first_name: Ada, note: "' + "x" * 60 + '"}\n'
    with path.open("w", encoding="utf-8") as fh:
        fh.write(MINIMAL.split("recipients:")[0] + "recipients:\n")
        for _ in range(10 * 1024 * 1024 // len(recipient) + 1):
            fh.write(recipient)
    assert path.stat().st_size > 10 * 1024 * 1024
    code, out, _ = validate(str(path))
    assert code == 1 and "over the 10 MB limit" in out and "CSV or JSONL" in out


# --- recipients --------------------------------------------------------------------------


def test_duplicate_chat_is_a_located_warning_not_an_error(tmp_path: Path):
    text = MINIMAL.replace(
        "    vars: {first_name: Ada}\n",
        '    vars: {first_name: Ada}\n  - to: " +15551230001 "\n    vars: {first_name: Again}\n',
    )
    path = write(tmp_path, "c.yaml", text)
    code, out, data = validate("--format", "json", str(path))
    assert code == 0, out
    [result] = data["files"]
    assert result["valid"] is True
    assert [(w["file"], w.get("line")) for w in result["warnings"]] == [(str(path), 6)]


def test_one_problem_in_many_rows_is_said_once_with_a_count(tmp_path: Path):
    rows = "".join(f"+1555123{i:04d},\n" for i in range(1, 2001))
    (tmp_path / "r.csv").write_text("to,first_name\n" + rows, encoding="utf-8")
    path = write(
        tmp_path,
        "c.yaml",
        MINIMAL.split("recipients:")[0]
        + 'recipients: {file: r.csv}\nsteps:\n  - id: hello\n    text: "{{ first_name }}"\n',
    )
    code, out, data = validate("--format", "json", str(path))
    assert code == 1
    errors = data["files"][0]["errors"]
    summary = [e for e in errors if "the same problem for 1,997 more recipients" in e["message"]]
    assert len(summary) == 1 and summary[0]["line"] == 2  # where it first happens
    assert sorted(e["line"] for e in errors if e not in summary) == [2, 3, 4]


def test_a_large_csv_reports_the_one_bad_row_at_its_exact_line(tmp_path: Path):
    # Many read buffers long (rate at scale: benchmarks/plan_throughput.py).
    rows = 5_000
    bad_row = 3_457  # 1-based data row; the header is line 1, so this is line 3,458
    tiers = ("gold", "silver", "standard")
    with (tmp_path / "big.csv").open("w", encoding="utf-8") as fh:
        fh.write("to,first_name,tier\n")
        for i in range(1, rows + 1):
            fh.write(f"+1555{i:07d},Member {i},{'bronze' if i == bad_row else tiers[i % 3]}\n")
    path = write(
        tmp_path,
        "big.yaml",
        (
            "version: 1\nid: big-list\n"
            "vars:\n  discounts: {gold: 30, silver: 20, standard: 10}\n"
            "recipients: {file: big.csv}\n"
            "steps:\n"
            '  - id: hello\n    text: "Hi {{ first_name }}, {{ discounts[tier] }}% off"\n'
            '  - id: shop\n    text: https://shop.example.com\n    link_preview: {title: "For {{ first_name }}"}\n'
        ),
    )
    code, out, data = validate("--format", "json", str(path))
    assert code == 1
    [err] = data["files"][0]["errors"]
    assert err["file"] == str(tmp_path / "big.csv")
    assert err["line"] == bad_row + 1
    assert "bronze" in err["message"] and f"{path}:8" in err["message"]
    # The same file without the bad row validates: every row is rendered.
    fixed = (tmp_path / "big.csv").read_text(encoding="utf-8").replace(",bronze\n", ",gold\n")
    (tmp_path / "big.csv").write_text(fixed, encoding="utf-8")
    code, out, _ = validate(str(path))
    assert code == 0, out
    assert f"{rows:,} recipients, 2 steps, {2 * rows:,} requests" in out

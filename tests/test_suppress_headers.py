"""Issue 16 item 2: a suppression CSV is read by the header names it passed the check with
(stripped), and a CSV that yields no chat from its rows is an error, never "0 entries"."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.audience.suppress import csv_header, load_suppression
from runner.campaign.load import load_campaign
from runner.cli import main
from runner.planning.planner import Planner

A, B = "+15551230001", "+15551230002"


def read(tmp_path: Path, text: str) -> tuple[set[str], list]:
    (tmp_path / "s.csv").write_text(text, encoding="utf-8")
    s, problems = load_suppression(["s.csv"], tmp_path, str(tmp_path / "c.yaml"))
    return s.entries, problems


@pytest.mark.parametrize(
    "header", ["reason, to", "reason ,to ", " to , reason", '"reason"," to "', "to"]
)
def test_header_names_are_stripped_when_reading_rows(tmp_path: Path, header: str):
    names = [h.strip().strip('"').strip() for h in header.split(",")]
    cells = {"reason": "stop", "to": A}
    row2 = {"reason": "complaint", "to": f" {B} "}
    body = "\n".join(",".join(r[n] for n in names) for r in (cells, row2))
    entries, problems = read(tmp_path, f"{header}\n{body}\n")
    assert problems == []
    assert entries == {A, B}


def test_csv_header_matches_what_rows_are_read_by():
    assert csv_header("reason, to\n") == ["reason", "to"]
    assert csv_header("+15551230001\n") is None
    assert csv_header("\n") is None


def test_a_csv_whose_to_column_is_empty_in_every_row_is_an_error(tmp_path: Path):
    # `reason;to` style data under a comma header: every `to` cell is missing or blank.
    entries, problems = read(tmp_path, "reason,to\nstop,\ncomplaint,\n")
    assert entries == set()
    [problem] = problems
    assert problem.line == 1 and "empty in all 2 rows" in problem.message


def test_a_row_without_its_to_cell_is_located(tmp_path: Path):
    entries, problems = read(tmp_path, f"reason,to\nstop,{A}\ncomplaint\n")
    assert entries == {A}
    [problem] = problems
    assert problem.line == 3 and "'to' column is number 2" in problem.message


def test_a_header_only_csv_is_an_empty_list_not_an_error(tmp_path: Path):
    entries, problems = read(tmp_path, "reason, to\n\n")
    assert entries == set() and problems == []


def test_a_suppressed_chat_in_a_spaced_header_csv_is_not_planned(tmp_path: Path):
    (tmp_path / "optouts.csv").write_text(f"reason, to\nSTOP, {A}\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        "version: 1\nid: hdr\nrecipients:\n"
        f'  - to: "{A}"\n  - to: "{B}"\n'
        "suppress: [optouts.csv]\nsteps:\n  - id: hello\n    text: Hi\n",
        encoding="utf-8",
    )
    summary = Planner(load_campaign(tmp_path / "c.yaml")).run()
    assert summary.suppressed == 1 and summary.recipients == 1


def test_validate_fails_on_a_csv_with_no_usable_to_column(tmp_path: Path):
    (tmp_path / "optouts.csv").write_text("reason,to\nstop,\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(
        f'version: 1\nid: hdr\nrecipients:\n  - to: "{A}"\n'
        "suppress: [optouts.csv]\nsteps:\n  - id: hello\n    text: Hi\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "c.yaml")])
    assert result.exit_code == 1
    assert "optouts.csv:1" in result.output and "empty in all 1 rows" in result.output

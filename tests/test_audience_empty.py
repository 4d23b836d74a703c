"""Empty values: a template printing an empty cell is a warning per step with a count and the
first rows, hinting default(..., true); rows whose cells are all empty are skipped and counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.campaign.load import load_campaign
from runner.planning.planner import Planner
from runner.planning.render import printed_variables


def run(tmp_path: Path, csv: str, text: str) -> Planner:
    (tmp_path / "people.csv").write_text(csv, encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\nid: empty\nrecipients: {file: people.csv}\n"
        f'steps:\n  - id: hello\n    text: "{text}"\n  - id: bye\n    text: Bye\n',
        encoding="utf-8",
    )
    planner = Planner(load_campaign(path))
    planner.run()
    return planner


CSV = "to,first_name\n+12125550101,Ada\n+12125550102,\n+12125550103,  \n+12125550104,Di\n+12125550105,\n"


def test_an_empty_printed_value_is_one_warning_for_the_step_with_count_and_first_rows(
    tmp_path: Path,
):
    planner = run(tmp_path, CSV, "Hey {{ first_name }}!")
    [w] = planner.problems
    assert w.severity == "warning" and w.path == "steps[0].text" and w.line == 6
    assert "empty for 3 recipient(s)" in w.message
    assert (
        "people.csv:3" in w.message and "people.csv:4" in w.message and "people.csv:6" in w.message
    )
    assert "default('there', true)" in (w.hint or "")
    assert planner.summary.requests == 10  # a warning: still sent


@pytest.mark.parametrize(
    "text",
    [
        "Hey {{ first_name | default('there', true) }}!",
        "Hey{% if first_name %} {{ first_name }}{% endif %}!",
        "Hey {{ first_name or 'there' }}!",
    ],
)
def test_templates_that_handle_empty_values_do_not_warn(tmp_path: Path, text: str):
    assert run(tmp_path, CSV, text).problems == []


def test_default_without_true_still_warns(tmp_path: Path):
    [w] = run(tmp_path, CSV, "Hey {{ first_name | default('there') | title }}!").problems
    assert "empty for 3" in w.message


def test_printed_variables():
    assert printed_variables(
        "{{ a }} {{ b | upper }} {{ c | default('x', true) }} {{ d ~ e }}"
        "{% if f %}{{ f }}{% endif %}"
    ) == ("a", "b")


def test_rows_with_every_cell_empty_are_skipped_and_counted(tmp_path: Path):
    csv = "to,first_name,code\r\n+12125550101,Ada,A\r\n,,\r\n\r\n+12125550102,Ben,B\r\n , ,\r\n"
    planner = run(tmp_path, csv, "Hi {{ first_name }}")
    assert planner.problems == []
    s = planner.summary
    assert (s.recipients, s.rows, s.empty_rows, s.invalid) == (2, 2, 2, 0)
    assert any(
        "2 row(s) with every cell empty were skipped" in w and "people.csv:3" in w
        for w in s.warnings
    )


def test_a_row_with_some_cells_but_no_chat_id_is_skipped_with_a_warning(tmp_path: Path):
    # Was a fatal error for the whole file (issue 25): such rows are skipped and named.
    planner = run(tmp_path, "to,first_name\n,Ada\n+12125550101,Ben\n", "Hi {{ first_name }}")
    [p] = planner.problems
    assert p.severity == "warning" and p.line == 2 and "'to'" in p.message and p.hint
    assert planner.summary.recipients == 1

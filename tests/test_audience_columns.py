"""Column names as people write them: `First Name` is first_name in templates, recipients.to in
either spelling, clashing headers an error, undefined variables name the closest column."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.audience.columns import ColumnClash, closest, normalize_column, read_header
from runner.campaign.load import load_campaign
from runner.errors import CampaignError
from runner.planning.planner import Planner, iter_plan


@pytest.mark.parametrize(
    "header,name",
    [
        ("First Name", "first_name"),
        ("E-mail", "e_mail"),
        ("Mobile Phone", "mobile_phone"),
        (" Zip  Code ", "zip_code"),
        ("first_name", "first_name"),
        ("Prénom", "prénom"),
        ("Opt-in (date)", "opt_in_date"),
    ],
)
def test_normalize_column(header: str, name: str):
    assert normalize_column(header) == name


def test_headers_that_normalise_alike_are_an_error_naming_both():
    with pytest.raises(ColumnClash) as info:
        read_header(["First Name", "phone", "first_name"])
    assert "'First Name'" in str(info.value) and "'first_name'" in str(info.value)


def test_an_identifier_header_keeps_its_own_spelling_too():
    cols = read_header(["firstName", "Last Name", "to"])
    assert cols.variables(["Ada", "Lovelace", "+1"], skip={2}) == {
        "firstname": "Ada",
        "firstName": "Ada",
        "last_name": "Lovelace",
    }
    assert (
        cols.index("Last Name") == 1 and cols.index("last_name") == 1 and cols.index("nope") is None
    )


def test_closest_names_the_column_as_written():
    assert (
        closest("firstname", ["first_name", "code"], {"first_name": "First Name"})
        == "first_name (column 'First Name')"
    )
    assert closest("zzz", ["first_name"]) is None


def write(tmp_path: Path, csv: str, to: str, text: str) -> Path:
    (tmp_path / "people.csv").write_text(csv, encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(
        f"version: 1\nid: cols\nrecipients:\n  file: people.csv\n  to: {to}\n"
        f"steps:\n  - id: hello\n    text: '{text}'\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("to", ["Mobile Phone", "mobile_phone"])
def test_templates_reach_columns_by_their_normalised_names(tmp_path: Path, to: str):
    path = write(
        tmp_path,
        "First Name,E-mail,Mobile Phone\nAda,ada@example.com,+12125550101\n",
        to,
        "Hi {{ first_name }} ({{ e_mail }})",
    )
    [req] = list(iter_plan(load_campaign(path)))
    assert req.body["text"] == "Hi Ada (ada@example.com)" and req.recipient == "+12125550101"


def test_clashing_headers_fail_validation_located_at_the_header(tmp_path: Path):
    path = write(tmp_path, "First Name,first_name,to\nA,B,+12125550101\n", "to", "Hi")
    planner = Planner(load_campaign(path))
    with pytest.raises(CampaignError) as info:
        planner.run()
    [p] = info.value.problems
    assert p.line == 1 and "'First Name'" in p.message and "'first_name'" in p.message


def test_undefined_variable_names_the_closest_column_and_the_hint_names_the_variable(
    tmp_path: Path,
):
    path = write(tmp_path, "First Name,to\nAda,+12125550101\n", "to", "Hi {{ firstname }}")
    planner = Planner(load_campaign(path))
    planner.run()
    [p] = planner.problems
    assert "did you mean first_name (column 'First Name')?" in p.message
    assert "firstname" in (p.hint or "") and "first_name" not in (p.hint or "")


def test_undefined_code_gets_a_hint_about_code(tmp_path: Path):
    path = write(tmp_path, "first_name,to\nAda,+12125550101\n", "to", "Your code: {{ code }}")
    planner = Planner(load_campaign(path))
    planner.run()
    [p] = planner.problems
    assert "'code' is undefined" in p.message and "did you mean" not in p.message
    assert "'code'" in (p.hint or "") and "first_name" not in (p.hint or "")


def test_jsonl_null_error_names_the_variable(tmp_path: Path):
    (tmp_path / "people.jsonl").write_text(
        '{"to": "+12125550101", "first_name": "Ada", "code": null}\n', encoding="utf-8"
    )
    path = tmp_path / "c.yaml"
    path.write_text(
        "version: 1\nid: nulls\nrecipients: {file: people.jsonl}\n"
        "steps:\n  - id: hello\n    text: 'Hi {{ first_name }}, code {{ code }}'\n",
        encoding="utf-8",
    )
    planner = Planner(load_campaign(path))
    planner.run()
    [p] = planner.problems
    assert "'code' is null" in p.message and "code" in (p.hint or "")

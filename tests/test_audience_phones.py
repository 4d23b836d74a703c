"""recipients.default_region: phone numbers as people write them become E.164 (phonenumbers),
impossible ones are located errors with the library's reason, unassigned ones warnings;
suppression entries read with the same region; keys follow the normalised chat."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.phones import Phone, normalize_phone, region_problem
from runner.audience.recipients import ReadStats, check_source, iter_recipients, source_of
from runner.campaign.load import load_campaign
from runner.campaign.loader import load_text
from runner.planning.planner import Planner, iter_plan

CSV = (
    b"\xef\xbb\xbfFirst Name,Mobile Phone\r\n"
    b"Ada,+1 212 555 0101\r\n"
    b"Ben,(312) 555-0102\r\n"
    b"Cy,4155550103\r\n"
    b"Di,555123\r\n"
    b"Ed,(555) 123-4567\r\n"
)


def campaign(
    tmp_path: Path, csv: bytes, region: str | None = "US", suppress: str | None = None
) -> Path:
    (tmp_path / "people.csv").write_bytes(csv)
    lines = ["version: 1", "id: phones", "recipients:", "  file: people.csv", "  to: Mobile Phone"]
    if region:
        lines.append(f"  default_region: {region}")
    if suppress is not None:
        (tmp_path / "optouts.txt").write_text(suppress, encoding="utf-8")
        lines += ["suppress: [optouts.txt]"]
    lines += ["steps:", "  - id: hello", "    text: 'Hi {{ first_name }}'"]
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "written",
    [
        "+1 212 555 0101",
        "(212) 555-0101",
        "2125550101",
        "212.555.0101",
        "1-212-555-0101",
        "+12125550101",
    ],
)
def test_a_number_written_any_usual_way_becomes_the_same_e164(written: str):
    assert normalize_chat(written, "US") == "+12125550101"


def test_without_a_region_the_strict_rule_stays_and_its_hint_names_default_region():
    with pytest.raises(ChatIdError) as info:
        normalize_chat("(212) 555-0101")
    assert "not in E.164 form" in str(info.value) and info.value.phone_like
    assert normalize_chat("+12125550101") == "+12125550101"


def test_impossible_number_is_an_error_with_the_librarys_reason():
    with pytest.raises(ChatIdError) as info:
        normalize_chat("555123", "US")
    assert "too short" in str(info.value) and "US" in str(info.value)
    with pytest.raises(ChatIdError) as info:
        normalize_chat("12345678901234567", "US")
    assert "too long" in str(info.value)


def test_possible_but_unassigned_number_is_accepted_with_a_warning():
    notes: list[Phone] = []
    assert normalize_chat("(555) 123-4567", "US", notes) == "+15551234567"
    assert len(notes) == 1 and "not assigned" in (notes[0].warning or "")
    assert "555" not in (notes[0].warning or "")  # repeated warnings are grouped by their text
    assert normalize_phone("(212) 555-0101", "us").warning is None


def test_an_extension_is_dropped_and_noted():
    notes: list[Phone] = []
    assert normalize_chat("(212) 555-0101 x123", "US", notes) == "+12125550101"
    assert [n.extension for n in notes] == ["123"]


def test_region_codes_are_checked():
    assert region_problem("US") is None and region_problem("gb") is None
    assert "ISO 3166" in (region_problem("USA") or "")
    doc = load_text("recipients: {file: a.csv, default_region: XX}\n", "c.yaml")
    [p] = check_source(doc, source_of(doc, Path(".")))
    assert p.path == "recipients.default_region" and p.line == 1


def test_csv_rows_are_normalised_and_located(tmp_path: Path):
    path = campaign(tmp_path, CSV)
    c = load_campaign(path)
    stats = ReadStats()
    recs = list(iter_recipients(c.doc, c.source, stats))
    assert [r.chat for r in recs] == [
        "+12125550101",
        "+13125550102",
        "+14155550103",
        None,
        "+15551234567",
    ]
    bad = recs[3].problem
    assert bad is not None and bad.line == 5 and "too short" in bad.message
    [w] = stats.problems(c.source)
    assert (w.severity, w.line, w.path) == ("warning", 6, "Mobile Phone") and w.message.startswith(
        "1 phone number(s)"
    )


def test_validate_reports_the_impossible_row_as_an_error_and_the_555_rows_as_one_warning(
    tmp_path: Path,
):
    planner = Planner(load_campaign(campaign(tmp_path, CSV)))
    planner.run()
    errors = [p for p in planner.problems if p.severity == "error"]
    warnings = [p for p in planner.problems if p.severity == "warning"]
    assert [(p.line, "too short" in p.message) for p in errors] == [(5, True)]
    assert [p.line for p in warnings] == [6]
    many = CSV + b"".join(b"X,(555) 123-%04d\r\n" % i for i in range(20))
    planner = Planner(load_campaign(campaign(tmp_path, many)))
    planner.run()
    [w] = [p for p in planner.problems if p.severity == "warning"]
    assert (
        w.message.startswith("21 phone number(s) are possible but not assigned")
        and "people.csv:6" in w.message
    )


def test_without_region_a_formatted_csv_number_is_an_error_suggesting_default_region(
    tmp_path: Path,
):
    planner = Planner(
        load_campaign(
            campaign(tmp_path, b"Mobile Phone,First Name\n(212) 555-0101,Ada\n", region=None)
        )
    )
    planner.run()
    [p] = planner.problems
    assert p.severity == "error" and "default_region" in (p.hint or "")


def test_inline_recipients_are_not_told_about_default_region():
    doc = load_text("recipients:\n  - to: '(212) 555-0101'\n", "c.yaml")
    [rec] = iter_recipients(doc, source_of(doc, Path(".")))
    assert rec.problem is not None and "default_region" not in (rec.problem.hint or "")


def test_suppression_entries_are_read_with_the_same_region(tmp_path: Path):
    path = campaign(
        tmp_path,
        b"Mobile Phone,First Name\n+1 555 123 4567,Ada\n(212) 555-0101,Ben\n",
        suppress="# opt-outs\n(555) 123-4567\n",
    )
    planner = Planner(load_campaign(path))
    reqs = list(planner.requests())
    planner.raise_if_invalid()
    assert [r.recipient for r in reqs] == ["+12125550101"]
    assert planner.summary.suppressed == 1


def test_reformatting_a_number_in_the_csv_keeps_the_same_keys(tmp_path: Path):
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()
    keys_a = [
        r.key
        for r in iter_plan(
            load_campaign(campaign(first, b"Mobile Phone,First Name\n(212) 555-0101,Ada\n"))
        )
    ]
    keys_b = [
        r.key
        for r in iter_plan(
            load_campaign(campaign(second, b"Mobile Phone,First Name\n+1 212-555-0101,Ada\n"))
        )
    ]
    keys_c = [
        r.key
        for r in iter_plan(
            load_campaign(
                campaign(second, b"Mobile Phone,First Name\n+12125550101,Ada\n", region=None)
            )
        )
    ]
    assert keys_a == keys_b == keys_c and len(keys_a) == 1


def test_the_same_person_written_twice_differently_is_a_duplicate(tmp_path: Path):
    path = campaign(
        tmp_path, b"Mobile Phone,First Name\n(212) 555-0101,Ada\n212.555.0101,Ada again\n"
    )
    planner = Planner(load_campaign(path))
    reqs = list(planner.requests())
    planner.raise_if_invalid()
    assert len(reqs) == 1 and planner.summary.duplicates == 1


def test_preview_reads_to_with_the_campaigns_region():
    from click.testing import CliRunner

    from runner.cli import main

    root = Path(__file__).resolve().parent.parent / "campaigns" / "crm-export-welcome.yaml"
    result = CliRunner().invoke(main, ["preview", str(root), "--to", "(555) 201-0103"])
    assert result.exit_code == 0, result.output
    assert "request(s) for +15552010103" in result.output and "Hi there," in result.output

"""Rows as a person reads them (issue 25): rows without a chat id skipped and named (or errors
with recipients.strict), fallback columns, each row's own country, exclusions, suppression
files with any header, one list of warnings for plan and validate, masked hints."""

from __future__ import annotations

import json
from pathlib import Path

from runner.audience.recipients import iter_recipients
from runner.audience.suppress import load_suppression
from runner.campaign.load import load_campaign
from runner.errors import CampaignError
from runner.planning.planner import Planner


def campaign(
    tmp_path: Path,
    data: str,
    recipients: str,
    text: str = "Hi",
    name: str = "people.csv",
    extra: str = "",
) -> Path:
    (tmp_path / name).write_text(data, encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(
        f"version: 1\nid: rows\nrecipients:\n  file: {name}\n{recipients}{extra}"
        f'steps:\n  - id: hello\n    text: "{text}"\n',
        encoding="utf-8",
    )
    return path


def planned(path: Path) -> Planner:
    planner = Planner(load_campaign(path))
    planner.run()
    return planner


def test_rows_without_a_chat_id_are_skipped_with_one_warning_naming_every_row(tmp_path: Path):
    rows = "".join(f"+1212867{5300 + i:04d},P{i}\n" if i % 2 else f",P{i}\n" for i in range(50))
    planner = planned(campaign(tmp_path, "to,name\n" + rows, ""))
    assert planner.collector.errors == []
    [warning] = [p for p in planner.problems if "no phone/email" in p.message]
    assert warning.line == 2 and warning.hint and "recipients.strict" in warning.hint
    # 25 rows (lines 2, 4, …, 50): the first 20 by line, then a count.
    assert (
        "rows 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40 and 5 more"
        in warning.message
    )
    assert planner.summary.recipients == 25 and planner.summary.no_chat == 25


def test_a_last_row_without_a_chat_id_is_not_taken_for_a_footer(tmp_path: Path):
    planner = planned(campaign(tmp_path, "to,name\n+12128675301,A\n,Bea\n", ""))
    assert planner.summary.no_chat == 1 and planner.summary.read_as is None


def test_strict_makes_rows_without_a_chat_id_errors(tmp_path: Path):
    planner = planned(campaign(tmp_path, "to,name\n+12128675301,A\n,B\n", "  strict: true\n"))
    [error] = planner.collector.errors
    assert error.line == 3 and "no phone/email in 'to'" in error.message and error.hint


def test_a_malformed_number_stays_an_error(tmp_path: Path):
    planner = planned(campaign(tmp_path, "to,name\n555123,A\n", "  default_region: US\n"))
    [error] = planner.collector.errors
    assert "too short" in error.message and error.hint


def test_fallback_columns_take_the_first_non_empty(tmp_path: Path):
    data = "Mobile Phone,Phone Number,name\n(415) 867-5301,,A\n,212 867 5303,B\n(415) 867-5302,212 867 5304,C\n"
    planner = planned(
        campaign(tmp_path, data, "  to: [Mobile Phone, Phone Number]\n  default_region: US\n")
    )
    c = planner.campaign
    assert [r.chat for r in iter_recipients(c.doc, c.source)] == [
        "+14158675301",
        "+12128675303",
        "+14158675302",
    ]


def test_a_missing_fallback_column_is_an_error_with_a_guess(tmp_path: Path):
    path = campaign(tmp_path, "Mobile,Phone\n+12128675301,\n", "  to: [Mobile, Phones]\n")
    try:
        planned(path)
    except CampaignError as err:
        [p] = err.problems
        assert "no column 'Phones'" in p.message and "Phone" in (p.hint or "")
    else:
        raise AssertionError("a missing fallback column must be an error")


def test_each_row_reads_its_national_number_in_its_own_country(tmp_path: Path):
    # Under default_region DE alone, the French number became +49639981234 with no word.
    data = "phone,Mailing Country\n06 39 98 12 34,France\n98765 43210,India\n0151 23456789,\n"
    planner = planned(
        campaign(tmp_path, data, "  to: phone\n  country: Mailing Country\n  default_region: DE\n")
    )
    c = planner.campaign
    assert [r.chat for r in iter_recipients(c.doc, c.source)] == [
        "+33639981234",
        "+919876543210",
        "+4915123456789",
    ]


def test_a_number_of_another_country_than_its_row_is_an_error_naming_both(tmp_path: Path):
    data = (
        "phone,country\n+49 151 23456789,FR\n+1 604 867 5309,US\n"  # +1: Canada shares it with US
    )
    planner = planned(campaign(tmp_path, data, "  to: phone\n  country: country\n"))
    [error] = planner.collector.errors
    assert error.line == 2 and "DE (+49)" in error.message and "(FR, +33)" in error.message
    assert "+4915" not in error.message.replace("+4915•••", "")  # masked
    assert error.hint and "country" in error.hint


def test_an_unknown_country_is_an_error(tmp_path: Path):
    planner = planned(
        campaign(
            tmp_path, "phone,country\n0612345678,Atlantis\n", "  to: phone\n  country: country\n"
        )
    )
    [error] = planner.collector.errors
    assert "'Atlantis'" in error.message and error.hint


def test_list_members_are_read_with_the_default_region_and_the_rows_country(tmp_path: Path):
    data = (
        '{"to": ["(415) 555-2671", "(415) 867-5301"], "n": 1}\n'
        '{"to": ["06 12 34 56 78", "06 12 34 56 79"], "country": "France"}\n'
    )
    planner = planned(
        campaign(tmp_path, data, "  country: country\n  default_region: US\n", name="people.jsonl")
    )
    assert planner.collector.errors == []
    c = planner.campaign
    assert [r.chat for r in iter_recipients(c.doc, c.source)] == [
        "+14155552671,+14158675301",
        "+33612345678,+33612345679",
    ]


def test_an_extension_is_a_warning(tmp_path: Path):
    planner = planned(campaign(tmp_path, "to\n(212) 867-5304 x123\n", "  default_region: US\n"))
    [warning] = [p for p in planner.problems if "extension" in p.message]
    assert "x123 dropped: texts cannot reach an extension" in warning.message and warning.hint
    assert any("x123 dropped" in w for w in planner.summary.warnings)


def test_exclude_when_excludes_rows_never_rendered_and_counts_them(tmp_path: Path):
    data = "to,name,Do not text\n+12128675301,Ada,no\n+12128675302,,yes\n+12128675303,Cy,YES\n"
    # The excluded rows have no name: rendered, they would be "Hi !" warnings.
    path = campaign(
        tmp_path,
        data,
        "  exclude_when: do_not_text | lower in ['yes', 'true', '1']\n",
        text="Hi {{ name }}!",
    )
    planner = planned(path)
    s = planner.summary
    assert (s.recipients, s.excluded, s.excluded_by) == (1, 2, "Do not text")
    assert not [p for p in planner.problems if "empty" in p.message]
    assert s.to_dict()["excluded"] == {"recipients": 2, "by": "Do not text"}


def test_exclude_when_with_a_syntax_error_is_located(tmp_path: Path):
    path = campaign(tmp_path, "to\n+12128675301\n", "  exclude_when: 'x in ['\n")
    try:
        load_campaign(path)
    except CampaignError as err:
        [p] = err.problems
        assert p.path == "recipients.exclude_when" and p.line == 5 and p.hint
    else:
        raise AssertionError("a broken condition must be an error")


def test_exclusions_show_in_plan_text_and_markdown(tmp_path: Path, campaign_cli):
    path = campaign(
        tmp_path,
        "to,sms_opt_out\n+12128675301,\n+12128675302,1\n",
        "  exclude_when: sms_opt_out == '1'\n",
    )
    text = campaign_cli("plan", str(path)).stdout
    assert "excluded (sms_opt_out)" in text and "1" in text
    md = campaign_cli("plan", str(path), "--format", "markdown").stdout
    assert "| excluded (sms_opt_out) | 1 |" in md


def suppression(
    tmp_path: Path, name: str, content: bytes, region: str | None = "US"
) -> tuple[set[str], list]:
    (tmp_path / name).write_bytes(content)
    s, problems = load_suppression([name], tmp_path, str(tmp_path / "c.yaml"), region=region)
    return s.entries, problems


def test_a_suppression_csv_with_a_phone_number_header(tmp_path: Path):
    # Was "'Phone Number' is not an E.164 phone", "'customer request' is not…", no hint.
    entries, problems = suppression(
        tmp_path,
        "s.csv",
        b"Phone Number,Reason\n(415) 867-5301,customer request\n+1 212 867 5303,complaint\n",
    )
    assert problems == [] and entries == {"+14158675301", "+12128675303"}


def test_a_suppression_export_in_utf16_tabs_with_an_email_column(tmp_path: Path):
    text = "Name\tE-mail\tMobile\r\nAda\tAda@Example.com\t(415) 867-5301\r\nBen\t\t212 867 5303\r\n"
    entries, problems = suppression(tmp_path, "s.txt", b"\xff\xfe" + text.encode("utf-16-le"))
    assert problems == [] and entries == {"ada@example.com", "+14158675301", "+12128675303"}


def test_a_suppression_csv_without_id_names_uses_the_first_column_holding_ids(tmp_path: Path):
    entries, problems = suppression(tmp_path, "s.csv", b"Name;Contact;Why\nAda;+14158675301;stop\n")
    assert problems == [] and entries == {"+14158675301"}
    entries, problems = suppression(tmp_path, "s2.csv", b"Name,Why\nAda,stop\n")
    [p] = problems
    assert "which column" in p.message and p.hint


def test_plan_prints_the_warnings_validate_prints(tmp_path: Path, campaign_cli):
    # The empty-name "Hi !" warning was in validate only.
    path = campaign(
        tmp_path, "to,name\n+12128675301,Ada\n+12128675302,\n", "", text="Hi {{ name }}!"
    )
    validate = campaign_cli("validate", str(path)).stdout
    warning = "prints 'name', which is empty for 1 recipient(s)"
    assert warning in validate
    for fmt in ("text", "markdown", "json"):
        out = campaign_cli("plan", str(path), "--format", fmt).stdout
        if fmt == "json":
            out = " ".join(json.loads(out)["warnings"])
        assert warning in out and "hint" in out, fmt


def test_errors_for_many_rows_name_every_row(tmp_path: Path):
    # Was "2: the same problem for 1 more recipients", then rows 3 and 5: row 6 never named.
    data = (
        "to,name\n+12128675301,A\n+12128675302,B\n+12128675303,C\n+12128675304,D\n+12128675305,E\n"
    )
    planner = planned(campaign(tmp_path, data, "", text="{{ code }}"))
    errors = planner.collector.errors
    assert [p.line for p in errors] == [2, 2, 3, 4]
    [grouped] = [p for p in errors if "the same problem" in p.message]
    assert "2 more recipients (rows 5, 6)" in grouped.message and all(p.hint for p in errors)


def test_a_masked_number_stays_masked_in_the_hint(tmp_path: Path):
    planner = planned(campaign(tmp_path, "to\n415 867 5301\n", ""))
    [error] = planner.collector.errors
    assert "4158675301" not in (error.message + (error.hint or "")).replace(" ", "")
    assert "•••" in (error.hint or "")


def test_a_comment_is_never_a_header_and_optouts_write_the_id_column():
    from runner.audience.suppress import csv_header, id_column

    assert csv_header("# Chat ids never to message, one a line (phones in E.164, emails)") is None
    assert id_column(csv_header("Name,Phone Number,Reason") or []) == 1
    assert id_column(csv_header("reason,Email,to") or []) == 2

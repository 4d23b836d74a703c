"""Suppression lists: file formats, normalisation, located errors, groups, and that a
suppressed chat is counted but never rendered, planned or shown unmasked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.audience.mask import mask_one
from runner.audience.suppress import Suppression, load_suppression
from runner.campaign.load import load_campaign
from runner.cli import main
from runner.planning.planner import Planner

CAMPAIGN = """\
version: 1
id: sup-test
recipients:
  - to: "+15551230001"
  - to: "ADA@Example.com"
  - to: ["+15551230003", "+15551230004"]
  - to: "+15551230005"
    vars: {name: Eve}
  - to: ["+15551230006", "carl@example.com"]
suppress:
  - lists/optouts.txt
  - lists/staff.csv
steps:
  - id: hello
    text: "hi {{ name | default('there') }}"
"""

OPTOUTS = """\
# Opt-outs, one a line.
+15551230001   # replied STOP

  ada@EXAMPLE.com
"""

STAFF = "name,to,team\nBob,+15551230004,ops\nNobody,,ops\n"

SUPPRESSED = ["+15551230001", "ada@example.com", "+15551230003", "+15551230004"]


def setup(tmp_path: Path, optouts: str = OPTOUTS, staff: str | None = STAFF) -> Path:
    (tmp_path / "lists").mkdir(parents=True, exist_ok=True)
    (tmp_path / "lists" / "optouts.txt").write_text(optouts, encoding="utf-8")
    if staff is not None:
        (tmp_path / "lists" / "staff.csv").write_text(staff, encoding="utf-8")
    path = tmp_path / "c.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    return path


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def load(tmp_path: Path, *names: str) -> tuple[Suppression, list]:
    return load_suppression(list(names), tmp_path, str(tmp_path / "c.yaml"))


# -- file formats ---------------------------------------------------------------------------


def test_plain_list_with_comments_blank_lines_and_normalisation(tmp_path):
    (tmp_path / "a.txt").write_text(
        "# header comment\n+15551230001  # STOP 2026-03-01\n\n"
        "   \n  Ada@Example.COM \r\n#+15551239999\n",
        encoding="utf-8",
    )
    s, problems = load(tmp_path, "a.txt")
    assert problems == []
    assert s.entries == {"+15551230001", "ada@example.com"}


def test_csv_with_a_to_column(tmp_path):
    (tmp_path / "a.csv").write_text(
        "\ufeffname,to,note\nBob,+15551230004,x\nEmpty,,y\nAl,AL@EXAMPLE.COM,z\n", encoding="utf-8"
    )
    s, problems = load(tmp_path, "a.csv")
    assert problems == []
    assert s.entries == {"+15551230004", "al@example.com"}


def test_csv_with_only_a_to_column(tmp_path):
    (tmp_path / "a.csv").write_text("to\n+15551230004\n", encoding="utf-8")
    s, problems = load(tmp_path, "a.csv")
    assert problems == [] and s.entries == {"+15551230004"}


def test_several_files_are_merged(tmp_path):
    (tmp_path / "a.txt").write_text("+15551230001\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("to\nbob@example.com\n", encoding="utf-8")
    s, problems = load(tmp_path, "a.txt", "b.csv")
    assert problems == [] and s.entries == {"+15551230001", "bob@example.com"}


def test_empty_file_suppresses_nobody(tmp_path):
    (tmp_path / "a.txt").write_text("", encoding="utf-8")
    s, problems = load(tmp_path, "a.txt")
    assert problems == [] and len(s) == 0 and "+15551230001" not in s


@pytest.mark.parametrize(
    "content,line,needle",
    [
        ("+15551230001\n+1 555 123 0002\n", 2, "+15551230002"),
        ("# c\n\n(555) 123-0003\n", 3, "+15551230003"),
        ("+15551230001\nnot-an-id\n", 2, None),
        ("name,to\nA,+15551230001\nB,+1 555 123 0009\n", 3, "+15551230009"),
        ("to\nbob@\n", 2, None),
    ],
)
def test_bad_entries_are_errors_with_file_and_line(tmp_path, content, line, needle):
    (tmp_path / "bad.txt").write_text(content, encoding="utf-8")
    s, problems = load(tmp_path, "bad.txt")
    assert len(problems) == 1
    p = problems[0]
    assert p.severity == "error"
    assert p.file == str(tmp_path / "bad.txt") and p.line == line
    if needle:  # the fix is shown, masked like the message (issue 25)
        assert mask_one(needle) in (p.hint or "") and needle not in (p.hint or "")


def test_bad_entry_fails_validate_and_plan(tmp_path):
    path = setup(tmp_path, optouts=OPTOUTS + "+1 555 123 0009\n")
    for cmd in (["validate", str(path)], ["plan", str(path)]):
        result = cli(*cmd)
        assert result.exit_code == 1
        assert f"{tmp_path / 'lists' / 'optouts.txt'}:5" in result.output
        assert not isinstance(result.exception, Exception)


def test_missing_suppression_file_is_a_located_error(tmp_path):
    path = setup(tmp_path, staff=None)
    for cmd in (
        ["validate", "--format", "json", str(path)],
        ["plan", "--format", "json", str(path)],
    ):
        result = cli(*cmd)
        assert result.exit_code == 1
        doc = json.loads(result.stdout)
        problems = doc["files"][0]["errors"] if "files" in doc else doc["problems"]
        assert len(problems) == 1
        p = problems[0]
        assert "not found" in p["message"] and "staff.csv" in p["message"]
        assert (p["file"], p["line"], p["path"]) == (str(path), 12, "suppress[1]")


# -- membership -----------------------------------------------------------------------------


def test_group_is_suppressed_when_any_member_is():
    s = Suppression({"+15551230004", "bob@example.com"})
    assert "+15551230003,+15551230004" in s
    assert "+15551230009,bob@example.com" in s
    assert "+15551230003,+15551230005" not in s
    assert "+15551230004" in s and "+1555123000" not in s


def test_suppressing_a_group_entry_suppresses_its_members(tmp_path):
    # A list in the file is taken member by member: the safe reading of "never message these".
    (tmp_path / "a.txt").write_text("+15551230004, Bob@example.com\n", encoding="utf-8")
    s, problems = load(tmp_path, "a.txt")
    assert problems == []
    assert "bob@example.com" in s and "+15551230004" in s


# -- planning -------------------------------------------------------------------------------


def test_suppressed_chats_are_never_rendered(tmp_path):
    path = setup(tmp_path)
    path.write_text(path.read_text().replace("name | default('there')", "name"), encoding="utf-8")
    result = cli("validate", "--format", "json", str(path))
    # Only Eve has `name`. A suppressed recipient is not rendered, so its undefined variable
    # is no error; the one other recipient (not suppressed) is.
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["files"][0]["errors"]
    assert len(errors) == 1, errors
    assert errors[0]["line"] == 9  # the carl group


def test_plan_out_has_no_line_for_a_suppressed_chat(tmp_path):
    path = setup(tmp_path)
    path.write_text(
        path.read_text().replace('  - to: ["+15551230006", "carl@example.com"]\n', ""),
        encoding="utf-8",
    )
    out = tmp_path / "plan.jsonl"
    result = cli("plan", str(path), "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()[1:]]  # after the header
    assert [x["recipient"] for x in lines] == ["+15551230005"]
    summary = json.loads(result.stdout)
    assert summary["suppressed"] == 3 and summary["recipients"] == 1
    assert any("suppressed" in w for w in summary["warnings"])
    raw = out.read_text() + result.stdout
    for chat in SUPPRESSED:
        assert chat not in raw


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_suppressed_chats_never_appear_unmasked(tmp_path, fmt):
    path = setup(tmp_path)
    path.write_text(
        path.read_text().replace("default('there')", "default(recipient)"), encoding="utf-8"
    )
    result = cli("plan", str(path), "--format", fmt, "--previews", "100")
    assert result.exit_code == 0, result.output
    for chat in SUPPRESSED + ["ADA@Example.com"]:
        assert chat not in result.output
    # The count is there.
    assert "3" in result.output and "suppress" in result.output.lower()


def test_suppression_is_read_anew_by_every_planner(tmp_path):
    path = setup(tmp_path)
    campaign = load_campaign(path)
    assert Planner(campaign).run().suppressed == 3
    with open(tmp_path / "lists" / "optouts.txt", "a", encoding="utf-8") as fh:
        fh.write("+15551230005  # opted out 2026-11-26 via STOP\n")
    summary = Planner(campaign).run()
    assert summary.suppressed == 4 and summary.recipients == 1  # the carl group is left


def test_preview_of_a_suppressed_recipient_says_so(tmp_path):
    path = setup(tmp_path)
    out = tmp_path / "ada.html"
    result = cli(
        "preview", str(path), "--to", "+15551230001", "--format", "html", "--out", str(out)
    )
    assert not isinstance(result.exception, Exception)
    # Was exit 0 with nothing written (issue 25).
    assert result.exit_code == 1 and "suppress" in result.output.lower() and not out.exists()

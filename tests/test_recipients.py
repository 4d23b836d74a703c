"""Recipients from inline lists, CSV and JSONL files: values, line numbers, duplicates, and
problems that point at the row."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.audience.recipients import Recipient, check_source, iter_recipients, source_of
from runner.campaign.loader import load_text
from runner.errors import CampaignError


def read(tmp_path: Path, name: str, content: bytes, spec: str = "") -> list[Recipient]:
    (tmp_path / name).write_bytes(content)
    doc = load_text(f"recipients: {{file: {name}{spec}}}\n", str(tmp_path / "c.yaml"))
    source = source_of(doc, tmp_path)
    assert check_source(doc, source) == []
    return list(iter_recipients(doc, source))


def refused(tmp_path: Path, name: str, content: bytes, spec: str = ""):
    with pytest.raises(CampaignError) as info:
        read(tmp_path, name, content, spec)
    [problem] = info.value.problems
    return problem


def ok(recs: list[Recipient]) -> list[tuple[str | None, dict, int | None, bool]]:
    assert [r.problem for r in recs] == [None] * len(recs)
    return [(r.chat, r.vars, r.line, r.duplicate) for r in recs]


# --- inline ------------------------------------------------------------------------------


def test_inline_recipients_keep_their_line_and_path():
    doc = load_text(
        "recipients:\n"
        "  - to: ' +15551230001 '\n"
        "    vars: {first_name: Ada}\n"
        "  - to: [Bob@Example.com, '+15551230002']\n"
        "  - to: '+15551230001'\n"
        "    vars: {first_name: Again}\n",
        "c.yaml",
    )
    source = source_of(doc, Path("."))
    assert source.inline
    recs = list(iter_recipients(doc, source))
    assert ok(recs) == [
        ("+15551230001", {"first_name": "Ada"}, 2, False),
        ("+15551230002,bob@example.com", {}, 4, False),
        ("+15551230001", {"first_name": "Again"}, 5, True),
    ]
    assert [r.path for r in recs] == ["recipients[0]", "recipients[1]", "recipients[2]"]


def test_inline_bad_to_is_located_at_its_row():
    doc = load_text("recipients:\n  - to: '+15551230001'\n  - to: '555 0100'\n", "c.yaml")
    recs = list(iter_recipients(doc, source_of(doc, Path("."))))
    assert recs[0].problem is None
    p = recs[1].problem
    assert (p.file, p.line, p.path, p.layer) == ("c.yaml", 3, "recipients[1].to", "recipients")


# --- CSV ---------------------------------------------------------------------------------


def test_csv_values_lines_blank_lines_bom_and_duplicates(tmp_path: Path):
    content = (
        "\ufeffto, first_name ,note\n"
        '+15551230001,Ada,"two\nlines"\n'
        "\n"
        '+15551230002,,"a, b"\n'
        " +15551230001 ,Again,x\n"
    ).encode()
    assert ok(read(tmp_path, "r.csv", content)) == [
        ("+15551230001", {"first_name": "Ada", "note": "two\nlines"}, 2, False),
        ("+15551230002", {"first_name": "", "note": "a, b"}, 5, False),  # empty cell: ""
        ("+15551230001", {"first_name": "Again", "note": "x"}, 6, True),  # first row wins
    ]


def test_csv_custom_to_column_and_index(tmp_path: Path):
    recs = read(
        tmp_path, "r.csv", b"name,phone\nAda,+15551230001\nBen,+15551230002\n", ", to: phone"
    )
    assert ok(recs) == [
        ("+15551230001", {"name": "Ada"}, 2, False),
        ("+15551230002", {"name": "Ben"}, 3, False),
    ]
    assert [r.index for r in recs] == [0, 1]


def test_csv_format_from_option_when_the_extension_does_not_say(tmp_path: Path):
    assert ok(read(tmp_path, "r.txt", b"to\n+15551230001\n", ", format: csv")) == [
        ("+15551230001", {}, 2, False)
    ]


def test_csv_missing_to_column_suggests_the_closest(tmp_path: Path):
    p = refused(tmp_path, "r.csv", b"phone,first_name\n+15551230001,Ada\n", ", to: phnoe")
    assert p.message == "the CSV has no column 'phnoe'" and p.line == 1
    assert "did you mean 'phone'?" in p.hint


def test_csv_missing_default_to_column_lists_the_columns(tmp_path: Path):
    p = refused(tmp_path, "r.csv", b"mobile,first_name\n+15551230001,Ada\n")
    assert p.message == "the CSV has no column 'to'"
    assert "mobile, first_name" in p.hint


def test_csv_repeated_header(tmp_path: Path):
    p = refused(tmp_path, "r.csv", b"to,name,name\n")
    assert "repeats column(s) name" in p.message and p.line == 1


def test_csv_empty(tmp_path: Path):
    p = refused(tmp_path, "r.csv", b"")
    assert "empty" in p.message and p.line == 1


@pytest.mark.parametrize("row, cells", [(b"+15551230002,Ben,extra", 3), (b"+15551230002", 1)])
def test_csv_row_with_the_wrong_number_of_cells(tmp_path: Path, row: bytes, cells: int):
    recs = read(tmp_path, "r.csv", b"to,name\n+15551230001,Ada\n" + row + b"\n+15551230003,Cy\n")
    assert [r.problem is None for r in recs] == [True, False, True]
    p = recs[1].problem
    assert p.message == f"this row has {cells} cells, the header has 2" and p.line == 3
    assert p.file == str(tmp_path / "r.csv")


def test_csv_bad_phone_points_at_its_line(tmp_path: Path):
    recs = read(tmp_path, "r.csv", b"to,name\n+15551230001,Ada\n\n(555) 010-0100,Ben\n")
    p = recs[1].problem
    assert p.line == 4 and "is not in E.164 form" in p.message and p.path == "to"


def test_csv_in_a_windows_code_page_is_read_in_it(tmp_path: Path):
    # Was "the file is not UTF-8 text (byte 0xe9 …)": Excel's Western CSV is cp1252.
    recs = read(tmp_path, "r.csv", b"to,name\n+15551230001,Ada\n+15551230002,Ren\xe9e\n")
    assert [r.vars["name"] for r in recs] == ["Ada", "Renée"]


def test_csv_utf8_broken_after_the_sample_points_at_the_line(tmp_path: Path):
    from runner.audience import textfile

    head = "to,name\n" + "".join(f"+1555123{i:04d},Zoë\n" for i in range(20_000))
    content = head.encode() + b"+15551239999,Ren\xe9e\n"
    assert len(content) > textfile._SAMPLE
    p = refused(tmp_path, "r.csv", content)
    assert "not UTF-8" in p.message and p.line == 20_002 and p.hint


# --- JSONL -------------------------------------------------------------------------------


def test_jsonl_values_blank_lines_lists_and_nesting(tmp_path: Path):
    content = (
        b'\n{"to": ["+15551230002", "Bob@example.com"], "n": 1}\n  \n'
        b'{"to": "+15551230003", "plan": {"name": "Plus", "price": 49}}\n'
    )
    assert ok(read(tmp_path, "r.jsonl", content)) == [
        ("+15551230002,bob@example.com", {"n": 1}, 2, False),
        ("+15551230003", {"plan": {"name": "Plus", "price": 49}}, 4, False),
    ]


def test_ndjson_extension_is_jsonl(tmp_path: Path):
    assert ok(read(tmp_path, "r.ndjson", b'{"to": "+15551230001"}\n')) == [
        ("+15551230001", {}, 1, False)
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        (b'{"to": "+15551230002",}', "invalid JSON"),
        (b'["+15551230002"]', "each line must be a JSON object"),
        (b'"+15551230002"', "each line must be a JSON object"),
        (b'{"to": 15551230002}', "'to' was read as the number •••0002"),  # data values are masked
        (b'{"To": "+15551230002"}', "this line has no key 'to'"),
    ],
)
def test_jsonl_bad_line_is_located(tmp_path: Path, line: bytes, message: str):
    recs = read(
        tmp_path, "r.jsonl", b'{"to": "+15551230001"}\n\n' + line + b'\n{"to": "+15551230003"}\n'
    )
    assert [r.problem is None for r in recs] == [True, False, True]
    p = recs[1].problem
    assert message in p.message and p.line == 3 and p.file == str(tmp_path / "r.jsonl")


def test_jsonl_missing_key_suggests_the_closest(tmp_path: Path):
    [rec] = read(tmp_path, "r.jsonl", b'{"phnoe": "+15551230001"}\n', ", to: phone")
    assert "did you mean 'phnoe'?" in rec.problem.hint


def test_jsonl_not_utf8_points_at_the_line(tmp_path: Path):
    p = refused(
        tmp_path, "r.jsonl", b'{"to": "+15551230001"}\n{"to": "+15551230002", "n": "Ren\xe9e"}\n'
    )
    assert "not UTF-8" in p.message
    assert p.line == 2


# --- the source itself -------------------------------------------------------------------


def test_missing_file_and_unknown_format_are_located_in_the_campaign(tmp_path: Path):
    doc = load_text("version: 1\nrecipients:\n  file: nobody.csv\n", "c.yaml")
    [p] = check_source(doc, source_of(doc, tmp_path))
    assert "recipients file not found" in p.message and p.line == 3 and p.file == "c.yaml"
    doc = load_text("recipients:\n  file: people.numbers\n", "c.yaml")
    [p] = check_source(doc, source_of(doc, tmp_path))
    assert "cannot tell the format of 'people.numbers'" in p.message and p.line == 2


def test_rows_stream_one_at_a_time(tmp_path: Path):
    # A broken row far down does not stop the rows before it from being yielded first.
    (tmp_path / "r.csv").write_bytes(
        b"to\n"
        + b"".join(b"+1555123%04d\n" % i for i in range(1, 6))
        + b'"'
        + b"x" * 200_000
        + b'"\n'
    )
    doc = load_text("recipients: {file: r.csv}\n", str(tmp_path / "c.yaml"))
    rows = iter_recipients(doc, source_of(doc, tmp_path))
    assert [next(rows).chat for _ in range(5)] == [f"+1555123{i:04d}" for i in range(1, 6)]
    with pytest.raises(CampaignError) as info:
        next(rows)
    assert info.value.problems[0].line == 7

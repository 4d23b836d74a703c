"""Hostile .xlsx recipients files (issue 22, item 14): parsed through defusedxml, inflated
size and cell count capped, `<dimension>` ignored; each refusal a located error, fast, and in
bounded memory."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from runner import limits
from runner.audience.xlsx import read_rows
from runner.errors import CampaignError


def _workbook(path: Path, rows: list[list]) -> Path:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def _rewrite(path: Path, part: str, edit) -> Path:
    """The workbook with one part's XML replaced by ``edit(old)`` (others copied)."""
    with zipfile.ZipFile(path) as src:
        items = [(i, src.read(i.filename)) for i in src.infolist()]
    names = [i.filename for i, _ in items]
    if part not in names:
        items.append((zipfile.ZipInfo(part), b""))
    out = path.with_name("hostile-" + path.name)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in items:
            dst.writestr(info.filename, edit(data) if info.filename == part else data)
    return out


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    _, rows = read_rows(str(path))
    return list(rows)


SHEET = "xl/worksheets/sheet1.xml"


def test_a_stale_dimension_hides_no_row(tmp_path: Path) -> None:
    book = _workbook(
        tmp_path / "a.xlsx", [["to"], ["+15553000001"], ["+15553000002"], ["+15553000003"]]
    )
    stale = _rewrite(
        book,
        SHEET,
        lambda xml: re.sub(rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:A2"/>', xml),
    )
    assert [cells for _, cells in _rows(stale)] == [
        ["to"],
        ["+15553000001"],
        ["+15553000002"],
        ["+15553000003"],
    ]


def test_a_huge_dimension_does_not_pad_rows(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "a.xlsx", [["to"], ["+15553000001"]])
    huge = _rewrite(
        book,
        SHEET,
        lambda xml: re.sub(
            rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1:XFD1048576"/>', xml
        ),
    )
    assert _rows(huge) == [(1, ["to"]), (2, ["+15553000001"])]


def test_entities_are_refused_with_a_located_error(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "a.xlsx", [["to"], ["x"]])
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    bomb = _rewrite(
        book,
        SHEET,
        lambda xml: (
            laughs + re.sub(rb"^<\?xml[^>]*\?>", b"", xml).replace(b"<t>x</t>", b"<t>&lol2;</t>")
        ),
    )
    with pytest.raises(CampaignError) as err:
        _rows(bomb)
    problem = err.value.problems[0]
    assert problem.file == str(bomb) and "cannot read the workbook" in problem.message


def test_a_shared_strings_bomb_is_refused_before_it_inflates(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "a.xlsx", [["to"], ["x"]])
    big = b"<sst><si><t>" + b"a" * (limits.MAX_XLSX_SHARED_STRINGS + 1) + b"</t></si></sst>"
    bomb = _rewrite(book, "xl/sharedStrings.xml", lambda xml: big)
    assert bomb.stat().st_size < 200_000  # kilobytes on disk
    with pytest.raises(CampaignError, match="shared strings inflate to"):
        _rows(bomb)


def test_too_many_cells_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_XLSX_CELLS", 50)
    book = _workbook(tmp_path / "a.xlsx", [["to"]] + [[f"+1555300{i:04d}"] for i in range(60)])
    with pytest.raises(CampaignError) as err:
        _rows(book)
    problem = err.value.problems[0]
    assert "more than 50 cells" in problem.message and problem.line == 51
    assert problem.file.endswith("a.xlsx[Sheet]")

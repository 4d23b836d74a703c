"""Recipients from an Excel workbook (.xlsx), streamed row by row with openpyxl's read-only
mode, so a 100,000-row sheet costs the memory of one row, not of the workbook.

Cells become the text a person sees in Excel, not Python's spelling of the value: a phone
stored as a number is `15551234567` (never `15551234567.0` or `1.5551234567E10`), a date is an
ISO date (`2026-03-01`), TRUE/FALSE stay words.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from runner.errors import CampaignError, Problem


def cell_text(value: Any) -> str:
    """What a cell holds, as the text a person typed or sees."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        # The shortest text that reads back as the same number, without an exponent.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value).strip() if isinstance(value, str) else str(value)


def sheet_label(file: str, sheet: str) -> str:
    """How problems name a row's place: `audience.xlsx[Sheet1]` (then `:37`, the row)."""
    return f"{file}[{sheet}]"


def read_rows(path: str, sheet: str | None = None) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """The sheet's name and its rows as (row number, cell texts), empty rows included.

    Raises CampaignError for a file that is not a workbook or a sheet that does not exist."""
    from openpyxl import load_workbook  # a few hundred ms to import: only for workbooks

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
        raise CampaignError(Problem(f"cannot read the workbook: {type(err).__name__}: {str(err)[:120]}",
                                    file=path, layer="recipients",
                                    hint="save it from the spreadsheet as an Excel workbook (.xlsx), or export CSV UTF-8")) from None
    names = wb.sheetnames
    if sheet is None:
        if not names:
            wb.close()
            raise CampaignError(Problem("the workbook has no sheet", file=path, layer="recipients"))
        name = names[0]
    elif sheet in names:
        name = sheet
    else:
        wb.close()
        raise CampaignError(Problem(f"the workbook has no sheet '{sheet}'", file=path, path="recipients.sheet",
                                    layer="recipients", hint=f"its sheets are: {', '.join(names)}"))
    ws = wb[name]

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            expected = 1
            for row in ws.iter_rows(values_only=False):
                cells = [c for c in row if getattr(c, "row", None) is not None]
                first = cells[0].row if cells else None
                number = first if first is not None else expected
                # read-only sheets leave out rows with no cell at all: they count as empty rows
                for missing in range(expected, number):
                    yield missing, []
                yield number, [cell_text(c.value) for c in row]
                expected = number + 1
        finally:
            wb.close()

    return name, rows()

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

from runner import limits
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


_SAVE_HINT = "save it from the spreadsheet as an Excel workbook (.xlsx), or export CSV UTF-8"
_SHARED_STRINGS = "xl/sharedStrings.xml"


def _unreadable(path: str, err: BaseException) -> CampaignError:
    return CampaignError(
        Problem(
            f"cannot read the workbook: {type(err).__name__}: {str(err)[:120]}",
            file=path,
            layer="recipients",
            hint=_SAVE_HINT,
        )
    )


def check_archive(path: str) -> None:
    """Refuse a workbook whose parts would inflate past the caps (runner.limits), before any is
    inflated: a zip bomb of shared strings is kilobytes on disk and gigabytes in memory.
    zipfile never inflates a part past the size its directory declares, so the declared sizes
    bound what is read."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise _unreadable(path, err) from None
    total = sum(i.file_size for i in infos)
    biggest = max(infos, key=lambda i: i.file_size, default=None)
    shared = next((i.file_size for i in infos if i.filename == _SHARED_STRINGS), 0)
    hint = "export the sheet as CSV UTF-8, or split the workbook"
    if total > limits.MAX_XLSX_INFLATED:
        raise CampaignError(
            Problem(
                f"the workbook inflates to {total:,} bytes (at most {limits.MAX_XLSX_INFLATED:,})",
                file=path,
                layer="recipients",
                hint=hint,
            )
        )
    if shared > limits.MAX_XLSX_SHARED_STRINGS:
        raise CampaignError(
            Problem(
                f"the workbook's shared strings inflate to {shared:,} bytes "
                f"(at most {limits.MAX_XLSX_SHARED_STRINGS:,})",
                file=path,
                layer="recipients",
                hint=hint,
            )
        )
    if biggest is not None and biggest.file_size > limits.MAX_XLSX_PART:
        raise CampaignError(
            Problem(
                f"the workbook's part {biggest.filename} inflates to "
                f"{biggest.file_size:,} bytes (at most {limits.MAX_XLSX_PART:,})",
                file=path,
                layer="recipients",
                hint=hint,
            )
        )


def read_rows(path: str, sheet: str | None = None) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """The sheet's name and its rows as (row number, cell texts), empty rows included.

    The XML is parsed by defusedxml (openpyxl uses it when it is installed, and it is a
    dependency: no entity expansion, no external entities); the archive's sizes and the
    number of cells are capped (runner.limits); the sheet's ``<dimension>`` is ignored (a
    stale one would hide rows, a huge one would pad every row to 16,384 columns).

    Raises CampaignError for a file that is not a workbook, a sheet that does not exist, or
    one over a cap."""
    import openpyxl  # a few hundred ms to import: only for workbooks

    if not openpyxl.DEFUSEDXML:
        raise CampaignError(
            Problem(
                "cannot read .xlsx files safely: openpyxl is not using defusedxml",
                file=path,
                layer="recipients",
                hint="install defusedxml, and do not set OPENPYXL_DEFUSEDXML=False",
            )
        )
    check_archive(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError) as err:
        # defusedxml's refusals (entities, DTDs) are ValueErrors; broken XML is a SyntaxError.
        raise _unreadable(path, err) from None
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
        raise CampaignError(
            Problem(
                f"the workbook has no sheet '{sheet}'",
                file=path,
                path="recipients.sheet",
                layer="recipients",
                hint=f"its sheets are: {', '.join(names)}",
            )
        )
    ws = wb[name]
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()  # read every row there is, each as long as it is

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            expected = 1
            count = 0
            for row in ws.iter_rows(values_only=False):
                cells = [c for c in row if getattr(c, "row", None) is not None]
                first = cells[0].row if cells else None
                number = first if first is not None else expected
                count += len(row)
                if count > limits.MAX_XLSX_CELLS:
                    raise CampaignError(
                        Problem(
                            f"the sheet has more than {limits.MAX_XLSX_CELLS:,} cells (empty ones "
                            "count)",
                            file=sheet_label(path, name),
                            line=number,
                            layer="recipients",
                            hint="delete the unused rows and columns, or export CSV UTF-8",
                        )
                    )
                # read-only sheets leave out rows with no cell at all: they count as empty rows
                for missing in range(expected, number):
                    yield missing, []
                texts = [cell_text(c.value) for c in row]
                while texts and not texts[-1]:
                    texts.pop()  # trailing empty cells say nothing
                yield number, texts
                expected = number + 1
        except (KeyError, ValueError, SyntaxError, zipfile.BadZipFile, OSError) as err:
            raise _unreadable(path, err) from None
        finally:
            wb.close()

    return name, rows()

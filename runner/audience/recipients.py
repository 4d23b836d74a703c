"""Recipients: inline in the campaign, or streamed from a CSV or JSONL file, each with its line.

Rows are read one at a time (a 1,000,000-row file costs the memory of one row plus a set of
hashes for duplicate detection), normalised (see chatids.py), and yielded with the problem
that makes them unusable, if any, so validation can report every bad row and planning can stop
at the first.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.audience import xlsx
from runner.audience.chatids import REGION_HINT, ChatIdError, normalize_chat
from runner.audience.columns import ColumnClash, Columns, read_header
from runner.audience.mask import excerpt, mask_text, safe_message
from runner.audience.phones import region_problem
from runner.errors import CampaignError, Problem, did_you_mean
from runner.source.document import Document
from runner.source.paths import PathError, confine, open_regular

FORMATS = ("csv", "jsonl", "xlsx")
_LISTED_COLUMNS = 20  # column names an error lists; a header can have 200,000


@dataclass(slots=True)
class Recipient:
    index: int  # 0-based position among the campaign's recipients (rows), duplicates included
    chat: str | None  # normalised chat id; None when `to` is invalid
    vars: dict[str, Any]
    file: str
    line: int | None
    path: str = ""  # JSON path of an inline recipient ("recipients[3]")
    problem: Problem | None = None
    duplicate: bool = False  # the same chat appeared earlier: not sent again
    zone: str | None = None  # its IANA time zone, set by the planner when the campaign has a schedule
    # Variable name -> the header it comes from ("first_name" -> "First Name"), shared by all rows.
    columns: dict[str, str] | None = None

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class RecipientSource:
    """Where a campaign's recipients come from."""

    inline: bool
    file: str  # the campaign file (inline) or the data file
    to_column: str = "to"
    format: str = "inline"  # "inline" | "csv" | "jsonl" | "xlsx"
    region: str | None = None  # recipients.default_region: national phone numbers' country
    sheet: str | None = None  # the workbook's sheet (xlsx); None: the first


@dataclass
class ReadStats:
    """What reading the rows noted without a problem: rows whose cells are all empty (skipped),
    phones accepted though their country does not assign them (the fictional 555 range)."""

    empty_rows: int = 0
    first_empty: list[str] | None = None
    unassigned: int = 0
    first_unassigned: list[Recipient] = field(default_factory=list)
    unassigned_note: str = ""

    def note_unassigned(self, rec: Recipient, note: str) -> None:
        self.unassigned += 1
        self.unassigned_note = note
        if len(self.first_unassigned) < 3:
            self.first_unassigned.append(rec)

    def problems(self, source: RecipientSource) -> list[Problem]:
        """One warning for all the unassigned phones, at the first row, with the count."""
        if not self.unassigned:
            return []
        first = self.first_unassigned[0]
        return [Problem(
            f"{self.unassigned:,} phone number(s) are {self.unassigned_note}; they are still sent "
            f"(e.g. {', '.join(r.where() for r in self.first_unassigned)})",
            file=first.file, line=first.line,
            path=f"{first.path}.to" if first.path else source.to_column, severity="warning",
            layer="recipients", hint="check the numbers; a real customer's number is assigned")]

    def skipped(self, where: str) -> None:
        self.empty_rows += 1
        if self.first_empty is None:
            self.first_empty = []
        if len(self.first_empty) < 3:
            self.first_empty.append(where)

    def warning(self) -> str | None:
        if not self.empty_rows:
            return None
        return (f"{self.empty_rows:,} row(s) with every cell empty were skipped "
                f"(e.g. {', '.join(self.first_empty or [])})")


def source_of(doc: Document, base_dir: Path) -> RecipientSource:
    spec = doc.data.get("recipients")
    if isinstance(spec, list):
        return RecipientSource(inline=True, file=doc.file)
    region = _region(spec)
    file = str(spec.get("file", ""))
    fmt = spec.get("format") or Path(file).suffix.lower().lstrip(".")
    if fmt == "ndjson":
        fmt = "jsonl"
    path = base_dir / file
    sheet = spec.get("sheet")
    return RecipientSource(inline=False, file=str(path), to_column=str(spec.get("to", "to")), format=fmt,
                           region=region, sheet=str(sheet) if sheet is not None else None)


def _region(spec: object) -> str | None:
    region = spec.get("default_region") if isinstance(spec, dict) else None
    return region.upper() if isinstance(region, str) and region_problem(region) is None else None


def check_source(doc: Document, source: RecipientSource) -> list[Problem]:
    """Problems with the source itself (missing file, unknown format), before any row is read."""
    spec = doc.data.get("recipients")
    if isinstance(spec, dict) and spec.get("default_region") is not None:
        message = region_problem(spec["default_region"])
        if message is not None:
            return [doc.problem(("recipients", "default_region"), message,
                                "use the two-letter country code of the numbers written without +, e.g. US, GB, DE")]
    if source.inline:
        return []
    if source.format not in FORMATS:
        return [doc.problem(("recipients", "file"),
                            f"cannot tell the format of '{Path(source.file).name}'",
                            "use a .csv, .jsonl or .xlsx file, or set recipients.format: csv|jsonl|xlsx")]
    if source.sheet is not None and source.format != "xlsx":
        return [doc.problem(("recipients", "sheet"), "'sheet' applies to .xlsx workbooks only",
                            "remove it, or point recipients.file at the workbook")]
    name = str(doc.data["recipients"].get("file", ""))
    try:
        confine(name, Path(doc.file).parent, doc.file, "recipients file")
    except PathError as err:
        return [doc.problem(("recipients", "file"), err.message, err.hint)]
    return []


def iter_recipients(doc: Document, source: RecipientSource,
                    stats: ReadStats | None = None) -> Iterator[Recipient]:
    """Every recipient row in order, normalised, duplicates flagged (the first row wins).

    ``stats`` counts the rows skipped silently (every cell empty)."""
    stats = stats if stats is not None else ReadStats()
    if source.inline:
        rows = _inline_rows(doc)
    elif source.format == "csv":
        rows = _csv_rows(source, stats)
    elif source.format == "xlsx":
        rows = _xlsx_rows(source, stats)
    else:
        rows = _jsonl_rows(source)
    seen: set[int] = set()
    notes: list[str] = []
    for rec, to in rows:
        if rec.problem is None:
            try:
                rec.chat = normalize_chat(to, source.region, notes)
            except ChatIdError as err:
                message = str(err)
                if not rec.path:
                    # A data file's cell (maybe not even meant as a phone): quote an excerpt,
                    # masked; an inline recipient's value is the campaign's own text.
                    message = safe_message(message, to) if isinstance(to, str) else mask_text(message)
                hint = err.hint
                if err.phone_like and not source.inline:
                    hint = f"{hint}{REGION_HINT}"
                rec.problem = Problem(message, file=rec.file, line=rec.line,
                                      path=f"{rec.path}.to" if rec.path else source.to_column,
                                      hint=hint, layer="recipients")
            else:
                if notes:
                    stats.note_unassigned(rec, notes[0])
                    notes.clear()
                # hash() of a str is stable within one process, which is all dedup needs; a set
                # of ints keeps 1,000,000 rows well under 100 MB.
                h = hash(rec.chat)
                if h in seen:
                    rec.duplicate = True
                else:
                    seen.add(h)
        yield rec


def _inline_rows(doc: Document) -> Iterator[tuple[Recipient, Any]]:
    for i, item in enumerate(doc.data.get("recipients") or []):
        line, _col = doc.locate(("recipients", i))
        rec = Recipient(index=i, chat=None, vars={}, file=doc.file, line=line, path=f"recipients[{i}]")
        if not isinstance(item, dict):
            rec.problem = doc.problem(("recipients", i), "a recipient must be a mapping with 'to'",
                                      "write: - to: \"+15551230001\"", layer="recipients")
            yield rec, None
            continue
        v = item.get("vars") or {}
        rec.vars = dict(v) if isinstance(v, dict) else {}
        yield rec, item.get("to")


def text_lines(path: str, layer: str = "recipients", shown: str | None = None) -> Iterator[str]:
    """The file's lines as text, decoded one at a time so a bad byte is reported at its line
    (a text-mode file reports only that some chunk failed). Line ends are kept for csv.
    Only a regular file is read (a FIFO or a device would block or never end). ``shown``: the
    name problems give the file (the path as the campaign wrote it)."""
    try:
        fh = open_regular(path)
    except PathError as err:
        raise CampaignError(Problem(err.message, file=shown or path, layer=layer, hint=err.hint)) from None
    except (OSError, ValueError) as err:
        raise CampaignError(Problem(f"cannot read file: {getattr(err, 'strerror', None) or err}",
                                    file=shown or path, layer=layer, hint="check the path")) from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a byte-order mark: spreadsheets often save CSV with one
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CampaignError(Problem(
                    f"the file is not UTF-8 text (byte {raw[err.start]:#04x} at column {err.start + 1})",
                    file=shown or path, line=lineno, column=err.start + 1, layer=layer,
                    hint="save it as UTF-8 (in a spreadsheet: CSV UTF-8)",
                )) from None


def _columns(source: RecipientSource, header: list[str], file: str, line: int = 1) -> tuple[Columns, int]:
    """The header's columns and the index of the chat id column; CampaignError if unusable."""
    try:
        columns = read_header(header)
    except ColumnClash as err:
        raise CampaignError(Problem(str(err), file=file, line=line, layer="recipients", hint=err.hint)) from None
    to_i = columns.index(source.to_column)
    if to_i is None:
        guess = did_you_mean(source.to_column, list(columns.header))
        listed = ", ".join(excerpt(h) for h in columns.header[:_LISTED_COLUMNS])
        more = (f" and {len(columns.header) - _LISTED_COLUMNS:,} more"
                if len(columns.header) > _LISTED_COLUMNS else "")
        hint = (f"did you mean '{guess}'? set recipients.to: {guess}" if guess else
                f"the columns are: {listed}{more}; set recipients.to to the one holding phones/emails")
        raise CampaignError(Problem(f"the {source.format.upper()} has no column '{source.to_column}'",
                                    file=file, line=line, path="recipients.to", hint=hint,
                                    layer="recipients"))
    return columns, to_i


def _csv_rows(source: RecipientSource, stats: ReadStats) -> Iterator[tuple[Recipient, Any]]:
    lines = text_lines(source.file)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise CampaignError(Problem("the CSV file is empty; it needs a header row",
                                    file=source.file, line=1, layer="recipients")) from None
    except csv.Error as err:
        raise CampaignError(Problem(f"cannot read the CSV header: {err}", file=source.file,
                                    line=1, layer="recipients")) from None
    header = [h.strip() for h in header]
    # Counted once (header.count per name was quadratic: 600 s for 200,000 columns).
    dupes = sorted(h for h, n in Counter(header).items() if n > 1)
    if dupes:
        named = ", ".join(excerpt(h) for h in dupes[:_LISTED_COLUMNS])
        more = f" and {len(dupes) - _LISTED_COLUMNS:,} more" if len(dupes) > _LISTED_COLUMNS else ""
        raise CampaignError(Problem(f"the CSV header repeats column(s) {named}{more}",
                                    file=source.file, line=1, layer="recipients",
                                    hint="give every column a distinct name"))
    columns, to_i = _columns(source, header, source.file)
    spellings = dict(columns.spellings)
    width = len(header)
    index = 0
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise CampaignError(Problem(f"cannot read the CSV: {err}", file=source.file,
                                        line=reader.line_num, layer="recipients")) from None
        start, line = line, reader.line_num + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if not "".join(row).strip():
            stats.skipped(f"{source.file}:{start}")  # ",,,," from a spreadsheet's empty row
            continue
        rec = Recipient(index=index, chat=None, vars={}, file=source.file, line=start,
                        columns=spellings)
        index += 1
        if len(row) != width:
            rec.problem = Problem(
                f"this row has {len(row)} cells, the header has {width}", file=source.file,
                line=start, layer="recipients",
                hint="quote cells that contain commas; every row needs one cell per column",
            )
            yield rec, None
            continue
        rec.vars = columns.variables(row, skip=to_i)
        yield rec, row[to_i]


def _xlsx_rows(source: RecipientSource, stats: ReadStats) -> Iterator[tuple[Recipient, Any]]:
    sheet, rows = xlsx.read_rows(source.file, source.sheet)
    label = xlsx.sheet_label(source.file, sheet)
    header: list[str] | None = None
    for number, cells in rows:
        if header is None:
            if not any(cells):
                continue  # rows above the header
            while cells and not cells[-1]:
                cells.pop()
            header = cells
            columns, to_i = _columns(source, header, label, number)
            spellings = dict(columns.spellings)
            width = len(header)
            index = 0
            continue
        if not any(c.strip() for c in cells):
            stats.skipped(f"{label}:{number}")
            continue
        if len(cells) > width and any(cells[width:]):
            extra = next(j for j in range(width, len(cells)) if cells[j])
            rec = Recipient(index=index, chat=None, vars={}, file=label, line=number)
            index += 1
            rec.problem = Problem(f"this row has a value in column {extra + 1}, which has no header",
                                  file=label, line=number, layer="recipients",
                                  hint="give the column a header, or clear the cell")
            yield rec, None
            continue
        cells = (cells + [""] * width)[:width]
        rec = Recipient(index=index, chat=None, vars=columns.variables(cells, skip=to_i),
                        file=label, line=number, columns=spellings)
        index += 1
        yield rec, cells[to_i]
    if header is None:
        raise CampaignError(Problem("the sheet is empty; it needs a header row", file=label,
                                    line=1, layer="recipients"))


def _jsonl_rows(source: RecipientSource) -> Iterator[tuple[Recipient, Any]]:
    index = 0
    for lineno, text in enumerate(text_lines(source.file), start=1):
        if not text.strip():
            continue
        rec = Recipient(index=index, chat=None, vars={}, file=source.file, line=lineno)
        index += 1
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            rec.problem = Problem(f"invalid JSON: {err.msg}", file=source.file, line=lineno,
                                  column=err.colno, layer="recipients",
                                  hint="each line must be one JSON object")
            yield rec, None
            continue
        except (ValueError, RecursionError) as err:  # a 5,000-digit number, deep nesting
            rec.problem = Problem(f"cannot read this JSON line: {err.__class__.__name__}: {str(err)[:80]}",
                                  file=source.file, line=lineno, layer="recipients",
                                  hint="keep values to ordinary sizes and nesting")
            yield rec, None
            continue
        if not isinstance(obj, dict):
            rec.problem = Problem("each line must be a JSON object", file=source.file,
                                  line=lineno, layer="recipients",
                                  hint='write {"to": "+15551230001", "first_name": "Ada"}')
            yield rec, None
            continue
        if source.to_column not in obj:
            guess = did_you_mean(source.to_column, [k for k in obj if isinstance(k, str)])
            rec.problem = Problem(
                f"this line has no key '{source.to_column}'", file=source.file, line=lineno,
                path=source.to_column, layer="recipients",
                hint=f"did you mean '{guess}'?" if guess else "add the recipient's phone/email",
            )
            yield rec, None
            continue
        rec.vars = {k: v for k, v in obj.items() if k != source.to_column}
        yield rec, obj[source.to_column]

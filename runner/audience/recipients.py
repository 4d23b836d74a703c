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
from itertools import chain, islice
from pathlib import Path
from typing import Any

from runner.audience import xlsx
from runner.audience.chatids import REGION_HINT, ChatIdError, normalize_chat
from runner.audience.columns import ColumnClash, Columns, normalize_column, read_header
from runner.audience.countries import country_code, region_of_country
from runner.audience.mask import excerpt, mask_hint, mask_one, mask_text, safe_message
from runner.audience.phones import Phone, region_problem
from runner.audience.textfile import DELIMITER_NAMES, open_text, sniff_delimiter
from runner.errors import CampaignError, Problem, did_you_mean
from runner.source.document import Document
from runner.source.paths import PathError, confine

FORMATS = ("csv", "jsonl", "xlsx")
_LISTED_COLUMNS = 20  # column names an error lists; a header can have 200,000
LISTED_ROWS = 20  # rows a grouped warning names; the rest are counted
_HEADER_SEARCH = 50  # rows above the header (an export's title block) looked through
_SAMPLE_LINES = 200  # lines the delimiter is told from
_FOOTER_MAX = 20  # rows a footer may have; more such rows at the end are data


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
    zone: str | None = (
        None  # its IANA time zone, set by the planner when the campaign has a schedule
    )
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
    fallbacks: tuple[str, ...] = ()  # more chat id columns (`to: [A, B]`): the first non-empty wins
    country_column: str | None = None  # recipients.country: each row's own region
    strict: bool = False  # recipients.strict: a row without a chat id is an error, not skipped

    @property
    def to_columns(self) -> tuple[str, ...]:
        return (self.to_column, *self.fallbacks)

    def to_label(self) -> str:
        """How a message names the chat id column(s): 'Mobile Phone' or 'Phone Number'."""
        return " or ".join(f"'{c}'" for c in self.to_columns)


@dataclass
class Layout:
    """How a data file was read, said by validate and plan when it is not plain."""

    encoding: str = "UTF-8"
    delimiter: str | None = ","  # None: a workbook
    header_line: int = 1
    footer_rows: int = 0
    footer_line: int | None = None

    def describe(self) -> str | None:
        """ "read as UTF-16, tab-delimited, header on row 4, 2 footer rows skipped", or None."""
        parts = []
        if not self.encoding.startswith("UTF-8"):
            parts.append(f"read as {self.encoding}")
        if self.delimiter not in (None, ","):
            parts.append(DELIMITER_NAMES[self.delimiter])
        if self.header_line != 1:
            parts.append(f"header on row {self.header_line}")
        if self.footer_rows:
            parts.append(
                f"{self.footer_rows} footer row{'s' if self.footer_rows != 1 else ''} "
                f"skipped (from row {self.footer_line})"
            )
        return ", ".join(parts) if parts else None


@dataclass
class RowGroup:
    """Rows with one thing in common, named in one warning: the first LISTED_ROWS and a count."""

    count: int = 0
    rows: list[str] = field(default_factory=list)
    file: str | None = None
    line: int | None = None

    def add(self, file: str, line: int | None, where: str) -> None:
        if not self.count:
            self.file, self.line = file, line
        self.count += 1
        if len(self.rows) < LISTED_ROWS:
            # The warning stands at the first row's file: the others by their line alone.
            self.rows.append(str(line) if line is not None and file == self.file else where)

    def named(self) -> str:
        """ "rows 5, 9, 12" ("… and 180 more" past LISTED_ROWS)."""
        more = f" and {self.count - len(self.rows):,} more" if self.count > len(self.rows) else ""
        label = "row" if self.count == 1 else "rows"
        return f"{label} {', '.join(self.rows)}{more}"


@dataclass
class ReadStats:
    """What reading the rows noted without a problem: rows whose cells are all empty (skipped),
    phones accepted though their country does not assign them (the fictional 555 range)."""

    empty_rows: int = 0
    first_empty: list[str] | None = None
    unassigned: int = 0
    first_unassigned: list[Recipient] = field(default_factory=list)
    unassigned_note: str = ""
    no_chat: RowGroup = field(default_factory=RowGroup)  # rows whose chat id cells are empty
    extensions: RowGroup = field(default_factory=RowGroup)  # phones written with an extension
    extension_example: str = ""
    layout: Layout | None = None  # a CSV or workbook: how it was read

    def note_extension(self, rec: Recipient, extension: str) -> None:
        if not self.extensions.count:
            self.extension_example = extension
        self.extensions.add(rec.file, rec.line, rec.where())

    def note_unassigned(self, rec: Recipient, note: str) -> None:
        self.unassigned += 1
        self.unassigned_note = note
        if len(self.first_unassigned) < 3:
            self.first_unassigned.append(rec)

    def problems(self, source: RecipientSource) -> list[Problem]:
        """One warning for each kind of row noted (unassigned phones, rows without a chat id,
        phone extensions), at the first such row, naming the rows."""
        out = []
        if self.no_chat.count:
            g = self.no_chat
            out.append(
                Problem(
                    f"{g.count:,} row(s) have no phone/email in {source.to_label()} and were skipped: "
                    f"{g.named()}",
                    file=g.file,
                    line=g.line,
                    path=source.to_column,
                    severity="warning",
                    layer="recipients",
                    hint="fill in the chat id, or name another column to fall back on "
                    "(recipients.to: [Mobile Phone, Phone Number]); recipients.strict: true makes "
                    "these rows errors",
                )
            )
        if self.extensions.count:
            g = self.extensions
            out.append(
                Problem(
                    f"x{self.extension_example} dropped: texts cannot reach an extension "
                    f"({g.count:,} number(s) with an extension, {g.named()})",
                    file=g.file,
                    line=g.line,
                    path=source.to_column,
                    severity="warning",
                    layer="recipients",
                    hint="the message goes to the main number; put a mobile number in the row to reach "
                    "the person",
                )
            )
        if not self.unassigned:
            return out
        first = self.first_unassigned[0]
        return out + [
            Problem(
                f"{self.unassigned:,} phone number(s) are {self.unassigned_note}; they are still sent "
                f"(e.g. {', '.join(r.where() for r in self.first_unassigned)})",
                file=first.file,
                line=first.line,
                path=f"{first.path}.to" if first.path else source.to_column,
                severity="warning",
                layer="recipients",
                hint="check the numbers; a real customer's number is assigned",
            )
        ]

    def skipped(self, where: str) -> None:
        self.empty_rows += 1
        if self.first_empty is None:
            self.first_empty = []
        if len(self.first_empty) < 3:
            self.first_empty.append(where)

    def warning(self) -> str | None:
        if not self.empty_rows:
            return None
        return (
            f"{self.empty_rows:,} row(s) with every cell empty were skipped "
            f"(e.g. {', '.join(self.first_empty or [])})"
        )


def source_of(doc: Document, base_dir: Path) -> RecipientSource:
    spec = doc.data.get("recipients")
    if isinstance(spec, list):
        return RecipientSource(inline=True, file=doc.file)
    region = _region(spec)
    file = str(spec.get("file", ""))
    fmt = spec.get("format") or Path(file).suffix.lower().lstrip(".")
    if fmt == "ndjson":
        fmt = "jsonl"
    elif fmt in ("tsv", "txt"):  # Excel's "Unicode text" is a .txt; the delimiter is detected
        fmt = "csv"
    path = base_dir / file
    sheet = spec.get("sheet")
    to = spec.get("to", "to")
    columns = [str(c) for c in to] if isinstance(to, list) and to else [str(to)]
    country = spec.get("country")
    return RecipientSource(
        inline=False,
        file=str(path),
        to_column=columns[0],
        format=fmt,
        region=region,
        sheet=str(sheet) if sheet is not None else None,
        fallbacks=tuple(columns[1:]),
        country_column=str(country) if country is not None else None,
        strict=spec.get("strict") is True,
    )


def _region(spec: object) -> str | None:
    region = spec.get("default_region") if isinstance(spec, dict) else None
    return region.upper() if isinstance(region, str) and region_problem(region) is None else None


def check_source(doc: Document, source: RecipientSource) -> list[Problem]:
    """Problems with the source itself (missing file, unknown format), before any row is read."""
    spec = doc.data.get("recipients")
    if isinstance(spec, dict) and spec.get("default_region") is not None:
        message = region_problem(spec["default_region"])
        if message is not None:
            return [
                doc.problem(
                    ("recipients", "default_region"),
                    message,
                    "use the two-letter country code of the numbers written without +, e.g. US, GB, DE",
                )
            ]
    if source.inline:
        return []
    if source.format not in FORMATS:
        return [
            doc.problem(
                ("recipients", "file"),
                f"cannot tell the format of '{Path(source.file).name}'",
                "use a .csv, .jsonl or .xlsx file, or set recipients.format: csv|jsonl|xlsx",
            )
        ]
    if source.sheet is not None and source.format != "xlsx":
        return [
            doc.problem(
                ("recipients", "sheet"),
                "'sheet' applies to .xlsx workbooks only",
                "remove it, or point recipients.file at the workbook",
            )
        ]
    name = str(doc.data["recipients"].get("file", ""))
    try:
        confine(name, Path(doc.file).parent, doc.file, "recipients file")
    except PathError as err:
        return [doc.problem(("recipients", "file"), err.message, err.hint)]
    return []


def iter_recipients(
    doc: Document, source: RecipientSource, stats: ReadStats | None = None
) -> Iterator[Recipient]:
    """Every recipient row in order, normalised, duplicates flagged (the first row wins).

    ``stats`` counts the rows skipped without a problem (every cell empty, no chat id) and
    says how the file was read."""
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
    notes: list[Phone] = []
    index = 0
    for rec, cell in rows:
        to = cell.to
        # The usual row (a non-blank string) is settled by the first test alone.
        if (
            not (type(to) is str and to.strip())
            and rec.problem is None
            and not source.inline
            and _blank(to)
        ):
            if not source.strict:
                stats.no_chat.add(rec.file, rec.line, rec.where())
                continue
            rec.problem = Problem(
                f"this row has no phone/email in {source.to_label()}",
                file=rec.file,
                line=rec.line,
                path=source.to_column,
                layer="recipients",
                hint="fill it in, or remove recipients.strict to skip such rows",
            )
        rec.index = index
        index += 1
        region, stated = source.region, None
        if rec.problem is None and cell.country is not None and cell.country.strip():
            stated = region_of_country(cell.country)
            if stated is None:
                rec.problem = Problem(
                    f"'{excerpt(cell.country)}' in column '{source.country_column}' is not a country "
                    "the runner knows",
                    file=rec.file,
                    line=rec.line,
                    path=str(source.country_column),
                    layer="recipients",
                    hint="write the country's ISO code (FR) or its name in English (France)",
                )
            else:
                region = stated
        if rec.problem is None:
            try:
                rec.chat = normalize_chat(to, region, notes)
            except ChatIdError as err:
                rec.problem = _chat_problem(err, rec, to, source)
            else:
                if stated is not None:
                    rec.problem = _other_country(rec, rec.chat, stated, cell.country or "", source)
                for note in notes:
                    if note.warning:
                        stats.note_unassigned(rec, note.warning)
                    if note.extension:
                        stats.note_extension(rec, note.extension)
                notes.clear()
                if rec.problem is None:
                    # hash() of a str is stable within one process, which is all dedup needs; a
                    # set of ints keeps 1,000,000 rows well under 100 MB.
                    h = hash(rec.chat)
                    if h in seen:
                        rec.duplicate = True
                    else:
                        seen.add(h)
        yield rec


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x, once per row
class Cells:
    """What a row holds for reading its chat: the chat id (the first non-empty of the `to`
    columns) and the country cell (None without recipients.country)."""

    to: Any
    country: str | None = None


_NO_CELLS = Cells(None)


def _blank(to: Any) -> bool:
    return (
        to is None or (isinstance(to, str) and not to.strip()) or (isinstance(to, list) and not to)
    )


def _first(values: list[Any]) -> Any:
    """The first non-empty of a row's chat id cells (`to: [Mobile Phone, Phone Number]`)."""
    if len(values) == 1:
        return values[0]
    for v in values:
        if not _blank(v):
            return v
    return values[0] if values else None


def _chat_problem(err: ChatIdError, rec: Recipient, to: Any, source: RecipientSource) -> Problem:
    message, hint = str(err), err.hint
    if not rec.path:
        # A data file's cell (maybe not even meant as a phone): quote an excerpt, masked; an
        # inline recipient's value is the campaign's own text. The hint may spell the number
        # again ("write it as '+4915…'"): masked too.
        message = safe_message(message, to) if isinstance(to, str) else mask_text(message)
        if hint and isinstance(to, str):
            hint = mask_hint(hint, to)
    if err.phone_like and not source.inline:
        hint = f"{hint}{REGION_HINT}"
    return Problem(
        message,
        file=rec.file,
        line=rec.line,
        path=f"{rec.path}.to" if rec.path else source.to_column,
        hint=hint or "check the value",
        layer="recipients",
    )


def _other_country(
    rec: Recipient, chat: str, region: str, cell: str, source: RecipientSource
) -> Problem | None:
    """An error when a phone of the row is another country's than the row's own."""
    import phonenumbers

    want = country_code(region)
    for member in chat.split(","):
        if not member.startswith("+"):
            continue
        number = phonenumbers.parse(member)
        if number.country_code != want:
            other = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
            return Problem(
                f"{mask_one(member)} is a number of {other} (+{number.country_code}), but the row's "
                f"country is '{excerpt(cell)}' ({region}, +{want})",
                file=rec.file,
                line=rec.line,
                path=source.to_column,
                layer="recipients",
                hint=f"fix the number or the row's '{source.country_column}'; a number written "
                "without + is read as a number of the row's country",
            )
    return None


def _inline_rows(doc: Document) -> Iterator[tuple[Recipient, Cells]]:
    for i, item in enumerate(doc.data.get("recipients") or []):
        line, _col = doc.locate(("recipients", i))
        rec = Recipient(
            index=i, chat=None, vars={}, file=doc.file, line=line, path=f"recipients[{i}]"
        )
        if not isinstance(item, dict):
            rec.problem = doc.problem(
                ("recipients", i),
                "a recipient must be a mapping with 'to'",
                'write: - to: "+15551230001"',
                layer="recipients",
            )
            yield rec, _NO_CELLS
            continue
        v = item.get("vars") or {}
        rec.vars = dict(v) if isinstance(v, dict) else {}
        yield rec, Cells(item.get("to"))


def text_lines(
    path: str, layer: str = "recipients", shown: str | None = None, *, utf8: bool = False
) -> Iterator[str]:
    """The file's lines as text in the encoding it was saved in (textfile.py), line ends kept
    for csv. Only a regular file is read (a FIFO or a device would block or never end).
    ``shown``: the name problems give the file (the path as the campaign wrote it)."""
    return open_text(path, layer, shown, utf8=utf8).lines


def _columns(
    source: RecipientSource, header: list[str], file: str, line: int = 1
) -> tuple[Columns, list[int], int | None]:
    """The header's columns, the indexes of the chat id columns and of the country column;
    CampaignError if unusable."""
    try:
        columns = read_header(header)
    except ColumnClash as err:
        raise CampaignError(
            Problem(str(err), file=file, line=line, layer="recipients", hint=err.hint)
        ) from None
    wanted = list(source.to_columns) + ([source.country_column] if source.country_column else [])
    found: list[int] = []
    for j, name in enumerate(wanted):
        i = columns.index(name)
        if i is None:
            key = "recipients.country" if j >= len(source.to_columns) else "recipients.to"
            guess = did_you_mean(name, list(columns.header))
            listed = ", ".join(excerpt(h) for h in columns.header[:_LISTED_COLUMNS])
            more = (
                f" and {len(columns.header) - _LISTED_COLUMNS:,} more"
                if len(columns.header) > _LISTED_COLUMNS
                else ""
            )
            what = "phones/emails" if key == "recipients.to" else "each row's country"
            hint = (
                f"did you mean '{guess}'? set {key}: {guess}"
                if guess
                else f"the columns are: {listed}{more}; set {key} to the one holding {what}"
            )
            raise CampaignError(
                Problem(
                    f"the {source.format.upper()} has no column '{name}'",
                    file=file,
                    line=line,
                    path=key,
                    hint=hint,
                    layer="recipients",
                )
            )
        found.append(i)
    country = found.pop() if source.country_column else None
    return columns, found, country


def _names_header(source: RecipientSource):  # noqa: ANN202 - a predicate
    """Whether a row is the header: it holds a chat id column's name (either spelling)."""
    wanted = {c.strip() for c in source.to_columns}
    keys = {normalize_column(c) for c in source.to_columns}

    def is_header(row: list[str]) -> bool:
        return any(c.strip() in wanted or normalize_column(c) in keys for c in row if c)

    return is_header


def _footer_like(cells: list[str], to_i: list[int], width: int, short: bool) -> bool:
    """A row a report prints below its data: no chat id and at most one cell filled, on a line
    of its own (fewer cells than the header, ``short``: a CSV) or, in the first column alone,
    a sentence ("Prepared by the sales team; do not forward.")."""
    for i in to_i:  # a loop, not any(): this runs for every row
        if i < len(cells) and cells[i].strip():
            return False
    filled = [j for j, c in enumerate(cells) if c.strip()]
    if not filled:
        return True  # a blank row between the data and its footer
    if len(filled) > 1:
        return False
    if short and len(cells) < width:
        return True
    return filled == [0] and 0 not in to_i and _sentence(cells[0])


def _sentence(text: str) -> bool:
    words = text.split()
    return len(words) >= 3 or ":" in text or "©" in text or "(c)" in text.lower()


def _prose(cells: list[str]) -> bool:
    text = " ".join(c.strip() for c in cells if c.strip())
    return any(ch.isalpha() for ch in text)


def _without_footer(
    rows: Iterator[tuple[int, list[str]]],
    to_i: list[int],
    width: int,
    layout: Layout,
    *,
    short: bool,
) -> Iterator[tuple[int, list[str]]]:
    """The rows below the header, less a footer ("Copyright …", "Generated By …"): rows at the
    end of the file without a chat id, at most one cell filled, one of them prose. Such rows
    are held back until a row of data follows (then they are data) or the file ends."""
    held: list[tuple[int, list[str]]] = []
    t0 = to_i[0]
    for line, cells in rows:
        if not held and len(cells) > t0 and cells[t0].strip():
            yield line, cells  # the usual row: a chat id in the first `to` column
            continue
        if _footer_like(cells, to_i, width, short):
            held.append((line, cells))
            if len(held) > _FOOTER_MAX:
                yield from held
                held.clear()
            continue
        if held:
            yield from held
            held.clear()
        yield line, cells
    if held and any(_prose(c) for _, c in held):
        filled = [line for line, c in held if any(x.strip() for x in c)]
        layout.footer_rows, layout.footer_line = len(filled), filled[0]
        return
    yield from held


def _find_header(
    rows: Iterator[tuple[int, list[str]]],
    source: RecipientSource,
) -> tuple[int, list[str], Iterator[tuple[int, list[str]]]] | None:
    """The header row (the first holding a chat id column's name within the first rows, else
    the first non-empty row, which _columns then explains) and the rows after it."""
    is_header = _names_header(source)
    looked: list[tuple[int, list[str]]] = []
    for line, cells in rows:
        if not any(c.strip() for c in cells):
            continue
        if is_header(cells):
            return line, cells, rows
        looked.append((line, cells))
        if len(looked) >= _HEADER_SEARCH:
            break
    if not looked:
        return None
    line, cells = looked[0]
    return line, cells, chain(looked[1:], rows)


def _csv_rows(source: RecipientSource, stats: ReadStats) -> Iterator[tuple[Recipient, Cells]]:
    text = open_text(source.file)
    sample = list(islice(text.lines, _SAMPLE_LINES))
    delimiter = sniff_delimiter(sample, _names_header(source))
    layout = stats.layout = Layout(encoding=text.encoding, delimiter=delimiter)
    reader = csv.reader(chain(sample, text.lines), delimiter=delimiter)

    def physical() -> Iterator[tuple[int, list[str]]]:
        line = 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise CampaignError(
                    Problem(
                        f"cannot read the CSV: {err}",
                        file=source.file,
                        line=reader.line_num,
                        layer="recipients",
                        hint="check the quotes of this line: a cell that "
                        "opens a quote must close it",
                    )
                ) from None
            start, line = line, reader.line_num + 1
            yield start, row

    found = _find_header(physical(), source)
    if found is None:
        raise CampaignError(
            Problem(
                "the CSV file is empty; it needs a header row",
                file=source.file,
                line=1,
                layer="recipients",
                hint="the first row names the columns, e.g. to,first_name",
            )
        )
    header_line, header, rest = found
    layout.header_line = header_line
    header = [h.strip() for h in header]
    # Counted once (header.count per name was quadratic: 600 s for 200,000 columns).
    dupes = sorted(h for h, n in Counter(header).items() if n > 1 and h)
    if dupes:
        named = ", ".join(excerpt(h) for h in dupes[:_LISTED_COLUMNS])
        more = f" and {len(dupes) - _LISTED_COLUMNS:,} more" if len(dupes) > _LISTED_COLUMNS else ""
        raise CampaignError(
            Problem(
                f"the CSV header repeats column(s) {named}{more}",
                file=source.file,
                line=header_line,
                layer="recipients",
                hint="give every column a distinct name",
            )
        )
    columns, to_i, country_i = _columns(source, header, source.file, header_line)
    spellings = dict(columns.spellings)
    width = len(header)
    skip = set(to_i)
    for start, row in _without_footer(rest, to_i, width, layout, short=True):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if not "".join(row).strip():
            stats.skipped(f"{source.file}:{start}")  # ",,,," from a spreadsheet's empty row
            continue
        rec = Recipient(
            index=0, chat=None, vars={}, file=source.file, line=start, columns=spellings
        )
        if len(row) != width:
            rec.problem = Problem(
                f"this row has {len(row)} cells, the header has {width}",
                file=source.file,
                line=start,
                layer="recipients",
                hint=f"quote cells that contain '{delimiter}'; every row needs one cell per column",
            )
            yield rec, _NO_CELLS
            continue
        rec.vars = columns.variables(row, skip=skip)
        yield (
            rec,
            Cells(
                _first([row[i] for i in to_i]), row[country_i] if country_i is not None else None
            ),
        )


def _xlsx_rows(source: RecipientSource, stats: ReadStats) -> Iterator[tuple[Recipient, Cells]]:
    sheet, rows = xlsx.read_rows(source.file, source.sheet)
    label = xlsx.sheet_label(source.file, sheet)
    layout = stats.layout = Layout(encoding="UTF-8", delimiter=None)
    found = _find_header(rows, source)
    if found is None:
        raise CampaignError(
            Problem(
                "the sheet is empty; it needs a header row",
                file=label,
                line=1,
                layer="recipients",
                hint="the first row names the columns, e.g. to, first_name",
            )
        )
    header_line, header, rest = found
    layout.header_line = header_line
    header = list(header)
    while header and not header[-1]:
        header.pop()
    columns, to_i, country_i = _columns(source, header, label, header_line)
    spellings = dict(columns.spellings)
    width = len(header)
    skip = set(to_i)
    for number, cells in _without_footer(rest, to_i, width, layout, short=False):
        if not any(c.strip() for c in cells):
            stats.skipped(f"{label}:{number}")
            continue
        if len(cells) > width and any(cells[width:]):
            extra = next(j for j in range(width, len(cells)) if cells[j])
            rec = Recipient(index=0, chat=None, vars={}, file=label, line=number)
            rec.problem = Problem(
                f"this row has a value in column {extra + 1}, which has no header",
                file=label,
                line=number,
                layer="recipients",
                hint="give the column a header, or clear the cell",
            )
            yield rec, _NO_CELLS
            continue
        cells = (cells + [""] * width)[:width]
        rec = Recipient(
            index=0,
            chat=None,
            vars=columns.variables(cells, skip=skip),
            file=label,
            line=number,
            columns=spellings,
        )
        yield (
            rec,
            Cells(
                _first([cells[i] for i in to_i]),
                cells[country_i] if country_i is not None else None,
            ),
        )


def _jsonl_rows(source: RecipientSource) -> Iterator[tuple[Recipient, Cells]]:
    keys = source.to_columns
    for lineno, text in enumerate(text_lines(source.file, utf8=True), start=1):
        if not text.strip():
            continue
        rec = Recipient(index=0, chat=None, vars={}, file=source.file, line=lineno)
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            rec.problem = Problem(
                f"invalid JSON: {err.msg}",
                file=source.file,
                line=lineno,
                column=err.colno,
                layer="recipients",
                hint="each line must be one JSON object",
            )
            yield rec, _NO_CELLS
            continue
        except (ValueError, RecursionError) as err:  # a 5,000-digit number, deep nesting
            rec.problem = Problem(
                f"cannot read this JSON line: {err.__class__.__name__}: {str(err)[:80]}",
                file=source.file,
                line=lineno,
                layer="recipients",
                hint="keep values to ordinary sizes and nesting",
            )
            yield rec, _NO_CELLS
            continue
        if not isinstance(obj, dict):
            rec.problem = Problem(
                "each line must be a JSON object",
                file=source.file,
                line=lineno,
                layer="recipients",
                hint='write {"to": "+15551230001", "first_name": "Ada"}',
            )
            yield rec, _NO_CELLS
            continue
        if not any(k in obj for k in keys):
            guess = did_you_mean(source.to_column, [k for k in obj if isinstance(k, str)])
            rec.problem = Problem(
                f"this line has no key '{source.to_column}'",
                file=source.file,
                line=lineno,
                path=source.to_column,
                layer="recipients",
                hint=f"did you mean '{guess}'?" if guess else "add the recipient's phone/email",
            )
            yield rec, _NO_CELLS
            continue
        rec.vars = {k: v for k, v in obj.items() if k not in keys}
        country = obj.get(source.country_column) if source.country_column else None
        yield (
            rec,
            Cells(
                _first([obj.get(k) for k in keys]), country if isinstance(country, str) else None
            ),
        )

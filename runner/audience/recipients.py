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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.mask import excerpt, mask_text, safe_message
from runner.campaign.loader import Document
from runner.campaign.paths import PathError, confine, open_regular
from runner.errors import CampaignError, Problem, did_you_mean

FORMATS = ("csv", "jsonl")
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

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True)
class RecipientSource:
    """Where a campaign's recipients come from."""

    inline: bool
    file: str  # the campaign file (inline) or the data file
    to_column: str = "to"
    format: str = "inline"  # "inline" | "csv" | "jsonl"


def source_of(doc: Document, base_dir: Path) -> RecipientSource:
    spec = doc.data.get("recipients")
    if isinstance(spec, list):
        return RecipientSource(inline=True, file=doc.file)
    file = str(spec.get("file", ""))
    fmt = spec.get("format") or Path(file).suffix.lower().lstrip(".")
    if fmt == "ndjson":
        fmt = "jsonl"
    path = base_dir / file
    return RecipientSource(inline=False, file=str(path), to_column=str(spec.get("to", "to")), format=fmt)


def check_source(doc: Document, source: RecipientSource) -> list[Problem]:
    """Problems with the source itself (missing file, unknown format), before any row is read."""
    if source.inline:
        return []
    if source.format not in FORMATS:
        return [doc.problem(("recipients", "file"),
                            f"cannot tell the format of '{Path(source.file).name}'",
                            "use a .csv or .jsonl file, or set recipients.format: csv|jsonl")]
    name = str(doc.data["recipients"].get("file", ""))
    try:
        confine(name, Path(doc.file).parent, doc.file, "recipients file")
    except PathError as err:
        return [doc.problem(("recipients", "file"), err.message, err.hint)]
    return []


def _is_file(path: str | Path) -> bool:
    try:
        return Path(path).is_file()
    except OSError:  # a name too long for the file system, and the like
        return False


def iter_recipients(doc: Document, source: RecipientSource) -> Iterator[Recipient]:
    """Every recipient row in order, normalised, duplicates flagged (the first row wins)."""
    if source.inline:
        rows = _inline_rows(doc)
    elif source.format == "csv":
        rows = _csv_rows(source)
    else:
        rows = _jsonl_rows(source)
    seen: set[int] = set()
    for rec, to in rows:
        if rec.problem is None:
            try:
                rec.chat = normalize_chat(to)
            except ChatIdError as err:
                message = str(err)
                if not rec.path:
                    # A data file's cell (maybe not even meant as a phone): quote an excerpt,
                    # masked; an inline recipient's value is the campaign's own text.
                    message = safe_message(message, to) if isinstance(to, str) else mask_text(message)
                rec.problem = Problem(message, file=rec.file, line=rec.line,
                                      path=f"{rec.path}.to" if rec.path else source.to_column,
                                      hint=err.hint, layer="recipients")
            else:
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


def _csv_rows(source: RecipientSource) -> Iterator[tuple[Recipient, Any]]:
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
    if source.to_column not in header:
        guess = did_you_mean(source.to_column, header)
        listed = ", ".join(excerpt(h) for h in header[:_LISTED_COLUMNS])
        more = f" and {len(header) - _LISTED_COLUMNS:,} more" if len(header) > _LISTED_COLUMNS else ""
        hint = (f"did you mean '{guess}'? set recipients.to: {guess}" if guess else
                f"the columns are: {listed}{more}; set recipients.to to the one holding phones/emails")
        raise CampaignError(Problem(f"the CSV has no column '{source.to_column}'",
                                    file=source.file, line=1, path="recipients.to", hint=hint,
                                    layer="recipients"))
    # Counted once (header.count per name was quadratic: 600 s for 200,000 columns).
    dupes = sorted(h for h, n in Counter(header).items() if n > 1)
    if dupes:
        named = ", ".join(excerpt(h) for h in dupes[:_LISTED_COLUMNS])
        more = f" and {len(dupes) - _LISTED_COLUMNS:,} more" if len(dupes) > _LISTED_COLUMNS else ""
        raise CampaignError(Problem(f"the CSV header repeats column(s) {named}{more}",
                                    file=source.file, line=1, layer="recipients",
                                    hint="give every column a distinct name"))
    to_i = header.index(source.to_column)
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
        rec = Recipient(index=index, chat=None, vars={}, file=source.file, line=start)
        index += 1
        if len(row) != width:
            rec.problem = Problem(
                f"this row has {len(row)} cells, the header has {width}", file=source.file,
                line=start, layer="recipients",
                hint="quote cells that contain commas; every row needs one cell per column",
            )
            yield rec, None
            continue
        rec.vars = {h: c for j, (h, c) in enumerate(zip(header, row, strict=True)) if j != to_i}
        yield rec, row[to_i]


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

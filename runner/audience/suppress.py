"""Suppression lists: chats never to message (opt-outs, complaints, staff).

A file is either one chat id a line (`#` starts a comment) or a CSV (any delimiter, any
encoding, like a recipients file) whose header names a phone/email column, or whose first
column holding ids is used. Entries are normalised like chat ids; a multi-recipient chat is suppressed when any of
its members is. The files are read anew by every command, so an opt-out recorded between two
runs stops the later steps.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.columns import normalize_column
from runner.audience.mask import mask_hint, safe_message
from runner.audience.phones import looks_like_phone
from runner.audience.recipients import text_lines
from runner.audience.textfile import sniff_delimiter
from runner.consent.standing import Standing, standing_of
from runner.errors import CampaignError, Problem
from runner.source.document import Document, PathT
from runner.source.paths import PathError, confine


class Suppression:
    """The chats never to message: the suppression files' entries, and the state's consent
    ledger (``consent``: chats opted out or held, runner.store.ledger) when the caller read it."""

    def __init__(
        self, entries: set[str] | None = None, consent: Mapping[str, Standing] | None = None
    ) -> None:
        self.entries: set[str] = entries or set()
        self.consent: Mapping[str, Standing] = consent or {}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, chat: str) -> bool:
        return self.in_files(chat) or self.standing(chat) is not None

    def in_files(self, chat: str) -> bool:
        if not self.entries:
            return False
        if chat in self.entries:
            return True
        return "," in chat and any(m in self.entries for m in chat.split(","))

    def standing(self, chat: str) -> Standing | None:
        """Why the ledger keeps this chat (a member's opt-out keeps a group), else None."""
        return standing_of(chat, self.consent)

    def with_consent(self, consent: Mapping[str, Standing] | None) -> Suppression:
        return Suppression(self.entries, consent)


def load_suppression(
    files: list[str],
    base_dir: Path,
    campaign_file: str,
    locate: Callable[[PathT], tuple[int | None, int | None]] | None = None,
    region: str | None = None,
) -> tuple[Suppression, list[Problem]]:
    """Read every suppression file. Problems are located in the file (bad entries) or in the
    campaign (a missing file, one outside the campaign): a missing suppression list must stop a
    send, not be skipped.

    ``region``: the campaign's recipients.default_region, so `(555) 123-4567` in an opt-out
    list suppresses the recipient `+15551234567` read with the same region."""
    entries: set[str] = set()
    problems: list[Problem] = []
    for i, name in enumerate(files):
        try:
            path = confine(name, base_dir, campaign_file, "suppression file")
        except PathError as err:
            line = locate(("suppress", i))[0] if locate else None
            hint = err.hint
            if err.message.startswith("suppression file not found"):
                hint = "the path is relative to the campaign file; create it (it may be empty) or fix the path"
            problems.append(
                Problem(
                    err.message,
                    file=campaign_file,
                    line=line,
                    path=f"suppress[{i}]",
                    hint=hint,
                    layer="suppress",
                )
            )
            continue
        shown = str(Path(base_dir) / name)  # as written, where errors in the file point
        try:
            lines = list(text_lines(str(path), layer="suppress", shown=shown))
        except CampaignError as err:
            problems.extend(err.problems)
            continue
        try:
            rows = _entries(lines, shown, problems)
        except csv.Error as err:
            problems.append(
                Problem(
                    f"cannot read the suppression CSV: {err}",
                    file=shown,
                    layer="suppress",
                    hint="check its quoting",
                )
            )
            continue
        for lineno, raw in rows:
            value = raw.strip()
            if not value:
                continue
            try:
                chat = normalize_chat(value, region)
            except ChatIdError as err:
                hint = (
                    err.hint
                    or "write a phone number (with default_region, as people write it), an email or grp_…"
                )
                problems.append(
                    Problem(
                        f"suppression entry: {safe_message(str(err), value)}",
                        file=shown,
                        line=lineno,
                        hint=mask_hint(hint, value),
                        layer="suppress",
                    )
                )
                continue
            entries.update(chat.split(",") if "," in chat else [chat])
    return Suppression(entries), problems


# Header names that say a column holds chat ids, normalised ("Phone Number" -> phone_number):
# `to` exactly, or a name with one of these words.
_ID_WORDS = (
    "phone",
    "mobile",
    "cell",
    "email",
    "e_mail",
    "msisdn",
    "whatsapp",
    "chat",
    "recipient",
)


def _names_ids(cell: str) -> bool:
    name = normalize_column(cell)
    return name == "to" or any(w in name for w in _ID_WORDS)


def _is_id(cell: str) -> bool:
    v = cell.split("#", 1)[0].strip()
    return bool(v) and ("@" in v or v.startswith("grp_") or looks_like_phone(v))


def csv_header(first_line: str, delimiter: str = ",") -> list[str] | None:
    """The column names when ``first_line`` is the header of a CSV suppression file (a cell
    names a phone/email column: `to`, `Phone Number`, `Email`, ...), else None. Names are
    stripped: `reason, to`."""
    if not first_line.strip() or first_line.lstrip().startswith("#"):
        return None  # a plain list's comment is never a header, whatever words it holds
    header = [h.strip() for h in next(csv.reader([first_line], delimiter=delimiter))]
    return header if any(_names_ids(h) for h in header) else None


def id_column(header: list[str]) -> int:
    """The column of a suppression CSV's header that holds the chat ids: `to`, else the first
    naming a phone/email (a header csv_header accepted has one)."""
    names = [normalize_column(h) for h in header]
    if "to" in names:
        return names.index("to")
    return next(j for j, h in enumerate(header) if _names_ids(h))


def _entries(lines: list[str], shown: str, problems: list[Problem]) -> list[tuple[int, str]]:
    """(line, raw entry) of a plain list or of a CSV's id columns; csv.Error on bad quoting.

    A CSV is one whose first line has more than one cell or names an id column; its id
    columns are those the header names (`to`, `Phone Number`, `Email`, ...), else the first
    column holding ids in the first row that has one."""
    first_no = next((n for n, ln in enumerate(lines) if ln.split("#", 1)[0].strip()), None)
    if first_no is None:
        return []
    delimiter = sniff_delimiter(lines[:200])
    first = lines[first_no]
    cells = [c.strip() for c in next(csv.reader([first], delimiter=delimiter))]
    header = csv_header(first, delimiter)
    if header is None and (len(cells) < 2 or all(_is_id(c) for c in cells if c)):
        # One id a line; a line of several ids is one multi-recipient chat.
        return [(n + 1, ln.split("#", 1)[0]) for n, ln in enumerate(lines)]
    reader = csv.reader(lines[first_no:], delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    start = first_no + 1
    for row in reader:
        rows.append((start, row))
        start = first_no + reader.line_num + 1
    if header is not None:
        named = [j for j, h in enumerate(header) if _names_ids(h)]
        exact = [j for j, h in enumerate(header) if normalize_column(h) == "to"]
        id_cols = exact or named  # exact: id_column's choice, the column `optouts` writes
        rows = rows[1:]
        label = " and ".join(f"'{header[j]}'" for j in id_cols)
    else:
        has_header = not any(_is_id(c) for c in cells)
        body = rows[1:] if has_header else rows
        sample = next((r for _, r in body if any(_is_id(c) for c in r)), None)
        if sample is None:
            problems.append(
                Problem(
                    "cannot tell which column of this suppression CSV holds the phones/emails",
                    file=shown,
                    line=first_no + 1,
                    layer="suppress",
                    hint="name the column in the header: to, phone, Phone Number or email",
                )
            )
            return []
        id_cols = [next(j for j, c in enumerate(sample) if _is_id(c))]
        rows = body
        label = f"column {id_cols[0] + 1}"
    out: list[tuple[int, str]] = []
    content_rows = 0
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        content_rows += 1
        if len(row) <= max(id_cols):
            if len(row) == 1 and _is_id(row[0]):  # a line `campaign optouts` appended: `+1…  # why`
                out.append((line, row[0].split("#", 1)[0]))
                continue
            problems.append(
                Problem(
                    f"this row has {len(row)} cells; the {label} column is number "
                    f"{max(id_cols) + 1}",
                    file=shown,
                    line=line,
                    layer="suppress",
                    hint=f"quote cells that contain '{delimiter}'; every row needs its "
                    f"{label} cell",
                )
            )
            continue
        for j in id_cols:
            out.append((line, row[j].split("#", 1)[0]))
    if content_rows and not any(raw.strip() for _line, raw in out):
        # Rows with content but never a chat: the list would silently suppress nobody.
        problems.append(
            Problem(
                f"the {label} column is empty in all {content_rows:,} rows",
                file=shown,
                line=first_no + 1,
                layer="suppress",
                hint="put each phone/email in that column (check the header's delimiters)",
            )
        )
    return out


def suppression_target(doc: Document, base_dir: Path, names: list[str]) -> Path:
    """Where `campaign optouts` records opt-outs: the first `suppress` file, which must be in the
    campaign like every file it names (it may not exist yet). Raises a located CampaignError."""
    try:
        confine(names[0], base_dir, doc.file, "suppression file", must_exist=False)
    except PathError as err:
        raise CampaignError(
            doc.problem(("suppress", 0), err.message, err.hint, layer="suppress")
        ) from None
    return Path(base_dir) / names[0]

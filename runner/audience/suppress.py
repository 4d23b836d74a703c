"""Suppression lists: chats never to message (opt-outs, complaints, staff).

A file is either one chat id a line (`#` starts a comment) or a CSV whose header has a `to`
column. Entries are normalised like chat ids; a multi-recipient chat is suppressed when any of
its members is. The files are read anew by every command, so an opt-out recorded between two
runs stops the later steps.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.mask import safe_message
from runner.audience.recipients import text_lines
from runner.campaign.loader import Document, PathT
from runner.campaign.paths import PathError, confine
from runner.consent.standing import Standing, standing_of
from runner.errors import CampaignError, Problem


class Suppression:
    """The chats never to message: the suppression files' entries, and the state's consent
    ledger (``consent``: chats opted out or held, runner.store.ledger) when the caller read it."""

    def __init__(self, entries: set[str] | None = None,
                 consent: Mapping[str, Standing] | None = None) -> None:
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


def load_suppression(files: list[str], base_dir: Path, campaign_file: str,
                     locate: Callable[[PathT], tuple[int | None, int | None]] | None = None,
                     region: str | None = None) -> tuple[Suppression, list[Problem]]:
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
            problems.append(Problem(err.message, file=campaign_file, line=line, path=f"suppress[{i}]",
                                    hint=hint, layer="suppress"))
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
            problems.append(Problem(f"cannot read the suppression CSV: {err}", file=shown,
                                    layer="suppress", hint="check its quoting"))
            continue
        for lineno, raw in rows:
            value = raw.strip()
            if not value:
                continue
            try:
                chat = normalize_chat(value, region)
            except ChatIdError as err:
                problems.append(Problem(f"suppression entry: {safe_message(str(err), value)}", file=shown,
                                        line=lineno, hint=err.hint, layer="suppress"))
                continue
            entries.update(chat.split(",") if "," in chat else [chat])
    return Suppression(entries), problems


def csv_header(first_line: str) -> list[str] | None:
    """The column names when ``first_line`` is the header of a CSV suppression file (it has a
    `to` column), else None (the file is a plain list). Names are stripped: `reason, to`."""
    if not first_line.strip():
        return None
    header = [h.strip() for h in next(csv.reader([first_line]))]
    return header if "to" in header else None


def _entries(lines: list[str], shown: str, problems: list[Problem]) -> list[tuple[int, str]]:
    """(line, raw entry) of a plain list or of a CSV's `to` column; csv.Error on bad quoting."""
    header = csv_header(lines[0]) if lines else None
    if header is None:
        return [(n + 1, ln.split("#", 1)[0]) for n, ln in enumerate(lines)]
    to_i = header.index("to")
    reader = csv.reader(lines)
    next(reader)
    out: list[tuple[int, str]] = []
    content_rows = 0
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        content_rows += 1
        if len(row) <= to_i:
            problems.append(Problem(f"this row has {len(row)} cells; the 'to' column is number {to_i + 1}",
                                    file=shown, line=line, layer="suppress",
                                    hint="quote cells that contain commas; every row needs its 'to' cell"))
            continue
        out.append((line, row[to_i]))
    if content_rows and not any(raw.strip() for _line, raw in out):
        # Rows with content but never a chat: the list would silently suppress nobody.
        problems.append(Problem(f"the 'to' column is empty in all {content_rows:,} rows", file=shown,
                                line=1, layer="suppress",
                                hint="put each phone/email in the 'to' column (check the header's commas)"))
    return out


def suppression_target(doc: Document, base_dir: Path, names: list[str]) -> Path:
    """Where `campaign optouts` records opt-outs: the first `suppress` file, which must be in the
    campaign like every file it names (it may not exist yet). Raises a located CampaignError."""
    try:
        confine(names[0], base_dir, doc.file, "suppression file", must_exist=False)
    except PathError as err:
        raise CampaignError(doc.problem(("suppress", 0), err.message, err.hint, layer="suppress")) from None
    return Path(base_dir) / names[0]

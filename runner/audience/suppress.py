"""Suppression lists: chats never to message (opt-outs, complaints, staff).

A file is either one chat id a line (`#` starts a comment) or a CSV whose header has a `to`
column. Entries are normalised like chat ids; a multi-recipient chat is suppressed when any of
its members is. The files are read anew by every command, so an opt-out recorded between two
runs stops the later steps.
"""

from __future__ import annotations

import csv
from pathlib import Path

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.recipients import _is_file, text_lines
from runner.errors import CampaignError, Problem


class Suppression:
    def __init__(self, entries: set[str] | None = None) -> None:
        self.entries: set[str] = entries or set()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, chat: str) -> bool:
        if not self.entries:
            return False
        if chat in self.entries:
            return True
        return "," in chat and any(m in self.entries for m in chat.split(","))


def load_suppression(files: list[str], base_dir: Path, campaign_file: str,
                     locate=None, region: str | None = None) -> tuple[Suppression, list[Problem]]:
    """Read every suppression file. Problems are located in the file (bad entries) or in the
    campaign (a missing file): a missing suppression list must stop a send, not be skipped.

    ``region``: the campaign's recipients.default_region, so `(555) 123-4567` in an opt-out
    list suppresses the recipient `+15551234567` read with the same region."""
    entries: set[str] = set()
    problems: list[Problem] = []
    for i, name in enumerate(files):
        path = base_dir / name
        if not _is_file(path):
            line = locate(("suppress", i))[0] if locate else None
            problems.append(Problem(f"suppression file not found: {path}", file=campaign_file, line=line,
                                    path=f"suppress[{i}]", hint="the path is relative to the campaign file; "
                                    "create it (it may be empty) or fix the path"))
            continue
        try:
            lines = list(text_lines(str(path), layer="suppress"))
        except CampaignError as err:
            problems.extend(err.problems)
            continue
        first = lines[0] if lines else ""
        header = [h.strip() for h in next(csv.reader([first]))] if first.strip() else []
        if "to" in header:
            reader = csv.DictReader(lines)
            pending = ((reader.line_num, r.get("to") or "") for r in reader)
        else:
            pending = ((n + 1, ln.split("#", 1)[0]) for n, ln in enumerate(lines))
        try:
            rows = list(pending)
        except csv.Error as err:
            problems.append(Problem(f"cannot read the suppression CSV: {err}", file=str(path),
                                    layer="suppress", hint="check its quoting"))
            continue
        for lineno, raw in rows:
            value = raw.strip()
            if not value:
                continue
            try:
                chat = normalize_chat(value, region)
            except ChatIdError as err:
                problems.append(Problem(f"suppression entry: {err}", file=str(path), line=lineno,
                                        hint=err.hint, layer="suppress"))
                continue
            entries.update(chat.split(",") if "," in chat else [chat])
    return Suppression(entries), problems

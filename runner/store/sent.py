"""When each chat was last messaged, across every campaign of a state: the accepted requests
of every journal in the state folder, read-only, for frequency caps (runner.law.legal.Caps).

A journal another send is writing is read through SQLite's read-only mode (it is never
locked or changed); one that cannot be read is said, not skipped silently: a cap that cannot
count must not let messages through.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

from runner.store.journal import journal_error
from runner.store.paths import LEDGER_FILE
from runner.store.state import PgState, State, open_state

_ACCEPTED_SINCE = (
    "SELECT chat, COALESCE(finished_at, last_attempt_at), messages FROM requests "
    "WHERE status = 'accepted' AND COALESCE(finished_at, last_attempt_at) >= ?"
)


def sent_times(
    state: str | Path | State, since: float, command: str = "send"
) -> dict[str, list[float]]:
    """chat -> epoch seconds of each message accepted at or after ``since`` (a request of n
    messages counts n times), from every journal of the state (a folder's SQLite journals, or
    the one PostgreSQL database); ``command`` names the command in the error a damaged journal
    gives."""
    where = open_state(state)
    if isinstance(where, PgState):
        db = where.database(command)
        try:
            rows = db.execute(_ACCEPTED_SINCE, (since,)).fetchall()
        finally:
            db.close()
        out: dict[str, list[float]] = defaultdict(list)
        for chat, when, messages in rows:
            out[chat].extend([float(when)] * max(1, int(messages or 1)))
        return dict(out)
    return _folder_times(where.path, since, command)


def _folder_times(folder: Path, since: float, command: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    if not folder.is_dir():
        return {}
    for path in sorted(folder.glob("*.sqlite")):
        if path.name == LEDGER_FILE:
            continue
        try:
            db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        except sqlite3.Error:
            continue  # gone meanwhile
        try:
            db.execute("PRAGMA busy_timeout=5000")
            rows = db.execute(_ACCEPTED_SINCE, (since,)).fetchall()
        except sqlite3.Error as err:
            if "no such table" in str(err):
                continue  # not a journal (a webhook store, say)
            raise journal_error(err, path, command) from None
        finally:
            db.close()
        for chat, when, messages in rows:
            out[chat].extend([float(when)] * max(1, int(messages or 1)))
    return dict(out)

"""Opening what a state holds: a campaign's journal, the consent ledger, the per-campaign lock,
for a folder (SQLite, fcntl) or a database (PostgreSQL, advisory locks) alike.

Journal and Ledger (runner.store.journal, runner.store.ledger) and PgJournal and PgLedger
(runner.store.pgjournal, runner.store.pgledger) have the same interface; the commands only see
what these functions return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.errors import CampaignError
from runner.store.journal import Journal
from runner.store.ledger import Ledger
from runner.store.lock import JournalLock
from runner.store.lock import holder as folder_holder
from runner.store.paths import LEDGER_FILE, journal_path
from runner.store.pgjournal import PgJournal
from runner.store.pgledger import PgLedger
from runner.store.pglock import CampaignLock, holder
from runner.store.pgschema import has_schema, migrate
from runner.store.state import FolderState, State


def open_journal(state: State, campaign_id: str, *, lock: str | None = None) -> Journal:
    """The campaign's journal (created if needed); ``lock``: the writing command, which holds
    the campaign's lock until the journal is closed."""
    if isinstance(state, FolderState):
        return Journal(journal_path(state.path, campaign_id), lock=lock)
    return PgJournal(state.url, campaign_id, lock=lock)  # type: ignore[return-value]


def existing_journal(
    state: State, campaign_id: str, campaign_file: str | Path, *, lock: str | None = None
) -> Journal:
    """The journal an earlier send left, or a user error saying how to get one."""
    if not state.has_journal(campaign_id):
        raise CampaignError(
            f"no journal for campaign {campaign_id!r} in {state.label}",
            file=str(campaign_file),
            hint="nothing was sent with this state yet (`campaign send FILE` "
            "uses this same state, from any folder); if it was sent with "
            "another, pass --state DIR|URL or set RUNNER_STATE",
        )
    return open_journal(state, campaign_id, lock=lock)


def open_ledger(state: State, *, command: str = "the command") -> Ledger:
    if isinstance(state, FolderState):
        return Ledger.for_state(state.path)
    return PgLedger(state.url, command=command)


@contextlib.contextmanager
def existing_ledger(state: State) -> Iterator[Ledger | None]:
    """The state's ledger when it has one (a reader must not create a folder's), else None."""
    if not state.has_ledger():
        yield None
        return
    with open_ledger(state) as ledger:
        yield ledger


@contextlib.contextmanager
def campaign_lock(state: State, campaign_id: str, command: str) -> Iterator[Any]:
    """One run per campaign: held for the whole command, refused at once when taken."""
    if isinstance(state, FolderState):
        with JournalLock(journal_path(state.path, campaign_id), command) as file_lock:
            yield file_lock
        return
    db = state.database(command)
    try:
        migrate(db)
        held = CampaignLock(db, campaign_id, command).acquire()
        try:
            yield held
        finally:
            held.release()
    finally:
        db.close()


def sync_contacts(state: State, ledger: Ledger) -> int:
    """The ledger learns whom every campaign of the state has messaged."""
    return ledger.sync_state(state.path if isinstance(state, FolderState) else None)  # type: ignore[arg-type]


def sync_campaign(state: State, ledger: Ledger, campaign_id: str) -> int:
    """The ledger learns whom one campaign has messaged."""
    journal = journal_path(state.path, campaign_id) if isinstance(state, FolderState) else None
    return ledger.sync_journal(campaign_id, journal)


def list_campaigns(state: State) -> list[str]:
    """Every campaign with a journal in the state, by id."""
    if isinstance(state, FolderState):
        return sorted(p.stem for p in state.path.glob("*.sqlite") if p.name != LEDGER_FILE)
    db = state.database("status")
    try:
        if not has_schema(db):
            return []
        return [
            r[0]
            for r in db.execute(
                "SELECT campaign FROM runs UNION SELECT campaign FROM requests ORDER BY 1"
            )
        ]
    finally:
        db.close()


def lock_holder(state: State, campaign_id: str) -> str | None:
    """Who runs the campaign now (None: nobody), without taking its lock."""
    if isinstance(state, FolderState):
        busy = folder_holder(journal_path(state.path, campaign_id))
        return None if busy is None else f"process {busy.pid or '?'}"
    db = state.database("status")
    try:
        found = holder(db, campaign_id)
        if found is None:
            return None
        alive = db.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = ? AND granted",
            (found.backend_pid,),
        ).fetchone()
        return found.describe() if alive else None  # a row left by a holder that died
    finally:
        db.close()


def running(state: State, campaign_id: str) -> int | bool:
    """A run holds the campaign now: its PID on this machine (a folder), else True; False when
    none does (what `report` says of the last run)."""
    if isinstance(state, FolderState):
        busy = folder_holder(journal_path(state.path, campaign_id))
        return (busy.pid or True) if busy is not None else False
    return lock_holder(state, campaign_id) is not None

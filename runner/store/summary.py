"""What `campaign status` lists of every campaign in a state, read in a few queries.

A folder holds one journal per campaign, so each is opened once and asked three aggregate
questions (requests by status, its chats the ledger keeps as opted out, its last run); nothing
reads a row per request. A database holds every campaign: four queries answer for all of them
at once (requests by campaign and status, opted-out chats by campaign, each campaign's last run,
the locks held), whatever the number of campaigns: 100 campaigns are not 100 connections.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from runner.store.journal import Journal, LastRun
from runner.store.lock import holder as folder_holder
from runner.store.paths import LEDGER_FILE, journal_path
from runner.store.pgconn import Database
from runner.store.pglock import Holder
from runner.store.pgschema import has_schema
from runner.store.state import FolderState, PgState, State


@dataclass(slots=True)
class CampaignSummary:
    campaign: str
    requests: dict[str, int] = field(default_factory=dict)  # by journal status, sorted
    opted_out: int = 0  # its chats the ledger keeps from messaging as opted out
    last_run: LastRun | None = None
    holder: str | None = None  # who runs it now (None: nobody)


def summarize(state: State, opted_out: Collection[str]) -> list[CampaignSummary]:
    """Every campaign of the state, by id; ``opted_out``: the chats the ledger keeps as opted
    out."""
    if isinstance(state, FolderState):
        return _folder(state, opted_out)
    return _database(state)


def _folder(state: FolderState, opted_out: Collection[str]) -> list[CampaignSummary]:
    out = []
    for cid in sorted(p.stem for p in state.path.glob("*.sqlite") if p.name != LEDGER_FILE):
        path = journal_path(state.path, cid)
        with Journal(path) as journal:
            found = CampaignSummary(cid, journal.status_counts(), journal.chats_among(opted_out))
            found.last_run = journal.last_run_summary()
        busy = folder_holder(path)
        found.holder = None if busy is None else f"process {busy.pid or '?'}"
        out.append(found)
    return out


def _database(state: PgState) -> list[CampaignSummary]:
    db = Database(state.url, command="status")
    try:
        if not has_schema(db):
            return []
        found: dict[str, CampaignSummary] = {}

        def of(cid: str) -> CampaignSummary:
            return found.setdefault(cid, CampaignSummary(cid))

        # One snapshot: a send committing meanwhile moves none of the four answers apart.
        db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for cid, status, n in db.execute(
            "SELECT campaign, status, count(*) FROM requests GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            of(cid).requests[status] = int(n)
        for cid, n in db.execute(
            "SELECT r.campaign, count(DISTINCT r.chat) FROM requests r JOIN standing s "
            "ON s.chat = r.chat WHERE s.state = 'opted_out' GROUP BY 1"
        ):
            of(cid).opted_out = int(n)
        for cid, *run in db.execute(
            "SELECT DISTINCT ON (campaign) campaign, started_at, ended_at, exit_code, counts, "
            "os_user FROM runs ORDER BY campaign, id DESC"
        ):
            of(cid).last_run = LastRun.from_row(run)
        # A ``locks`` row whose session is gone was left by a holder that died: nobody runs it.
        for row in db.execute(
            "SELECT campaign, lock_id, command, host, pid, os_user, backend_pid, since "
            "FROM locks l WHERE EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = "
            "'advisory' AND p.pid = l.backend_pid AND p.granted)"
        ):
            if row[0] in found:
                found[row[0]].holder = Holder(*row).describe()
        db.rollback_quietly()
        return [found[cid] for cid in sorted(found)]
    finally:
        db.close()

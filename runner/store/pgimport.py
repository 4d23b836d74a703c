"""`campaign state import DIR --to URL`: a laptop's folder state into the team's database.

Each campaign's journal is copied under its lock (no run of it may be going on, here or
anywhere), rows as they are: requests by key, runs and reply passes by their start time,
deliveries and replies by message id. Twice is once. A campaign whose journal in the database is
newer (its last run started after the folder's) is refused: the folder is the older copy, and
importing it would take back what a later run learnt. The ledger's events are added (a reply's
event once; a person's decision once), the standings of the chats they touch recomputed, and
the contacts merged (first and last message, reply cursors never moving back).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import CampaignError, Problem
from runner.store.journal import _COLUMNS, _DELIVERY_COLUMNS, Journal
from runner.store.ledger import Ledger
from runner.store.paths import LEDGER_FILE, ledger_path
from runner.store.pgconn import Database
from runner.store.pgjournal import PgJournal
from runner.store.pgledger import PgLedger

_RUN_COLUMNS = (
    "campaign, revision, started_at, ended_at, options, plan, counts, exit_code, "
    "stop_reason, git_commit, dirty, plan_digest, os_user"
)
_PASS_COLUMNS = (
    "started_at, ended_at, chats, chats_read, chats_failed, requests, replies_new, stop_reason"
)
_REPLY_COLUMNS = "message_id, chat, sender, received_at, length, is_stop, text, read_at"
_EVENT_COLUMNS = (
    "chat, kind, at_ms, word, excerpt, campaign, step, source, reply_id, actor, recorded_at"
)


@dataclass
class ImportResult:
    campaigns: dict[str, int] = field(default_factory=dict)  # imported: requests copied
    refused: list[Problem] = field(default_factory=list)
    events: int = 0  # ledger events added


def _marks(columns: str) -> str:
    return ", ".join("%s" for _ in columns.split(","))


def import_folder(folder: Path, url: str) -> ImportResult:
    journals = sorted(p for p in folder.glob("*.sqlite") if p.name != LEDGER_FILE)
    if not journals and not ledger_path(folder).is_file():
        raise CampaignError(
            f"no journal and no consent ledger in {folder}",
            hint="pass the state folder (by default .runner)",
        )
    result = ImportResult()
    for path in journals:
        with (
            Journal(path, lock="state import") as src,
            PgJournal(url, path.stem, lock="state import") as dst,
        ):
            _import_journal(src, dst, result)
    if ledger_path(folder).is_file():
        with Ledger.for_state(folder) as src, PgLedger(url, command="state import") as dst:
            result.events = _import_ledger(src, dst)
    return result


def _last_start(rows: list[tuple[Any, ...]]) -> float | None:
    return max((r[0] for r in rows), default=None)


def _import_journal(src: Journal, dst: PgJournal, result: ImportResult) -> None:
    cid, db, lite = dst.campaign, dst.database, src._db
    here = _last_start(lite.execute("SELECT started_at FROM runs").fetchall())
    there = _last_start(
        db.execute("SELECT started_at FROM runs WHERE campaign = ?", (cid,)).fetchall()
    )
    if there is not None and (here is None or there > here):
        result.refused.append(
            Problem(
                f"campaign {cid!r}: its journal in the database is newer (a run started after the "
                "folder's last): not imported",
                file=str(src.path),
                hint="the database already knows more; nothing of this campaign was changed",
            )
        )
        return
    db.execute("BEGIN")
    try:
        run_ids = _import_runs(lite, db, cid)
        rows = lite.execute(f"SELECT {_COLUMNS} FROM requests").fetchall()
        cols = _COLUMNS.split(", ")
        run_at = cols.index("run_id")
        copied = [(*r[:run_at], run_ids.get(r[run_at]), *r[run_at + 1 :], cid) for r in rows]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "key")
        db.executemany(
            f"INSERT INTO requests ({_COLUMNS}, campaign) VALUES "
            f"({_marks(_COLUMNS)}, %s) ON CONFLICT (campaign, key) DO UPDATE SET "
            f"{updates}",
            copied,
        )
        db.executemany(
            f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}, campaign) VALUES "
            f"({_marks(_DELIVERY_COLUMNS)}, %s) ON CONFLICT DO NOTHING",
            [
                (*r, cid)
                for r in lite.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries ORDER BY rowid")
            ],
        )
        db.executemany(
            f"INSERT INTO replies ({_REPLY_COLUMNS}, campaign) VALUES ({_marks(_REPLY_COLUMNS)}, "
            "%s) ON CONFLICT DO NOTHING",
            [(*r, cid) for r in lite.execute(f"SELECT {_REPLY_COLUMNS} FROM replies")],
        )
        known = {
            r[0]
            for r in db.execute("SELECT started_at FROM reply_passes WHERE campaign = ?", (cid,))
        }
        db.executemany(
            f"INSERT INTO reply_passes ({_PASS_COLUMNS}, campaign) VALUES "
            f"({_marks(_PASS_COLUMNS)}, %s)",
            [
                (*r, cid)
                for r in lite.execute(f"SELECT {_PASS_COLUMNS} FROM reply_passes ORDER BY id")
                if r[0] not in known
            ],
        )
    except BaseException:
        db.rollback_quietly()
        raise
    db.execute("COMMIT")
    result.campaigns[cid] = len(rows)


def _import_runs(lite: sqlite3.Connection, db: Database, cid: str) -> dict[int, int]:
    """Each folder run's id -> its id in the database (a run imported before keeps its own)."""
    known = {
        r[0]: r[1] for r in db.execute("SELECT started_at, id FROM runs WHERE campaign = ?", (cid,))
    }
    ids: dict[int, int] = {}
    for row in lite.execute(f"SELECT id, {_RUN_COLUMNS} FROM runs ORDER BY id"):
        old, values = row[0], (cid, *row[2:])  # the database's campaign id is the file's
        if values[2] in known:
            ids[old] = known[values[2]]
            continue
        ids[old] = int(
            db.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({_marks(_RUN_COLUMNS)}) RETURNING id",
                values,
            ).fetchone()[0]
        )
    return ids


def _import_ledger(src: Ledger, dst: PgLedger) -> int:
    db = dst._database
    lite = src._db
    added = 0
    db.execute("BEGIN")
    try:
        touched: set[str] = set()
        for row in lite.execute(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY id"):
            row = tuple(row)
            cur = db.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_marks(_EVENT_COLUMNS)} "
                "WHERE NOT EXISTS (SELECT 1 FROM events WHERE chat = %s AND kind = %s AND "
                "at_ms = %s AND source = %s AND reply_id IS NOT DISTINCT FROM %s AND "
                "actor IS NOT DISTINCT FROM %s) ON CONFLICT DO NOTHING",
                (*row, row[0], row[1], row[2], row[7], row[8], row[9]),
            )
            if cur.rowcount:
                added += 1
                touched.add(row[0])
        for chat in sorted(touched):
            dst._restand(chat)
        db.executemany(
            "INSERT INTO contacts (chat, api_id, first_ms, last_ms, last_campaign, last_step, "
            "cursor_ms) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (chat) DO UPDATE SET "
            "first_ms = LEAST(contacts.first_ms, excluded.first_ms), "
            "last_campaign = CASE WHEN excluded.last_ms > contacts.last_ms "
            "THEN excluded.last_campaign ELSE contacts.last_campaign END, "
            "last_step = CASE WHEN excluded.last_ms > contacts.last_ms "
            "THEN excluded.last_step ELSE contacts.last_step END, "
            "last_ms = GREATEST(contacts.last_ms, excluded.last_ms), "
            "cursor_ms = GREATEST(contacts.cursor_ms, excluded.cursor_ms)",
            [
                tuple(r)
                for r in lite.execute(
                    "SELECT chat, api_id, first_ms, last_ms, last_campaign, last_step, cursor_ms "
                    "FROM contacts"
                )
            ],
        )
    except BaseException:
        db.rollback_quietly()
        raise
    db.execute("COMMIT")
    return added

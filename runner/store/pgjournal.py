"""The send journal on PostgreSQL: every campaign's journal in one database (a ``campaign``
column), with the SQLite journal's interface and meaning (runner.store.journal).

The same safety: ``apply`` commits an attempt (status ``sending``) before its request leaves and
the outcome after; the JournalWriter batches them, and each batch is one transaction whose rows
psycopg pipelines (one round trip per kind of row, not one per row). The schema is versioned in
``runner_schema`` and migrated in place, one version per transaction, under a transaction-level
advisory lock (two runners opening a new database at once do not both create it); an older
runner refuses a newer schema. A connection lost mid-run (the server restarted) stops the run
with exit 3: rows left at ``sending`` are resent with their keys by the next run, which the API
replays.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

from runner.store.journal import (
    _COLUMNS,
    _DELIVERY_COLUMNS,
    _DELIVERY_PUSH_SQL,
    _PASS_COLUMNS,
    PAGE_ROWS,
    Attempt,
    AttemptedChat,
    ChatPages,
    Delivery,
    DeliveryCounts,
    DeliveryPage,
    DeliveryPoll,
    DeliveryPollError,
    DeliveryPush,
    DeliverySeed,
    Entry,
    JournalOp,
    Mark,
    Outcome,
    Reply,
    ReplyPass,
    ReplyPassEnd,
    delivery_seeds,
)
from runner.store.pgconn import Database
from runner.store.pglock import CampaignLock
from runner.store.pgschema import current_version, migrate

# Every statement ends with the campaign as its last parameter: params = (*op.params(), campaign).
_SQL: dict[type, str] = {
    Attempt: """
INSERT INTO requests (key, chat, step, revision, recipient_index, step_index, messages, variant,
    status, attempts, content_hash, first_attempt_at, last_attempt_at, run_id, campaign)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'sending', 1, %s, %s, %s, %s, %s)
ON CONFLICT (campaign, key) DO UPDATE SET
    status = 'sending', attempts = requests.attempts + 1, content_hash = excluded.content_hash,
    first_attempt_at = COALESCE(requests.first_attempt_at, excluded.first_attempt_at),
    last_attempt_at = excluded.last_attempt_at, run_id = excluded.run_id,
    chat = excluded.chat, step = excluded.step, revision = excluded.revision,
    recipient_index = excluded.recipient_index, step_index = excluded.step_index,
    messages = excluded.messages, variant = excluded.variant""",
    Outcome: """
UPDATE requests SET status = %s, message_id = %s, message_ids = %s, group_id = %s,
    error_code = %s, error_message = %s, http_status = %s, finished_at = %s
WHERE key = %s AND campaign = %s""",
    Mark: """
INSERT INTO requests (key, chat, step, revision, recipient_index, step_index, messages, variant,
    status, attempts, error_code, error_message, content_hash, finished_at, run_id, campaign)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s, %s, %s)
ON CONFLICT (campaign, key) DO UPDATE SET
    status = excluded.status, error_code = excluded.error_code, variant = excluded.variant,
    error_message = excluded.error_message, content_hash = excluded.content_hash,
    finished_at = excluded.finished_at, run_id = excluded.run_id""",
    DeliverySeed: """
INSERT INTO deliveries (message_id, key, part, chat, revision, step, accepted_at, campaign)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
    DeliveryPoll: """
UPDATE deliveries SET status = %s, protocol = %s, time_sent = %s, time_delivered = %s,
    error = %s, polls = polls + 1, poll_errors = 0, last_polled_at = %s, next_poll_at = %s,
    final = %s
WHERE message_id = %s AND campaign = %s""",
    DeliveryPollError: """
UPDATE deliveries SET polls = polls + 1, poll_errors = poll_errors + 1, last_polled_at = %s,
    next_poll_at = %s
WHERE message_id = %s AND campaign = %s""",
    DeliveryPush: _DELIVERY_PUSH_SQL.replace("?", "%s").replace(
        "WHERE message_id = %s AND final = 0", "WHERE message_id = %s AND final = 0 AND campaign = %s"),
    Reply: """
INSERT INTO replies (message_id, chat, sender, received_at, length, is_stop, text, read_at,
    campaign)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
    ReplyPassEnd: """
UPDATE reply_passes SET ended_at = %s, chats_read = %s, chats_failed = %s, requests = %s,
    replies_new = %s, stop_reason = %s
WHERE id = %s AND campaign = %s""",
}


class PgJournal:
    """One campaign's journal in a PostgreSQL state; the interface of ``Journal``.

    ``lock``: the command that writes it holds the campaign's advisory lock (runner.store.pglock)
    on this connection until ``close``."""

    # JournalWriter runs ``apply`` in a worker thread: a commit is a network round trip, and
    # the event loop keeps sending meanwhile. Writes go through their own connection, so the
    # thread never shares one with the loop's reads (lookups, the snapshot).
    threaded_apply = True

    def __init__(self, url: str, campaign: str, *, lock: str | None = None) -> None:
        self.campaign = campaign
        self._url, self._command = url, lock or "the command"
        self._writes: Database | None = None
        self._db = Database(url, command=self._command)
        self.path = f"{self._db.label}#{campaign}"  # what errors and reports name
        self._lock: CampaignLock | None = None
        try:
            migrate(self._db)
            self._lock = CampaignLock(self._db, campaign, lock).acquire() if lock else None
        except BaseException:
            self._db.close()
            raise

    @property
    def database(self) -> Database:
        return self._db

    @contextlib.contextmanager
    def snapshot(self, command: str = "the command") -> Iterator[PgJournal]:
        """Read in one REPEATABLE READ transaction: every query sees the same state."""
        self._db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            yield self
        finally:
            if self._db.in_transaction:
                self._db.rollback_quietly()

    @property
    def schema_version(self) -> int:
        return current_version(self._db)

    def tables(self) -> set[str]:
        return {r[0] for r in self._db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    def close(self) -> None:
        try:
            if self._lock is not None:
                self._lock.release()
        finally:
            self._db.close()
            if self._writes is not None:
                self._writes.close()

    def __enter__(self) -> PgJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def apply(self, ops: Iterable[JournalOp]) -> None:
        """Apply operations in order, in one transaction (one commit)."""
        if self._writes is None:
            self._writes = Database(self._url, command=self._command)
        db = self._writes
        db.execute("BEGIN")
        try:
            for kind, run in groupby(ops, key=type):
                db.executemany(_SQL[kind], [(*op.params(), self.campaign) for op in run])
        except BaseException:
            db.rollback_quietly()
            raise
        db.execute("COMMIT")

    def start_run(self, campaign: str, revision: int, options: dict[str, Any],
                  plan: dict[str, Any], audit: dict[str, Any] | None = None) -> int:
        import socket

        a = audit or {}
        dirty = None if a.get("dirty_files") is None else json.dumps(
            {"tree": a.get("tree_dirty"), "files": a["dirty_files"]})
        row = self._db.execute(
            "INSERT INTO runs (campaign, revision, started_at, options, plan, git_commit, dirty, "
            "plan_digest, os_user, host) VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (self.campaign, revision, time.time(), json.dumps(options), json.dumps(plan),
             a.get("git_commit"), dirty, a.get("plan_digest"), a.get("user"),
             socket.gethostname())).fetchone()
        return int(row[0])

    def finish_run(self, run_id: int, counts: dict[str, Any], exit_code: int,
                   stop_reason: str | None) -> None:
        self._db.execute(
            "UPDATE runs SET ended_at = ?, counts = ?, exit_code = ?, stop_reason = ? "
            "WHERE id = ? AND campaign = ?",
            (time.time(), json.dumps(counts), exit_code, stop_reason, run_id, self.campaign))

    def start_reply_pass(self, chats: int, now: float) -> int:
        row = self._db.execute(
            "INSERT INTO reply_passes (campaign, started_at, chats) VALUES (?, ?, ?) RETURNING id",
            (self.campaign, now, chats)).fetchone()
        return int(row[0])

    # -- reading -------------------------------------------------------------------------
    def is_empty(self) -> bool:
        return self._db.execute("SELECT 1 FROM requests WHERE campaign = ? LIMIT 1",
                                (self.campaign,)).fetchone() is None

    def lookup(self, keys: Iterable[str]) -> dict[str, Entry]:
        keys = list(keys)
        if not keys:
            return {}
        found: dict[str, Entry] = {}
        for row in self._db.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE campaign = ? AND key = ANY(?)",
                (self.campaign, keys)):
            entry = Entry.from_row(row)
            found[entry.key] = entry
        return found

    def entries(self, revision: int | None = None) -> Iterator[Entry]:
        sql = f"SELECT {_COLUMNS} FROM requests WHERE campaign = ?"
        params: tuple[Any, ...] = (self.campaign,)
        if revision is not None:
            sql += " AND revision = ?"
            params += (revision,)
        sql += " ORDER BY revision, recipient_index, step_index, key COLLATE \"C\""
        for row in self._db.execute(sql, params):
            yield Entry.from_row(row)

    def seed_deliveries(self, revision: int) -> int:
        """As ``Journal.seed_deliveries``: only requests without a row are read (one anti-join
        on the server, streamed through a server-side cursor), written a page at a time."""
        before = self._count_deliveries()
        for page in self._stream(
                f"SELECT {_COLUMNS} FROM requests WHERE campaign = %s AND revision = %s "
                "AND status = 'accepted' AND NOT EXISTS (SELECT 1 FROM deliveries d "
                "WHERE d.campaign = requests.campaign AND d.key = requests.key) "
                "ORDER BY recipient_index, step_index, key COLLATE \"C\"",
                (self.campaign, revision)):
            ops = delivery_seeds([Entry.from_row(r) for r in page], revision)
            if ops:
                self.apply(ops)  # its own connection: the reading cursor stays open
        return self._count_deliveries() - before

    def _stream(self, sql: str, params: tuple[Any, ...], size: int = PAGE_ROWS
                ) -> Iterator[list[Any]]:
        """The rows of one query in pages, through a server-side cursor (psycopg's default
        cursor would hold every row in this process)."""
        import psycopg

        conn = self._db.conn
        try:
            with conn.transaction(), conn.cursor(name="runner_stream") as cur:
                cur.execute(sql, params)
                while rows := cur.fetchmany(size):
                    yield rows
        except psycopg.Error as err:
            raise self._db.error(err) from None

    def open_deliveries(self, revision: int, after: int, limit: int) -> DeliveryPage:
        rows = self._db.execute(
            f"SELECT seq, {_DELIVERY_COLUMNS} FROM deliveries WHERE campaign = ? "
            "AND revision = ? AND final = 0 AND seq > ? ORDER BY seq LIMIT ?",
            (self.campaign, revision, after, limit)).fetchall()
        return DeliveryPage([Delivery.from_row(tuple(r)[1:]) for r in rows],
                            int(rows[-1][0]) if rows else after)

    def delivery_counts(self, revision: int) -> DeliveryCounts:
        total, opened, pushed = self._db.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE final = 0), "
            "COUNT(*) FILTER (WHERE final = 1 AND polls = 0) FROM deliveries "
            "WHERE campaign = ? AND revision = ?", (self.campaign, revision)).fetchone()
        return DeliveryCounts(int(total), int(opened), int(pushed))

    def has_delivery(self, message_id: str) -> bool:
        return self._db.execute(
            "SELECT 1 FROM deliveries WHERE campaign = ? AND message_id = ?",
            (self.campaign, message_id)).fetchone() is not None

    def revisions(self) -> list[int]:
        return [r[0] for r in self._db.execute(
            "SELECT DISTINCT revision FROM requests WHERE campaign = ?", (self.campaign,))]

    def attempted_chats(self, page_size: int = PAGE_ROWS) -> ChatPages:
        where = "campaign = %s AND attempts > 0 AND first_attempt_at IS NOT NULL"
        count = int(self._db.execute(
            f"SELECT COUNT(DISTINCT chat) FROM requests WHERE {where.replace('%s', '?')}",
            (self.campaign,)).fetchone()[0])
        pages = self._stream(
            f"SELECT chat, MIN(first_attempt_at), MIN(group_id) FROM requests WHERE {where} "
            "GROUP BY chat ORDER BY chat COLLATE \"C\"", (self.campaign,), page_size)
        return ChatPages(count, ([AttemptedChat(r[0], float(r[1]), r[2]) for r in page]
                                 for page in pages))

    def replies_of(self, chats: Iterable[str]) -> set[str]:
        return {r[0] for r in self._db.execute(
            "SELECT message_id FROM replies WHERE campaign = ? AND chat = ANY(?)",
            (self.campaign, list(chats)))}

    def reply_cursors_of(self, chats: Iterable[str]) -> dict[str, int]:
        return {chat: int(at) - 1 for chat, at in self._db.execute(
            "SELECT chat, MAX(received_at) FROM replies WHERE campaign = ? AND chat = ANY(?) "
            "GROUP BY chat", (self.campaign, list(chats)))}

    def _count_deliveries(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM deliveries WHERE campaign = ?",
                                    (self.campaign,)).fetchone()[0])

    def deliveries(self, revision: int | None = None, *, open_only: bool = False
                   ) -> Iterator[Delivery]:
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE campaign = ?"
        params: list[Any] = [self.campaign]
        if revision is not None:
            sql += " AND revision = ?"
            params.append(revision)
        if open_only:
            sql += " AND final = 0"
        for row in self._db.execute(sql + " ORDER BY seq", params):
            yield Delivery.from_row(row)

    def replies(self, chats: Iterable[str] | None = None) -> Iterator[Reply]:
        wanted = set(chats) if chats is not None else None
        for row in self._db.execute(
                "SELECT message_id, chat, received_at, length, is_stop, sender, text, read_at "
                "FROM replies WHERE campaign = ? ORDER BY chat COLLATE \"C\", received_at, seq",
                (self.campaign,)):
            if wanted is not None and row[1] not in wanted:
                continue
            yield Reply(row[0], row[1], row[2], row[3], bool(row[4]), sender=row[5],
                        text=row[6], now=row[7])

    def reply_cursors(self) -> dict[str, int]:
        return {chat: int(at) - 1 for chat, at in self._db.execute(
            "SELECT chat, MAX(received_at) FROM replies WHERE campaign = ? GROUP BY chat",
            (self.campaign,))}

    def reply_passes(self) -> list[ReplyPass]:
        return [ReplyPass(*row) for row in self._db.execute(
            f"SELECT {_PASS_COLUMNS} FROM reply_passes WHERE campaign = ? ORDER BY id",
            (self.campaign,))]

    def runs(self) -> list[dict[str, Any]]:
        names = ("id", "campaign", "revision", "started_at", "ended_at", "options", "plan",
                 "counts", "exit_code", "stop_reason", "git_commit", "dirty", "plan_digest",
                 "os_user")
        out = []
        for row in self._db.execute(
                f"SELECT {', '.join(names)} FROM runs WHERE campaign = ? ORDER BY id",
                (self.campaign,)):
            run = dict(zip(names, row, strict=True))
            for name in ("options", "plan", "counts", "dirty"):
                run[name] = json.loads(run[name]) if run[name] else None
            out.append(run)
        return out

    def last_run(self) -> dict[str, Any] | None:
        runs = self.runs()
        return runs[-1] if runs else None

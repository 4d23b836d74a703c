"""The send journal on PostgreSQL: every campaign's journal in one database (a ``campaign``
column), with the SQLite journal's interface and meaning (runner.store.journal).

The same safety: ``apply`` commits an attempt (status ``sending``) before its request leaves and
the outcome after; the JournalWriter batches them, and each batch is one transaction in one
round trip: a statement per kind of row (the rows' columns as arrays, unnested), BEGIN and COMMIT
pipelined with them, awaited on the event loop (an async connection). The schema is versioned in
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
from collections.abc import Collection, Iterable, Iterator
from itertools import groupby
from typing import Any

from runner.store.journal import (
    _COLUMNS,
    _DELIVERY_COLUMNS,
    _DELIVERY_PUSH_SQL,
    _DELIVERYFACTS,
    _LAST_RUN_COLUMNS,
    _PASS_COLUMNS,
    _REQUESTFACTS,
    _SENTFACTS,
    PAGE_ROWS,
    REPORT_DELIVERIES_SQL,
    REPORT_MESSAGED_SQL,
    REPORT_REQUESTS_SQL,
    REPORT_SENT_SQL,
    Attempt,
    AttemptedChat,
    ChatPages,
    Delivery,
    DeliveryCounts,
    DeliveryFacts,
    DeliveryPage,
    DeliveryPoll,
    DeliveryPollError,
    DeliveryPush,
    DeliverySeed,
    Entry,
    JournalOp,
    LastRun,
    Mark,
    Outcome,
    Reply,
    ReplyPass,
    ReplyPassEnd,
    RequestFacts,
    SentFacts,
    delivery_seeds,
)
from runner.store.pgconn import AsyncDatabase, Database, Statement
from runner.store.pglock import CampaignLock
from runner.store.pgschema import current_version, migrate

# An attempt at a key already journalled (a retry, a resumed run): counted, and its row moved on.
_ATTEMPT_AGAIN = """
ON CONFLICT (campaign, key) DO UPDATE SET
    status = 'sending', attempts = requests.attempts + 1, content_hash = excluded.content_hash,
    first_attempt_at = COALESCE(requests.first_attempt_at, excluded.first_attempt_at),
    last_attempt_at = excluded.last_attempt_at, run_id = excluded.run_id,
    chat = excluded.chat, step = excluded.step, revision = excluded.revision,
    recipient_index = excluded.recipient_index, step_index = excluded.step_index,
    messages = excluded.messages, variant = excluded.variant"""

# Every statement ends with the campaign as its last parameter: params = (*op.params(), campaign).
_SQL: dict[type, str] = {
    Attempt: """
INSERT INTO requests (key, chat, step, revision, recipient_index, step_index, messages, variant,
    status, attempts, content_hash, first_attempt_at, last_attempt_at, run_id, campaign)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'sending', 1, %s, %s, %s, %s, %s)
"""
    + _ATTEMPT_AGAIN,
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
        "WHERE message_id = %s AND final = 0",
        "WHERE message_id = %s AND final = 0 AND campaign = %s",
    ),
    Reply: """
INSERT INTO replies (message_id, chat, sender, received_at, length, is_stop, text, read_at,
    campaign)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
    ReplyPassEnd: """
UPDATE reply_passes SET ended_at = %s, chats_read = %s, chats_failed = %s, requests = %s,
    replies_new = %s, stop_reason = %s
WHERE id = %s AND campaign = %s""",
}


# The same writes for a whole batch in one statement: each column of the rows' params() as one
# array, unnested. One statement per batch instead of one per row is what keeps the writer's
# commit short (~10x fewer server round trips and plans for 128 rows); only the hottest kinds
# have one, the others go row by row.
_BATCH_SQL: dict[type, str] = {
    Attempt: """
INSERT INTO requests (key, chat, step, revision, recipient_index, step_index, messages, variant,
    status, attempts, content_hash, first_attempt_at, last_attempt_at, run_id, campaign)
SELECT v.key, v.chat, v.step, v.revision, v.recipient_index, v.step_index, v.messages,
    v.variant, 'sending', 1, v.content_hash, v.first_at, v.last_at, v.run_id, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::int[], %s::int[],
    %s::text[], %s::text[], %s::float8[], %s::float8[], %s::bigint[])
    AS v(key, chat, step, revision, recipient_index, step_index, messages, variant,
         content_hash, first_at, last_at, run_id)"""
    + _ATTEMPT_AGAIN,
    Outcome: """
UPDATE requests r SET status = v.status, message_id = v.message_id, message_ids = v.message_ids,
    group_id = v.group_id, error_code = v.error_code, error_message = v.error_message,
    http_status = v.http_status, finished_at = v.finished_at
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[],
    %s::float8[], %s::text[])
    AS v(status, message_id, message_ids, group_id, error_code, error_message, http_status,
         finished_at, key)
WHERE r.campaign = %s AND r.key = v.key""",
}


def _batch_params(kind: type, ops: list[JournalOp], campaign: str) -> list[Any]:
    """The batch statement's parameters: each column of the ops' params() as a list (the
    campaign first for an INSERT ... SELECT, last for an UPDATE ... WHERE)."""
    columns = [list(column) for column in zip(*(op.params() for op in ops), strict=True)]
    return [campaign, *columns] if kind is Attempt else [*columns, campaign]


def _one_per_key(ops: list[JournalOp]) -> bool:
    """A batch statement touches each row once (an upsert may not affect a row twice, and
    UPDATE ... FROM would apply only one of two): a key twice goes row by row, in order."""
    keys = {op.key for op in ops}  # type: ignore[union-attr]  # Attempt and Outcome only
    return len(keys) == len(ops)


_LOOKUP_SQL = f"SELECT {_COLUMNS} FROM requests WHERE campaign = ? AND key = ANY(?)"


class PgJournal:
    """One campaign's journal in a PostgreSQL state; the interface of ``Journal``.

    ``lock``: the command that writes it holds the campaign's advisory lock (runner.store.pglock)
    on this connection until ``close``."""

    # A commit is a round trip to the server (and its disk): as many extra workers as the
    # concurrency commit their next attempt ahead, so a commit as long as the API's answer
    # still leaves no slot idle (runner.run.send). A stop marks theirs pending, as ever.
    commit_ahead = 1.0

    # JournalWriter awaits ``apply_async``: the commit is a network round trip that the event
    # loop waits for like any response, sending meanwhile. Writes go through their own
    # connection (one on the loop), never the one the loop's reads use (lookups, the snapshot).

    def __init__(self, url: str, campaign: str, *, lock: str | None = None) -> None:
        self.campaign = campaign
        self._url, self._command = url, lock or "the command"
        self._writes: Database | None = None
        self._loop_db: AsyncDatabase | None = None
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
        return {
            r[0]
            for r in self._db.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }

    def close(self) -> None:
        try:
            if self._lock is not None:
                self._lock.release()
        finally:
            self._db.close()
            if self._writes is not None:
                self._writes.close()
            if self._loop_db is not None and self._loop_db.conn is not None:
                self._loop_db.conn.pgconn.finish()  # its loop has ended: only the socket

    def __enter__(self) -> PgJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def apply(self, ops: Iterable[JournalOp]) -> None:
        """Apply operations in order, in one transaction (one commit, one round trip)."""
        statements = self._statements(ops)
        if statements:
            if self._writes is None:
                self._writes = Database(self._url, command=self._command)
            self._writes.transaction(statements)

    async def apply_async(self, ops: Iterable[JournalOp]) -> None:
        """``apply`` on the running event loop (JournalWriter's way)."""
        statements = self._statements(ops)
        if statements:
            await self._loop().transaction(statements)

    def _loop(self) -> AsyncDatabase:
        if self._loop_db is None:
            self._loop_db = AsyncDatabase(self._url, command=self._command)
        return self._loop_db

    async def close_async(self) -> None:
        """Close the loop's connection, on its loop (JournalWriter.close)."""
        if self._loop_db is not None:
            await self._loop_db.aclose()
            self._loop_db = None

    def _statements(self, ops: Iterable[JournalOp]) -> list[Statement]:
        statements = []
        for kind, group in groupby(ops, key=type):
            run = list(group)
            if kind in _BATCH_SQL and len(run) > 1 and _one_per_key(run):
                statements.append(
                    Statement(_BATCH_SQL[kind], _batch_params(kind, run, self.campaign))
                )
            else:
                statements.append(
                    Statement(_SQL[kind], many=[(*op.params(), self.campaign) for op in run])
                )
        return statements

    def start_run(
        self,
        campaign: str,
        revision: int,
        options: dict[str, Any],
        plan: dict[str, Any],
        audit: dict[str, Any] | None = None,
    ) -> int:
        import socket

        a = audit or {}
        dirty = (
            None
            if a.get("dirty_files") is None
            else json.dumps({"tree": a.get("tree_dirty"), "files": a["dirty_files"]})
        )
        row = self._db.execute(
            "INSERT INTO runs (campaign, revision, started_at, options, plan, git_commit, dirty, "
            "plan_digest, os_user, host) VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
            (
                self.campaign,
                revision,
                time.time(),
                json.dumps(options),
                json.dumps(plan),
                a.get("git_commit"),
                dirty,
                a.get("plan_digest"),
                a.get("user"),
                socket.gethostname(),
            ),
        ).fetchone()
        return int(row[0])

    def finish_run(
        self, run_id: int, counts: dict[str, Any], exit_code: int, stop_reason: str | None
    ) -> None:
        self._db.execute(
            "UPDATE runs SET ended_at = ?, counts = ?, exit_code = ?, stop_reason = ? "
            "WHERE id = ? AND campaign = ?",
            (time.time(), json.dumps(counts), exit_code, stop_reason, run_id, self.campaign),
        )

    def start_reply_pass(self, chats: int, now: float) -> int:
        row = self._db.execute(
            "INSERT INTO reply_passes (campaign, started_at, chats) VALUES (?, ?, ?) RETURNING id",
            (self.campaign, now, chats),
        ).fetchone()
        return int(row[0])

    # -- reading -------------------------------------------------------------------------
    def is_empty(self) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM requests WHERE campaign = ? LIMIT 1", (self.campaign,)
            ).fetchone()
            is None
        )

    def lookup(self, keys: Iterable[str]) -> dict[str, Entry]:
        keys = list(keys)
        if not keys:
            return {}
        rows = self._db.execute(_LOOKUP_SQL, (self.campaign, keys))
        return {entry.key: entry for entry in map(Entry.from_row, rows)}

    async def lookup_async(self, keys: list[str]) -> dict[str, Entry]:
        """``lookup`` on the running event loop (the executor's feeder: no blocking call)."""
        if not keys:
            return {}
        rows = await self._loop().fetch(_LOOKUP_SQL.replace("?", "%s"), (self.campaign, keys))
        return {entry.key: entry for entry in map(Entry.from_row, rows)}

    def entries(self, revision: int | None = None) -> Iterator[Entry]:
        sql = f"SELECT {_COLUMNS} FROM requests WHERE campaign = ?"
        params: tuple[Any, ...] = (self.campaign,)
        if revision is not None:
            sql += " AND revision = ?"
            params += (revision,)
        sql += ' ORDER BY revision, recipient_index, step_index, key COLLATE "C"'
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
            'ORDER BY recipient_index, step_index, key COLLATE "C"',
            (self.campaign, revision),
        ):
            ops = delivery_seeds([Entry.from_row(r) for r in page], revision)
            if ops:
                self.apply(ops)  # its own connection: the reading cursor stays open
        return self._count_deliveries() - before

    def _stream(
        self, sql: str, params: tuple[Any, ...], size: int = PAGE_ROWS
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
            (self.campaign, revision, after, limit),
        ).fetchall()
        return DeliveryPage(
            [Delivery.from_row(tuple(r)[1:]) for r in rows], int(rows[-1][0]) if rows else after
        )

    def delivery_counts(self, revision: int) -> DeliveryCounts:
        total, opened, pushed = self._db.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE final = 0), "
            "COUNT(*) FILTER (WHERE final = 1 AND polls = 0) FROM deliveries "
            "WHERE campaign = ? AND revision = ?",
            (self.campaign, revision),
        ).fetchone()
        return DeliveryCounts(int(total), int(opened), int(pushed))

    def has_delivery(self, message_id: str) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM deliveries WHERE campaign = ? AND message_id = ?",
                (self.campaign, message_id),
            ).fetchone()
            is not None
        )

    def revisions(self) -> list[int]:
        return [
            r[0]
            for r in self._db.execute(
                "SELECT DISTINCT revision FROM requests WHERE campaign = ?", (self.campaign,)
            )
        ]

    def attempted_chats(self, page_size: int = PAGE_ROWS) -> ChatPages:
        where = "campaign = %s AND attempts > 0 AND first_attempt_at IS NOT NULL"
        count = int(
            self._db.execute(
                f"SELECT COUNT(DISTINCT chat) FROM requests WHERE {where.replace('%s', '?')}",
                (self.campaign,),
            ).fetchone()[0]
        )
        pages = self._stream(
            f"SELECT chat, MIN(first_attempt_at), MIN(group_id) FROM requests WHERE {where} "
            'GROUP BY chat ORDER BY chat COLLATE "C"',
            (self.campaign,),
            page_size,
        )
        return ChatPages(
            count, ([AttemptedChat(r[0], float(r[1]), r[2]) for r in page] for page in pages)
        )

    def replies_of(self, chats: Iterable[str]) -> set[str]:
        return {
            r[0]
            for r in self._db.execute(
                "SELECT message_id FROM replies WHERE campaign = ? AND chat = ANY(?)",
                (self.campaign, list(chats)),
            )
        }

    def reply_cursors_of(self, chats: Iterable[str]) -> dict[str, int]:
        return {
            chat: int(at) - 1
            for chat, at in self._db.execute(
                "SELECT chat, MAX(received_at) FROM replies WHERE campaign = ? AND chat = ANY(?) "
                "GROUP BY chat",
                (self.campaign, list(chats)),
            )
        }

    def _count_deliveries(self) -> int:
        return int(
            self._db.execute(
                "SELECT count(*) FROM deliveries WHERE campaign = ?", (self.campaign,)
            ).fetchone()[0]
        )

    def deliveries(
        self, revision: int | None = None, *, open_only: bool = False
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
            'FROM replies WHERE campaign = ? ORDER BY chat COLLATE "C", received_at, seq',
            (self.campaign,),
        ):
            if wanted is not None and row[1] not in wanted:
                continue
            yield Reply(
                row[0], row[1], row[2], row[3], bool(row[4]), sender=row[5], text=row[6], now=row[7]
            )

    def latest_reply_read_at(self) -> float | None:
        row = self._db.execute(
            "SELECT MAX(read_at) FROM replies WHERE campaign = ?", (self.campaign,)
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def reply_cursors(self) -> dict[str, int]:
        return {
            chat: int(at) - 1
            for chat, at in self._db.execute(
                "SELECT chat, MAX(received_at) FROM replies WHERE campaign = ? GROUP BY chat",
                (self.campaign,),
            )
        }

    def reply_passes(self) -> list[ReplyPass]:
        return [
            ReplyPass(*row)
            for row in self._db.execute(
                f"SELECT {_PASS_COLUMNS} FROM reply_passes WHERE campaign = ? ORDER BY id",
                (self.campaign,),
            )
        ]

    # The report's reads: server-side cursors, so a million rows never sit in the client.
    def report_requests(self, revision: int) -> Iterator[RequestFacts]:
        sql = REPORT_REQUESTS_SQL.format(
            ids="message_ids::json", campaign=" AND campaign = ?", collate=' COLLATE "C"'
        )
        return self._db.stream(sql, (revision, self.campaign), _REQUESTFACTS)

    def report_deliveries(self, revision: int) -> Iterator[DeliveryFacts]:
        sql = REPORT_DELIVERIES_SQL.format(campaign=" AND campaign = ?", order="seq")
        return self._db.stream(sql, (revision, self.campaign), _DELIVERYFACTS)

    def report_sent_by_chat(self, revision: int) -> Iterator[SentFacts]:
        sql = REPORT_SENT_SQL.format(
            campaign=" AND campaign = ?", r_campaign=" AND r.campaign = ?", collate=' COLLATE "C"'
        )
        return self._db.stream(sql, (revision, self.campaign, revision, self.campaign), _SENTFACTS)

    def report_messaged_chats(self, revision: int) -> Iterator[str]:
        sql = REPORT_MESSAGED_SQL.format(campaign=" AND campaign = ?")
        return self._db.stream(sql, (revision, self.campaign), lambda row: row[0])

    def runs(self) -> list[dict[str, Any]]:
        names = (
            "id",
            "campaign",
            "revision",
            "started_at",
            "ended_at",
            "options",
            "plan",
            "counts",
            "exit_code",
            "stop_reason",
            "git_commit",
            "dirty",
            "plan_digest",
            "os_user",
        )
        out = []
        for row in self._db.execute(
            f"SELECT {', '.join(names)} FROM runs WHERE campaign = ? ORDER BY id", (self.campaign,)
        ):
            run = dict(zip(names, row, strict=True))
            for name in ("options", "plan", "counts", "dirty"):
                run[name] = json.loads(run[name]) if run[name] else None
            out.append(run)
        return out

    def last_run(self) -> dict[str, Any] | None:
        runs = self.runs()
        return runs[-1] if runs else None

    # -- aggregates (one campaign; runner.store.summary reads every campaign at once) ------
    def status_counts(self) -> dict[str, int]:
        return {
            s: int(n)
            for s, n in self._db.execute(
                "SELECT status, count(*) FROM requests WHERE campaign = ? GROUP BY status "
                "ORDER BY status",
                (self.campaign,),
            )
        }

    def chats_among(self, chats: Collection[str]) -> int:
        if not chats:
            return 0
        return int(
            self._db.execute(
                "SELECT count(DISTINCT chat) FROM requests WHERE campaign = ? AND chat = ANY(?)",
                (self.campaign, list(chats)),
            ).fetchone()[0]
        )

    def last_run_summary(self) -> LastRun | None:
        row = self._db.execute(
            f"SELECT {_LAST_RUN_COLUMNS} FROM runs WHERE campaign = ? ORDER BY id DESC LIMIT 1",
            (self.campaign,),
        ).fetchone()
        return None if row is None else LastRun.from_row(row)

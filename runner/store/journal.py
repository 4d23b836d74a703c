"""The send journal: one SQLite file per campaign recording every request's attempts and outcome.

Why it is safe to crash: an attempt row is committed (status ``sending``) before its request
leaves, and the outcome is written after. A row left at ``sending`` means "maybe sent": the next
run resends it with the same Idempotency-Key, and the API answers a replay (200) if the first
try got through. So the journal never causes a duplicate; it only saves re-sending what is known.

Durability: WAL with ``synchronous=NORMAL``. A commit then survives the process being killed
(SIGKILL), which is the failure we guard against; a power cut may lose the last commits, which
only means those keys are sent again and replayed. The schema is versioned with
``PRAGMA user_version`` and migrated in place, one version at a time, each step in one
transaction: v1 had requests and runs; v2 adds ``deliveries`` (one row per accepted message,
what ``campaign track`` learnt about it); v3 the runs' audit trail; v4 each request's
``variant`` and the ``replies`` `track` reads; v5 the ``reply_passes``, one row per reading of
the replies (so "nobody answered" and "nobody asked" differ). A journal written by an older
runner is upgraded the first time a newer one opens it; an older runner refuses a newer
journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import KW_ONLY, dataclass, fields
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Protocol, Self

from runner.contract import DeliveryStatus
from runner.errors import CampaignError
from runner.states import RequestStatus
from runner.store.lock import JournalLock
from runner.store.paths import journal_path

SCHEMA_VERSION = 5

# The executor runs this share of its concurrency as extra workers, whose next attempt is
# committed while they wait for a slot (runner.run.send): a local commit takes a small part of
# an API round trip. A journal whose commits travel further says more (``commit_ahead``).
COMMIT_AHEAD = 0.25


SENDING = RequestStatus.SENDING
ACCEPTED = RequestStatus.ACCEPTED
FAILED = RequestStatus.FAILED
PENDING = RequestStatus.PENDING
SCHEDULED = RequestStatus.SCHEDULED
EXPIRED = RequestStatus.EXPIRED

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY,
    chat TEXT NOT NULL,
    step TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    recipient_index INTEGER NOT NULL DEFAULT 0,
    step_index INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    message_ids TEXT,
    group_id TEXT,
    error_code TEXT,
    error_message TEXT,
    http_status INTEGER,
    content_hash TEXT,
    first_attempt_at REAL,
    last_attempt_at REAL,
    finished_at REAL,
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS requests_revision ON requests (revision, recipient_index, step_index);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign TEXT NOT NULL,
    revision INTEGER NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    options TEXT NOT NULL DEFAULT '{}',
    plan TEXT NOT NULL DEFAULT '{}',
    counts TEXT,
    exit_code INTEGER,
    stop_reason TEXT
);
"""

# One row per message the API accepted (a text list or URL batch gives several per request).
# ``status`` is NULL until the first poll; ``final`` is set once it is delivered, failed or
# cancelled (or the API cannot find it), so `track` only ever polls the open ones.
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS deliveries (
    message_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    part INTEGER NOT NULL DEFAULT 0,
    chat TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    step TEXT NOT NULL,
    accepted_at REAL,
    status TEXT,
    protocol TEXT,
    time_sent INTEGER,
    time_delivered INTEGER,
    error TEXT,
    polls INTEGER NOT NULL DEFAULT 0,
    poll_errors INTEGER NOT NULL DEFAULT 0,
    last_polled_at REAL,
    next_poll_at REAL,
    final INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (revision, final, next_poll_at);
CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries (key);
"""

# Each run's audit trail (runner.store.audit): older runs keep NULLs.
_SCHEMA_V3 = """
ALTER TABLE runs ADD COLUMN git_commit TEXT;
ALTER TABLE runs ADD COLUMN dirty TEXT;
ALTER TABLE runs ADD COLUMN plan_digest TEXT;
ALTER TABLE runs ADD COLUMN os_user TEXT;
"""

# Each request's A/B variant (NULL: the step has none), and the inbound replies `track` reads:
# one row per inbound message of a messaged chat. ``received_at`` is the API's ``time_sent``
# (ms); ``text`` is kept only when asked (`track --keep-reply-text`), else only its length and
# whether it is a stop word.
_SCHEMA_V4 = """
ALTER TABLE requests ADD COLUMN variant TEXT;
CREATE TABLE IF NOT EXISTS replies (
    message_id TEXT PRIMARY KEY,
    chat TEXT NOT NULL,
    sender TEXT,
    received_at INTEGER NOT NULL,
    length INTEGER NOT NULL,
    is_stop INTEGER NOT NULL,
    text TEXT,
    read_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_chat ON replies (chat, received_at);
"""

# One row per reply pass of `track`, written when it starts (``ended_at`` NULL: it is running,
# or the process died) and completed when it ends, in the transaction that stores its replies.
# Without a row, a report cannot tell "no chat answered" from "no one read the answers".
# ``chats``: chats the pass set out to read; ``chats_read``: read to the end of their page (or
# unknown to the API); ``chats_failed``: retries ran out; the rest were not started (stopped).
# ``stop_reason``: NULL when it finished, else a StopReason (runner.http.retry) value.
_SCHEMA_V5 = """
CREATE TABLE IF NOT EXISTS reply_passes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    ended_at REAL,
    chats INTEGER NOT NULL,
    chats_read INTEGER NOT NULL DEFAULT 0,
    chats_failed INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    replies_new INTEGER NOT NULL DEFAULT 0,
    stop_reason TEXT
);
"""

# version -> the script that reaches it from the one before
_MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4, 5: _SCHEMA_V5}


_ATTEMPT_SQL = """
INSERT INTO requests (key, chat, step, revision, recipient_index, step_index, messages, variant,
    status, attempts, content_hash, first_attempt_at, last_attempt_at, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'sending', 1, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = 'sending', attempts = attempts + 1, content_hash = excluded.content_hash,
    variant = excluded.variant,
    -- A row marked first (scheduled, then due) gets its first attempt's time now: reply
    -- readings start from it.
    first_attempt_at = COALESCE(first_attempt_at, excluded.first_attempt_at),
    last_attempt_at = excluded.last_attempt_at, run_id = excluded.run_id,
    chat = excluded.chat, step = excluded.step, revision = excluded.revision,
    recipient_index = excluded.recipient_index, step_index = excluded.step_index,
    messages = excluded.messages, variant = excluded.variant
"""

_OUTCOME_SQL = """
UPDATE requests SET status = ?, message_id = ?, message_ids = ?, group_id = ?, error_code = ?,
    error_message = ?, http_status = ?, finished_at = ?
WHERE key = ?
"""

# A decision made without sending (e.g. the reply parent failed): no attempt is counted.
_MARK_SQL = """
INSERT INTO requests (key, chat, step, revision, recipient_index, step_index, messages, variant,
    status, attempts, error_code, error_message, content_hash, finished_at, run_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    status = excluded.status, error_code = excluded.error_code, variant = excluded.variant,
    error_message = excluded.error_message, content_hash = excluded.content_hash,
    finished_at = excluded.finished_at, run_id = excluded.run_id
"""

# Known from the journal alone (an accepted request's ids); never overwrites what a poll learnt.
_DELIVERY_SEED_SQL = """
INSERT OR IGNORE INTO deliveries (message_id, key, part, chat, revision, step, accepted_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""

_DELIVERY_POLL_SQL = """
UPDATE deliveries SET status = ?, protocol = ?, time_sent = ?, time_delivered = ?, error = ?,
    polls = polls + 1, poll_errors = 0, last_polled_at = ?, next_poll_at = ?, final = ?
WHERE message_id = ?
"""

# A poll that got no usable answer (5xx, timeout): the message keeps its last known status.
_DELIVERY_POLL_ERROR_SQL = """
UPDATE deliveries SET polls = polls + 1, poll_errors = poll_errors + 1, last_polled_at = ?,
    next_poll_at = ?
WHERE message_id = ?
"""

# What a webhook said of a message (runner.webhooks): only a message not final yet moves (a
# late "sent" must not reopen a delivered one); ``polls`` stays, so a final status with no poll
# is one that tracking never had to ask for.
_DELIVERY_PUSH_SQL = """
UPDATE deliveries SET status = ?, protocol = COALESCE(?, protocol),
    time_delivered = COALESCE(?, time_delivered), error = COALESCE(?, error), final = ?,
    last_polled_at = ?
WHERE message_id = ? AND final = 0
"""

# A reply read again (the next pass starts just before the last one) changes nothing.
_REPLY_SQL = """
INSERT OR IGNORE INTO replies (message_id, chat, sender, received_at, length, is_stop, text,
    read_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""

_REPLY_PASS_END_SQL = """
UPDATE reply_passes SET ended_at = ?, chats_read = ?, chats_failed = ?, requests = ?,
    replies_new = ?, stop_reason = ?
WHERE id = ?
"""

# Keep well below SQLite's host-parameter limit (999 on old builds).
_LOOKUP_CHUNK = 500
# Rows read per page where a journal is walked in full (seeding, `track`'s window of open
# messages, the reply pass's chats): memory stays flat however large the journal grows.
PAGE_ROWS = 5000

# The chats a reply reading asks about (runner.run.replies): one row per chat with an attempt,
# numbered in sorted order. A group chat is asked by the group id the API answered with.
_ATTEMPTED_CHATS_SQL = """
CREATE TEMP TABLE attempted_chats AS
SELECT ROW_NUMBER() OVER (ORDER BY chat{collate}) AS n, chat, first_at, group_id FROM (
    SELECT chat, MIN(first_attempt_at) AS first_at, MIN(group_id) AS group_id FROM requests
    WHERE attempts > 0 AND first_attempt_at IS NOT NULL {where}GROUP BY chat) AS c
"""


@dataclass(slots=True)
class Entry:
    """One request's row in the journal."""

    key: str
    chat: str
    step: str
    revision: int
    recipient_index: int
    step_index: int
    messages: int
    status: RequestStatus
    attempts: int
    message_id: str | None
    message_ids: list[str] | None
    group_id: str | None
    error_code: str | None
    error_message: str | None
    http_status: int | None
    content_hash: str | None
    first_attempt_at: float | None
    last_attempt_at: float | None
    finished_at: float | None
    run_id: int | None
    variant: str | None = None  # the step's A/B variant sent; None when the step has none

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Entry:
        """An ``Entry`` from a row selected as ``_COLUMNS`` (this class's fields, by name)."""
        values = list(row)
        # Positions looked up by name once; keyword construction would cost 4x per row.
        values[_STATUS_AT] = RequestStatus(values[_STATUS_AT])
        ids = values[_IDS_AT]
        values[_IDS_AT] = json.loads(ids) if ids else None
        return cls(*values)


# The SELECT names Entry's own fields, so a row lines up with its constructor by construction.
_COLUMNS = ", ".join(f.name for f in fields(Entry))
_STATUS_AT = [f.name for f in fields(Entry)].index("status")
_IDS_AT = [f.name for f in fields(Entry)].index("message_ids")

# runner/report still reads it under this name until its rewrite onto the typed model; new
# code compares to DeliveryStatus.NOT_FOUND.
NOT_FOUND = DeliveryStatus.NOT_FOUND


@dataclass(slots=True)
class Delivery:
    """What is known about one accepted message's delivery (a ``deliveries`` row)."""

    message_id: str
    key: str
    part: int
    chat: str  # the chat id to poll (the group id when the API created one)
    revision: int
    step: str
    accepted_at: float | None  # the runner's clock when the request was accepted
    status: str | None  # None until polled
    protocol: str | None
    time_sent: int | None  # API milliseconds
    time_delivered: int | None  # API milliseconds
    error: str | None
    polls: int
    poll_errors: int
    last_polled_at: float | None
    next_poll_at: float | None
    final: bool

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Delivery:
        """A ``Delivery`` from a row selected as ``_DELIVERY_COLUMNS`` (this class's fields)."""
        values = list(row)
        values[_FINAL_AT] = bool(values[_FINAL_AT])
        return cls(*values)


_DELIVERY_COLUMNS = ", ".join(f.name for f in fields(Delivery))
_FINAL_AT = [f.name for f in fields(Delivery)].index("final")


# -- what the report reads: typed records of a few columns, streamed, never a list of rows --
class RequestFacts(NamedTuple):
    """A request row as the report counts it (``report_requests``)."""

    key: str
    chat: str
    step: str
    status: str  # a RequestStatus value
    attempts: int
    accepted_messages: int  # messages the API accepted (its ids), else the planned count
    error_code: str | None
    error_message: str | None
    http_status: int | None


class DeliveryFacts(NamedTuple):
    """A deliveries row as the report counts it (``report_deliveries``)."""

    key: str
    step: str
    chat: str
    status: str | None
    protocol: str | None
    time_sent: int | None
    time_delivered: int | None
    error: str | None
    last_polled_at: float | None


class SentFacts(NamedTuple):
    """An accepted request with what its messages became (``report_sent_by_chat``): the reply
    figures' unit."""

    key: str
    chat: str
    step: str
    step_index: int
    variant: str | None
    accepted_at: float | None  # the runner's clock
    sent_ms: int | None  # the API's time_sent of its first message, once polled
    delivered: int  # 1: one of its messages was delivered


# Rows to records with tuple.__new__ bound in C: no Python frame per row, as ``_make`` has.
_REQUESTFACTS = partial(tuple.__new__, RequestFacts)
_DELIVERYFACTS = partial(tuple.__new__, DeliveryFacts)
_SENTFACTS = partial(tuple.__new__, SentFacts)

# The report's queries, shared by both backends (runner.store.pgjournal adds the campaign).
# An accepted request counts the ids the API gave it (a text list: several), else its plan's.
REPORT_REQUESTS_SQL = """
SELECT key, chat, step, status, attempts,
    CASE WHEN message_ids IS NULL OR message_ids IN ('', '[]') THEN messages
         ELSE json_array_length({ids}) END,
    error_code, error_message, http_status
FROM requests WHERE revision = ?{campaign}
ORDER BY revision, recipient_index, step_index, key{collate}"""

REPORT_DELIVERIES_SQL = """
SELECT key, step, chat, status, protocol, time_sent, time_delivered, error, last_polled_at
FROM deliveries WHERE revision = ?{campaign} ORDER BY {order}"""

REPORT_SENT_SQL = """
SELECT r.key, r.chat, r.step, r.step_index, r.variant,
    COALESCE(r.finished_at, r.last_attempt_at), d.sent_ms, COALESCE(d.delivered, 0)
FROM requests r LEFT JOIN (
    SELECT key, MIN(time_sent) AS sent_ms,
        MAX(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS delivered
    FROM deliveries WHERE revision = ?{campaign} GROUP BY key) d ON d.key = r.key
WHERE r.revision = ? AND r.status = 'accepted'{r_campaign}
ORDER BY r.chat{collate}"""

REPORT_MESSAGED_SQL = """
SELECT DISTINCT chat FROM requests WHERE revision = ? AND attempts > 0{campaign}"""

_STREAM_BATCH = 5000


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    """A page of open deliveries and the cursor the next page starts after."""

    rows: list[Delivery]
    after: int


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    total: int  # messages with a deliveries row
    open: int  # not final yet
    final_unpolled: int  # final without a poll: a webhook said so (campaign listen)


@dataclass(frozen=True, slots=True)
class AttemptedChat:
    """A chat the journal shows a send attempt to (runner.run.replies.chat_windows's rule)."""

    chat: str
    first_attempt_at: float  # the runner's clock
    group_id: str | None  # the smallest group id the API answered with for it, if any


@dataclass
class ChatPages:
    """``Journal.attempted_chats``: how many, and the pages (read lazily)."""

    count: int
    pages: Iterator[list[AttemptedChat]]


@dataclass(frozen=True, slots=True)
class LastRun:
    """A campaign's latest run row, without its plan or options (what `status` shows)."""

    started_at: float
    ended_at: float | None  # None: running, or the process died mid-run
    exit_code: int | None
    next_due: float | None  # a waiting run: when its first scheduled request falls due
    os_user: str | None

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> LastRun:
        """From ``_LAST_RUN_COLUMNS``."""
        started, ended, exit_code, counts, os_user = row
        due = (json.loads(counts) or {}).get("next_due") if counts else None
        return cls(started, ended, exit_code, due, os_user)


_LAST_RUN_COLUMNS = "started_at, ended_at, exit_code, counts, os_user"

# Chats looked up by IN (...) up to this many; more are matched against the journal's chats.
_CHATS_IN = 500


_PASS_COLUMNS = (
    "id, started_at, ended_at, chats, chats_read, chats_failed, requests, replies_new, stop_reason"
)


@dataclass(frozen=True, slots=True)
class ReplyPass:
    """One reading of the messaged chats' replies by `track` (a ``reply_passes`` row)."""

    id: int
    started_at: float  # the runner's clock
    ended_at: float | None  # None: still running, or the process died before it ended
    chats: int  # chats the pass set out to read
    chats_read: int
    chats_failed: int  # retries ran out: their replies wait for the next pass
    requests: int
    replies_new: int  # replies stored that were not known before
    stop_reason: str | None  # None: it finished (runner.http.retry.StopReason otherwise)

    @property
    def finished(self) -> bool:
        return self.ended_at is not None and self.stop_reason is None

    @property
    def complete(self) -> bool:
        """Every chat it set out to read was read."""
        return self.finished and self.chats_failed == 0 and self.chats_read >= self.chats


def journal_error(
    err: sqlite3.Error, path: str | Path, command: str = "the command"
) -> CampaignError:
    """A journal that cannot be read or written, as one line with its path and what to do."""
    text = str(err)
    if any(w in text for w in ("malformed", "not a database", "corrupt")):
        # A new journal re-sends what the old one knew; the API replays what it had accepted.
        hint = (
            f"the journal is damaged: move it aside (mv {path} {path}.damaged) and send "
            "again; the API's idempotency keys make a re-run safe (nothing is sent twice)"
        )
    elif "readonly" in text or "read-only" in text or "unable to open" in text:
        hint = (
            "the journal's folder must be writable (even to read it, SQLite writes beside it): "
            "copy the state folder somewhere writable and pass --state DIR"
        )
    else:
        hint = f"check the disk and permissions, then run {command} again"
    return CampaignError(f"the journal cannot be used: {text}", file=str(path), hint=hint)


class Journal:
    """Synchronous access to one journal file. Not shared across threads.

    ``lock``: the command that writes it (send, track, optouts) holds the journal's exclusive
    lock (runner.store.lock) until ``close``; readers pass none."""

    def __init__(self, path: str | Path, *, lock: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = JournalLock(self.path, lock).acquire() if lock else None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves to batch rows per commit.
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.DatabaseError as err:
            self._unlock()
            if "file is not a database" in str(err):
                raise CampaignError(
                    f"cannot open the journal: {err}",
                    file=str(self.path),
                    hint="is it a runner journal? move it aside to start afresh",
                ) from None
            raise journal_error(err, self.path, lock or "the command") from None
        except BaseException:
            self._unlock()
            raise

    @classmethod
    def for_campaign(
        cls, state_dir: str | Path, campaign_id: str, *, lock: str | None = None
    ) -> Journal:
        return cls(journal_path(state_dir, campaign_id), lock=lock)

    @classmethod
    def existing(
        cls,
        state_dir: str | Path,
        campaign_id: str,
        campaign_file: str | Path,
        *,
        lock: str | None = None,
    ) -> Journal:
        """The journal an earlier send left, or a user error saying how to get one."""
        path = journal_path(state_dir, campaign_id)
        if not path.exists():
            raise CampaignError(
                f"no journal for campaign {campaign_id!r} in {state_dir}",
                file=str(campaign_file),
                hint="send it first (campaign send FILE), or pass --state DIR",
            )
        return cls(path, lock=lock)

    @contextlib.contextmanager
    def snapshot(self, command: str = "the command") -> Iterator[Journal]:
        """Read in one transaction: every query inside sees the same state of the journal
        (WAL readers never block the writer, nor see half of its commits). A damaged or
        unreadable journal comes out as a user error (``journal_error``), never a traceback."""
        try:
            self._db.execute("BEGIN")
            try:
                yield self
            finally:
                if self._db.in_transaction:
                    self._db.execute("COMMIT")
        except sqlite3.Error as err:
            raise journal_error(err, self.path, command) from None

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CampaignError(
                f"the journal has schema version {version}; this runner knows {SCHEMA_VERSION}",
                file=str(self.path),
                hint="upgrade the runner",
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            # One script, one transaction per step: a crash mid-migration leaves the previous
            # version intact, and the next open picks up from there.
            self._db.executescript(
                f"BEGIN IMMEDIATE;{_MIGRATIONS[target]}PRAGMA user_version = {target};COMMIT;"
            )

    @property
    def schema_version(self) -> int:
        return int(self.pragma("user_version"))

    def pragma(self, name: str) -> Any:
        """The value of a read-only SQLite pragma (``journal_mode``, ``integrity_check``...)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        return self._db.execute(f"PRAGMA {name}").fetchone()[0]

    def tables(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._unlock()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    def apply(self, ops: Iterable[JournalOp]) -> None:
        """Apply operations in order, in one transaction (one commit)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Consecutive operations of one kind in one executemany: the same rows in the same
            # order, without a statement lookup and a call per row.
            for sql, run in groupby(ops, key=lambda op: op.SQL):
                db.executemany(sql, [op.params() for op in run])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def start_run(
        self,
        campaign: str,
        revision: int,
        options: dict[str, Any],
        plan: dict[str, Any],
        audit: dict[str, Any] | None = None,
    ) -> int:
        """``audit``: runner.store.audit.Audit.to_dict() (git commit, dirty, digest, user)."""
        a = audit or {}
        dirty = (
            None
            if a.get("dirty_files") is None
            else json.dumps({"tree": a.get("tree_dirty"), "files": a["dirty_files"]})
        )
        cur = self._db.execute(
            "INSERT INTO runs (campaign, revision, started_at, options, plan, git_commit, dirty, "
            "plan_digest, os_user) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                campaign,
                revision,
                time.time(),
                json.dumps(options),
                json.dumps(plan),
                a.get("git_commit"),
                dirty,
                a.get("plan_digest"),
                a.get("user"),
            ),
        )
        return _inserted(cur)

    def finish_run(
        self, run_id: int, counts: dict[str, Any], exit_code: int, stop_reason: str | None
    ) -> None:
        self._db.execute(
            "UPDATE runs SET ended_at = ?, counts = ?, exit_code = ?, stop_reason = ? WHERE id = ?",
            (time.time(), json.dumps(counts), exit_code, stop_reason, run_id),
        )

    def start_reply_pass(self, chats: int, now: float) -> int:
        """Record that a reply pass over ``chats`` chats begins; ``ReplyPassEnd`` completes it.
        Committed at once, so a pass the process never finished still shows (no ``ended_at``)."""
        cur = self._db.execute(
            "INSERT INTO reply_passes (started_at, chats) VALUES (?, ?)", (now, chats)
        )
        return _inserted(cur)

    # -- reading -------------------------------------------------------------------------
    def is_empty(self) -> bool:
        """No request was ever recorded (a first send): nothing to look up."""
        return self._db.execute("SELECT 1 FROM requests LIMIT 1").fetchone() is None

    def lookup(self, keys: Iterable[str]) -> dict[str, Entry]:
        """The rows for these keys (absent keys are simply missing), in bulk."""
        keys = list(keys)
        found: dict[str, Entry] = {}
        for i in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[i : i + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE key IN ({marks})", chunk
            ):
                entry = Entry.from_row(row)
                found[entry.key] = entry
        return found

    def entries(self, revision: int | None = None) -> Iterator[Entry]:
        """Every row (of one revision), in campaign order."""
        sql = f"SELECT {_COLUMNS} FROM requests"
        params: tuple[Any, ...] = ()
        if revision is not None:
            sql += " WHERE revision = ?"
            params = (revision,)
        sql += " ORDER BY revision, recipient_index, step_index, key"
        for row in self._db.execute(sql, params):
            yield Entry.from_row(row)

    def seed_deliveries(self, revision: int) -> int:
        """Add a ``deliveries`` row for every accepted message of ``revision`` not yet known.

        Idempotent: rows that exist keep what polls learnt. Returns how many were added.
        Only requests without a row are read, a page at a time (keyset on the campaign order),
        so a journal of a million messages seeded already costs one indexed anti-join.
        """
        before = self._db.total_changes
        after: tuple[int, int, str] = (-1, -1, "")
        while True:
            page = [
                Entry.from_row(row)
                for row in self._db.execute(
                    f"SELECT {_COLUMNS} FROM requests WHERE revision = ? AND status = 'accepted' "
                    "AND (recipient_index, step_index, key) > (?, ?, ?) AND NOT EXISTS "
                    "(SELECT 1 FROM deliveries d WHERE d.key = requests.key) "
                    "ORDER BY recipient_index, step_index, key LIMIT ?",
                    (revision, *after, PAGE_ROWS),
                )
            ]
            if not page:
                break
            ops = delivery_seeds(page, revision)
            if ops:
                self.apply(ops)
            last = page[-1]
            after = (last.recipient_index, last.step_index, last.key)
        return self._db.total_changes - before

    def open_deliveries(self, revision: int, after: int, limit: int) -> DeliveryPage:
        """Up to ``limit`` deliveries of ``revision`` not final yet, past the cursor ``after``
        (in the order they were seeded): `track` holds a window of them, not all."""
        # Walked along the rowid from the cursor (NOT INDEXED: the open-rows index would sort
        # every open row again for each page), so a whole pass reads the table once.
        rows = self._db.execute(
            f"SELECT rowid, {_DELIVERY_COLUMNS} FROM deliveries NOT INDEXED WHERE rowid > ? "
            "AND revision = ? AND final = 0 ORDER BY rowid LIMIT ?",
            (after, revision, limit),
        ).fetchall()
        return DeliveryPage(
            [Delivery.from_row(r[1:]) for r in rows], rows[-1][0] if rows else after
        )

    def delivery_counts(self, revision: int) -> DeliveryCounts:
        """How many messages of ``revision`` have a row, are open, were made final by a webhook."""
        total, opened, pushed = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(final = 0), 0), "
            "COALESCE(SUM(final = 1 AND polls = 0), 0) FROM deliveries WHERE revision = ?",
            (revision,),
        ).fetchone()
        return DeliveryCounts(int(total), int(opened), int(pushed))

    def attempted_chats(self, page_size: int = PAGE_ROWS) -> ChatPages:
        """Every chat with a send attempt and its first attempt's time, in pages of
        ``page_size`` sorted chats (a temporary table: each page is one indexed read, and no
        reading cursor stays open while the caller writes)."""
        self._db.execute("DROP TABLE IF EXISTS temp.attempted_chats")
        self._db.execute(_ATTEMPTED_CHATS_SQL.format(collate="", where=""))
        count = int(self._db.execute("SELECT COUNT(*) FROM temp.attempted_chats").fetchone()[0])
        return ChatPages(count, self._chat_pages(page_size))

    def _chat_pages(self, page_size: int) -> Iterator[list[AttemptedChat]]:
        after = 0
        while True:
            rows = self._db.execute(
                "SELECT n, chat, first_at, group_id FROM temp.attempted_chats WHERE n > ? "
                "ORDER BY n LIMIT ?",
                (after, page_size),
            ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            yield [AttemptedChat(r[1], float(r[2]), r[3]) for r in rows]

    def replies_of(self, chats: Iterable[str]) -> set[str]:
        """The message ids of the stored replies of these chats (an indexed read per chunk)."""
        chats = list(chats)
        found: set[str] = set()
        for i in range(0, len(chats), _LOOKUP_CHUNK):
            chunk = chats[i : i + _LOOKUP_CHUNK]
            found.update(
                r[0]
                for r in self._db.execute(
                    f"SELECT message_id FROM replies WHERE chat IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return found

    def reply_cursors_of(self, chats: Iterable[str]) -> dict[str, int]:
        """``reply_cursors`` for these chats only."""
        chats = list(chats)
        found: dict[str, int] = {}
        for i in range(0, len(chats), _LOOKUP_CHUNK):
            chunk = chats[i : i + _LOOKUP_CHUNK]
            found.update(
                (chat, int(at) - 1)
                for chat, at in self._db.execute(
                    "SELECT chat, MAX(received_at) FROM replies WHERE chat IN "
                    f"({','.join('?' * len(chunk))}) GROUP BY chat",
                    chunk,
                )
            )
        return found

    def deliveries(
        self, revision: int | None = None, *, open_only: bool = False
    ) -> Iterator[Delivery]:
        """Delivery rows (of one revision; only those not final), in campaign order."""
        sql = f"SELECT {_DELIVERY_COLUMNS} FROM deliveries"
        where, params = [], []
        if revision is not None:
            where.append("revision = ?")
            params.append(revision)
        if open_only:
            where.append("final = 0")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY rowid"
        for row in self._db.execute(sql, params):
            yield Delivery.from_row(row)

    def has_delivery(self, message_id: str) -> bool:
        """Whether this journal holds the message (an accepted message's ``deliveries`` row)."""
        return (
            self._db.execute(
                "SELECT 1 FROM deliveries WHERE message_id = ?", (message_id,)
            ).fetchone()
            is not None
        )

    def revisions(self) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT revision FROM requests")]

    def final_without_polls(self, revision: int) -> int:
        """Messages whose final status came without a poll (from a webhook)."""
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE revision = ? AND final = 1 AND polls = 0",
                (revision,),
            ).fetchone()[0]
        )

    def replies(self, chats: Iterable[str] | None = None) -> Iterator[Reply]:
        """Stored replies (of these chats), oldest first per chat."""
        sql = (
            "SELECT message_id, chat, received_at, length, is_stop, sender, text, read_at "
            "FROM replies"
        )
        wanted = set(chats) if chats is not None else None
        for row in self._db.execute(sql + " ORDER BY chat, received_at, rowid"):
            if wanted is not None and row[1] not in wanted:
                continue
            yield Reply(
                row[0], row[1], row[2], row[3], bool(row[4]), sender=row[5], text=row[6], now=row[7]
            )

    def latest_reply_read_at(self) -> float | None:
        """When the last stored reply was read (for replies read before passes were kept)."""
        row = self._db.execute("SELECT MAX(read_at) FROM replies").fetchone()
        return None if row[0] is None else float(row[0])

    def reply_cursors(self) -> dict[str, int]:
        """Per chat, the API time (ms) of its latest stored reply: where the next reading
        starts (one millisecond earlier, so replies sharing that millisecond are not lost)."""
        return {
            chat: int(at) - 1
            for chat, at in self._db.execute(
                "SELECT chat, MAX(received_at) FROM replies GROUP BY chat"
            )
        }

    def reply_passes(self) -> list[ReplyPass]:
        """Every reply pass recorded, oldest first."""
        return [
            ReplyPass(*row)
            for row in self._db.execute(f"SELECT {_PASS_COLUMNS} FROM reply_passes ORDER BY id")
        ]

    def report_requests(self, revision: int) -> Iterator[RequestFacts]:
        """The revision's requests in campaign order, a few columns each (the report's pass)."""
        sql = REPORT_REQUESTS_SQL.format(ids="message_ids", campaign="", collate="")
        return self._stream(sql, (revision,), _REQUESTFACTS)

    def report_deliveries(self, revision: int) -> Iterator[DeliveryFacts]:
        sql = REPORT_DELIVERIES_SQL.format(campaign="", order="rowid")
        return self._stream(sql, (revision,), _DELIVERYFACTS)

    def report_sent_by_chat(self, revision: int) -> Iterator[SentFacts]:
        """The revision's accepted requests ordered by chat (code point order, as Python
        compares strings), each with its first message's sent time and whether one arrived
        (one join of the deliveries grouped by key: no lookup per request)."""
        sql = REPORT_SENT_SQL.format(campaign="", r_campaign="", collate="")
        return self._stream(sql, (revision, revision), _SENTFACTS)

    def report_messaged_chats(self, revision: int) -> Iterator[str]:
        """Each chat the revision tried to message, once."""
        sql = REPORT_MESSAGED_SQL.format(campaign="")
        return self._stream(sql, (revision,), lambda row: row[0])

    def _stream(self, sql: str, params: tuple[Any, ...], make: Any) -> Iterator[Any]:
        cur = self._db.execute(sql, params)
        while rows := cur.fetchmany(_STREAM_BATCH):
            yield from map(make, rows)

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
        for row in self._db.execute(f"SELECT {', '.join(names)} FROM runs ORDER BY id"):
            run = dict(zip(names, row, strict=True))
            for name in ("options", "plan", "counts", "dirty"):
                run[name] = json.loads(run[name]) if run[name] else None
            out.append(run)
        return out

    def last_run(self) -> dict[str, Any] | None:
        runs = self.runs()
        return runs[-1] if runs else None

    # -- aggregates (campaign status: no row per request read) ---------------------------
    def status_counts(self) -> dict[str, int]:
        """Requests by status, sorted by status."""
        return {
            s: int(n)
            for s, n in self._db.execute(
                "SELECT status, count(*) FROM requests GROUP BY status ORDER BY status"
            )
        }

    def chats_among(self, chats: Collection[str]) -> int:
        """How many of these chats the journal has a request for."""
        if not chats:
            return 0
        if len(chats) <= _CHATS_IN:
            wanted = list(chats)
            return int(
                self._db.execute(
                    f"SELECT count(DISTINCT chat) FROM requests WHERE chat IN "
                    f"({','.join('?' * len(wanted))})",
                    wanted,
                ).fetchone()[0]
            )
        return sum(
            1 for (chat,) in self._db.execute("SELECT DISTINCT chat FROM requests") if chat in chats
        )

    def last_run_summary(self) -> LastRun | None:
        row = self._db.execute(
            f"SELECT {_LAST_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else LastRun.from_row(row)


def _inserted(cur: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just made (sqlite3 types it optional: set by any INSERT)."""
    if cur.lastrowid is None:
        raise sqlite3.DatabaseError("the INSERT made no row")
    return cur.lastrowid


# -- operations: typed records that Journal.apply turns into SQL -----------------------------


class PlannedRow(Protocol):
    """What a row reads of a planned request (runner.planning.request.PlannedRequest, which
    the store does not import)."""

    @property
    def key(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def recipient_index(self) -> int: ...
    @property
    def step_index(self) -> int: ...
    @property
    def messages(self) -> int: ...
    @property
    def variant(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _RequestRow:
    """Which request a row is, and where it stands in the campaign."""

    key: str
    chat: str
    step: str
    revision: int
    recipient_index: int
    step_index: int
    messages: int

    _: KW_ONLY
    variant: str | None = None  # the step's A/B variant; None when the step has none

    @classmethod
    def of(cls, req: PlannedRow, revision: int, **decision: Any) -> Self:
        """The row for a planned request (its identity read by name), with the decision's
        fields by keyword: ``Mark.of(req, revision, status=..., error_code=..., ...)``."""
        return cls(
            key=req.key,
            chat=req.recipient,
            step=req.step,
            revision=revision,
            recipient_index=req.recipient_index,
            step_index=req.step_index,
            messages=req.messages,
            variant=req.variant,
            **decision,
        )

    def _where(self) -> tuple[Any, ...]:
        return (
            self.key,
            self.chat,
            self.step,
            self.revision,
            self.recipient_index,
            self.step_index,
            self.messages,
            self.variant,
        )


@dataclass(frozen=True, slots=True)
class Attempt(_RequestRow):
    """A request is about to leave: committed (status ``sending``) before it does."""

    SQL: ClassVar[str] = _ATTEMPT_SQL
    content_hash: str
    run_id: int | None
    now: float

    def params(self) -> tuple[Any, ...]:
        return (*self._where(), self.content_hash, self.now, self.now, self.run_id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came of a request's latest attempt."""

    SQL: ClassVar[str] = _OUTCOME_SQL
    key: str
    status: RequestStatus
    _: KW_ONLY
    message_id: str | None = None
    message_ids: list[str] | None = None
    group_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    now: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RequestStatus(self.status))

    def params(self) -> tuple[Any, ...]:
        ids = json.dumps(self.message_ids) if self.message_ids is not None else None
        finished = self.now if self.status in (ACCEPTED, FAILED) else None
        return (
            self.status.value,
            self.message_id,
            ids,
            self.group_id,
            self.error_code,
            self.error_message,
            self.http_status,
            finished,
            self.key,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark(_RequestRow):
    """A decision made without sending (e.g. the reply parent failed): no attempt is counted.

    Which request it is comes first, by position (as for ``Attempt``); the decision is named."""

    SQL: ClassVar[str] = _MARK_SQL
    status: RequestStatus
    error_code: str | None
    error_message: str | None
    content_hash: str
    run_id: int | None
    now: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RequestStatus(self.status))

    def params(self) -> tuple[Any, ...]:
        return (
            *self._where(),
            self.status.value,
            self.error_code,
            self.error_message,
            self.content_hash,
            self.now,
            self.run_id,
        )


@dataclass(frozen=True, slots=True)
class DeliverySeed:
    """A message an accepted request produced, known from the journal alone."""

    SQL: ClassVar[str] = _DELIVERY_SEED_SQL
    message_id: str
    key: str
    part: int
    chat: str
    revision: int
    step: str
    accepted_at: float | None

    def params(self) -> tuple[Any, ...]:
        return (
            self.message_id,
            self.key,
            self.part,
            self.chat,
            self.revision,
            self.step,
            self.accepted_at,
        )


def delivery_seeds(entries: Iterable[Entry], revision: int) -> list[JournalOp]:
    """A ``deliveries`` row for each message the accepted requests produced (both backends)."""
    ops: list[JournalOp] = []
    for e in entries:
        if e.status != ACCEPTED:
            continue
        ids = e.message_ids or ([e.message_id] if e.message_id else [])
        chat = e.group_id or e.chat
        accepted = e.finished_at or e.last_attempt_at
        for part, mid in enumerate(ids):
            ops.append(DeliverySeed(mid, e.key, part, chat, revision, e.step, accepted))
    return ops


@dataclass(frozen=True, slots=True)
class DeliveryPoll:
    """What a status poll learnt about one message."""

    SQL: ClassVar[str] = _DELIVERY_POLL_SQL
    message_id: str
    _: KW_ONLY
    status: str | None
    protocol: str | None
    time_sent: int | None
    time_delivered: int | None
    error: str | None
    now: float
    next_poll_at: float | None
    final: bool

    def params(self) -> tuple[Any, ...]:
        return (
            self.status,
            self.protocol,
            self.time_sent,
            self.time_delivered,
            self.error,
            self.now,
            self.next_poll_at,
            int(self.final),
            self.message_id,
        )


@dataclass(frozen=True, slots=True)
class DeliveryPollError:
    """A poll that got no usable answer (5xx, timeout): the message keeps its last status."""

    SQL: ClassVar[str] = _DELIVERY_POLL_ERROR_SQL
    message_id: str
    _: KW_ONLY
    now: float
    next_poll_at: float | None

    def params(self) -> tuple[Any, ...]:
        return (self.now, self.next_poll_at, self.message_id)


@dataclass(frozen=True, slots=True)
class DeliveryPush:
    """What a webhook said of one message (message.sent/.delivered/.failed/.read)."""

    SQL: ClassVar[str] = _DELIVERY_PUSH_SQL
    message_id: str
    _: KW_ONLY
    status: str
    protocol: str | None
    time_delivered: int | None
    error: str | None
    final: bool
    now: float

    def params(self) -> tuple[Any, ...]:
        return (
            self.status,
            self.protocol,
            self.time_delivered,
            self.error,
            int(self.final),
            self.now,
            self.message_id,
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """One inbound message of a messaged chat, as `track` read it."""

    SQL: ClassVar[str] = _REPLY_SQL
    message_id: str
    chat: str  # the campaign's chat id (as in ``requests.chat``)
    received_at: int  # API milliseconds
    length: int  # characters
    is_stop: bool  # a stop word by the opt-out rule (runner.run.optouts.stop_word)
    _: KW_ONLY
    sender: str | None = None  # the member who wrote it, in a group chat
    text: str | None = None  # only with --keep-reply-text
    now: float

    def params(self) -> tuple[Any, ...]:
        return (
            self.message_id,
            self.chat,
            self.sender,
            self.received_at,
            self.length,
            int(self.is_stop),
            self.text,
            self.now,
        )


@dataclass(frozen=True, slots=True)
class ReplyPassEnd:
    """How a reply pass (``Journal.start_reply_pass``) ended, applied once its last window of
    replies is committed (each window commits its own rows: a pass that died midway keeps
    what it read, and its row keeps no end time)."""

    SQL: ClassVar[str] = _REPLY_PASS_END_SQL
    pass_id: int
    _: KW_ONLY
    chats_read: int
    chats_failed: int
    requests: int
    replies_new: int
    stop_reason: str | None  # None: it finished
    now: float

    def params(self) -> tuple[Any, ...]:
        return (
            self.now,
            self.chats_read,
            self.chats_failed,
            self.requests,
            self.replies_new,
            None if self.stop_reason is None else str(self.stop_reason),
            self.pass_id,
        )


JournalOp = (
    Attempt
    | Outcome
    | Mark
    | DeliverySeed
    | DeliveryPoll
    | DeliveryPollError
    | DeliveryPush
    | Reply
    | ReplyPassEnd
)


class JournalWriter:
    """Batches journal writes from many concurrent workers into few commits.

    ``attempt`` returns only once the attempt row is committed, so no request leaves before its
    row is durable; all attempts queued while the event loop runs one round share one commit.
    Outcomes are queued without waiting: losing one in a crash only causes a replayed resend.
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._ops: list[JournalOp] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    async def attempt(self, op: Attempt) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._ops.append(op)
        self._waiters.append(fut)
        self._wake.set()
        await fut

    def write(self, op: JournalOp) -> None:
        self._ops.append(op)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # One loop round: every worker that is ready to start a request queues its row now.
            await asyncio.sleep(0)
            ops, waiters = self._ops, self._waiters
            self._ops, self._waiters = [], []
            if waiters and len(waiters) < len(ops):
                # Attempts last, so each kind is one executemany (a batch mixes them row by
                # row). Safe because an attempt is the last write of its key in any batch: its
                # outcome can only be queued after this commit, and a retry's attempt comes
                # after the outcome of the try before it.
                ops = [op for op in ops if type(op) is not Attempt] + [
                    op for op in ops if type(op) is Attempt
                ]
            error: BaseException | None = None
            if ops:
                try:
                    apply_async = getattr(self.journal, "apply_async", None)
                    if apply_async is not None:
                        # A database over the network (runner.store.pgjournal): the loop sends
                        # while the commit travels; the next batch gathers meanwhile.
                        await apply_async(ops)
                    else:
                        self.journal.apply(ops)
                    self.commits += 1
                except Exception as exc:  # a full disk must not strand the waiting workers
                    error = exc
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(error) if error else fut.set_result(None)
            if error is not None:
                raise error
            if self._closing and not self._ops:
                return

    async def close(self) -> None:
        """Flush everything queued and stop."""
        self._closing = True
        self._wake.set()
        try:
            if self._task is not None:
                await self._task
            elif self._ops:
                self.journal.apply(self._ops)
                self._ops = []
        finally:
            close_async = getattr(self.journal, "close_async", None)
            if close_async is not None:  # its connection belongs to this loop
                await close_async()

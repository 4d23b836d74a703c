"""The consent ledger: one SQLite file per state (``<state>/_consent.sqlite``), shared by every
campaign sent with that state.

It keeps three things:

- ``events``: the history, append-only. Each opt-out, hold, release, opt-in or HELP, with when
  (the reply's API time), the word, a masked excerpt of the reply, the campaign and step it
  answered, who decided (for a release) and the reply's id. A reply read twice (by `send`,
  `track` and `optouts`, or after a crash) is recorded once: (reply id, chat, kind) is unique.
- ``standing``: where each chat stands now (opted out, held), derived from its events by
  runner.consent.standing and rewritten in the same transaction as the events. A chat without
  a row is clear.
- ``contacts``: every chat some campaign of the state has messaged (from the journals'
  attempts), when first and last, and its reply cursor: where the next reading of its replies
  starts. `send` reads a contact's new replies before messaging it again.

Why SQLite beside the journals: WAL lets many campaigns' commands read and write it at once
(each write is one short transaction; ``busy_timeout`` waits for the others), and it survives a
SIGKILL like the journals. Its name starts with ``_`` so no campaign id (a slug) can collide.
A damaged ledger stops every command that needs it with a user error: sending without it
could message someone who said STOP.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from runner.consent.standing import EventKind, Standing, Step, standing_after
from runner.errors import CampaignError
from runner.states import RequestStatus
from runner.store.journal import journal_error
from runner.store.paths import LEDGER_FILE, ledger_path

SCHEMA_VERSION = 2
# The journals' times are this machine's clock, reply times the API's: read a little before the
# first message, so a reply right after it is not lost to clock skew.
SKEW_MS = 60_000

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    word TEXT,
    excerpt TEXT,
    campaign TEXT,
    step TEXT,
    source TEXT NOT NULL,
    reply_id TEXT,
    actor TEXT,
    recorded_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_reply ON events (reply_id, chat, kind)
    WHERE reply_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_chat ON events (chat, at_ms, id);
CREATE TABLE IF NOT EXISTS standing (
    chat TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    event_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
    chat TEXT PRIMARY KEY,
    api_id TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    last_campaign TEXT,
    last_step TEXT,
    cursor_ms INTEGER
);
CREATE TABLE IF NOT EXISTS synced (
    campaign TEXT PRIMARY KEY,
    through REAL NOT NULL,
    files TEXT  -- the journal's files (size, mtime) when synced: unchanged, it is not re-read
);
"""
# The answers the runner owes (HELP, an opt-out's confirmation): an attempt committed before
# the request leaves, its outcome after, as the journals do for campaign messages.
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    chat TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    error TEXT,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL
);
"""
_MIGRATIONS = {1: _SCHEMA_V1, 2: _SCHEMA_V2}

_EVENT_COLUMNS = (
    "id, chat, kind, at_ms, word, excerpt, campaign, step, source, reply_id, actor, recorded_at"
)


class Source:
    """Where an event came from (stored as these strings)."""

    REPLY = "reply"  # a reply read from the API
    REVIEW = "review"  # a person, with `campaign optouts review`


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One event to record (``id`` and ``recorded_at`` are the ledger's)."""

    chat: str  # the chat, or in a group the member who wrote
    kind: EventKind
    at_ms: int
    word: str | None = None
    excerpt: str | None = None  # masked
    campaign: str | None = None
    step: str | None = None
    source: str = Source.REPLY
    reply_id: str | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as the ledger holds it."""

    id: int
    chat: str
    kind: EventKind
    at_ms: int
    word: str | None
    excerpt: str | None
    campaign: str | None
    step: str | None
    source: str
    reply_id: str | None
    actor: str | None
    recorded_at: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RecordedEvent:
        return cls(
            id=row["id"],
            chat=row["chat"],
            kind=EventKind(row["kind"]),
            at_ms=row["at_ms"],
            word=row["word"],
            excerpt=row["excerpt"],
            campaign=row["campaign"],
            step=row["step"],
            source=row["source"],
            reply_id=row["reply_id"],
            actor=row["actor"],
            recorded_at=row["recorded_at"],
        )


@dataclass(frozen=True, slots=True)
class ChatStanding:
    """A chat the ledger keeps from every campaign, with the event that put it there."""

    chat: str
    state: Standing
    event: RecordedEvent


@dataclass(frozen=True, slots=True)
class Contact:
    """A chat some campaign of the state has messaged."""

    chat: str
    api_id: str  # what goes in the URL: the group id the API answered with, else the chat
    first_ms: int  # the runner's clock, in ms, of the first attempt
    last_ms: int
    last_campaign: str | None
    last_step: str | None
    cursor_ms: int | None  # API ms: replies after this are new

    @property
    def since_ms(self) -> int:
        """Where the next reading of its replies starts."""
        start = max(self.first_ms - SKEW_MS, 0)
        return max(start, self.cursor_ms) if self.cursor_ms is not None else start


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """An answer the runner sent, or tried to (``status``: sending, accepted, failed, pending)."""

    key: str
    chat: str
    kind: str
    event_id: int
    status: RequestStatus
    attempts: int
    message_id: str | None
    error: str | None
    last_at: float


@dataclass(frozen=True, slots=True)
class Change:
    """A chat whose standing a recording changed."""

    chat: str
    before: Standing | None
    after: Standing | None


@contextlib.contextmanager
def existing_ledger(state_dir: str | Path) -> Iterator[Ledger | None]:
    """The state's ledger when it has one (a reader must not create it), else None."""
    path = ledger_path(state_dir)
    if not path.is_file():
        yield None
        return
    with Ledger(path) as ledger:
        yield ledger


def ledger_error(err: sqlite3.Error, path: Path) -> CampaignError:
    text = str(err)
    if any(w in text for w in ("malformed", "not a database", "corrupt")):
        hint = (
            f"the consent ledger is damaged; nothing was sent. Restore it from a backup, or "
            f"move it aside (mv {path} {path}.damaged) and rebuild it: `campaign optouts "
            "FILE` for each campaign reads every reply again (opt-outs come back; holds "
            "released since come back as holds)"
        )
    elif "readonly" in text or "unable to open" in text:
        hint = "the state folder must be writable: pass --state DIR with a folder you can write"
    else:
        hint = "check the disk and permissions, then run the command again"
    return CampaignError(f"the consent ledger cannot be used: {text}", file=str(path), hint=hint)


_SYNC_PAGE = 5000  # journal rows merged into ``contacts`` per page


def _file_marks(journal: Path) -> str:
    """The size and modification time of a journal and its WAL: equal marks, nothing new."""
    marks = []
    for path in (journal, Path(f"{journal}-wal")):
        try:
            st = path.stat()
            marks.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            marks.append("-")
    return "/".join(marks)


class Ledger:
    """Synchronous access to one state's ledger. Not shared across threads.

    The SQL that differs between SQLite and PostgreSQL (runner.store.pgledger) is spelled in
    the class attributes below; everything else is the same text for both."""

    _BEGIN = "BEGIN IMMEDIATE"
    _INSERT_EVENT = (
        "INSERT OR IGNORE INTO events (chat, kind, at_ms, word, excerpt, campaign, step, source, "
        "reply_id, actor, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    )
    _ADVANCE_CURSOR = (
        "UPDATE contacts SET cursor_ms = MAX(COALESCE(cursor_ms, 0), ?) WHERE chat = ?"
    )
    _GREATEST, _LEAST = "MAX", "MIN"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise CampaignError(
                f"cannot open the consent ledger: {err}",
                file=str(self.path),
                hint="pass --state DIR with a folder you can write",
            ) from None
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
            self._db.execute("SELECT count(*) FROM standing").fetchone()
        except sqlite3.Error as err:
            self._db.close()
            raise ledger_error(err, self.path) from None
        self._version = self._data_version()

    @classmethod
    def for_state(cls, state_dir: str | Path) -> Ledger:
        return cls(ledger_path(state_dir))

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CampaignError(
                f"the consent ledger has schema version {version}; this runner knows "
                f"{SCHEMA_VERSION}",
                file=str(self.path),
                hint="upgrade the runner",
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            self._db.executescript(
                f"BEGIN IMMEDIATE;{_MIGRATIONS[target]}PRAGMA user_version = {target};COMMIT;"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- changes by others ---------------------------------------------------------------
    def _data_version(self) -> int:
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def changed_elsewhere(self) -> bool:
        """True once another connection (another command, campaign or process) committed since
        the last call: a cheap test before trusting what was read earlier."""
        try:
            version = self._data_version()
        except sqlite3.Error as err:
            raise ledger_error(err, self.path) from None
        if version != self._version:
            self._version = version
            return True
        return False

    # -- reading -------------------------------------------------------------------------
    def standings(self) -> dict[str, Standing]:
        """Every chat kept from messaging (opted out or held), by chat."""
        try:
            return {
                r[0]: Standing(r[1]) for r in self._db.execute("SELECT chat, state FROM standing")
            }
        except sqlite3.Error as err:
            raise ledger_error(err, self.path) from None

    def standing_rows(
        self, state: Standing | None = None, chats: Iterable[str] | None = None
    ) -> list[ChatStanding]:
        """Chats kept from messaging with the event that put them there, by chat."""
        sql = (
            f"SELECT s.state AS state, {', '.join('e.' + c for c in _EVENT_COLUMNS.split(', '))} "
            "FROM standing s JOIN events e ON e.id = s.event_id"
        )
        params: list[str] = []
        if state is not None:
            sql += " WHERE s.state = ?"
            params.append(state.value)
        wanted = set(chats) if chats is not None else None
        out = []
        for row in self._db.execute(sql + " ORDER BY s.chat", params):
            if wanted is not None and row["chat"] not in wanted:
                continue
            out.append(
                ChatStanding(row["chat"], Standing(row["state"]), RecordedEvent.from_row(row))
            )
        return out

    def events(
        self, chats: Iterable[str] | None = None, kinds: Iterable[EventKind] | None = None
    ) -> Iterator[RecordedEvent]:
        """The history (of these chats, of these kinds), oldest first."""
        wanted = set(chats) if chats is not None else None
        kinds_ = {k.value for k in kinds} if kinds is not None else None
        for row in self._db.execute(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY at_ms, id"):
            if wanted is not None and row["chat"] not in wanted:
                continue
            if kinds_ is not None and row["kind"] not in kinds_:
                continue
            yield RecordedEvent.from_row(row)

    def event(self, event_id: int) -> RecordedEvent | None:
        row = self._db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)
        ).fetchone()
        return RecordedEvent.from_row(row) if row is not None else None

    def known_replies(self, reply_ids: Iterable[str]) -> set[str]:
        """Which of these replies the ledger has recorded already (read by an earlier run)."""
        ids = list(reply_ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in self._db.execute(
                    f"SELECT reply_id FROM events WHERE reply_id IN ({marks})", chunk
                )
            )
        return found

    def contacts(self, chats: Iterable[str] | None = None) -> dict[str, Contact]:
        """Every chat the state has messaged (``chats``: only these, a chunk per query: a
        reading of a large campaign asks a window at a time)."""
        queries: list[tuple[str, tuple[str, ...]]]
        if chats is None:
            queries = [("SELECT * FROM contacts", ())]
        else:
            wanted = list(chats)
            queries = [
                (
                    f"SELECT * FROM contacts WHERE chat IN ({','.join('?' * len(chunk))})",
                    tuple(chunk),
                )
                for chunk in (wanted[i : i + 500] for i in range(0, len(wanted), 500))
            ]
        try:
            return {
                r["chat"]: Contact(
                    r["chat"],
                    r["api_id"],
                    r["first_ms"],
                    r["last_ms"],
                    r["last_campaign"],
                    r["last_step"],
                    r["cursor_ms"],
                )
                for sql, params in queries
                for r in self._db.execute(sql, params)
            }
        except sqlite3.Error as err:
            raise ledger_error(err, self.path) from None

    def is_empty(self) -> bool:
        """Nobody was ever messaged or heard from: a first send has nothing to read."""
        return (
            self._db.execute("SELECT 1 FROM contacts LIMIT 1").fetchone() is None
            and self._db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None
        )

    # -- writing -------------------------------------------------------------------------
    def record(
        self,
        events: Iterable[ConsentEvent],
        cursors: dict[str, int] | None = None,
        now: float | None = None,
    ) -> list[Change]:
        """Record events (a reply already recorded is skipped) and advance reply cursors
        (chat -> API ms, never backwards), in one transaction; returns the chats whose standing
        changed."""
        events = list(events)
        at = time.time() if now is None else now
        db = self._db
        with self._transaction():
            touched: set[str] = set()
            for e in events:
                cur = db.execute(
                    self._INSERT_EVENT,
                    (
                        e.chat,
                        e.kind.value,
                        e.at_ms,
                        e.word,
                        e.excerpt,
                        e.campaign,
                        e.step,
                        e.source,
                        e.reply_id,
                        e.actor,
                        at,
                    ),
                )
                if cur.rowcount and e.kind is not EventKind.HELP:
                    touched.add(e.chat)
            changes = [
                c for c in (self._restand(chat) for chat in sorted(touched)) if c.before != c.after
            ]
            for chat, cursor in (cursors or {}).items():
                db.execute(self._ADVANCE_CURSOR, (cursor, chat))
        return changes

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: rolled back on any error, a SQLite error a user error, and
        our own commit no news to ``changed_elsewhere``."""
        db = self._db
        try:
            db.execute(self._BEGIN)
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as err:
            raise ledger_error(err, self.path) from None
        self._version = self._data_version()

    def _restand(self, chat: str) -> Change:
        db = self._db
        row = db.execute("SELECT state FROM standing WHERE chat = ?", (chat,)).fetchone()
        before = Standing(row[0]) if row else None
        rows = db.execute(
            "SELECT id, kind, at_ms FROM events WHERE chat = ? AND kind != ?",
            (chat, EventKind.HELP.value),
        ).fetchall()
        steps = [Step(EventKind(r["kind"]), r["at_ms"], r["id"]) for r in rows]
        after = standing_after(steps)
        if after is None:
            db.execute("DELETE FROM standing WHERE chat = ?", (chat,))
        else:
            # The latest event that set this standing is the one to show.
            kinds = {Standing.OPTED_OUT: EventKind.OPTED_OUT, Standing.HELD: EventKind.HELD}
            last = max((s for s in steps if s.kind is kinds[after]), key=lambda s: (s.at_ms, s.id))
            db.execute(
                "INSERT INTO standing (chat, state, event_id) VALUES (?,?,?) "
                "ON CONFLICT (chat) DO UPDATE SET state = excluded.state, "
                "event_id = excluded.event_id",
                (chat, after.value, last.id),
            )
        return Change(chat, before, after)

    def _contacts_merge(self) -> str:
        """What a contact row already known keeps: the earliest first message, the latest last
        one (and its campaign and step), a group's API id once learnt."""
        return (
            "ON CONFLICT (chat) DO UPDATE SET "
            "api_id = CASE WHEN excluded.api_id != excluded.chat THEN excluded.api_id "
            f"ELSE contacts.api_id END, first_ms = {self._LEAST}(contacts.first_ms, excluded.first_ms), "
            "last_campaign = CASE WHEN excluded.last_ms >= contacts.last_ms "
            "THEN excluded.last_campaign ELSE contacts.last_campaign END, "
            "last_step = CASE WHEN excluded.last_ms >= contacts.last_ms "
            "THEN excluded.last_step ELSE contacts.last_step END, "
            f"last_ms = {self._GREATEST}(contacts.last_ms, excluded.last_ms)"
        )

    def _upsert_contacts(self, rows: list[tuple[str, str, int, int, str, str]]) -> None:
        """(chat, api_id, first_ms, last_ms, campaign, step) rows, one per chat."""
        self._db.executemany(
            "INSERT INTO contacts (chat, api_id, first_ms, last_ms, last_campaign, last_step) "
            f"VALUES (?,?,?,?,?,?) {self._contacts_merge()}",
            rows,
        )

    def _mark_synced(self, campaign: str, through: float, files: str | None) -> None:
        try:
            self._db.execute(
                "INSERT INTO synced (campaign, through, files) VALUES (?, ?, ?) "
                "ON CONFLICT (campaign) DO UPDATE SET files = excluded.files",
                (campaign, through, files),
            )
        except sqlite3.Error as err:
            raise ledger_error(err, self.path) from None
        self._version = self._data_version()

    # -- answers ---------------------------------------------------------------------------
    def answers(self) -> dict[str, AnswerRow]:
        """Every answer tried, by key."""
        return {
            r["key"]: AnswerRow(
                key=r["key"],
                chat=r["chat"],
                kind=r["kind"],
                event_id=r["event_id"],
                status=RequestStatus(r["status"]),
                attempts=r["attempts"],
                message_id=r["message_id"],
                error=r["error"],
                last_at=r["last_at"],
            )
            for r in self._db.execute("SELECT * FROM answers")
        }

    def answer_attempt(self, key: str, chat: str, kind: str, event_id: int, now: float) -> None:
        """Committed before the answer's request leaves (a crash: the same key again)."""
        self._write(
            "INSERT INTO answers (key, chat, kind, event_id, status, attempts, first_at, "
            "last_at) VALUES (?,?,?,?,'sending',1,?,?) ON CONFLICT (key) DO UPDATE SET "
            "status = 'sending', attempts = answers.attempts + 1, last_at = excluded.last_at",
            (key, chat, kind, event_id, now, now),
        )

    def answer_outcome(
        self, key: str, status: RequestStatus, message_id: str | None, error: str | None, now: float
    ) -> None:
        self._write(
            "UPDATE answers SET status = ?, message_id = ?, error = ?, last_at = ? WHERE key = ?",
            (status.value, message_id, error, now, key),
        )

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as err:
            raise ledger_error(err, self.path) from None
        self._version = self._data_version()

    # -- contacts from the journals --------------------------------------------------------
    def sync_state(self, state_dir: str | Path) -> int:
        """Bring ``contacts`` up to date with every journal in the state folder (what each
        campaign has attempted since the last sync); returns how many chats were added or
        moved on. Journals are opened read-only: a send running on one is not disturbed."""
        changed = 0
        for path in sorted(Path(state_dir).glob("*.sqlite")):
            if path.name != LEDGER_FILE:
                changed += self.sync_journal(path.stem, path)
        return changed

    def sync_journal(self, campaign: str, journal: str | Path | None) -> int:
        """``contacts`` from one campaign's journal: its chats with an attempt since the last
        sync (a row tried, whatever came of it: an unconfirmed try may have been delivered)."""
        db = self._db
        through_row = db.execute(
            "SELECT through, files FROM synced WHERE campaign = ?", (campaign,)
        ).fetchone()
        through = float(through_row[0]) if through_row else -1.0
        files = self._marks(journal)
        if through_row is not None and files is not None and through_row[1] == files:
            return 0  # not written since: a state of many campaigns is not scanned again
        rows = self._attempted_since(campaign, journal, through)
        return self._merge_contacts(campaign, rows, through, files)

    def _marks(self, journal: str | Path | None) -> str | None:
        """What says a journal was not written since the last sync (None: read it again)."""
        return _file_marks(Path(journal)) if journal is not None else None

    def _attempted_since(
        self, campaign: str, journal: str | Path | None, through: float
    ) -> Iterator[list[tuple[Any, ...]]]:
        """The journal's rows (chat, group_id, first, last, step) attempted since ``through``
        (a second of overlap: a row committed late with an earlier clock is not missed; syncing
        a row twice changes nothing), in pages: a journal of a million rows is never held."""
        assert journal is not None
        try:
            src = sqlite3.connect(f"file:{Path(journal).resolve()}?mode=ro", uri=True)
        except sqlite3.Error:
            return  # not there (yet): nothing was attempted
        try:
            src.execute("PRAGMA busy_timeout=5000")
            cur = src.execute(
                "SELECT chat, group_id, COALESCE(first_attempt_at, last_attempt_at), "
                "last_attempt_at, step FROM requests WHERE attempts > 0 AND last_attempt_at >= ?",
                (through - 1.0,),
            )
            while rows := cur.fetchmany(_SYNC_PAGE):
                yield rows
        except sqlite3.Error as err:
            if "no such table" in str(err):
                return
            # Whom that campaign messaged cannot be known, so neither can whose replies to read
            # before messaging them again: stop, and say how to mend it.
            raise journal_error(err, journal, "send") from None
        finally:
            src.close()

    def _merge_contacts(
        self,
        campaign: str,
        pages: Iterable[list[tuple[Any, ...]]],
        through: float,
        files: str | None,
    ) -> int:
        """Upsert each page's chats (the upsert merges with what earlier pages wrote, so paging
        changes nothing), then move the campaign's sync mark; one transaction."""
        db = self._db
        changed = 0
        newest = through
        with self._transaction():
            for rows in pages:
                latest: dict[
                    str, tuple[str, int, int, str]
                ] = {}  # chat -> api_id, first, last, step
                for chat, group_id, first, last, step in rows:
                    first_ms, last_ms = int(first * 1000), int(last * 1000)
                    newest = max(newest, last)
                    api_id = group_id if group_id and "," in chat else chat
                    seen = latest.get(chat)
                    if seen is None:
                        latest[chat] = (api_id, first_ms, last_ms, step)
                    else:
                        latest[chat] = (
                            seen[0] if seen[0] != chat else api_id,
                            min(seen[1], first_ms),
                            max(seen[2], last_ms),
                            step if last_ms >= seen[2] else seen[3],
                        )
                self._upsert_contacts(
                    [(chat, v[0], v[1], v[2], campaign, v[3]) for chat, v in latest.items()]
                )
                changed += len(latest)
            if changed:
                db.execute(
                    "INSERT INTO synced (campaign, through, files) VALUES (?, ?, ?) "
                    "ON CONFLICT (campaign) DO UPDATE SET through = excluded.through, "
                    "files = excluded.files",
                    (campaign, newest, files),
                )
        if not changed:
            self._mark_synced(campaign, through, files)
        return changed

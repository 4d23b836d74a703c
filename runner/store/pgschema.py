"""The PostgreSQL state's schema: every campaign's journal (runner.store.pgjournal), the
consent ledger (runner.store.pgledger) and the campaign locks (runner.store.pglock), in one
database with one version.

The version is kept in ``runner_schema`` and migrated in place, one version per transaction,
under a transaction-level advisory lock (two runners opening a new database at once do not both
create it); an older runner refuses a newer schema.
"""

from __future__ import annotations

from runner.errors import CampaignError
from runner.store.pgconn import Database

SCHEMA_VERSION = 1
_MIGRATE_LOCK = 0x72756E6E  # "runn": serialises migrations across runners

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS requests (
    campaign TEXT NOT NULL,
    key TEXT NOT NULL,
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
    first_attempt_at DOUBLE PRECISION,
    last_attempt_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    run_id BIGINT,
    variant TEXT,
    PRIMARY KEY (campaign, key)
);
CREATE INDEX IF NOT EXISTS requests_revision
    ON requests (campaign, revision, recipient_index, step_index);
CREATE INDEX IF NOT EXISTS requests_attempted ON requests (campaign, last_attempt_at);
CREATE TABLE IF NOT EXISTS runs (
    id BIGSERIAL PRIMARY KEY,
    campaign TEXT NOT NULL,
    revision INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    options TEXT NOT NULL DEFAULT '{}',
    plan TEXT NOT NULL DEFAULT '{}',
    counts TEXT,
    exit_code INTEGER,
    stop_reason TEXT,
    git_commit TEXT,
    dirty TEXT,
    plan_digest TEXT,
    os_user TEXT,
    host TEXT
);
CREATE INDEX IF NOT EXISTS runs_campaign ON runs (campaign, id);
CREATE TABLE IF NOT EXISTS deliveries (
    campaign TEXT NOT NULL,
    seq BIGSERIAL,
    message_id TEXT NOT NULL,
    key TEXT NOT NULL,
    part INTEGER NOT NULL DEFAULT 0,
    chat TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    step TEXT NOT NULL,
    accepted_at DOUBLE PRECISION,
    status TEXT,
    protocol TEXT,
    time_sent BIGINT,
    time_delivered BIGINT,
    error TEXT,
    polls INTEGER NOT NULL DEFAULT 0,
    poll_errors INTEGER NOT NULL DEFAULT 0,
    last_polled_at DOUBLE PRECISION,
    next_poll_at DOUBLE PRECISION,
    final INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign, message_id)
);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (campaign, revision, final, next_poll_at);
CREATE TABLE IF NOT EXISTS replies (
    campaign TEXT NOT NULL,
    seq BIGSERIAL,
    message_id TEXT NOT NULL,
    chat TEXT NOT NULL,
    sender TEXT,
    received_at BIGINT NOT NULL,
    length INTEGER NOT NULL,
    is_stop INTEGER NOT NULL,
    text TEXT,
    read_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (campaign, message_id)
);
CREATE INDEX IF NOT EXISTS replies_chat ON replies (campaign, chat, received_at);
CREATE TABLE IF NOT EXISTS reply_passes (
    id BIGSERIAL PRIMARY KEY,
    campaign TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    chats INTEGER NOT NULL,
    chats_read INTEGER NOT NULL DEFAULT 0,
    chats_failed INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    replies_new INTEGER NOT NULL DEFAULT 0,
    stop_reason TEXT
);
CREATE TABLE IF NOT EXISTS locks (
    campaign TEXT PRIMARY KEY,
    lock_id BIGINT NOT NULL,
    command TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    os_user TEXT,
    backend_pid INTEGER NOT NULL,
    since DOUBLE PRECISION NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS lock_ids;
"""

# The consent ledger's tables: runner.store.ledger's, with PostgreSQL's types.
_LEDGER_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY,
    chat TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    word TEXT,
    excerpt TEXT,
    campaign TEXT,
    step TEXT,
    source TEXT NOT NULL,
    reply_id TEXT,
    actor TEXT,
    recorded_at DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_reply ON events (reply_id, chat, kind)
    WHERE reply_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_chat ON events (chat, at_ms, id);
CREATE TABLE IF NOT EXISTS standing (
    chat TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    event_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
    chat TEXT PRIMARY KEY,
    api_id TEXT NOT NULL,
    first_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    last_campaign TEXT,
    last_step TEXT,
    cursor_ms BIGINT
);
CREATE TABLE IF NOT EXISTS synced (
    campaign TEXT PRIMARY KEY,
    through DOUBLE PRECISION NOT NULL,
    files TEXT
);
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    chat TEXT NOT NULL,
    kind TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    error TEXT,
    first_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_version (
    id INTEGER PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO ledger_version (id, n) VALUES (1, 0) ON CONFLICT DO NOTHING;
-- Every write to the ledger moves the counter on, in its own transaction: what SQLite's
-- PRAGMA data_version tells the SQLite ledger (Ledger.changed_elsewhere).
CREATE OR REPLACE FUNCTION ledger_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER events_bump AFTER INSERT OR UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump();
CREATE OR REPLACE TRIGGER standing_bump AFTER INSERT OR UPDATE OR DELETE ON standing
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump();
CREATE OR REPLACE TRIGGER contacts_bump AFTER INSERT OR UPDATE OR DELETE ON contacts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_bump();
"""


# version -> the script that reaches it from the one before
_MIGRATIONS = {1: _SCHEMA_V1 + _LEDGER_SCHEMA_V1}


def migrate(db: Database) -> None:
    """Bring the database's schema to this runner's version (or refuse a newer one)."""
    version = current_version(db) if has_schema(db) else 0
    if version > SCHEMA_VERSION:
        raise CampaignError(
            f"the state database has schema version {version}; this runner knows {SCHEMA_VERSION}",
            file=db.label,
            hint="upgrade the runner",
        )
    if version == SCHEMA_VERSION:
        return
    db.execute("BEGIN")
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS runner_schema (version INTEGER NOT NULL)")
        version = current_version(db)  # another runner may have migrated while we waited
        for target in range(version + 1, SCHEMA_VERSION + 1):
            db.execute(_MIGRATIONS[target])
            db.execute("DELETE FROM runner_schema")
            db.execute("INSERT INTO runner_schema (version) VALUES (?)", (target,))
    except BaseException:
        db.rollback_quietly()
        raise
    db.execute("COMMIT")


def current_version(db: Database) -> int:
    row = db.execute("SELECT max(version) FROM runner_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def has_schema(db: Database) -> bool:
    return db.execute("SELECT to_regclass('runner_schema')").fetchone()[0] is not None


def has_journal(db: Database, campaign: str) -> bool:
    """An earlier run of ``campaign`` is recorded in this database."""
    if not has_schema(db):
        return False
    return (
        db.execute(
            "SELECT 1 FROM runs WHERE campaign = ? UNION ALL "
            "SELECT 1 FROM requests WHERE campaign = ? LIMIT 1",
            (campaign, campaign),
        ).fetchone()
        is not None
    )

"""Where a state lives: a folder (the embedded default) or a PostgreSQL database.

``--state`` (or ``RUNNER_STATE``) is either a directory or a ``postgresql://`` URL. Every
command asks runner.store.backend for a campaign's journal, the consent ledger and the
per-campaign lock of its ``State``, so the rest of the runner is the same for both:

- ``FolderState``: one SQLite journal per campaign (runner.store.journal), an fcntl lock each
  (runner.store.lock), the ledger ``_consent.sqlite`` (runner.store.ledger).
- ``PgState``: one database for every campaign's journal and the ledger
  (runner.store.pgjournal, runner.store.pgledger), an advisory lock per campaign
  (runner.store.pglock). Its ``label`` never holds the password.

This module only says where a state is and what it holds (no sqlite3, no psycopg at import:
`plan` without a journal starts without either); runner.store.backend opens what is there.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from runner.errors import CampaignError
from runner.store.paths import journal_path, ledger_path
from runner.store.pgconn import Database, is_url, safe_label
from runner.store.pgschema import has_journal

STATE_ENV = "RUNNER_STATE"


@dataclass(frozen=True)
class FolderState:
    path: Path

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def work_dir(self) -> Path:
        """A local folder for this machine's scratch files (the plan spool)."""
        return self.path

    def has_journal(self, campaign_id: str) -> bool:
        return journal_path(self.path, campaign_id).is_file()

    def has_ledger(self) -> bool:
        return ledger_path(self.path).is_file()


@dataclass(frozen=True)
class PgState:
    url: str = field(repr=False)  # may hold a password: only libpq ever sees it

    def __repr__(self) -> str:
        return f"PgState({self.label!r})"

    @property
    def label(self) -> str:
        return safe_label(self.url)

    @property
    def work_dir(self) -> Path:
        return Path(tempfile.gettempdir())

    def database(self, command: str = "the command") -> Database:
        return Database(self.url, command=command)

    def has_journal(self, campaign_id: str) -> bool:
        db = self.database()
        try:
            return has_journal(db, campaign_id)
        finally:
            db.close()

    def has_ledger(self) -> bool:
        return True  # the database holds it (created empty with the schema)


State = FolderState | PgState


def open_state(value: str | Path | State) -> State:
    """The state ``--state`` names: a ``postgresql://`` URL, else a folder."""
    if isinstance(value, FolderState | PgState):
        return value
    if is_url(value):
        return PgState(str(value))
    text = str(value)
    if "://" in text:
        raise CampaignError(
            f"unknown state URL scheme: {text.split('://')[0]}://",
            hint="--state takes a folder or a postgresql://user@host/db URL",
        )
    return FolderState(Path(text))

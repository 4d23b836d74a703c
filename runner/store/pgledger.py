"""The consent ledger on PostgreSQL: the state database's ``events``, ``standing``, ``contacts``
and ``synced`` tables, read and written by the same code as the SQLite ledger
(runner.store.ledger.Ledger); only the SQL spellings that differ are overridden here.

Contacts come from the ``requests`` of every campaign in the same database, so a campaign sent
from one laptop is known to a send from another. ``changed_elsewhere`` (SQLite's data_version)
is a counter every writing transaction moves on (a trigger, runner.store.pgschema).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.store.ledger import Ledger
from runner.store.pgconn import Database
from runner.store.pgschema import migrate

_PAGE = 5000  # requests rows merged into ``contacts`` per page


class PgLedger(Ledger):
    """The consent ledger of a PostgreSQL state."""

    _BEGIN = "BEGIN"
    _INSERT_EVENT = (
        "INSERT INTO events (chat, kind, at_ms, word, excerpt, campaign, step, source, "
        "reply_id, actor, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
    )
    _ADVANCE_CURSOR = (
        "UPDATE contacts SET cursor_ms = GREATEST(COALESCE(cursor_ms, 0), ?) WHERE chat = ?"
    )
    _GREATEST, _LEAST = "GREATEST", "LEAST"

    def __init__(self, url: str, *, command: str = "the command") -> None:  # noqa: D107
        self._database = Database(url, command=command)
        self._db = self._database  # type: ignore[assignment]
        self.path = self._database.label  # type: ignore[assignment]  # a label, not a file
        try:
            migrate(self._database)
        except BaseException:
            self._database.close()
            raise
        self._version = self._data_version()

    def close(self) -> None:
        self._database.close()

    def _data_version(self) -> int:
        return int(self._db.execute("SELECT n FROM ledger_version WHERE id = 1").fetchone()[0])

    def sync_state(self, state_dir: str | Path | None = None) -> int:
        """``contacts`` from every campaign's journal in the database."""
        campaigns = [
            r[0] for r in self._db.execute("SELECT DISTINCT campaign FROM requests ORDER BY 1")
        ]
        return sum(self.sync_journal(c, None) for c in campaigns)

    def _upsert_contacts(self, rows: list[tuple[str, str, int, int, str, str]]) -> None:
        # One statement for every row, not one per row: each statement on ``contacts`` fires
        # the ledger_version trigger, and thousands of updates of that one row in a transaction
        # take quadratic time (each walks the row's chain of versions).
        if not rows:
            return
        self._db.execute(
            "INSERT INTO contacts (chat, api_id, first_ms, last_ms, last_campaign, last_step) "
            "SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::text[], "
            f"?::text[]) {self._contacts_merge()}",
            [list(column) for column in zip(*rows, strict=True)],
        )

    def _marks(self, journal: str | Path | None) -> str | None:
        return None  # one indexed query per campaign: no file to look at

    def _attempted_since(
        self, campaign: str, journal: str | Path | None, through: float
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Pages keyed on (last_attempt_at, key) (the ``requests_attempted`` index): the
        default cursor would bring every row of a large campaign into this process."""
        after: tuple[float, str] = (through - 1.0, "")
        first = True
        while True:
            rows = [
                tuple(r)
                for r in self._db.execute(
                    "SELECT chat, group_id, COALESCE(first_attempt_at, last_attempt_at), "
                    "last_attempt_at, step, key FROM requests WHERE campaign = ? AND attempts > 0 "
                    + (
                        "AND last_attempt_at >= ? "
                        if first
                        else 'AND (last_attempt_at, key COLLATE "C") > (?, ?) '
                    )
                    + 'ORDER BY last_attempt_at, key COLLATE "C" LIMIT ?',
                    (campaign, after[0], *(() if first else (after[1],)), _PAGE),
                )
            ]
            if not rows:
                return
            first = False
            after = (rows[-1][3], rows[-1][5])
            yield [r[:5] for r in rows]

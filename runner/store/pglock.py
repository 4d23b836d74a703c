"""One run per campaign across the team: a PostgreSQL advisory lock per campaign.

The lock is session-level (``pg_try_advisory_lock``) on the connection the run writes its
journal with: the server drops it when that session ends, however it ends (the process killed,
the laptop's network gone), so a holder that died never blocks the team for long. Beside it, a
``locks`` row names the holder (host, PID, OS user, command, since) and a lock id: a second
`send`, `track` or `optouts` anywhere refuses at once naming it (exit 3, like the folder
state's runner.store.lock), and ``campaign state unlock ID --lock-id N`` ends a stuck holder's
session, as Terraform's ``force-unlock`` asks for the lock id.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from runner.errors import CampaignError
from runner.store.audit import os_user
from runner.store.lock import JournalBusy
from runner.store.pgconn import Database

# hashtextextended(campaign, seed): the advisory lock's key; the seed keeps the runner's keys
# apart from other applications' advisory locks in a shared database.
_SEED = 0x52554E4E4552  # "RUNNER"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a campaign's lock (a ``locks`` row)."""

    campaign: str
    lock_id: int
    command: str
    host: str | None
    pid: int | None
    os_user: str | None
    backend_pid: int
    since: float

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (
            f"{self.command} by {self.os_user or 'an unknown user'} on "
            f"{self.host or 'an unknown host'} (PID {self.pid}) since {when}, "
            f"lock id {self.lock_id}"
        )


def holder(db: Database, campaign: str) -> Holder | None:
    row = db.execute(
        "SELECT campaign, lock_id, command, host, pid, os_user, backend_pid, since "
        "FROM locks WHERE campaign = ?",
        (campaign,),
    ).fetchone()
    return Holder(*row) if row is not None else None


class CampaignLock:
    """Held by the run that writes a campaign's journal, until ``release``."""

    def __init__(self, db: Database, campaign: str, command: str = "send") -> None:
        self.db, self.campaign, self.command = db, campaign, command
        self.lock_id: int | None = None

    def acquire(self) -> CampaignLock:
        db = self.db
        got = db.execute(
            "SELECT pg_try_advisory_lock(hashtextextended(?, ?))", (self.campaign, _SEED)
        ).fetchone()[0]
        if not got:
            found = holder(db, self.campaign)
            who = found.describe() if found else "another runner"
            lock_id = found.lock_id if found else "N"
            raise JournalBusy(
                f"campaign {self.campaign!r} is being run: {who}; one run at a time",
                file=db.label,
                hint=f"wait for it to finish, then run {self.command} again; if that run is "
                f"stuck, `campaign state unlock {self.campaign} --lock-id {lock_id} "
                "--state URL` ends it",
            )
        row = db.execute(
            "INSERT INTO locks (campaign, lock_id, command, host, pid, os_user, backend_pid, since) "
            "VALUES (?, nextval('lock_ids'), ?, ?, ?, ?, pg_backend_pid(), ?) "
            "ON CONFLICT (campaign) DO UPDATE SET lock_id = excluded.lock_id, "
            "command = excluded.command, host = excluded.host, pid = excluded.pid, "
            "os_user = excluded.os_user, backend_pid = excluded.backend_pid, "
            "since = excluded.since RETURNING lock_id",
            (
                self.campaign,
                self.command,
                socket.gethostname(),
                os.getpid(),
                os_user(),
                time.time(),
            ),
        ).fetchone()
        self.lock_id = int(row[0])
        return self

    def release(self) -> None:
        if self.lock_id is None or self.db.conn.closed:
            return
        lock_id, self.lock_id = self.lock_id, None
        try:
            self.db.execute(
                "DELETE FROM locks WHERE campaign = ? AND lock_id = ?", (self.campaign, lock_id)
            )
            self.db.execute(
                "SELECT pg_advisory_unlock(hashtextextended(?, ?))", (self.campaign, _SEED)
            )
        except CampaignError:
            pass  # the session is gone, and the server dropped the lock with it


def force_unlock(db: Database, campaign: str, lock_id: int) -> Holder:
    """End the session holding ``campaign``'s lock, if ``lock_id`` is still the one it holds."""
    found = holder(db, campaign)
    if found is None or found.lock_id != lock_id:
        now = (
            f"its lock id is {found.lock_id} ({found.describe()})" if found else "it is not locked"
        )
        raise CampaignError(
            f"campaign {campaign!r} does not hold lock id {lock_id}: {now}",
            file=db.label,
            hint="check the id the refusal named; nothing changed",
        )
    db.execute(
        "SELECT pg_terminate_backend(?) FROM pg_stat_activity WHERE pid = ?",
        (found.backend_pid, found.backend_pid),
    )
    db.execute("DELETE FROM locks WHERE campaign = ? AND lock_id = ?", (campaign, lock_id))
    return found

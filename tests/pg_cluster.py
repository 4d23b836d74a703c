"""A throwaway PostgreSQL cluster for the tests (a pytest plugin, loaded by conftest.py).

One cluster per xdist worker (session scope), started on first use: ``initdb`` into a
temporary folder, listening on 127.0.0.1 on a free port, stopped at the end. PostgreSQL refuses
to run as root, so as root the cluster belongs to ``nobody`` (its files, its process). Each test
gets its own database (``pg_url``): a copy of a template the runner migrated once.

Without PostgreSQL the tests that need it are skipped, except under CI (``CI=true``), where a
missing server fails them: CI must test both state backends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "s3cret-pg-Passw0rd"  # the tests check it never reaches any output
USER = "runner"
_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _bin(name: str) -> str | None:
    for d in _BIN_DIRS:
        if (d / name).is_file():
            return str(d / name)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgCluster:
    """A running cluster: ``url(db)`` to reach a database, ``restart_immediate()`` for the
    crash fault."""

    data: Path
    port: int
    runas: list[str]  # the command prefix that runs a server binary as its owner
    settings: tuple[str, ...] = ()  # extra server settings, "name=value"

    def url(self, db: str = "postgres", *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{db}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.runas, _bin("pg_ctl") or "pg_ctl", "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self._ctl(
            "-w",
            "-l",
            str(self.data / "server.log"),
            "-o",
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=on -c autovacuum=off"
            + "".join(f" -c {s}" for s in self.settings),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    def restart_immediate(self) -> None:
        """``pg_ctl stop -m immediate`` (a crash: no checkpoint), then start (crash recovery)."""
        self.stop("immediate")
        self.start()


def missing_postgres() -> None:
    """Skip the test, or under CI (``CI=true``) fail it: CI must test both state backends."""
    message = (
        "PostgreSQL (initdb, pg_ctl: Debian's postgresql-15) or psycopg is missing: "
        "apt-get install postgresql-15; pip install -e '.[test]'"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _runas() -> list[str]:
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("nobody")
    return ["runuser", "-u", "nobody", "--"]


def available() -> bool:
    """initdb and psycopg are both here."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return _bin("initdb") is not None


@contextlib.contextmanager
def throwaway_cluster(*settings: str) -> Iterator[PgCluster]:
    """A cluster in a temporary folder, started on a free loopback port, removed at the end
    (the tests' fixture, and benchmarks/send_pg.py). ``settings``: extra ``-c name=value``."""
    initdb = _bin("initdb")
    if initdb is None:
        raise RuntimeError("initdb not found (Debian's postgresql-15)")
    runas = _runas()
    root = Path(tempfile.mkdtemp(prefix="runner-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if runas:
        os.chmod(root, 0o755)
        shutil.chown(root, "nobody")
        shutil.chown(pwfile, "nobody")
    try:
        subprocess.run(
            [
                *runas,
                initdb,
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster = PgCluster(data, _free_port(), runas, settings)
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    if not available():
        missing_postgres()
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """A database the runner has given its schema (the runner's own migration, from empty):
    each test's database is a copy of it, cheaper than creating and migrating one."""
    import psycopg

    from runner.store.pgconn import Database
    from runner.store.pgschema import migrate

    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE runner_template")
    db = Database(pg_cluster.url("runner_template"))
    try:
        migrate(db)
    finally:
        db.close()
    return "runner_template"


@pytest.fixture
def pg_url(pg_cluster: PgCluster, pg_template: str) -> Iterator[str]:
    """A fresh database of the cluster with the runner's schema and no rows, as a URL with the
    password in it."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        # WAL_LOG (block by block through the WAL) rather than FILE_COPY, which checkpoints the
        # whole cluster twice: ~0.28 s of the server's CPU per database instead of ~0.38 s.
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template} STRATEGY WAL_LOG")
    yield pg_cluster.url(name)
    # Not dropped (PostgreSQL 15 checkpoints the cluster for each DROP DATABASE, ~0.2 s of CPU):
    # the cluster and its ~8 MB per database go at the end of the session. Connections the
    # test left open are closed, as DROP ... WITH (FORCE) did, so none pile up.
    with contextlib.suppress(Exception), psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )

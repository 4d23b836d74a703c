"""`campaign send` as a whole process with its state in PostgreSQL vs in a folder (SQLite),
side by side in one run, against the loopback server that answers 202 after 50 ms.

A throwaway PostgreSQL cluster (tests/pg_cluster.py: initdb into a temporary folder, a loopback
port) is started for the run and removed after; each PostgreSQL run gets a fresh database. The
two backends alternate run by run so drift on the machine hits both alike; each row prints the
median, every run, its share of ideal (C / 0.05 s messages per second) and PG / SQLite.

The cluster runs with the server's durable defaults (fsync on, synchronous_commit on): each
commit of the journal waits for the disk, as in production. ``--fsync off`` measures without.

    python benchmarks/send_pg.py                          # 5,000 at 32 and 20,000 at 128
    python benchmarks/send_pg.py --runs 5000:32 --repeat 5
    python benchmarks/send_pg.py --state-backend postgresql
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from pg_cluster import PgCluster, available, throwaway_cluster  # noqa: E402
from send_process import Process, run_process  # noqa: E402
from send_throughput import DELAY, LoopbackServer  # noqa: E402

TEMPLATE = "bench_template"


def make_template(cluster: PgCluster) -> None:
    """A database with the runner's schema and no rows: each run's database is a copy of it,
    as a team's state database has its schema long before a send (a first send into an empty
    database also creates the schema, once)."""
    import psycopg

    from runner.store.pgconn import Database
    from runner.store.pgschema import migrate

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    db = Database(cluster.url(TEMPLATE))
    try:
        migrate(db)
    finally:
        db.close()


@contextlib.contextmanager
def fresh_database(cluster: PgCluster, template: str | None = None) -> Iterator[str]:
    """A new database of the cluster (empty, or a copy of ``template``), dropped after."""
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    copy = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}{copy}")
    try:
        yield cluster.url(name)
    finally:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _sending_s(stdout: str) -> float:
    """The send phase alone, as the run's summary gives it ("N HTTP requests in X s")."""
    found = re.search(r"HTTP requests in ([0-9.]+) s", stdout)
    return float(found.group(1)) if found else float("nan")


def _row(label: str, n: int, c: int, runs: list[Process]) -> str:
    ideal = n * DELAY / c
    mid = statistics.median(r.seconds for r in runs)
    sending = statistics.median(_sending_s(r.stdout) for r in runs)
    each = ", ".join(f"{r.seconds:.2f}" for r in runs)
    return (
        f"{label:<10} {n:>6,} messages at concurrency {c:>3}: {mid:6.2f} s wall, "
        f"{n / mid:7,.0f} msg/s, {ideal / mid:5.0%} of ideal ({ideal:.2f} s); sending "
        f"alone {sending:.2f} s, {ideal / sending:4.0%} of ideal  [runs {each}]"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=["5000:32", "20000:128"], metavar="N:C")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each row; the median is kept")
    ap.add_argument("--state-backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument(
        "--fsync",
        choices=("on", "off"),
        default="on",
        help="the cluster's fsync and full_page_writes (default: on, as in production)",
    )
    args = ap.parse_args()
    pg = args.state_backend in ("postgresql", "both")
    sq = args.state_backend in ("sqlite", "both")
    if pg and not available():
        sys.exit(
            "PostgreSQL (initdb) or psycopg is missing: apt-get install postgresql-15; "
            "pip install -e '.[test]'"
        )
    # The tests' cluster turns autovacuum off (fewer cycles on a shared machine); a real
    # server keeps its statistics current, so this one does too.
    settings = (f"fsync={args.fsync}", f"full_page_writes={args.fsync}", "autovacuum=on")
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(LoopbackServer())
        cluster = stack.enter_context(throwaway_cluster(*settings)) if pg else None
        if cluster is not None:
            make_template(cluster)
        print(
            f"PostgreSQL state: a throwaway cluster on 127.0.0.1, fsync={args.fsync}"
            if cluster
            else "SQLite state only"
        )
        for spec in args.runs:
            n, c = (int(x) for x in spec.split(":"))
            sqlite_s: list[Process] = []
            pg_s: list[Process] = []
            for i in range(args.repeat):
                # Alternate which backend goes first too, so neither always runs warm.
                order = ["sqlite", "postgresql"] if i % 2 == 0 else ["postgresql", "sqlite"]
                for backend in order:
                    if backend == "sqlite" and sq:
                        sqlite_s.append(run_process(server.url, n, c))
                    elif backend == "postgresql" and cluster is not None:
                        with fresh_database(cluster, TEMPLATE) as url:
                            pg_s.append(run_process(server.url, n, c, state=url))
            if sqlite_s:
                print(_row("sqlite", n, c, sqlite_s))
            if pg_s:
                print(_row("postgresql", n, c, pg_s))
            if sqlite_s and pg_s:
                sq_t = [r.seconds for r in sqlite_s]
                pg_t = [r.seconds for r in pg_s]
                ratio = statistics.median(sq_t) / statistics.median(pg_t)
                pairs = [s / p for s, p in zip(sq_t, pg_t, strict=True)]
                sending = statistics.median(
                    _sending_s(r.stdout) for r in sqlite_s
                ) / statistics.median(_sending_s(r.stdout) for r in pg_s)
                print(
                    f"  PG / SQLite at concurrency {c}: {ratio:.3f}x the rate, whole process "
                    f"(median of each; run by run {min(pairs):.3f}..{max(pairs):.3f}); "
                    f"sending alone {sending:.3f}x"
                )


if __name__ == "__main__":
    main()

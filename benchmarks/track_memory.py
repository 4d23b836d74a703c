"""`track` and `optouts` at a million messages: time, requests and peak memory, side by side.

Issue 27 item 6: `track` (and `optouts`) must hold <= 300 MB whatever the journal's size. The
journal is built as a webhook-fed campaign leaves it:

- a slice (``--open``, default 2,000 messages) is really sent through the emulator by
  `campaign send`, so its messages exist there and are still open: `track` polls them;
- the rest (``--messages`` in all, default 1,000,000) is bulk-inserted through the journal's
  own schema as accepted requests whose deliveries a webhook already made final (status
  delivered, 0 polls), spread over ``--chats`` chats (default 20,000: a drip of many steps), so
  a reply reading asks one request per chat and the run takes minutes, not hours.

Each command runs as a whole process (``python -m runner``) on its own copy of the state; the
figures are its wall time, the requests the emulator counted, and its peak RSS (``wait4``).
``--compare-with PATH`` runs the same commands from another checkout in the same run, e.g.
today's code before this change:

    git worktree add /tmp/runner-235289a 235289a
    python benchmarks/track_memory.py --compare-with /tmp/runner-235289a
    python benchmarks/track_memory.py --messages 200000          # quicker
    python benchmarks/track_memory.py --postgresql                # a PostgreSQL state

This machine is shared and loaded: read the figures as ratios between the two columns, not
as absolute speeds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from runner.emulator import EmulatorConfig, run_in_process  # noqa: E402

KEY = "sk_bench_not_a_real_key"
CAMPAIGN = "bench"


@dataclass
class Figures:
    seconds: float
    requests: int
    peak_mb: float
    exit_code: int
    tail: str


def _campaign(folder: Path, open_slice: int) -> Path:
    people = "\n".join(f"+1555{i:07d}" for i in range(open_slice))
    (folder / "people.csv").write_text(f"phone\n{people}\n")
    campaign = folder / f"{CAMPAIGN}.yaml"
    campaign.write_text(
        f"version: 1\nid: {CAMPAIGN}\nrecipients: {{file: people.csv, to: phone}}\n"
        "steps:\n  - id: hello\n    text: Hi there\n"
    )
    return campaign


def _send(campaign: Path, state: str, emu) -> None:
    """The open slice, sent for real (its messages exist in the emulator, still open here)."""
    env = {**os.environ, **emu.env(), "BLOOIO_API_KEY": KEY}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "send",
            str(campaign),
            "--yes",
            "--state",
            state,
            "--no-progress",
            "--rate",
            "unlimited",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"send failed ({done.returncode}): {done.stderr[-2000:]}")


def _bulk(bulk: int, open_slice: int, chats: int, revision: int, run_id: int):
    """(requests row, deliveries row) of each webhook-fed message, final with 0 polls."""
    now = time.time() - 3600
    for i in range(bulk):
        at, chat, step = now + i * 1e-3, f"+1666{i % chats:07d}", f"s{i // chats}"
        yield (
            (
                f"bulk{i:07d}",
                chat,
                step,
                revision,
                open_slice + i % chats,
                1 + i // chats,
                f"msg_bulk_{i:07d}",
                at,
                at,
                at,
                run_id,
            ),
            (
                f"msg_bulk_{i:07d}",
                f"bulk{i:07d}",
                chat,
                revision,
                step,
                at,
                int(now * 1000),
                int(now * 1000) + 900,
                now + 60,
            ),
        )


_REQUEST_COLUMNS = (
    "key, chat, step, revision, recipient_index, step_index, message_id, "
    "first_attempt_at, last_attempt_at, finished_at, run_id"
)
_DELIVERY_COLUMNS = (
    "message_id, key, chat, revision, step, accepted_at, time_sent, time_delivered, last_polled_at"
)


def build(folder: Path, emu, messages: int, open_slice: int, chats: int) -> Path:
    """A folder state: ``open_slice`` messages sent for real, the rest bulk-inserted final."""
    state = folder / "state"
    _send(_campaign(folder, open_slice), str(state), emu)
    db = sqlite3.connect(state / f"{CAMPAIGN}.sqlite")
    revision = db.execute("SELECT MAX(revision) FROM requests").fetchone()[0]
    run_id = db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")

    def rows():  # generated twice rather than held: the builder stays small too
        return _bulk(messages - open_slice, open_slice, chats, revision, run_id)

    db.executemany(
        f"INSERT INTO requests ({_REQUEST_COLUMNS}, messages, status, attempts, content_hash, "
        "http_status) VALUES (?,?,?,?,?,?,?,?,?,?,?,1,'accepted',1,'h',202)",
        (r for r, _ in rows()),
    )
    db.executemany(
        f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}, part, status, protocol, polls, final) "
        "VALUES (?,?,?,?,?,?,?,?,?,0,'delivered','sms',0,1)",
        (d for _, d in rows()),
    )
    db.execute("COMMIT")
    db.close()
    return state


def build_pg(folder: Path, emu, url: str, messages: int, open_slice: int, chats: int) -> None:
    """The same state in a PostgreSQL database (COPY through the runner's own schema)."""
    import psycopg

    _send(_campaign(folder, open_slice), url, emu)
    with psycopg.connect(url, autocommit=True) as conn:
        revision, run_id = conn.execute(
            "SELECT MAX(revision), (SELECT MAX(id) FROM runs) FROM requests"
        ).fetchone()

        def rows():
            return _bulk(messages - open_slice, open_slice, chats, revision, run_id)

        with conn.cursor().copy(
            f"COPY requests ({_REQUEST_COLUMNS}, campaign, messages, "
            "status, attempts, content_hash, http_status) FROM STDIN"
        ) as cp:
            for r, _ in rows():
                cp.write_row((*r, CAMPAIGN, 1, "accepted", 1, "h", 202))
        with conn.cursor().copy(
            f"COPY deliveries ({_DELIVERY_COLUMNS}, campaign, part, status, "
            "protocol, polls, final) FROM STDIN"
        ) as cp:
            for _, d in rows():
                cp.write_row((*d, CAMPAIGN, 0, "delivered", "sms", 0, 1))
        conn.execute("ANALYZE")


@contextlib.contextmanager
def pg_cluster() -> Iterator[object]:
    """A throwaway cluster, as the tests start one (tests/pg_cluster.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pg_cluster as pgc  # the tests' helper: initdb as an unprivileged user, loopback

    root = Path(tempfile.mkdtemp(prefix="runner-pg-bench-"))
    data, pwfile, runas = root / "data", root / "pw", pgc._runas()
    pwfile.write_text(pgc.PASSWORD + "\n")
    if runas:
        os.chmod(root, 0o755)
        shutil.chown(root, "nobody")
        shutil.chown(pwfile, "nobody")
    subprocess.run(
        [
            *runas,
            pgc._bin("initdb") or "initdb",
            "-D",
            str(data),
            "-U",
            pgc.USER,
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
    cluster = pgc.PgCluster(data, pgc._free_port(), runas)
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def run(checkout: Path, args: list[str], emu) -> Figures:
    """One command of ``checkout`` as a whole process: wall time, requests, peak RSS."""
    env = {**os.environ, **emu.env(), "BLOOIO_API_KEY": KEY, "PYTHONPATH": str(checkout)}
    before = emu.stats()["requests"]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", *args],
            env=env,
            cwd=checkout,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        tail = out.read().decode(errors="replace").strip().splitlines()[-2:]
    return Figures(
        elapsed,
        emu.stats()["requests"] - before,
        usage.ru_maxrss / 1024,
        proc.returncode,
        " | ".join(tail),
    )


COMMANDS = [
    (
        "track --no-replies",
        [
            "track",
            "--no-replies",
            "--first-poll",
            "0",
            "--poll-cap",
            "0.2",
            "--no-progress",
            "--rate",
            "unlimited",
            "--timeout",
            "600",
        ],
    ),
    (
        "track (replies)",
        [
            "track",
            "--first-poll",
            "0",
            "--poll-cap",
            "0.2",
            "--no-progress",
            "--rate",
            "unlimited",
            "--timeout",
            "600",
        ],
    ),
    ("optouts", ["optouts", "--rate", "1000", "--concurrency", "16"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--open", dest="open_slice", type=int, default=2_000)
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        help="another checkout (e.g. a git worktree of 235289a)",
    )
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="a PostgreSQL state (a throwaway cluster) instead of a folder",
    )
    args = parser.parse_args()
    checkouts = [("this", ROOT)]
    if args.compare_with is not None:
        checkouts.append(("other", args.compare_with.resolve()))
    kind = "PostgreSQL" if args.postgresql else "SQLite"
    print(
        f"track/optouts memory: {args.messages:,} messages ({args.open_slice:,} still open, "
        f"the rest final by webhook), {args.chats + args.open_slice:,} chats; {kind} state"
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        emu = stack.enter_context(
            run_in_process(
                EmulatorConfig(
                    api_key=KEY, seed=3, sent_after_ms=0, delivered_after_ms=0, delivery_jitter_ms=0
                )
            )
        )
        folder = Path(tmp)
        started = time.perf_counter()
        if args.postgresql:
            import psycopg

            cluster = stack.enter_context(pg_cluster())
            with psycopg.connect(cluster.url(), autocommit=True) as conn:  # type: ignore[attr-defined]
                conn.execute("CREATE DATABASE bench")
            build_pg(
                folder,
                emu,
                cluster.url("bench"),
                args.messages,
                args.open_slice,  # type: ignore[attr-defined]
                args.chats,
            )
        else:
            state = build(folder, emu, args.messages, args.open_slice, args.chats)
            size = sum(p.stat().st_size for p in state.iterdir()) / 1e6
            print(f"state {size:,.0f} MB")
        print(f"built in {time.perf_counter() - started:.0f} s")
        campaign = str(folder / f"{CAMPAIGN}.yaml")
        rows = []
        for label, command in COMMANDS:
            for name, checkout in checkouts:
                if args.postgresql:
                    import psycopg

                    with psycopg.connect(cluster.url(), autocommit=True) as conn:  # type: ignore[attr-defined]
                        conn.execute(f"DROP DATABASE IF EXISTS run_{name}")
                        conn.execute(f"CREATE DATABASE run_{name} TEMPLATE bench")
                    where = cluster.url(f"run_{name}")  # type: ignore[attr-defined]
                else:
                    copy = folder / f"state-{name}"
                    shutil.rmtree(copy, ignore_errors=True)
                    shutil.copytree(state, copy)
                    where = str(copy)
                f = run(checkout, [command[0], campaign, *command[1:], "--state", where], emu)
                rows.append((label, name, f))
                print(
                    f"{label:20} {name:6} {f.seconds:7.1f} s {f.requests:9,} requests "
                    f"{f.peak_mb:7.0f} MB peak  exit {f.exit_code}  [{f.tail[:110]}]",
                    flush=True,
                )
                if not args.postgresql:
                    shutil.rmtree(folder / f"state-{name}", ignore_errors=True)
        if len(checkouts) == 2:
            print("ratios this/other (time, peak memory):")
            for label, _ in COMMANDS:
                mine = next(f for lab, n, f in rows if lab == label and n == "this")
                other = next(f for lab, n, f in rows if lab == label and n == "other")
                print(
                    f"  {label:20} time {mine.seconds / other.seconds:.2f}x  "
                    f"memory {mine.peak_mb / other.peak_mb:.2f}x"
                )


if __name__ == "__main__":
    main()

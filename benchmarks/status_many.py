"""`campaign status` over a state of many campaigns, as a whole process: wall time and peak
memory, with the state in a folder (SQLite) and in PostgreSQL (a throwaway cluster on loopback,
tests/pg_cluster.py), side by side.

The state is written in bulk through the runner's own journal API: --campaigns journals of
--requests requests each (most accepted, some failed, a few pending), three runs each (the last
one finished, waiting with a due time, or died mid-run), and a ledger where one chat in fifty
opted out. Goal (issue 24): under 2 s and 300 MB for 100 campaigns. Each row is the median of
--repeat runs, the backends alternated; ``--compare-with CHECKOUT`` runs another checkout of the
runner on the same states, alternated too.

    python benchmarks/status_many.py                          # 100 campaigns x 2,000 requests
    python benchmarks/status_many.py --requests 10000 --state-backend sqlite
    python benchmarks/status_many.py --compare-with ../runner-before
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / ".." / "tests"))

from pg_cluster import available, throwaway_cluster  # noqa: E402

from runner.consent.standing import EventKind  # noqa: E402
from runner.store.backend import open_journal, open_ledger  # noqa: E402
from runner.store.journal import ACCEPTED, FAILED, Attempt, Outcome  # noqa: E402
from runner.store.ledger import ConsentEvent  # noqa: E402
from runner.store.state import open_state  # noqa: E402


def fill(state_value: str, campaigns: int, requests: int) -> None:
    """Write the state: journals, runs and ledger, in batches."""
    state = open_state(state_value)
    plan = {
        "requests": requests,
        "steps": {"hello": requests},
        "recipients": [{"chat": f"+1555{i:07d}"} for i in range(200)],
    }  # a run's plan doc
    for c in range(campaigns):
        cid = f"campaign-{c:03d}"
        with open_journal(state, cid) as j:
            for r in range(3):
                run = j.start_run(cid, 1, {"concurrency": 32}, plan, {"user": "ada"})
                if r < 2 or c % 10:
                    code = 4 if c % 7 == 0 else 0
                    j.finish_run(run, {"next_due": 2e9} if code == 4 else {}, code, None)
            for start in range(0, requests, 5000):
                keys = range(start, min(start + 5000, requests))
                j.apply(
                    [
                        Attempt(
                            f"{cid}-{i}", f"+1555{i:07d}", "hello", 1, i, 0, 1, "h", run, 1.7e9 + i
                        )
                        for i in keys
                    ]
                )
                j.apply(
                    [
                        Outcome(
                            f"{cid}-{i}",
                            FAILED if i % 40 == 0 else ACCEPTED,
                            message_id=f"m-{cid}-{i}",
                            now=1.7e9 + i,
                        )
                        for i in keys
                        if i % 100
                    ]
                )  # one in a hundred stays pending
    with open_ledger(state) as ledger:
        ledger.record(
            [
                ConsentEvent(
                    chat=f"+1555{i:07d}",
                    kind=EventKind.OPTED_OUT,
                    at_ms=i,
                    word="STOP",
                    reply_id=f"r{i}",
                )
                for i in range(0, requests, 50)
            ]
        )


def status_once(state: str, checkout: Path | None) -> tuple[float, float]:
    """One `campaign status --format json` process: (seconds, peak RSS in MB)."""
    cmd = [sys.executable, "-m", "runner", "status", "--state", state, "--format", "json"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=checkout or HERE.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"status exited {proc.returncode}: {err[-500:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=100)
    ap.add_argument("--requests", type=int, default=2000, help="per campaign")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--state-backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--compare-with", type=Path, default=None, metavar="CHECKOUT")
    args = ap.parse_args()
    backends = ["sqlite", "postgresql"] if args.state_backend == "both" else [args.state_backend]
    if "postgresql" in backends and not available():
        sys.exit("PostgreSQL (initdb) or psycopg is missing")
    with contextlib.ExitStack() as stack:
        states: dict[str, str] = {}
        for backend in backends:
            t = time.perf_counter()
            if backend == "sqlite":
                states[backend] = str(
                    Path(stack.enter_context(tempfile.TemporaryDirectory())) / "state"
                )
            else:
                cluster = stack.enter_context(throwaway_cluster("autovacuum=on"))
                states[backend] = cluster.url()
            fill(states[backend], args.campaigns, args.requests)
            print(
                f"{backend}: {args.campaigns} campaigns x {args.requests:,} requests written "
                f"in {time.perf_counter() - t:.1f} s"
            )
        runners: list[tuple[str, Path | None]] = [("this", None)]
        if args.compare_with is not None:
            runners.append((args.compare_with.name, args.compare_with))
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            for backend in backends:
                for name, checkout in runners:
                    times.setdefault((backend, name), []).append(
                        status_once(states[backend], checkout)
                    )
        for (backend, name), got in times.items():
            secs = [s for s, _ in got]
            mb = max(m for _, m in got)
            print(
                f"status, {backend:<10} {name:<14} {statistics.median(secs):6.2f} s "
                f"(runs {', '.join(f'{s:.2f}' for s in secs)}), peak {mb:.0f} MB"
            )


if __name__ == "__main__":
    main()

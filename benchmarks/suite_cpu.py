"""Where the README's `pytest` spends its CPU, measured so that a loaded machine still answers.

Wall time on a shared machine says more about the neighbours than about the suite; CPU time
does not. This runs pytest (the arguments after ``--``; default: the pyproject's, i.e. the
whole suite on ``-n auto``) as a child subreaper, so the daemonised PostgreSQL servers of the
tests are reaped here and their CPU counted too, and loads itself into every pytest process as
a plugin that records each test's CPU (its process's and its waited-for subprocesses'), wall
time, and time spent runnable but not running (``/proc/self/task/*/schedstat``).

    python benchmarks/suite_cpu.py                 # the whole suite
    python benchmarks/suite_cpu.py --top 40 -- tests/test_plan.py -n 2

It prints the process tree's CPU (user + sys, servers included), each worker's collection and
test CPU, the tests and files that cost most, and an estimate of the wall time on a quiet
machine with one core per worker: each worker's CPU plus the time its tests were idle (wall,
less CPU, less the time they waited for a core, less the same share of their subprocesses'
CPU), plus the CPU outside the pytest processes (database servers) shared among the workers.
It leans high, the more so the busier the machine: a server's CPU also counts as idle time of
the test waiting for it, and the waits of threads that ended during a test are not seen.
Compare two commits with it side by side, not with a stopwatch.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

OUT_ENV = "SUITE_CPU_OUT"
PR_SET_CHILD_SUBREAPER = 36


# --- the plugin, in each pytest process (-p suite_cpu) ---------------------------------------


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _waits() -> dict[str, int]:
    """Nanoseconds each thread of this process has spent runnable, waiting for a core."""
    out: dict[str, int] = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                out[task] = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return out


def _waited(before: dict[str, int], after: dict[str, int]) -> float:
    """Seconds waited for a core between two readings, by the threads alive at both (a thread
    gone by the second reading takes its count with it)."""
    return sum(max(0, after[t] - before[t]) for t in before.keys() & after.keys()) / 1e9


_rows: list[dict[str, object]] = []
_start = (0.0, 0.0, 0.0)


def pytest_configure(config: pytest.Config) -> None:
    global _start
    own, kids = _cpu()
    _start = (own, kids, time.monotonic())


def pytest_collection_finish(session: pytest.Session) -> None:
    own, kids = _cpu()
    _rows.append(
        {
            "id": "<collection>",
            "own": own - _start[0],
            "kids": kids - _start[1],
            "wall": time.monotonic() - _start[2],
            "waited": 0.0,
        }
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    (own0, kids0), wall0, waits0 = _cpu(), time.monotonic(), _waits()
    yield
    (own1, kids1), wall1, waits1 = _cpu(), time.monotonic(), _waits()
    _rows.append(
        {
            "id": item.nodeid,
            "own": own1 - own0,
            "kids": kids1 - kids0,
            "wall": wall1 - wall0,
            "waited": _waited(waits0, waits1),
        }
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get(OUT_ENV)
    if not out:
        return
    own, kids = _cpu()
    _rows.append(
        {
            "id": "<total>",
            "own": own,
            "kids": kids,
            "wall": time.monotonic() - _start[2],
            "waited": 0.0,
        }
    )
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(out, f"{name}.json").write_text(json.dumps(_rows), encoding="utf-8")


# --- the script ----------------------------------------------------------------------------


@dataclass
class Worker:
    name: str
    collection: float
    tests_cpu: float
    idle: float
    total_cpu: float


def _idle(row: dict) -> float:
    """Wall less CPU less waiting for a core; the subprocesses are assumed to wait for a core
    in the same proportion as the test's own process (at most 3x their CPU)."""
    own, kids, wall, waited = row["own"], row["kids"], row["wall"], row["waited"]
    ratio = min(waited / own, 3.0) if own > 0.05 else 1.0
    return min(max(0.0, wall - own - kids - waited - kids * ratio), max(0.0, wall - own - kids))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="tests and files to list")
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest's arguments")
    args = parser.parse_args()

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    out = tempfile.mkdtemp(prefix="suite-cpu-")
    here = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        OUT_ENV: out,
        "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p),
    }
    started = time.monotonic()
    code = subprocess.call(
        [sys.executable, "-m", "pytest", "-p", "suite_cpu", *args.pytest_args], env=env
    )
    wall = time.monotonic() - started
    while True:  # the orphans (database servers) handed to this process
        try:
            os.wait()
        except ChildProcessError:
            break
    tree = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree_cpu = tree.ru_utime + tree.ru_stime

    workers: list[Worker] = []
    tests: list[dict] = []
    paths = sorted(Path(out).glob("*.json"))
    xdist = any(p.stem != "main" for p in paths)
    for path in paths:
        rows = json.loads(path.read_text(encoding="utf-8"))
        mine = [r for r in rows if not r["id"].startswith("<")]
        tests += mine
        special = {r["id"]: r for r in rows if r["id"].startswith("<")}
        collection = special.get("<collection>", {"own": 0.0})["own"]
        total = special.get("<total>", {"own": 0.0, "kids": 0.0})
        # The xdist controller's waited-for children are the workers, counted on their own.
        cpu = total["own"] if xdist and path.stem == "main" else total["own"] + total["kids"]
        workers.append(
            Worker(
                path.stem,
                collection,
                sum(r["own"] + r["kids"] for r in mine),
                sum(_idle(r) for r in mine),
                cpu,
            )
        )
        Path(path).unlink()
    os.rmdir(out)

    print(f"\npytest exit {code}; wall {wall:.1f} s on this machine (load: see `uptime`)")
    print(
        f"process tree CPU: user {tree.ru_utime:.1f} + sys {tree.ru_stime:.1f} = "
        f"{tree_cpu:.1f} s (servers and subprocesses included)"
    )
    in_workers = sum(w.total_cpu for w in workers)
    rest = max(0.0, tree_cpu - in_workers)
    for w in workers:
        print(
            f"  {w.name}: {w.total_cpu:.1f} s CPU (collection {w.collection:.1f}, tests "
            f"{w.tests_cpu:.1f}); tests idle ~{w.idle:.1f} s"
        )
    print(
        f"  outside the pytest processes' accounting (database servers, orphans, exits): "
        f"{rest:.1f} s"
    )
    pool = [w for w in workers if w.name != "main"] or workers
    if pool:
        quiet = max(w.total_cpu + w.idle for w in pool) + rest / len(pool)
        print(
            f"estimated wall on a quiet machine with {len(pool)} core(s), one per worker: "
            f"~{quiet:.0f} s (slowest worker's CPU + idle + a share of the rest)"
        )

    def cost(r: dict) -> float:
        return r["own"] + r["kids"]

    print(f"\ntop {args.top} tests by CPU (own + subprocesses), idle estimate, wall:")
    for r in sorted(tests, key=cost, reverse=True)[: args.top]:
        print(
            f"  {cost(r):6.2f} = {r['own']:5.2f} + {r['kids']:5.2f}  idle {_idle(r):5.2f}  "
            f"wall {r['wall']:6.2f}  {r['id']}"
        )
    files: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in tests:
        f = files[r["id"].split("::")[0]]
        f[0] += cost(r)
        f[1] += _idle(r)
        f[2] += 1
    print(f"\ntop {args.top} files by CPU (idle estimate, tests):")
    for name, (cpu, idle, n) in sorted(files.items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"  {cpu:6.2f}  idle {idle:5.2f}  {int(n):4d}  {name}")
    return code


if __name__ == "__main__":
    sys.exit(main())

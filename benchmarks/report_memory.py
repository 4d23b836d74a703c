"""`campaign report` of a 1M-message journal as a whole process, per format: wall time and
peak resident memory, side by side with another checkout (``--compare-with``).

The journal is built quickly with bulk SQL through the journal's own schema (the runner opens
it first, so its migrations make the tables): SQLite by default, PostgreSQL with ``--pg`` on a
throwaway cluster (tests/pg_cluster.py). 500,000 recipients x 2 steps (the first with an A/B
variant), 97% accepted, 2% failed, 1% never confirmed; 95% of the accepted messages delivered
with a latency, 2% failed after acceptance; 5% of the chats replied (a tenth of them STOP), one
finished reply pass. The campaign file plans the same keys (a CSV of the recipients), so the
report re-plans it as it does for a user.

Figures mean something only side by side in one run (the machine is shared); each cell is the
median of --repeat runs.

    python benchmarks/report_memory.py                          # SQLite, 1,000,000 requests
    python benchmarks/report_memory.py --pg                     # PostgreSQL state too
    python benchmarks/report_memory.py --compare-with ../runner-before
    python benchmarks/report_memory.py --recipients 50000 --formats json
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

CAMPAIGN = "bench-report"
STEPS = ("hello", "reminder")
FORMATS = ("text", "markdown", "json", "html")


def write_campaign(folder: Path, n: int) -> Path:
    rows = "\n".join(f"+1555{i:07d},Name{i}" for i in range(n))
    (folder / "people.csv").write_text(f"phone,first_name\n{rows}\n", encoding="utf-8")
    path = folder / "campaign.yaml"
    path.write_text(
        f'version: 1\nid: {CAMPAIGN}\nsender: {{from_number: "+15551234567"}}\n'
        "recipients: {file: people.csv, to: phone}\n"
        "steps:\n"
        "  - id: hello\n    variants:\n"
        '      - {id: a, weight: 50, text: "Hello {{ first_name }}"}\n'
        '      - {id: b, weight: 50, text: "Hi {{ first_name }}"}\n'
        '  - id: reminder\n    text: "Still there, {{ first_name }}?"\n',
        encoding="utf-8",
    )
    return path


def planned_rows(campaign_file: Path) -> list[tuple[str, str, str, int, int, str | None]]:
    """(key, chat, step, recipient_index, step_index, variant) of every request, from the
    runner's own planner (so the keys and variants are the ones a send would journal)."""
    from runner.campaign.load import load_campaign
    from runner.planning.planner import Planner

    return [
        (r.key, r.recipient, r.step, r.recipient_index, r.step_index, r.variant)
        for r in Planner(load_campaign(campaign_file), previews=0).requests()
    ]


T0 = 1_780_000_000.0  # the runner's clock at the first request (seconds)


def request_rows(planned: list[tuple[str, str, str, int, int, str | None]]):
    """Journal ``requests`` rows (the SQLite column order of _REQ_COLUMNS)."""
    for i, (key, chat, step, ri, si, variant) in enumerate(planned):
        at = T0 + i * 0.001
        roll = i % 100
        if roll < 97:
            yield (
                key,
                chat,
                step,
                1,
                ri,
                si,
                1,
                variant,
                "accepted",
                1,
                f"m{i}",
                f'["m{i}"]',
                None,
                None,
                None,
                200,
                at,
                at,
                at + 0.05,
                1,
            )
        elif roll < 99:
            code = "invalid_recipient" if roll == 97 else "rate_limited"
            yield (
                key,
                chat,
                step,
                1,
                ri,
                si,
                1,
                variant,
                "failed",
                1,
                None,
                None,
                None,
                code,
                f"the API said {code}",
                400 if roll == 97 else 429,
                at,
                at,
                at + 0.05,
                1,
            )
        else:
            yield (
                key,
                chat,
                step,
                1,
                ri,
                si,
                1,
                variant,
                "sending",
                1,
                None,
                None,
                None,
                None,
                None,
                None,
                at,
                at,
                None,
                1,
            )


_REQ_COLUMNS = (
    "key, chat, step, revision, recipient_index, step_index, messages, variant, "
    "status, attempts, message_id, message_ids, group_id, error_code, "
    "error_message, http_status, first_attempt_at, last_attempt_at, finished_at, "
    "run_id"
)


def delivery_rows(planned):
    for i, (key, chat, step, *_rest) in enumerate(planned):
        if i % 100 >= 97:
            continue
        sent_ms = int((T0 + i * 0.001) * 1000) + 100
        kind = i % 50
        if kind < 47:
            status, final, latency, err = "delivered", 1, 200 + (i * 7919) % 30000, None
        elif kind == 47:
            status, final, latency, err = "failed", 1, None, "carrier rejected"
        else:
            status, final, latency, err = "sent", 0, None, None
        yield (
            f"m{i}",
            key,
            0,
            chat,
            1,
            step,
            T0 + i * 0.001 + 0.05,
            status,
            "imessage" if i % 3 else "sms",
            sent_ms,
            sent_ms + latency if latency is not None else None,
            err,
            1,
            0,
            T0 + 7200,
            None,
            final,
        )


_DEL_COLUMNS = (
    "message_id, key, part, chat, revision, step, accepted_at, status, protocol, "
    "time_sent, time_delivered, error, polls, poll_errors, last_polled_at, "
    "next_poll_at, final"
)


def reply_rows(planned):
    seen = set()
    for i, (_key, chat, step, *_rest) in enumerate(planned):
        if step != STEPS[0] or i % 20 or chat in seen:
            continue
        seen.add(chat)
        stop = (i // 20) % 10 == 0
        yield (
            f"r{i}",
            chat,
            chat,
            int((T0 + i * 0.001) * 1000) + 60_000,
            4,
            int(stop),
            None,
            T0 + 7000,
        )


_REPLY_COLUMNS = "message_id, chat, sender, received_at, length, is_stop, text, read_at"


def plan_json(planned) -> str:
    import json

    steps: dict[str, dict[str, int]] = {}
    for _key, _chat, step, *_ in planned:
        c = steps.setdefault(step, {"requests": 0, "messages": 0})
        c["requests"] += 1
        c["messages"] += 1
    return json.dumps({"steps": steps, "suppressed": 0})


def run_counts(n: int) -> str:
    return f'{{"http_requests": {n}, "duration_s": 3600.0}}'


def build_sqlite(state: Path, planned) -> None:
    from runner.store.journal import Journal
    from runner.store.paths import journal_path

    Journal(journal_path(state, CAMPAIGN)).close()  # its own schema, migrated
    db = sqlite3.connect(journal_path(state, CAMPAIGN), isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    marks = lambda cols: ",".join("?" * len(cols.split(",")))  # noqa: E731
    db.execute(
        "INSERT INTO runs (campaign, revision, started_at, ended_at, options, plan, "
        "counts, exit_code, stop_reason) VALUES (?,1,?,?,'{}',?,?,0,NULL)",
        (CAMPAIGN, T0, T0 + 3600, plan_json(planned), run_counts(len(planned))),
    )
    db.executemany(
        f"INSERT INTO requests ({_REQ_COLUMNS}) VALUES ({marks(_REQ_COLUMNS)})",
        request_rows(planned),
    )
    db.executemany(
        f"INSERT INTO deliveries ({_DEL_COLUMNS}) VALUES ({marks(_DEL_COLUMNS)})",
        delivery_rows(planned),
    )
    db.executemany(
        f"INSERT INTO replies ({_REPLY_COLUMNS}) VALUES ({marks(_REPLY_COLUMNS)})",
        reply_rows(planned),
    )
    db.execute(
        "INSERT INTO reply_passes (started_at, ended_at, chats, chats_read) VALUES (?, ?, 10, 10)",
        (T0 + 6990, T0 + 7010),
    )
    db.execute("COMMIT")
    db.close()


def build_pg(url: str, planned) -> None:
    import psycopg

    from runner.store.pgjournal import PgJournal

    PgJournal(url, CAMPAIGN).close()  # its own schema, migrated
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO runs (campaign, revision, started_at, ended_at, options, plan, "
            "counts, exit_code) VALUES (%s,1,%s,%s,'{}',%s,%s,0)",
            (CAMPAIGN, T0, T0 + 3600, plan_json(planned), run_counts(len(planned))),
        )
        for table, cols, rows in (
            ("requests", _REQ_COLUMNS, request_rows(planned)),
            ("deliveries", _DEL_COLUMNS, delivery_rows(planned)),
            ("replies", _REPLY_COLUMNS, reply_rows(planned)),
        ):
            with cur.copy(f"COPY {table} (campaign, {cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row((CAMPAIGN, *row))
        cur.execute(
            "INSERT INTO reply_passes (campaign, started_at, ended_at, chats, "
            "chats_read) VALUES (%s, %s, %s, 10, 10)",
            (CAMPAIGN, T0 + 6990, T0 + 7010),
        )
        cur.execute("ANALYZE")


# The process's own peak resident memory: VmHWM of /proc/self/status (ru_maxrss of a child
# starts from its parent's resident size at fork: this driver's would set the floor).
_PEAK = """\
def peak_mb():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


def run_report(checkout: Path, campaign_file: Path, state: str, fmt: str) -> tuple[float, float]:
    """One whole ``campaign report`` process: (seconds, peak RSS in MB)."""
    code = (
        _PEAK + "import runpy, sys, time\n"
        "sys.argv = ['campaign'] + sys.argv[1:]\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    runpy.run_module('runner', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "else:\n"
        "    code = 0\n"
        "el = time.perf_counter() - t\n"
        "rss = peak_mb()\n"
        "print(f'BENCH {el:.3f} {rss:.1f} {code}', file=sys.stderr)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"report.{fmt}"
        start = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "report",
                str(campaign_file),
                "--state",
                state,
                "--format",
                fmt,
                "--out",
                str(out),
            ],
            cwd=checkout,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(checkout)},
        )
        wall = time.perf_counter() - start
    line = [x for x in proc.stderr.splitlines() if x.startswith("BENCH ")]
    if proc.returncode != 0 or not line or line[-1].split()[3] not in ("0", "None"):
        raise RuntimeError(f"report --format {fmt} failed in {checkout}: {proc.stderr[-800:]}")
    return wall, float(line[-1].split()[2])


_SPLIT = (
    _PEAK
    + """\
import sys, time
camp, state = sys.argv[1], sys.argv[2]
from runner.campaign.load import load_campaign
from runner.planning.current import current_plan
from runner.store.backend import existing_journal, existing_ledger
from runner.store.state import open_state
t = time.perf_counter()
c = load_campaign(camp)
st = open_state(state)
with existing_ledger(st) as ledger:
    consent = ledger.standings() if ledger is not None else None
cur = current_plan(c, consent)
t_plan = time.perf_counter() - t
with existing_journal(st, c.id, camp) as j, existing_ledger(st) as ledger, j.snapshot("report"):
    t = time.perf_counter()
    try:
        from runner.report.build import build
        from runner.report.reporters import render
    except ImportError:  # an older checkout: the dictionary report
        from runner.report.data import build_report as build, render
    model = build(j, current=cur, ledger=ledger)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    render(model, "json")
    t_render = time.perf_counter() - t
rss = peak_mb()
print(f"SPLIT {t_plan:.3f} {t_build:.3f} {t_render:.3f} {rss:.1f}")
"""
)


def split(label: str, checkouts: list[tuple[str, Path]], camp: Path, state: str) -> None:
    """The report's parts in one process: re-planning the campaign file, building the report
    from the journal (what the state's size costs), rendering the JSON."""
    print(f"\n{label}: re-plan / build from the journal / render json, seconds; peak RSS MB")
    for name, path in checkouts:
        proc = subprocess.run(
            [sys.executable, "-c", _SPLIT, str(camp), state],
            cwd=path,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(path)},
        )
        line = [x for x in proc.stdout.splitlines() if x.startswith("SPLIT ")]
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"split run failed in {path}: {proc.stderr[-800:]}")
        plan_s, build_s, render_s, rss = line[-1].split()[1:]
        print(
            f"{name:<26} re-plan {float(plan_s):7.2f} s   build {float(build_s):7.2f} s   "
            f"render {float(render_s):6.2f} s   {float(rss):7.0f} MB",
            flush=True,
        )


def table(
    label: str,
    checkouts: list[tuple[str, Path]],
    camp: Path,
    state: str,
    formats: list[str],
    repeat: int,
    compare: list[str] | None = None,
) -> None:
    print(f"\n{label}: wall seconds (whole process) and peak RSS MB, median of {repeat}")
    head = "format    " + "".join(f"{name:>26}" for name, _ in checkouts)
    if len(checkouts) == 2:
        head += "   time ratio   RSS ratio"
    print(head)
    for fmt in formats:
        these = checkouts if compare is None or fmt in compare else checkouts[:1]
        cells = []
        for _ in range(repeat):
            cells.append([run_report(path, camp, state, fmt) for _name, path in these])
        med = [
            (statistics.median(c[i][0] for c in cells), statistics.median(c[i][1] for c in cells))
            for i in range(len(these))
        ]
        line = f"{fmt:<10}" + "".join(f"{t:>12.2f} s {m:>9.0f} MB" for t, m in med)
        if len(med) == 2:
            line += f"   {med[0][0] / med[1][0]:>10.2f}   {med[0][1] / med[1][1]:>9.2f}"
        print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--recipients",
        type=int,
        default=500_000,
        help="recipients (two requests each); default 500,000 = 1M requests",
    )
    ap.add_argument(
        "--formats",
        nargs="*",
        default=list(FORMATS),
        choices=FORMATS,
        help="formats to run whole processes for (none: only --split)",
    )
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--pg", action="store_true", help="a PostgreSQL state too (throwaway cluster)")
    ap.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL state")
    ap.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        metavar="CHECKOUT",
        help="another checkout of the runner (e.g. a git worktree of 235289a)",
    )
    ap.add_argument(
        "--split",
        action="store_true",
        help="also time the parts in one process: re-plan, build, render",
    )
    ap.add_argument(
        "--compare-formats",
        nargs="*",
        default=None,
        choices=FORMATS,
        help="run the other checkout only for these formats (default: all)",
    )
    args = ap.parse_args()
    checkouts = [("this checkout", ROOT)]
    if args.compare_with:
        checkouts.append((args.compare_with.name, args.compare_with.resolve()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        camp = write_campaign(folder, args.recipients)
        t = time.perf_counter()
        planned = planned_rows(camp)
        print(f"{len(planned):,} requests planned in {time.perf_counter() - t:.1f} s")
        if not args.no_sqlite:
            t = time.perf_counter()
            build_sqlite(folder / "state", planned)
            print(f"SQLite journal built in {time.perf_counter() - t:.1f} s")
        if args.pg:
            sys.path.insert(0, str(ROOT / "tests"))
            from pg_cluster import throwaway_cluster

            with throwaway_cluster() as cluster:
                url = cluster.url("postgres")
                t = time.perf_counter()
                build_pg(url, planned)
                print(f"PostgreSQL journal built in {time.perf_counter() - t:.1f} s")
                del planned
                if not args.no_sqlite:
                    if args.split:
                        split("SQLite state", checkouts, camp, str(folder / "state"))
                    table(
                        "SQLite state",
                        checkouts,
                        camp,
                        str(folder / "state"),
                        args.formats,
                        args.repeat,
                        args.compare_formats,
                    )
                if args.split:
                    split("PostgreSQL state", checkouts, camp, url)
                table(
                    "PostgreSQL state",
                    checkouts,
                    camp,
                    url,
                    args.formats,
                    args.repeat,
                    args.compare_formats,
                )
            return
        del planned
        if args.split:
            split("SQLite state", checkouts, camp, str(folder / "state"))
        table(
            "SQLite state",
            checkouts,
            camp,
            str(folder / "state"),
            args.formats,
            args.repeat,
            args.compare_formats,
        )


if __name__ == "__main__":
    main()

"""Dry-run throughput and memory, side by side in one run.

Generates a CSV campaign (3 steps, five small templates) in a temp dir, then measures:

- plan: `campaign plan FILE --out plan.jsonl` end to end, in-process (load + validate + render +
  keys + JSON lines written), in recipients/s;
- floor: plain `jinja2.Environment` rendering of the same templates for the same rows
  (`Template.render(**row)`, rows already in memory, nothing else), in recipients/s;
- the ratio plan / floor (issue 13's goal: >= 85%), of the medians of --repeat runs;
- peak RSS (`resource.getrusage` high-water mark) of a fresh subprocess per measurement: one
  that only imports the runner and loads the campaign (baseline), one that plans
  `--rows-memory` rows to --out (target < 200 MB for 1,000,000 rows).

Figures are only comparable within one run (other work on the machine shifts both sides).

    python benchmarks/plan_throughput.py                      # 100,000 rows; memory at 1,000,000
    python benchmarks/plan_throughput.py --rows 20000 --rows-memory 0   # quick, no memory run
    python benchmarks/plan_throughput.py --profile            # + where the plan's time goes
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

# jinja2 and the runner are imported only once the memory runs are done: on Linux a child's
# ru_maxrss starts from its parent's RSS (the high-water mark survives fork and exec), so the
# parent must stay smaller than what it measures.

CAMPAIGN = """\
version: 1
id: bench-plan
sender:
  from_number: "+15551234567"
  use_typing_indicator: true
vars:
  shop_url: https://shop.example.com/spring
  brand: Northwind
recipients:
  file: people.csv
  to: phone
steps:
  - id: hello
    text: "Hi {{ first_name }}, {{ brand }} spring sale: 20% off with {{ code }} at {{ shop_url }}"
    effect: confetti
  - id: sizes
    text:
      - "{{ first_name }}, new arrivals in size {{ size }}."
      - "Members in the {{ tier }} tier get free returns."
  - id: code
    parts:
      - text: "Your code: {{ code }}"
      - url: "https://cdn.example.com/codes/{{ code }}.png"
"""

# The same template strings, for the floor.
TEMPLATES = [
    "Hi {{ first_name }}, {{ brand }} spring sale: 20% off with {{ code }} at {{ shop_url }}",
    "{{ first_name }}, new arrivals in size {{ size }}.",
    "Members in the {{ tier }} tier get free returns.",
    "Your code: {{ code }}",
    "https://cdn.example.com/codes/{{ code }}.png",
]
CAMPAIGN_VARS = {"shop_url": "https://shop.example.com/spring", "brand": "Northwind"}
NAMES = ["Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas"]


def make_campaign(folder: Path, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "people.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["phone", "first_name", "code", "size", "tier"])
        for i in range(rows):
            w.writerow(
                [
                    f"+1555{i:07d}",
                    NAMES[i % 10],
                    f"C{i:07d}",
                    str(6 + i % 8),
                    "gold" if i % 3 == 0 else "silver",
                ]
            )
    path = folder / "campaign.yaml"
    path.write_text(CAMPAIGN, encoding="utf-8")
    return path


# Both sides report (CPU seconds of this process, wall seconds). The ratio uses CPU time: on a
# shared 2-core machine other processes stretch wall time unevenly between runs, CPU time much less.
def time_plan(campaign: Path, out: Path) -> tuple[float, float]:
    from click.testing import CliRunner

    from runner.cli import main

    args = [
        "plan",
        str(campaign),
        "--out",
        str(out),
        "--previews",
        "3",
        "--state",
        str(campaign.parent / "no-state"),
    ]
    cpu, wall = time.process_time(), time.perf_counter()
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if result.exit_code != 0:
        raise SystemExit(f"plan failed:\n{result.output}")
    return cpu, wall


def time_floor(campaign: Path) -> tuple[float, float]:
    import jinja2

    env = jinja2.Environment()
    templates = [env.from_string(t) for t in TEMPLATES]
    with open(campaign.parent / "people.csv", encoding="utf-8", newline="") as fh:
        rows = [{**CAMPAIGN_VARS, **row} for row in csv.DictReader(fh)]
    cpu, wall = time.process_time(), time.perf_counter()
    for row in rows:
        for t in templates:
            t.render(**row)
    return time.process_time() - cpu, time.perf_counter() - wall


# Run in a fresh interpreter per measurement so one's high-water mark cannot leak into another.
_CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from runner.cli import main
from runner.campaign.load import load_campaign
load_campaign({campaign!r})
if {plan!r}:
    try:
        main.main(["plan", {campaign!r}, "--out", {out!r}, "--previews", "3",
                   "--state", {state!r}], standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
hwm = 0
try:  # Linux: this process's own peak, for a cross-check
    with open("/proc/self/status") as fh:
        hwm = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm)
"""


def peak_rss_mb(campaign: Path, plan: bool) -> tuple[float, float, float]:
    code = _CHILD.format(
        root=str(HERE.parent),
        campaign=str(campaign),
        plan=plan,
        out=str(campaign.parent / "mem-plan.jsonl"),
        state=str(campaign.parent / "no-state"),
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"memory run failed:\n{proc.stderr[-2000:]}")
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    maxrss, hwm_kb = (int(x) for x in proc.stdout.split()[-2:])
    mb = maxrss / (1024 * 1024) if sys.platform == "darwin" else maxrss / 1024
    return mb, hwm_kb / 1024, elapsed


def profile_plan(campaign: Path, out: Path, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    time_plan(campaign, out)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000, help="recipients for the timed runs")
    ap.add_argument(
        "--rows-memory",
        type=int,
        default=1_000_000,
        help="recipients for the peak-memory run (0: skip it)",
    )
    ap.add_argument(
        "--repeat", type=int, default=5, help="timed runs of each side; the median is kept"
    )
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of the plan path")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="plan-bench-") as tmp:
        root = Path(tmp)
        figures: dict[str, object] = {}
        if args.rows_memory:  # first, while this process is still small (see the imports)
            mem = make_campaign(root / "memory", args.rows_memory)
            base_mb, base_hwm, _ = peak_rss_mb(mem, plan=False)
            peak_mb, peak_hwm, secs = peak_rss_mb(mem, plan=True)
            (root / "memory" / "mem-plan.jsonl").unlink(missing_ok=True)
            figures.update(
                memory_rows=args.rows_memory,
                baseline_rss_mb=round(base_mb, 1),
                plan_peak_rss_mb=round(peak_mb, 1),
                plan_vmhwm_mb=round(peak_hwm, 1),
                memory_run_seconds=round(secs, 1),
            )
            if not args.json:
                print(
                    f"peak RSS, import + load only:        {base_mb:>7.1f} MB (VmHWM {base_hwm:.1f} MB)"
                )
                print(
                    f"peak RSS, plan {args.rows_memory:,} rows to --out: {peak_mb:>7.1f} MB "
                    f"(VmHWM {peak_hwm:.1f} MB; {'under' if peak_mb < 200 else 'OVER'} the 200 MB "
                    f"target; {args.rows_memory / secs:,.0f} recipients/s incl. start-up)"
                )
        campaign = make_campaign(root / "timed", args.rows)
        out = root / "timed" / "plan.jsonl"
        plan_s: list[tuple[float, float]] = []
        floor_s: list[tuple[float, float]] = []
        for _ in range(max(1, args.repeat)):  # alternate, so drift hits both sides alike
            plan_s.append(time_plan(campaign, out))
            floor_s.append(time_floor(campaign))
        with open(out, encoding="utf-8") as fh:
            requests = sum(1 for _ in fh)
        # Medians: on a shared machine the best run flatters whichever side got lucky.
        plan_rate = args.rows / median(c for c, _ in plan_s)
        floor_rate = args.rows / median(c for c, _ in floor_s)
        plan_wall = args.rows / median(w for _, w in plan_s)
        floor_wall = args.rows / median(w for _, w in floor_s)
        ratio = plan_rate / floor_rate
        figures.update(
            {
                "rows": args.rows,
                "requests": requests,
                "plan_recipients_per_cpu_s": round(plan_rate),
                "floor_recipients_per_cpu_s": round(floor_rate),
                "ratio": round(ratio, 3),
                "plan_recipients_per_wall_s": round(plan_wall),
                "floor_recipients_per_wall_s": round(floor_wall),
                "ratio_wall": round(plan_wall / floor_wall, 3),
                "plan_runs": [[round(c, 2), round(w, 2)] for c, w in plan_s],
                "floor_runs": [[round(c, 2), round(w, 2)] for c, w in floor_s],
            }
        )
        if not args.json:

            def runs(xs: list[tuple[float, float]]) -> str:
                return ", ".join(f"{c:.2f}s cpu/{w:.2f}s wall" for c, w in xs)

            print(
                f"rows {args.rows:,}  ({requests:,} requests written); median of {len(plan_s)} runs each"
            )
            print(
                f"plan --out (in-process, end to end): {plan_rate:>9,.0f} recipients/s   "
                f"(wall {plan_wall:,.0f}/s)   runs {runs(plan_s)}"
            )
            print(
                f"floor (plain jinja2 render only):    {floor_rate:>9,.0f} recipients/s   "
                f"(wall {floor_wall:,.0f}/s)   runs {runs(floor_s)}"
            )
            verdict = (
                "meets the 85% goal"
                if ratio >= 0.85
                else f"{0.85 - ratio:.0%} short of the 85% goal"
            )
            print(
                f"ratio plan / floor: {ratio:.0%} by CPU time ({verdict}); "
                f"{plan_wall / floor_wall:.0%} by wall time"
            )

        if args.json:
            print(json.dumps(figures))
        if args.profile:
            print(profile_plan(campaign, out, 25))


if __name__ == "__main__":
    main_()

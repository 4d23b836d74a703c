"""`campaign send` as a whole process (start-up, load, validate, plan, journal, send) against
the loopback server that answers 202 after 50 ms: its share of the ideal rate.

With C requests in flight the ideal is C / 0.05 s messages per second, so N messages take at
best N * 0.05 / C seconds; the share is that over the process's wall time (start-up included).
Figures are only comparable within one run.

    python benchmarks/send_process.py                    # 5,000 at 32 and 20,000 at 128
    python benchmarks/send_process.py --runs 5000:32     # one row
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from send_throughput import DELAY, KEY, LoopbackServer  # noqa: E402


def write_campaign(folder: Path, n: int) -> Path:
    rows = "\n".join(f"+1555{i:07d},Name{i},order {i}" for i in range(n))
    (folder / "people.csv").write_text(f"phone,first_name,order\n{rows}\n", encoding="utf-8")
    path = folder / "campaign.yaml"
    path.write_text(
        "version: 1\nid: bench-process\nsender: {from_number: \"+15551234567\"}\n"
        "recipients: {file: people.csv, to: phone}\n"
        "steps:\n  - id: hello\n    text: \"Hello {{ first_name }}, your {{ order }} shipped.\"\n",
        encoding="utf-8")
    return path


def run_once(url: str, n: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        camp = write_campaign(Path(tmp), n)
        env = {**os.environ, "BLOOIO_BASE_URL": url, "BLOOIO_API_KEY": KEY}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "runner", "send", str(camp), "--yes",
                               "--no-progress", "--concurrency", str(concurrency), "--state",
                               str(Path(tmp) / "state")], env=env, capture_output=True,
                              text=True, cwd=HERE.parent)
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"send exited {proc.returncode}: {proc.stderr[-500:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=["5000:32", "20000:128"], metavar="N:C")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each row; best is kept")
    args = ap.parse_args()
    with LoopbackServer() as server:
        for spec in args.runs:
            n, c = (int(x) for x in spec.split(":"))
            best = min(run_once(server.url, n, c) for _ in range(args.repeat))
            ideal = n * DELAY / c
            print(f"send {n:>6,} messages at concurrency {c:>3}: {best:6.2f} s wall, "
                  f"{n / best:8,.0f} msg/s, {ideal / best:5.0%} of ideal ({ideal:.2f} s)")


if __name__ == "__main__":
    main()

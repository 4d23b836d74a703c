"""`campaign send` as a whole process (start-up, load, validate, plan, journal, send) against
the loopback server that answers 202 after 50 ms: its share of the ideal rate.

With C requests in flight the ideal is C / 0.05 s messages per second, so N messages take at
best N * 0.05 / C seconds; the share is that over the process's wall time (start-up included).
Blooio's official SDK (`pip install -e '.[bench]'`: `AsyncBlooio` + `asyncio.gather` under a
semaphore, benchmarks/_sdk_send.py) sends the same messages as a whole process too, side by
side, and the runner's rate over the SDK's is printed (skipped, and said, without the extra).
Figures are only comparable within one run; each row is the median of --repeat runs.

    python benchmarks/send_process.py                    # 5,000 at 32 and 20,000 at 128
    python benchmarks/send_process.py --runs 5000:32     # one row
    python benchmarks/send_process.py --no-sdk           # the runner only
    python benchmarks/send_process.py --no-sdk --compare-with ../runner-before
                                      # another checkout of the runner, alternated run by run
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from send_throughput import DELAY, KEY, LoopbackServer  # noqa: E402


def write_campaign(folder: Path, n: int) -> Path:
    rows = "\n".join(f"+1555{i:07d},Name{i},order {i}" for i in range(n))
    (folder / "people.csv").write_text(f"phone,first_name,order\n{rows}\n", encoding="utf-8")
    path = folder / "campaign.yaml"
    path.write_text(
        'version: 1\nid: bench-process\nsender: {from_number: "+15551234567"}\n'
        "recipients: {file: people.csv, to: phone}\n"
        'steps:\n  - id: hello\n    text: "Hello {{ first_name }}, your {{ order }} shipped."\n',
        encoding="utf-8",
    )
    return path


def run_once(
    url: str,
    n: int,
    concurrency: int,
    sdk: bool = False,
    checkout: Path | None = None,
    state: str | None = None,
) -> float:
    """One whole process; ``checkout``: run that checkout's runner instead (``python -m``
    puts the working directory first on the path); ``state``: a --state (default: a fresh
    folder)."""
    return run_process(url, n, concurrency, sdk, checkout, state).seconds


@dataclass(frozen=True)
class Process:
    seconds: float  # wall time of the whole process
    stdout: str


def run_process(
    url: str,
    n: int,
    concurrency: int,
    sdk: bool = False,
    checkout: Path | None = None,
    state: str | None = None,
) -> Process:
    with tempfile.TemporaryDirectory() as tmp:
        camp = write_campaign(Path(tmp), n)
        env = {**os.environ, "BLOOIO_BASE_URL": url, "BLOOIO_API_KEY": KEY}
        if sdk:
            cmd = [
                sys.executable,
                str(HERE / "_sdk_send.py"),
                url,
                str(Path(tmp) / "people.csv"),
                str(concurrency),
            ]
        else:
            cmd = [
                sys.executable,
                "-m",
                "runner",
                "send",
                str(camp),
                "--yes",
                "--no-progress",
                "--concurrency",
                str(concurrency),
                "--rate",
                "unlimited",
                "--state",
                state or str(Path(tmp) / "state"),
            ]
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, cwd=checkout or HERE.parent
        )
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"send exited {proc.returncode}: {proc.stderr[-500:]}")
    return Process(elapsed, proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="*", default=["5000:32", "20000:128"], metavar="N:C")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each row; the median is kept")
    ap.add_argument("--no-sdk", action="store_true", help="do not run Blooio's SDK alongside")
    ap.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        metavar="CHECKOUT",
        help="another checkout of the runner, run alternately with this one",
    )
    args = ap.parse_args()
    sdk = not args.no_sdk and importlib.util.find_spec("blooio") is not None
    if not args.no_sdk and not sdk:
        print("Blooio's SDK is not installed (pip install -e '.[bench]'): runner rows only")
    with LoopbackServer() as server:
        for spec in args.runs:
            n, c = (int(x) for x in spec.split(":"))
            ideal = n * DELAY / c
            runner_s: list[float] = []
            sdk_s: list[float] = []
            other_s: list[float] = []
            for _ in range(args.repeat):  # alternate, so drift on the machine hits both alike
                runner_s.append(run_once(server.url, n, c))
                if sdk:
                    sdk_s.append(run_once(server.url, n, c, sdk=True))
                if args.compare_with is not None:
                    other_s.append(run_once(server.url, n, c, checkout=args.compare_with))
            mid = statistics.median(runner_s)
            runs = ", ".join(f"{x:.2f}" for x in runner_s)
            print(
                f"runner send {n:>6,} messages at concurrency {c:>3}: {mid:6.2f} s wall, "
                f"{n / mid:8,.0f} msg/s, {ideal / mid:5.0%} of ideal ({ideal:.2f} s)  [runs {runs}]"
            )
            if other_s:
                omid = statistics.median(other_s)
                runs = ", ".join(f"{x:.2f}" for x in other_s)
                print(
                    f"{args.compare_with.name:<11} {n:>6,} messages at concurrency {c:>3}: "
                    f"{omid:6.2f} s wall, {n / omid:8,.0f} msg/s, {ideal / omid:5.0%} of ideal"
                    f"  [runs {runs}]"
                )
                print(f"  this runner / {args.compare_with.name}: {omid / mid:.3f}x the rate")
            if sdk:
                smid = statistics.median(sdk_s)
                runs = ", ".join(f"{x:.2f}" for x in sdk_s)
                print(
                    f"Blooio SDK  {n:>6,} messages at concurrency {c:>3}: {smid:6.2f} s wall, "
                    f"{n / smid:8,.0f} msg/s, {ideal / smid:5.0%} of ideal  [runs {runs}]"
                )
                print(
                    f"  runner / SDK at concurrency {c}: {smid / mid:.1f}x "
                    f"(at most {1 / (ideal / smid):.1f}x: the ideal rate over the SDK's)"
                )


if __name__ == "__main__":
    main()

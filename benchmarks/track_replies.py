"""What reading replies costs `track`: requests per messaged chat per pass, counted at the
emulator, and the time of a pass, next to a pass that only polls delivery.

N chats are messaged through the real `send` (emulator in its own process, latency 0 for the
send); the emulator answers 20% of them 60 s after delivery, its clock is moved past that, then tracking passes run with 20 ms latency per request:

1. delivery only (no reply pass): every message needs one status poll;
2. the first pass with replies: nothing left to poll, one reply page per chat;
3. a second pass with replies: the cursor moved on, still one request per chat, nothing new.

    python benchmarks/track_replies.py               # 2,000 chats, concurrency 32
    python benchmarks/track_replies.py --chats 500   # quicker
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
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing

from runner.emulator import EmulatorConfig, run_in_process  # noqa: E402
from runner.http.transport import run  # noqa: E402
from runner.run.track import ReplyOptions, Tracker, TrackOptions  # noqa: E402
from runner.store.journal import Journal  # noqa: E402

KEY = "sk_bench_not_a_real_key"
LATENCY = 0.02


def send(emu, folder: Path, chats: int) -> Path:
    rows = "\n".join(f"+1555{i:07d}" for i in range(chats))
    (folder / "people.csv").write_text(f"phone\n{rows}\n")
    campaign = folder / "bench.yaml"
    campaign.write_text("""\
version: 1
id: bench
recipients: {file: people.csv, to: phone}
steps:
  - id: hello
    text: "Hi, 20% off this week"
""")
    state = folder / "state"
    env = {**os.environ, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "send",
            str(campaign),
            "--yes",
            "--state",
            str(state),
            "--no-progress",
            "--rate",
            "unlimited",
            "--concurrency",
            "64",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"send failed ({done.returncode}): {done.stderr[-2000:]}")
    return state / "bench.sqlite"


def one_pass(emu, path: Path, concurrency: int, replies: bool) -> tuple[object, float, int]:
    options = TrackOptions(
        base_url=emu.base_url,
        concurrency=concurrency,
        timeout=600,
        first_poll=0.0,
        replies=ReplyOptions() if replies else None,
    )
    before = emu.stats()["requests"]
    with Journal(path) as journal:
        tracker = Tracker(journal, api_key=KEY, options=options, revision=1)
        tracker.load()
        started = time.perf_counter()
        result = run(tracker.run())
        elapsed = time.perf_counter() - started
    return result, elapsed, emu.stats()["requests"] - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    ideal = args.concurrency / LATENCY
    print(
        f"track with replies: {args.chats:,} chats, concurrency {args.concurrency}, server "
        f"latency {LATENCY * 1000:.0f} ms, ideal {ideal:,.0f} requests/s"
    )
    config = EmulatorConfig(api_key=KEY, seed=4, reply_after_s=60, reply_rate=0.2)
    with tempfile.TemporaryDirectory() as tmp, run_in_process(config) as emu:
        path = send(emu, Path(tmp), args.chats)
        emu.advance(120)
        emu.configure(latency_ms=LATENCY * 1000)
        truth = emu.stats()["inbound"]
        for label, replies in (
            ("delivery only", False),
            ("pass 1 with replies", True),
            ("pass 2 with replies", True),
        ):
            result, elapsed, asked = one_pass(emu, path, args.concurrency, replies)
            s = result.stats
            reply_part = (
                f"; reply requests {s.reply_requests:,} = "
                f"{s.reply_requests / args.chats:.2f} per chat, {s.replies_new:,} new "
                f"replies (the emulator holds {truth:,})"
                if s.reply_chats is not None
                else ""
            )
            print(
                f"{label}: {asked:,} requests at the emulator in {elapsed:.2f} s "
                f"({asked / elapsed:,.0f}/s, {100 * asked / elapsed / ideal:.0f}% of ideal); "
                f"status polls {s.polls:,}{reply_part}; exit {result.exit_code}"
            )


if __name__ == "__main__":
    main()

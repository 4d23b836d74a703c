"""Tracking throughput: status polls per second against the ideal, and polls spent per message.

The emulator runs in its own process with 50 ms latency per request, so a tracker with C polls
in flight can at best do C / 0.05 s polls per second ("ideal"). Two scenarios, in one run:

1. *settled*: 20,000 accepted messages whose delivery is already decided; every message needs
   exactly one poll, so this measures raw polling speed (polls/s against ideal).
2. *live*: tracking starts right after the send while messages are still travelling
   (delivered 1-5 s after acceptance); this measures what the per-message backoff costs in
   polls per message until final, and how long until everything is final.

The journal is made by sending through the emulator (latency 0) with the real `send` command:
2,000 requests of a 10-text list = 20,000 messages. Numbers are ratios for this machine only.

    python benchmarks/track_throughput.py                  # 20,000 messages, concurrency 64
    python benchmarks/track_throughput.py --messages 5000  # quicker
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
from runner.run.track import Tracker, TrackOptions  # noqa: E402
from runner.store.journal import Journal  # noqa: E402

KEY = "sk_bench_not_a_real_key"
LATENCY = 0.05
TEXTS = 10  # messages per request (a text list)


def make_journal(emu, folder: Path, messages: int) -> Path:
    """Send ``messages`` messages through the real CLI; returns the state directory."""
    requests = messages // TEXTS
    rows = "\n".join(f"+1555{i:07d}" for i in range(requests))
    (folder / "people.csv").write_text(f"phone\n{rows}\n")
    texts = ", ".join(f'"part {i}"' for i in range(TEXTS))
    campaign = folder / "bench.yaml"
    campaign.write_text(f"""\
version: 1
id: bench
sender: {{from_number: "+15551234567"}}
recipients: {{file: people.csv, to: phone}}
steps:
  - id: burst
    text: [{texts}]
send: {{concurrency: 64}}
""")
    state = folder / "state"
    env = {**os.environ, "BLOOIO_BASE_URL": emu.base_url, "BLOOIO_API_KEY": KEY}
    cli = [
        sys.executable,
        "-m",
        "runner",
        "send",
        str(campaign),
        "--yes",
        "--state",
        str(state),
        "--no-progress",
    ]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"send failed ({done.returncode}): {done.stderr[-2000:]}")
    return state


def track(emu, state: Path, concurrency: int, first_poll: float) -> tuple[object, float]:
    from runner.http.transport import run

    journal = Journal(state / "bench.sqlite")
    options = TrackOptions(
        base_url=emu.base_url, concurrency=concurrency, timeout=600, first_poll=first_poll
    )
    tracker = Tracker(journal, api_key=KEY, options=options, revision=1)
    tracker.load()
    started = time.perf_counter()
    result = run(tracker.run())
    elapsed = time.perf_counter() - started
    journal.close()
    return result, elapsed


def polls_per_message(state: Path) -> tuple[float, int]:
    with Journal(state / "bench.sqlite") as j:
        polls = [d.polls for d in j.deliveries(1)]
    return sum(polls) / max(len(polls), 1), max(polls or [0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    ideal = args.concurrency / LATENCY
    print(
        f"track throughput: {args.messages:,} messages, concurrency {args.concurrency}, "
        f"server latency {LATENCY * 1000:.0f} ms, ideal {ideal:,.0f} polls/s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        # 1. Settled: every message's fate is decided before tracking starts.
        folder = Path(tmp) / "settled"
        folder.mkdir()
        with run_in_process(EmulatorConfig(api_key=KEY, seed=1, p_delivery_failed=0.05)) as emu:
            state = make_journal(emu, folder, args.messages)
            time.sleep(0.5)  # every message has passed its delivered_after (~250 ms)
            emu.configure(latency_ms=LATENCY * 1000)
            result, elapsed = track(emu, state, args.concurrency, first_poll=0.0)
            truth = emu.stats()
        s = result.stats
        rate = s.polls / elapsed
        per, worst = polls_per_message(state)
        print(
            f"settled: {s.polls:,} polls in {elapsed:.2f} s = {rate:,.0f} polls/s, "
            f"{100 * rate / ideal:.0f}% of ideal; polls per message {per:.2f} (max {worst}); "
            f"final {s.total - s.open:,}/{s.total:,}; delivered {s.statuses['delivered']:,} "
            f"(emulator {truth['delivered']:,}), failed {s.statuses['failed']:,} "
            f"(emulator {truth['failed']:,})"
        )

        # 2. Live: tracking starts while messages are still queued or sent.
        folder = Path(tmp) / "live"
        folder.mkdir()
        config = EmulatorConfig(
            api_key=KEY, seed=2, delivered_after_ms=1000, delivery_jitter_ms=4000, sent_after_ms=300
        )
        with run_in_process(config) as emu:
            state = make_journal(emu, folder, args.messages)
            emu.configure(latency_ms=LATENCY * 1000)
            result, elapsed = track(emu, state, args.concurrency, first_poll=1.0)
        s = result.stats
        per, worst = polls_per_message(state)
        print(
            f"live (delivered 1-5 s after acceptance, default backoff: first poll 1 s, x2, "
            f"cap 60 s): all final in {elapsed:.2f} s; {s.polls:,} polls = {per:.2f} polls "
            f"per message (max {worst}); {s.polls / elapsed:,.0f} polls/s; "
            f"exit {result.exit_code}"
        )
        naive = 5.0 / 0.1
        print(
            f"  for comparison, polling every 100 ms until a 5 s delivery costs up to "
            f"{naive:.0f} polls per message"
        )


if __name__ == "__main__":
    main()

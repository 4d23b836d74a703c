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

This machine is shared and loaded: read the figures as ratios between the two columns, not
as absolute speeds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
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


def build(folder: Path, emu, messages: int, open_slice: int, chats: int) -> Path:
    """The state folder: ``open_slice`` messages sent for real, the rest bulk-inserted final."""
    people = "\n".join(f"+1555{i:07d}" for i in range(open_slice))
    (folder / "people.csv").write_text(f"phone\n{people}\n")
    campaign = folder / f"{CAMPAIGN}.yaml"
    campaign.write_text(f"version: 1\nid: {CAMPAIGN}\nrecipients: {{file: people.csv, to: phone}}\n"
                        "steps:\n  - id: hello\n    text: Hi there\n")
    state = folder / "state"
    env = {**os.environ, **emu.env(), "BLOOIO_API_KEY": KEY}
    done = subprocess.run([sys.executable, "-m", "runner", "send", str(campaign), "--yes",
                           "--state", str(state), "--no-progress", "--rate", "unlimited"],
                          env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"send failed ({done.returncode}): {done.stderr[-2000:]}")
    db = sqlite3.connect(state / f"{CAMPAIGN}.sqlite")
    revision = db.execute("SELECT MAX(revision) FROM requests").fetchone()[0]
    run_id = db.execute("SELECT MAX(id) FROM runs").fetchone()[0]
    db.execute("PRAGMA synchronous=OFF")
    bulk = messages - open_slice
    now = time.time() - 3600
    # The campaign's deliveries table is seeded by `track`; the webhook-fed part has its rows.
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO requests (key, chat, step, revision, recipient_index, step_index, messages, "
        "status, attempts, message_id, content_hash, first_attempt_at, last_attempt_at, "
        "finished_at, http_status, run_id) VALUES (?,?,?,?,?,?,1,'accepted',1,?,'h',?,?,?,202,?)",
        ((f"bulk{i:07d}", f"+1666{i % chats:07d}", f"s{i // chats}", revision,
          open_slice + i % chats, 1 + i // chats, f"msg_bulk_{i:07d}", now + i * 1e-3,
          now + i * 1e-3, now + i * 1e-3, run_id) for i in range(bulk)))
    db.executemany(
        "INSERT INTO deliveries (message_id, key, part, chat, revision, step, accepted_at, "
        "status, protocol, time_sent, time_delivered, polls, last_polled_at, final) "
        "VALUES (?,?,0,?,?,?,?,'delivered','sms',?,?,0,?,1)",
        ((f"msg_bulk_{i:07d}", f"bulk{i:07d}", f"+1666{i % chats:07d}", revision,
          f"s{i // chats}", now + i * 1e-3, int(now * 1000), int(now * 1000) + 900, now + 60)
         for i in range(bulk)))
    db.execute("COMMIT")
    db.close()
    return state


def run(checkout: Path, args: list[str], emu) -> Figures:
    """One command of ``checkout`` as a whole process: wall time, requests, peak RSS."""
    env = {**os.environ, **emu.env(), "BLOOIO_API_KEY": KEY, "PYTHONPATH": str(checkout)}
    before = emu.stats()["requests"]
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "runner", *args], env=env, cwd=checkout,
                                stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        tail = out.read().decode(errors="replace").strip().splitlines()[-2:]
    return Figures(elapsed, emu.stats()["requests"] - before, usage.ru_maxrss / 1024,
                   proc.returncode, " | ".join(tail))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--open", dest="open_slice", type=int, default=2_000)
    parser.add_argument("--chats", type=int, default=20_000)
    parser.add_argument("--compare-with", type=Path, default=None,
                        help="another checkout (e.g. a git worktree of 235289a)")
    args = parser.parse_args()
    checkouts = [("this", ROOT)]
    if args.compare_with is not None:
        checkouts.append(("other", args.compare_with.resolve()))
    print(f"track/optouts memory: {args.messages:,} messages ({args.open_slice:,} still open, "
          f"the rest final by webhook), {args.chats + args.open_slice:,} chats; SQLite state")
    with tempfile.TemporaryDirectory() as tmp, \
            run_in_process(EmulatorConfig(api_key=KEY, seed=3, sent_after_ms=0,
                                          delivered_after_ms=0, delivery_jitter_ms=0)) as emu:
        folder = Path(tmp)
        started = time.perf_counter()
        state = build(folder, emu, args.messages, args.open_slice, args.chats)
        size = sum(p.stat().st_size for p in state.iterdir()) / 1e6
        print(f"built in {time.perf_counter() - started:.0f} s (state {size:,.0f} MB)")
        campaign = str(folder / f"{CAMPAIGN}.yaml")
        commands = [
            ("track --no-replies", ["track", campaign, "--no-replies", "--first-poll", "0",
                                    "--poll-cap", "0.2", "--no-progress", "--rate",
                                    "unlimited", "--timeout", "600"]),
            ("track (replies)", ["track", campaign, "--first-poll", "0", "--poll-cap", "0.2",
                                 "--no-progress", "--rate", "unlimited", "--timeout", "600"]),
            ("optouts", ["optouts", campaign, "--rate", "1000", "--concurrency", "16"]),
        ]
        rows = []
        for label, command in commands:
            for name, checkout in checkouts:
                copy = folder / f"state-{name}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(state, copy)
                f = run(checkout, [*command, "--state", str(copy)], emu)
                rows.append((label, name, f))
                print(f"{label:20} {name:6} {f.seconds:7.1f} s {f.requests:9,} requests "
                      f"{f.peak_mb:7.0f} MB peak  exit {f.exit_code}  [{f.tail[:110]}]",
                      flush=True)
                shutil.rmtree(copy, ignore_errors=True)
        if len(checkouts) == 2:
            print("ratios this/other (time, peak memory):")
            for label, _ in commands:
                mine = next(f for lab, n, f in rows if lab == label and n == "this")
                other = next(f for lab, n, f in rows if lab == label and n == "other")
                print(f"  {label:20} time {mine.seconds / other.seconds:.2f}x  "
                      f"memory {mine.peak_mb / other.peak_mb:.2f}x")


if __name__ == "__main__":
    main()

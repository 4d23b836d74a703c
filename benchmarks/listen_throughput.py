"""`campaign listen` throughput: verified webhooks per second into a SQLite state.

A real `campaign listen` process (start-up excluded: the clock starts at the first request) is
fed by a load generator in this process: C keep-alive connections posting signed webhooks as
fast as the answers come back (half `message.received` replies, a tenth of them STOP; half
`message.delivered` statuses of messages a journal of the state holds). Each one is answered
only once committed, so the rate is of events stored, not merely received. Printed: events/s
and the listener's peak resident memory.

    python benchmarks/listen_throughput.py                  # 20,000 events, 32 connections
    python benchmarks/listen_throughput.py --events 5000 --connections 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from runner.store.journal import ACCEPTED, Attempt, Journal, Outcome  # noqa: E402
from runner.store.paths import journal_path  # noqa: E402
from runner.webhooks.verify import header_value  # noqa: E402

SECRET = "whsec_bench"


def seed_state(state: Path, n: int) -> list[str]:
    """A journal whose n accepted messages the statuses will name."""
    now = time.time()
    ops = []
    for i in range(n):
        ops += [
            Attempt(f"k{i}", f"+1555{i:07d}", "hello", 1, i, 0, 1, "h", None, now),
            Outcome(f"k{i}", ACCEPTED, message_id=f"msg_{i}", now=now),
        ]
    with Journal(journal_path(state, "bench")) as j:
        j.apply(ops)
        j.seed_deliveries(1)
    return [f"msg_{i}" for i in range(n)]


def bodies(n: int, ids: list[str]) -> list[bytes]:
    out = []
    for i in range(n):
        chat = f"+1555{i % len(ids):07d}"
        if i % 2:
            doc = {
                "event": "message.delivered",
                "message_id": ids[i % len(ids)],
                "external_id": chat,
                "protocol": "imessage",
                "timestamp": int(time.time() * 1000),
            }
        else:
            doc = {
                "event": "message.received",
                "message_id": f"in_{i}",
                "external_id": chat,
                "protocol": "imessage",
                "timestamp": int(time.time() * 1000),
                "text": "STOP" if i % 20 == 0 else "thanks!",
                "received_at": int(time.time() * 1000),
            }
        out.append(json.dumps(doc).encode())
    return out


async def load(port: int, path: str, payloads: list[bytes], connections: int) -> float:
    queue = list(reversed(payloads))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            body = queue.pop()
            sig = header_value(SECRET, int(time.time()), body)
            writer.write(
                (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"X-Blooio-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode())
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "st"
        ids = seed_state(state, 5_000)
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runner",
                "listen",
                "--state",
                str(state),
                "--port",
                "0",
                "--port-file",
                str(port_file),
            ],
            env={**os.environ, "BLOOIO_WEBHOOK_SECRET": SECRET},
            cwd=HERE.parent,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(200):
                if port_file.exists() and port_file.read_text().strip():
                    break
                time.sleep(0.05)
            port = int(port_file.read_text())
            payloads = bodies(args.events, ids)
            took = asyncio.run(load(port, "/webhooks/blooio", payloads, args.connections))
            with open(f"/proc/{proc.pid}/status") as fh:
                peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
        finally:
            proc.terminate()
            proc.wait(10)
        print(
            f"campaign listen: {args.events:,} verified webhooks over {args.connections} "
            f"connections in {took:.2f} s = {args.events / took:,.0f}/s stored "
            f"(acknowledged after commit); peak resident {peak / 1024:.0f} MB"
        )


if __name__ == "__main__":
    main()

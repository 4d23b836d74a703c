"""How many requests/s the emulator serves: ``python benchmarks/emulator_throughput.py``.

A raw asyncio client (keep-alive connections, hand-written HTTP) sends unique-key sends to an
emulator in a child process, so the figure is the server's, not an HTTP library's. Prints
figures measured side by side in one run; read them as ratios, never as promises.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from runner.emulator.config import EmulatorConfig  # noqa: E402
from runner.emulator.runtime import run_in_process  # noqa: E402


async def _worker(port: int, key: str, prefix: str, count: int, codes: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(count):
            body = json.dumps({"text": f"hello {i}"}).encode()
            chat = f"%2B1555{(hash(prefix) + i) % 10_000_000:07d}"
            writer.write(
                f"POST /v2/api/chats/{chat}/messages HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {key}\r\nIdempotency-Key: {prefix}-{i}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            codes[status] = codes.get(status, 0) + 1
    finally:
        writer.close()


async def _run(port: int, key: str, concurrency: int, total: int, tag: str) -> tuple[float, dict]:
    codes: dict[int, int] = {}
    per = total // concurrency
    start = time.perf_counter()
    await asyncio.gather(*(_worker(port, key, f"{tag}{c}", per, codes) for c in range(concurrency)))
    return per * concurrency / (time.perf_counter() - start), codes


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; Linux only."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 50.0])
    args = parser.parse_args()
    print(
        f"{'latency':>8} {'conc':>5} {'req/s':>9} {'ideal':>9} {'server µs/req':>14}"
        f" {'server busy':>12}  codes"
    )
    for latency in args.latency_ms:
        with run_in_process(EmulatorConfig(latency_ms=latency)) as emu:
            for conc in args.concurrency:
                cpu0, t0 = _cpu_seconds(emu.process.pid), time.perf_counter()
                rate, codes = asyncio.run(
                    _run(emu.port, emu.api_key, conc, args.requests, f"l{latency}c{conc}-")
                )
                cpu1, wall = _cpu_seconds(emu.process.pid), time.perf_counter() - t0
                ideal = f"{conc / (latency / 1000):.0f}" if latency else "-"
                if cpu0 is not None and cpu1 is not None:
                    per = f"{(cpu1 - cpu0) / sum(codes.values()) * 1e6:.0f}"
                    busy = f"{(cpu1 - cpu0) / wall:.0%}"
                else:
                    per = busy = "n/a"
                print(
                    f"{latency:>6.0f}ms {conc:>5} {rate:>9.0f} {ideal:>9} {per:>14}"
                    f" {busy:>12}  {codes}"
                )
            stats = emu.stats()
            print(
                f"  peak_rate_1s={stats['peak_rate_1s']} peak_in_flight="
                f"{stats['peak_in_flight']} accepted={stats['accepted_requests']}"
            )


if __name__ == "__main__":
    main()

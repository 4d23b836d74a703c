"""Send throughput, side by side in one run: how close does each client get to the ideal?

A loopback server in a separate process answers every request with 202 after 50 ms, so a
client with C requests in flight can at best do C / 0.05 s messages per second ("ideal").
Each row runs for a fixed time and reports messages/s and its share of ideal. Numbers are only
comparable within one run (the server and client share this machine's cores).

    python benchmarks/send_throughput.py              # the whole table, ~1 minute
    python benchmarks/send_throughput.py --seconds 2  # quicker
    python benchmarks/send_throughput.py --rate 50    # also check a paced executor run
    python benchmarks/send_throughput.py --tls-only   # only the TLS rows (needs trustme)

The TLS rows use a private CA made by trustme (a test dependency) for a loopback server that
speaks TLS, trusted through SSL_CERT_FILE as a user with a private CA would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from _rate_check import rate_stats  # noqa: E402

from runner.http.transport import FastTransport, RequestBuilder, send  # noqa: E402

DELAY = 0.05
JITTER = 0.01  # seconds of arrival-time jitter the --rate check forgives
KEY = "sk_bench_not_a_real_key"
BODY = json.dumps({"text": "Hello {{ first_name }}, your order shipped."}).encode()


# -- hooks for the executor's author ----------------------------------------------------------
# ============================================================================================
# HOOK: measure_executor. Fill in to time the real executor (with its journal) against the
# loopback server; return messages per second. Until it exists the table says "not measured".
# ============================================================================================
def _executor_plan(n: int) -> list:
    from runner.planning.request import PlannedRequest

    body = json.loads(BODY)
    return [
        PlannedRequest(
            recipient=f"+1555{i:07d}",
            step="hello",
            key=f"bench:1:hello:{i}:0",
            method="POST",
            path=f"/chats/%2B1555{i:07d}/messages",
            body=body,
            messages=1,
            recipient_index=i,
        )
        for i in range(n)
    ]


def _run_executor(base_url: str, concurrency: int, rate: float | None, n: int) -> float:
    """Send ``n`` one-step recipients through the real executor, journal on; seconds taken."""
    import tempfile

    from runner.http.transport import run
    from runner.run.send import Executor, SendOptions
    from runner.store.journal import Journal

    plan = _executor_plan(n)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "bench.sqlite")
        try:
            options = SendOptions(base_url=base_url, concurrency=concurrency, rate_per_second=rate)
            executor = Executor(journal, api_key=KEY, options=options)
            start = time.perf_counter()
            result = run(executor.run(plan, total=n))
            elapsed = time.perf_counter() - start
        finally:
            journal.close()
    if result.stats.accepted != n:
        raise RuntimeError(f"executor accepted {result.stats.accepted} of {n}")
    return elapsed


def measure_executor(base_url: str, concurrency: int, n: int) -> float:
    return n / _run_executor(base_url, concurrency, None, n)


# ============================================================================================
# HOOK: run_executor_paced. Fill in to send ``n`` messages through the real executor with
# ``--rate rate`` against ``base_url``; the loopback server records arrival times and
# rate_stats() checks them. Until it exists the rate check is skipped.
# ============================================================================================
def run_executor_paced(base_url: str, rate: float, n: int) -> None:
    _run_executor(base_url, 32, rate, n)


# -- the server --------------------------------------------------------------------------------


class LoopbackServer:
    """The benchmark server in a child process; stdin is its lifeline."""

    def __init__(self, delay: float = DELAY, tls: tuple[str, str] | None = None) -> None:
        self.delay = delay
        self.tls = tls  # (certificate chain, key) files: serve https

    def __enter__(self) -> LoopbackServer:
        extra = ["--cert", self.tls[0], "--key", self.tls[1]] if self.tls else []
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_loopback_server.py"), "--delay", str(self.delay), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"loopback server did not start: {line!r}")
        scheme = "https" if self.tls else "http"
        self.url = (
            f"{scheme}://localhost:{int(line.split()[1])}"
            if self.tls
            else (f"http://127.0.0.1:{int(line.split()[1])}")
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def arrivals(self) -> list[float]:
        return httpx.get(self.url + "/__timestamps").json()


@contextlib.contextmanager
def private_ca_files():
    """A trustme CA in a temporary directory: (CA bundle, server chain, server key) paths."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp:
        bundle, chain, key = (os.path.join(tmp, n) for n in ("ca.pem", "chain.pem", "key.pem"))
        ca.cert_pem.write_to_path(bundle)
        cert.private_key_pem.write_to_path(key)
        with open(chain, "wb") as out:
            for blob in cert.cert_chain_pems:
                out.write(blob.bytes())
        yield bundle, chain, key


# -- clients -----------------------------------------------------------------------------------


class Measured(NamedTuple):
    rate: float  # messages per second
    cpu_us: float  # this process's CPU (user + system) per message, in microseconds


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _workers(
    concurrency: int, seconds: float, one: Callable[[int], Awaitable[None]]
) -> Measured:
    """Run ``concurrency`` loops of ``one(i)`` for ``seconds``."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def loop(worker: int) -> None:
        nonlocal done
        i = worker
        while time.perf_counter() < deadline:
            await one(i)
            done += 1
            i += concurrency

    cpu, start = _cpu(), time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(concurrency)))
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    return Measured(done / elapsed, cpu / done * 1e6)


def _raw_request(host: str, i: int) -> bytes:
    return (
        f"POST /chats/%2B1555{i:07d}/messages HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: k{i}\r\nContent-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY


async def raw_asyncio(url: str, concurrency: int, seconds: float) -> Measured:
    """The machine's ceiling: one stream per worker, no HTTP library at all."""
    host_port = url.split("//", 1)[1]
    host, port = host_port.split(":")
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(concurrency)]

    async def one(i: int) -> None:
        reader, writer = conns[i % concurrency]
        writer.write(_raw_request(host_port, i))
        head = await reader.readuntil(b"\r\n\r\n")
        at = head.lower().find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at)])
        await reader.readexactly(length)

    try:
        return await _workers(concurrency, seconds, one)
    finally:
        for _, writer in conns:
            writer.close()


async def fast_direct(url: str, concurrency: int, seconds: float, builder: bool) -> Measured:
    """Our transport through send(), a request built per message as the executor would."""
    transport = FastTransport(concurrency)
    auth = (b"Authorization", b"Bearer " + KEY.encode())
    build = RequestBuilder(url, [auth])
    json_type = (b"Content-Type", b"application/json")

    async def one(i: int) -> None:
        path = f"/chats/%2B1555{i:07d}/messages"
        key = (b"Idempotency-Key", b"k%d" % i)
        if builder:
            request = build("POST", path, BODY, [json_type, key])
        else:
            request = httpx.Request(
                "POST", url + path, headers=[auth, json_type, key], content=BODY
            )
        response = await send(transport, request)
        if response.status_code != 202:
            raise RuntimeError(f"unexpected status {response.status_code}")

    try:
        return await _workers(concurrency, seconds, one)
    finally:
        await transport.aclose()


async def async_client(
    url: str, concurrency: int, seconds: float, transport: httpx.AsyncBaseTransport | None
) -> Measured:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    kwargs = {"transport": transport} if transport else {"limits": limits}
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30.0, **kwargs
    ) as client:

        async def one(i: int) -> None:
            response = await client.post(
                f"/chats/%2B1555{i:07d}/messages",
                content=BODY,
                headers={"Content-Type": "application/json", "Idempotency-Key": f"k{i}"},
            )
            if response.status_code != 202:
                raise RuntimeError(f"unexpected status {response.status_code}")

        return await _workers(concurrency, seconds, one)


def _sequential(seconds: float, post: Callable[[int], httpx.Response]) -> Measured:
    done = 0
    cpu, start = _cpu(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        post(done).raise_for_status()
        done += 1
    elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
    return Measured(done / elapsed, cpu / done * 1e6)


def naive_new_client_each(url: str, seconds: float) -> Measured:
    """What a first script does: ``httpx.post`` in a loop (a new connection every time)."""
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    return _sequential(
        seconds,
        lambda i: httpx.post(f"{url}/chats/%2B1555{i:07d}/messages", content=BODY, headers=headers),
    )


def naive_client_loop(url: str, seconds: float) -> Measured:
    """A sequential ``httpx.Client.post`` loop on one kept-alive client: latency-bound."""
    with httpx.Client(headers={"Authorization": f"Bearer {KEY}"}) as client:
        return _sequential(
            seconds,
            lambda i: client.post(f"{url}/chats/%2B1555{i:07d}/messages", content=BODY),
        )


def executor_measured(url: str, concurrency: int, seconds: float) -> Measured | str:
    """The hook, timed; a reason string instead when the executor cannot be measured."""
    n = int(concurrency / DELAY * seconds)
    cpu = _cpu()
    try:
        rate = measure_executor(url, concurrency, n)
    except (NotImplementedError, ImportError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return Measured(rate, (_cpu() - cpu) / n * 1e6)


# -- the table ---------------------------------------------------------------------------------

_HEAD = f"| {'client':<46} | {'conc':>4} | {'achieved':>10} | {'ideal':>5} | {'CPU/msg':>8} |"


def _row(name: str, concurrency: int | None, m: Measured | None) -> str:
    if m is None:
        return f"| {name:<46} | {concurrency or 1:>4} | {'not measured':>10} | {'':>5} | {'':>8} |"
    share = f"{m.rate / (concurrency / DELAY):.0%}" if concurrency else "-"
    return (
        f"| {name:<46} | {concurrency or 1:>4} | {m.rate:>8,.0f}/s | {share:>5} "
        f"| {m.cpu_us:>5,.0f} us |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="time per row")
    parser.add_argument("--rate", type=float, default=None, help="also check a paced executor")
    parser.add_argument("--tls-only", action="store_true", help="only the TLS rows")
    args = parser.parse_args()
    secs = args.seconds
    short = min(secs, 3.0)
    print(
        f"python {sys.version.split()[0]}, httpx {httpx.__version__}, {os.cpu_count()} cores, "
        f"server delay {DELAY * 1000:.0f} ms in its own process, {secs:g} s per row; "
        f"ideal = concurrency / {DELAY} s; CPU/msg = this (client) process only"
    )
    print(_HEAD)
    print(f"|{'-' * 48}|{'-' * 6}|{'-' * 12}|{'-' * 7}|{'-' * 10}|")
    if not args.tls_only:
        _http_rows(args, secs, short)
    tls_rows(secs)


def tls_rows(secs: float) -> None:
    """The same server over TLS with a private CA (trusted via SSL_CERT_FILE)."""
    import importlib.util

    if importlib.util.find_spec("trustme") is None:
        print("TLS rows: not measured (pip install trustme)")
        return
    saved = os.environ.get("SSL_CERT_FILE")
    with private_ca_files() as (bundle, chain, key):
        os.environ["SSL_CERT_FILE"] = bundle
        try:
            with LoopbackServer(tls=(chain, key)) as server:
                for c in (32, 128):
                    m = asyncio.run(fast_direct(server.url, c, secs, builder=True))
                    print(_row("FastTransport over TLS, send() + builder", c, m), flush=True)
        finally:
            if saved is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = saved


def _http_rows(args: argparse.Namespace, secs: float, short: float) -> None:
    results: dict[tuple[str, int | None], Measured] = {}
    with LoopbackServer() as server:
        url = server.url

        def row(name: str, concurrency: int | None, m: Measured | None) -> None:
            if m is not None:
                results[name, concurrency] = m
            print(_row(name, concurrency, m), flush=True)

        direct = "FastTransport, send() + RequestBuilder"
        for c in (32, 128):
            row("raw asyncio streams (ceiling)", c, asyncio.run(raw_asyncio(url, c, secs)))
        for c in (8, 32, 128):
            row(direct, c, asyncio.run(fast_direct(url, c, secs, builder=True)))
        row(
            "FastTransport, send() + plain httpx.Request",
            128,
            asyncio.run(fast_direct(url, 128, secs, builder=False)),
        )
        row(
            "httpx.AsyncClient(transport=FastTransport)",
            128,
            asyncio.run(async_client(url, 128, secs, FastTransport(128))),
        )
        row(
            "httpx.AsyncClient, default transport",
            128,
            asyncio.run(async_client(url, 128, short, None)),
        )
        row("naive httpx.post loop (new connection each)", None, naive_new_client_each(url, short))
        sequential = naive_client_loop(url, short)
        row("naive sequential httpx.Client.post loop", None, sequential)

        executor_note = None
        for c in (8, 32, 128):
            measured = executor_measured(url, c, secs)
            if isinstance(measured, str):
                executor_note = measured
                row("executor (runner, with journal)", c, None)
            else:
                row("executor (runner, with journal)", c, measured)
        if executor_note:
            print(f"executor: not measured ({executor_note})")

        if args.rate:
            server.arrivals()  # clear the log of everything above
            try:
                run_executor_paced(url, args.rate, int(args.rate * 5))
            except (NotImplementedError, ImportError) as exc:
                print(f"rate check at --rate {args.rate:g}: executor not measured ({exc})")
            else:
                arrivals = server.arrivals()
                stats = rate_stats(arrivals)
                # Arrival times carry scheduling jitter: a request sent on time can land a few
                # ms late and share a window with one more than was sent in it. The verdict
                # therefore allows JITTER (windows of 1 s - JITTER must hold <= rate).
                tolerant = rate_stats(arrivals, window=1.0 - JITTER)
                verdict = "ok" if tolerant.max_in_window <= args.rate else "EXCEEDED"
                print(
                    f"rate check at --rate {args.rate:g}: {stats.count} requests, at most "
                    f"{stats.max_in_window} in any 1 s window ({tolerant.max_in_window} in any "
                    f"{1 - JITTER:g} s window), average {stats.average_rate:.1f}/s: {verdict}"
                )

    print()
    for name in (direct, "executor (runner, with journal)"):
        for c in (32, 128):
            m = results.get((name, c))
            if m:
                print(
                    f"{name} at {c}: {m.rate / (c / DELAY):.0%} of ideal, "
                    f"{m.rate / sequential.rate:.0f}x the sequential httpx.Client loop"
                )


if __name__ == "__main__":
    main()

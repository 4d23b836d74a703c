"""A fast keep-alive HTTP/1.1 loopback server for send benchmarks; run it in its own process.

Answers every request with ``202`` and a small JSON body after ``--delay`` seconds (the API's
latency stand-in). It is an ``asyncio.Protocol`` rather than streams so that the server, which
shares the machine's two cores with the client being measured, costs as little CPU as possible.

It records when each request arrived (monotonic clock of this machine, comparable across
processes on Linux): ``GET /__timestamps`` returns them as JSON and clears the log, for the
``--rate`` check. On start it prints ``PORT <n>`` on stdout; it exits when stdin closes, so a
parent that dies never leaves it behind.

    python benchmarks/_loopback_server.py --delay 0.05
    python benchmarks/_loopback_server.py --cert cert.pem --key key.pem   # TLS
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time

BODY = b'{"message_id":"msg_0000000000","status":"queued"}'
RESPONSE = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
) + BODY
MAX_BUFFER = 1 << 20


class LoopbackProtocol(asyncio.Protocol):
    def __init__(self, delay: float, arrivals: list[float]) -> None:
        self.delay = delay
        self.arrivals = arrivals
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_BUFFER:
            self.transport.close()
            return
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            self.buf = self.buf[total:]
            if head.startswith(b"GET /__timestamps "):
                self._send(self._timestamps())
                continue
            self.arrivals.append(time.monotonic())
            if self.delay > 0:
                self.loop.call_later(self.delay, self._send, RESPONSE)
            else:
                self._send(RESPONSE)

    def _timestamps(self) -> bytes:
        body = json.dumps(self.arrivals).encode()
        self.arrivals.clear()
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)
        ) + body

    def _send(self, data: bytes) -> None:
        # Responses go out in request order because every request on a connection waits the
        # same delay (and clients here never pipeline anyway).
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(
    delay: float, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> None:
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    server = await loop.create_server(
        lambda: LoopbackProtocol(delay, arrivals), host, port, backlog=1024, ssl=tls
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stdin_closed = loop.create_future()

    def on_stdin() -> None:
        if not sys.stdin.buffer.read1(4096) and not stdin_closed.done():
            stdin_closed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    try:
        await stdin_closed
    finally:
        loop.remove_reader(sys.stdin.fileno())
        server.close()
        await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", help="PEM certificate chain: serve TLS")
    parser.add_argument("--key", help="PEM private key for --cert")
    args = parser.parse_args()
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.delay, port=args.port, tls=tls))


if __name__ == "__main__":
    main()

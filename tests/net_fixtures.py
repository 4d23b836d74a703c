"""Loopback servers for the transport's network tests: raw HTTP answers, a CONNECT / forward
proxy that counts tunnels, a TCP relay that can stop forwarding, a blackholed address.

Everything binds 127.0.0.1 and is stopped by the ``async with`` that started it; so is the
transport under test (``open_transport``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runner.http.transport import FastTransport

Answer = Callable[[bytes, bytes], Awaitable[bytes | None]]  # (head, body) -> raw response


@contextlib.asynccontextmanager
async def open_transport(*args: Any, **kw: Any) -> AsyncIterator[FastTransport]:
    """A ``FastTransport(*args, **kw)`` closed (every connection) when the block ends."""
    transport = FastTransport(*args, **kw)
    try:
        yield transport
    finally:
        await transport.aclose()


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    gate: Callable[[], bool] = lambda: True,
) -> None:
    try:
        for _ in range(100_000):
            data = await reader.read(65536)
            if not data:
                break
            if gate():
                writer.write(data)
                await writer.drain()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@dataclass
class Tasks:
    running: set[asyncio.Task] = field(default_factory=set)

    def track(self) -> None:
        self.running.add(asyncio.current_task())  # type: ignore[arg-type]

    def done(self) -> None:
        self.running.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def stop(self, server: asyncio.Server) -> None:
        server.close()
        for task in list(self.running):
            task.cancel()
        if self.running:
            await asyncio.gather(*self.running, return_exceptions=True)
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value.strip())
    return head, await reader.readexactly(length)


class _Listener:
    """Serves ``_serve`` on 127.0.0.1 (a free port, in ``port``) while ``running()`` is
    entered; its connection tasks are stopped on the way out."""

    ssl_context: ssl.SSLContext | None = None  # a dataclass field in servers that speak TLS

    @contextlib.asynccontextmanager
    async def running(self):
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            await self._tasks.stop(server)


@dataclass
class RawServer(_Listener):
    """Answers each request with whatever ``answer`` returns (None: close without answering)."""

    answer: Answer
    ssl_context: ssl.SSLContext | None = None
    heads: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _tasks: Tasks = field(default_factory=Tasks)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.track()
        self.connections += 1
        try:
            for _ in range(1000):
                try:
                    head, body = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                self.heads.append(head)
                out = await self.answer(head, body)
                if out is None:
                    return
                writer.write(out)
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()
            self._tasks.done()


@dataclass
class Proxy(_Listener):
    """An HTTP proxy: CONNECT tunnels (counted) to 127.0.0.1 targets, and absolute-form
    requests answered by the proxy itself (recorded), checking Proxy-Authorization."""

    expect_auth: bytes | None = None  # the full header value, e.g. b"Basic dXNlcjpwdw=="
    ssl_context: ssl.SSLContext | None = None  # an https:// proxy
    tunnels: list[bytes] = field(default_factory=list)  # CONNECT targets
    forwarded: list[bytes] = field(default_factory=list)  # request lines of forwarded requests
    auth_seen: list[bytes | None] = field(default_factory=list)
    port: int = 0
    _tasks: Tasks = field(default_factory=Tasks)

    def _authorised(self, head: bytes) -> bool:
        seen = None
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"proxy-authorization":
                seen = value.strip()
        self.auth_seen.append(seen)
        return self.expect_auth is None or seen == self.expect_auth

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.track()
        try:
            for _ in range(1000):
                try:
                    head, _body = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
                if not self._authorised(head):
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n"
                    )
                    await writer.drain()
                    continue
                if method == b"CONNECT":
                    self.tunnels.append(target)
                    host, _, port = target.rpartition(b":")
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(port))
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                    return
                self.forwarded.append(head.split(b"\r\n", 1)[0])
                body = b'{"via": "proxy"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._tasks.done()


@dataclass
class Relay(_Listener):
    """A TCP relay to 127.0.0.1:``target``; after ``freeze()`` it stops passing the client's
    bytes on (so a TLS close_notify never reaches the server and is never answered)."""

    target: int
    frozen: bool = False
    port: int = 0
    _tasks: Tasks = field(default_factory=Tasks)

    def freeze(self) -> None:
        self.frozen = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.track()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            await asyncio.gather(
                _pipe(reader, up_writer, lambda: not self.frozen), _pipe(up_reader, writer)
            )
        except (asyncio.CancelledError, OSError):
            pass
        finally:
            writer.close()
            self._tasks.done()


@contextlib.contextmanager
def blackhole():
    """(host, port) on loopback where a TCP connect never completes: a listening socket with
    a full accept queue, so the kernel drops further SYNs."""
    listener = socket.socket()
    fillers = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(address)
            fillers.append(filler)
        yield address
    finally:
        for filler in fillers:
            filler.close()
        listener.close()

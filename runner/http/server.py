"""A small HTTP/1.1 server on asyncio streams: keep-alive, Content-Length and chunked bodies.

Hand-written so the emulator and the webhook listener need nothing beyond the standard library
and the per-request path stays short (a send benchmark must never be limited by its server).
Serves one ``Handler``: it gets each parsed request and answers ``(status, body, headers)``,
or ``DROP`` to cut the connection (the emulator's fault). Binds 127.0.0.1 unless told a host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from enum import Enum
from http import HTTPStatus
from typing import Any, Final, Protocol

HOST = "127.0.0.1"
MAX_HEAD = 64 * 1024
MAX_REQUESTS_PER_CONNECTION = 1_000_000  # then "Connection: close"; clients reconnect
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Drop(Enum):
    """A handler's answer that is no answer: close the connection without a response."""

    DROP = "drop"


DROP: Final = Drop.DROP

Response = tuple[int, Any, "list[tuple[str, str]] | None"]


class Handler(Protocol):
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes, peer: str
    ) -> Awaitable[Response | Drop]: ...


class BadRequest(Exception):
    pass


def _encode(status: int, body: object, headers: list[tuple[str, str]] | None, close: bool) -> bytes:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    )
    if headers:
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
    if close:
        head += "Connection: close\r\n"
    return (head + "\r\n").encode("latin-1") + payload


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    out = bytearray()
    for _ in range(1_000_000):  # bounded: at most a million chunks
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            # Trailers end with an empty line.
            for _ in range(100):
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    break
            return bytes(out)
        if len(out) + size > limit:
            raise BadRequest("body too large")
        out += await reader.readexactly(size)
        await reader.readexactly(2)
    raise BadRequest("too many chunks")


class Server:
    """Serves ``app`` on ``host``; ``start`` binds, ``close`` stops and drops connections.
    Bodies over ``max_body`` bytes are answered 413 and the connection closed."""

    def __init__(self, app: Handler, max_body: int, host: str = HOST) -> None:
        self.app = app
        self.max_body = max_body
        self.host = host
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(
            self._connection, self.host, port, limit=MAX_HEAD, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        peer_host = peer[0] if peer else ""
        try:
            await self._serve(reader, writer, peer_host)
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        app = self.app
        max_body = self.max_body
        for served in range(1, MAX_REQUESTS_PER_CONNECTION + 1):  # one iteration per request
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError:
                writer.write(
                    _encode(
                        431,
                        {"error": "ApiError", "message": "headers too large", "status": 431},
                        None,
                        True,
                    )
                )
                return
            lines = head.decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ")
            except ValueError:
                writer.write(
                    _encode(
                        400,
                        {"error": "ApiError", "message": "bad request line", "status": 400},
                        None,
                        True,
                    )
                )
                return
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            conn = headers.get("connection", "").lower()
            close = (
                conn == "close"
                or (version == "HTTP/1.0" and conn != "keep-alive")
                or served == MAX_REQUESTS_PER_CONNECTION
            )
            try:
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    body = await _read_chunked(reader, max_body)
                else:
                    length = int(headers.get("content-length") or 0)
                    if length < 0 or length > max_body:
                        raise BadRequest("body too large")
                    body = await reader.readexactly(length) if length else b""
            except (BadRequest, ValueError) as exc:
                status = 413 if "large" in str(exc) else 400
                writer.write(
                    _encode(
                        status,
                        {"error": "ApiError", "message": str(exc), "status": status},
                        None,
                        True,
                    )
                )
                return
            resp = await app.handle(method, target, headers, body, peer)
            if resp is DROP:
                writer.transport.abort()
                return
            status, payload, extra = resp
            writer.write(_encode(status, payload, extra, close))
            await writer.drain()
            if close:
                return

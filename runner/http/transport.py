"""A lean HTTP/1.1 transport for httpx over asyncio streams.

Why it exists: httpx's default pool collapses at high concurrency (5-6% of the ideal rate at
128 in-flight requests on our 2-core machines), while raw asyncio streams reach ~92%. Keeping
httpx as the API (``httpx.Request``/``httpx.Response`` and httpx's exception types) and
replacing only the transport keeps the rest of the runner ordinary.

Scope, on purpose: HTTP/1.1 only, no streaming of bodies. Responses are read
completely before ``handle_async_request`` returns (API answers are small JSON documents),
which lets the connection go back to the pool at once and keeps the hot path free of
stream-wrapper objects.

Building requests cheaply for the executor (the direct path, no ``AsyncClient``)::

    build = RequestBuilder("https://api.blooio.com/v2/api",
                           [(b"Authorization", b"Bearer " + key), (b"Accept", b"application/json")])
    request = build("POST", "/chats/%2B15551230001/messages", json_bytes,
                    [(b"Content-Type", b"application/json"), (b"Idempotency-Key", key_bytes)])
    response = await send(transport, request)   # status, headers, .content, .json()

which is the same as, and several times cheaper than, the plain httpx spelling::

    httpx.Request("POST", base_url + path, headers=[*headers, ...], content=json_bytes)

(pre-merged absolute URL, pre-built header list, body already serialised). Parsing the URL is
most of an ``httpx.Request``'s cost; the builder skips it for paths made only of
URL-safe characters.

``httpx.AsyncClient(transport=FastTransport(...))`` works too (auth, redirects, cookies), at
the price of the client's per-request Python work; benchmarks/send_throughput.py measures both.

Networks (runner/http/connect.py, proxy.py, tls.py): certificates are checked against
certifi's bundle unless SSL_CERT_FILE / SSL_CERT_DIR name another, as httpx does;
HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY are honoured by httpx's rules (a CONNECT
tunnel for https targets, absolute-form request targets for http ones); every address of a
name is tried, Happy Eyeballs style. Failures are runner.http.neterror exceptions: httpx's
types, plus the host, the phase and the reason.

Timeouts: each phase has its own (httpx's connect/read/write/pool), and the whole exchange
is also held to the largest of them minus a small margin, so that a caller whose own deadline
equals the timeout (runner.http.client) sees the phase that ran out, not a bare TimeoutError.

The transport is bound to the event loop it is first used on; make one per ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from runner.http.connect import host_port, open_stream
from runner.http.internals import (
    buffered,
    saw_eof,
    set_content,
    uri_reference,
    url_from_reference,
    wait_for_data,
)
from runner.http.neterror import (
    BodyDecodingFailed,
    ProtocolFailed,
    ReadFailed,
    ReadTimedOut,
    WriteTimedOut,
    reason_of,
    seconds,
)
from runner.http.proxy import Proxy, ProxyRules
from runner.http.tls import default_ssl_context

__all__ = ["FastTransport", "RequestBuilder", "send", "run", "RETRYABLE_ERRORS"]

# What a caller should treat as "the network failed, try again": httpx's transport errors
# (ours subclass them), and a body that does not match its Content-Encoding, which is
# httpx.DecodingError when an AsyncClient decodes it (the direct path raises
# BodyDecodingFailed, a ReadError, instead).
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, httpx.DecodingError)

_T = TypeVar("_T")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_HEAD_BYTES = 64 * 1024  # asyncio's StreamReader limit: a bigger head is an error
_MAX_INFORMATIONAL = 8  # 1xx responses skipped before the real one; bounds a hostile server
_MAX_TRAILER_LINES = 64
_MAX_HEADER_LINES = 256
_CLOSE_GRACE = 1.0  # seconds aclose() waits, in total, for connections to close cleanly
# Control characters no header line may hold (tab is allowed): with CR and LF, and without
# them for checking a whole head whose line breaks are counted separately.
_BAD_LINE_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def _has_control(head: bytes) -> bool:
    # bytes.translate deleting them is one C pass, twice as fast as a regex search.
    return len(head.translate(None, _CONTROL_BYTES)) != len(head)


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class _Stale(Exception):
    """The connection died before the server sent any byte of the response."""


class _Framing(Exception):
    """The response broke HTTP/1.1 framing; the text says how (never quotes header values)."""


class _Lost(Exception):
    """The connection failed mid-response."""


def _until(timeout: float | None, deadline: float | None) -> float | None:
    """The loop time a phase with ``timeout`` must end by, within the exchange's deadline."""
    if timeout is None:
        return deadline
    end = asyncio.get_running_loop().time() + timeout
    return end if deadline is None or end < deadline else deadline


def _target(conn: _Conn) -> str:
    return host_port(conn.origin[1], conn.origin[2])


def _shown(proxy: Proxy | None) -> str | None:
    return None if proxy is None else proxy.display


class _Conn:
    __slots__ = ("reader", "writer", "origin")  # origin: (scheme, host, port) of the target

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: tuple
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.origin = origin

    def usable(self) -> bool:
        # A server that closed an idle connection has usually been noticed by the loop by now
        # (EOF fed to the reader); catching it here avoids a doomed write and a retry. Bytes
        # waiting on an idle connection (a "408 Request Timeout" sent before closing) would
        # be read as the next request's answer, so they disqualify it too; StreamReader has
        # no public way to ask, hence its buffer.
        reader = self.reader
        return not (buffered(reader) or reader.at_eof() or self.writer.transport.is_closing())

    def abort(self) -> None:
        # abort, not close: after an error the buffered bytes are worthless, and close() on a
        # broken TLS connection can wait on a shutdown that never comes.
        self.writer.transport.abort()


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive pool over asyncio streams, at most ``max_connections`` open.

    Idle connections are reused last-in-first-out (the most recently used is the least likely
    to have been closed by the server). A connection the server closes (``Connection: close``,
    EOF, reset, or a body delimited by close) is discarded, never reused.
    """

    def __init__(
        self,
        max_connections: int = 100,
        *,
        timeout: httpx.Timeout | float | None = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body_bytes: int = 16 * 1024 * 1024,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> None:
        """``proxy`` sends everything through that proxy URL; otherwise, with
        ``trust_env``, the *_PROXY variables decide (read now, as httpx reads them when a
        client is made). ``ssl_context`` replaces the certifi/SSL_CERT_FILE trust store."""
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        # Used when a request carries no "timeout" extension (the direct path); AsyncClient
        # always sets one.
        self._default_timeout = httpx.Timeout(timeout).as_dict()
        self._ssl_context = ssl_context
        self._max_body = max_body_bytes
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple, list[_Conn]] = {}
        self._open: set[_Conn] = set()
        self._closed = False
        if proxy is not None:
            self._proxies = ProxyRules.single(proxy)
        elif trust_env:
            self._proxies = ProxyRules.from_environment()
        else:
            self._proxies = ProxyRules.none()
        self._routes: dict[tuple, Proxy | None] = {}
        self._budget_for: tuple[Any, float | None] = (None, None)

    # -- pool bookkeeping -------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Connections currently open (idle or carrying a request); for tests and metrics."""
        return len(self._open)

    def _take_idle(self, origin: tuple) -> _Conn | None:
        stack = self._idle.get(origin)
        while stack:
            conn = stack.pop()
            if conn.usable():
                return conn
            self._discard(conn)
        return None

    def _put_idle(self, conn: _Conn) -> None:
        if self._closed:
            self._discard(conn)
            return
        self._idle.setdefault(conn.origin, []).append(conn)

    def _discard(self, conn: _Conn) -> None:
        self._open.discard(conn)
        conn.abort()

    def _make_room(self) -> None:
        # A slot is held, so open connections <= max unless idle ones of *other* origins fill
        # the pool: drop the oldest of those.
        if len(self._open) < self.max_connections:
            return
        for stack in self._idle.values():
            if stack:
                self._discard(stack.pop(0))
                return

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = default_ssl_context()
        return self._ssl_context

    def _route(self, origin: tuple) -> Proxy | None:
        try:
            return self._routes[origin]
        except KeyError:
            route = self._routes[origin] = self._proxies.select(*origin)
            return route

    async def _connect(
        self,
        request: httpx.Request,
        origin: tuple,
        proxy: Proxy | None,
        timeout: float | None,
        deadline: float | None,
    ) -> _Conn:
        scheme, host, port = origin
        self._make_room()
        if timeout is not None:
            end = asyncio.get_running_loop().time() + timeout
            deadline = end if deadline is None else min(end, deadline)
        reader, writer = await open_stream(
            scheme,
            host,
            port,
            proxy=proxy,
            ssl_context=self._tls_context,
            deadline=deadline,
            timeout=timeout,
            limit=_MAX_HEAD_BYTES,
            request=request,
        )
        conn = _Conn(reader, writer, origin)
        self._open.add(conn)
        return conn

    def _budget(self, timeouts: dict) -> float | None:
        # The whole exchange's limit: the largest phase timeout, less a margin so that this
        # fires before a caller's deadline of the same length. Cached for the dict the
        # caller reuses on every request.
        last, budget = self._budget_for
        if timeouts is last:
            return budget
        values = [v for v in timeouts.values() if v is not None]
        if len(values) < len(timeouts) or not values:
            budget = None  # some phase may wait forever: so may the whole
        else:
            top = max(values)
            budget = top - min(0.1, top / 20)
        self._budget_for = (timeouts, budget)
        return budget

    # -- the request ------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Left unread so that AsyncClient's own aread() runs through its stream wrapper (which
        # is what sets response.elapsed); the bytes are in memory, so that read is cheap.
        return await self._handle(request, read=False)

    async def _handle(self, request: httpx.Request, read: bool) -> httpx.Response:
        if self._closed:
            raise RuntimeError("transport is closed")
        timeouts = request.extensions.get("timeout") or self._default_timeout
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        proxy = self._route(origin)
        # Through a proxy, an http target is asked for in absolute form (the proxy forwards
        # it); an https one goes through a CONNECT tunnel and looks direct from here on.
        forward = proxy if proxy is not None and scheme == "http" else None
        payload = _serialise(request, url, body, forward)
        budget = self._budget(timeouts)
        deadline = None if budget is None else asyncio.get_running_loop().time() + budget

        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout_at(_until(timeouts.get("pool"), deadline)):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout(
                    "timed out waiting for a free connection", request=request
                ) from None
        else:
            await slots.acquire()  # returns at once: a slot is free
        try:
            # At most two attempts: the second only when a *reused* connection turned out to
            # be dead before any response byte arrived (the server closed it while idle).
            # Re-sending is safe for this runner because every POST carries an
            # Idempotency-Key: if the first copy was processed after all, the API answers the
            # second with the original result instead of sending a second message.
            for attempt in (0, 1):
                conn = self._take_idle(origin) if attempt == 0 else None
                reused = conn is not None
                if conn is None:
                    conn = await self._connect(
                        request, origin, proxy, timeouts.get("connect"), deadline
                    )
                try:
                    answer = await self._exchange(conn, request, payload, timeouts, deadline, proxy)
                except _Stale:
                    self._discard(conn)
                    if reused and attempt == 0:
                        continue
                    raise ProtocolFailed(
                        "read",
                        host_port(origin[1], origin[2]),
                        "server disconnected without sending a response",
                        proxy=_shown(proxy),
                        request=request,
                    ) from None
                except BaseException:
                    # Includes cancellation: the connection is mid-exchange, so unusable.
                    self._discard(conn)
                    raise
                if answer.keep_alive:
                    self._put_idle(conn)
                else:
                    self._discard(conn)
                break
        finally:
            slots.release()

        body = answer.body
        response = httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
        )
        if read:
            if answer.encoded:
                try:
                    response.read()  # lets httpx undo gzip/deflate/...
                except httpx.DecodingError as exc:
                    raise BodyDecodingFailed(
                        "read",
                        host_port(origin[1], origin[2]),
                        "the body does not match its Content-Encoding "
                        f"({response.headers.get('content-encoding', '')}): {exc}"[:300],
                        proxy=_shown(proxy),
                        request=request,
                    ) from None
            else:
                # The bytes are final: hand them over as httpx's read() would, minus its
                # decoder machinery (a tenth of the direct path's per-request CPU).
                set_content(response, body)
        return response

    async def _exchange(
        self,
        conn: _Conn,
        request: httpx.Request,
        payload: bytes,
        timeouts: dict,
        deadline: float | None,
        proxy: Proxy | None,
    ) -> _Answer:
        writer = conn.writer
        try:
            writer.write(payload)
            if writer.transport.get_write_buffer_size():
                async with asyncio.timeout_at(_until(timeouts.get("write"), deadline)):
                    await writer.drain()
        except TimeoutError:
            raise WriteTimedOut(
                "write",
                _target(conn),
                seconds(timeouts.get("write") or 0),
                proxy=_shown(proxy),
                request=request,
            ) from None
        except OSError:
            raise _Stale from None
        # One deadline for the whole response, head and body, rather than one per socket
        # read as httpcore does: a timer per read is measurable CPU at thousands of requests
        # a second, and API answers are small enough to arrive in one piece.
        try:
            async with asyncio.timeout_at(_until(timeouts.get("read"), deadline)):
                return await self._read_response(conn.reader, request)
        except TimeoutError:
            raise ReadTimedOut(
                "read",
                _target(conn),
                seconds(timeouts.get("read") or 0),
                proxy=_shown(proxy),
                request=request,
            ) from None
        except _Framing as exc:
            raise ProtocolFailed(
                "read", _target(conn), str(exc), proxy=_shown(proxy), request=request
            ) from None
        except _Lost as exc:
            raise ReadFailed(
                "read", _target(conn), str(exc), proxy=_shown(proxy), request=request
            ) from None

    async def _read_response(self, reader: asyncio.StreamReader, request: httpx.Request) -> _Answer:
        for _ in range(_MAX_INFORMATIONAL + 1):
            try:
                lines = await _read_head(reader)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _Stale from None
                raise _Framing("server closed the connection inside the response head") from None
            except asyncio.LimitOverrunError:
                raise _Framing("response head too large") from None
            except OSError:
                # A reset before we saw anything: same as EOF for a stale connection.
                raise _Stale from None
            head = _parse_head(lines)
            if head.status >= 200 or head.status == 101:
                break
        else:
            raise _Framing("too many informational responses")
        if head.status == 101:
            raise _Framing("protocol upgrades are not supported")

        close = head.close
        if request.method == "HEAD" or head.status in (204, 304):
            body = b""
        else:
            try:
                body, close_delimited = await self._read_body(reader, head.length, head.chunked)
            except asyncio.IncompleteReadError:
                raise _Framing("server closed the connection mid-response") from None
            except asyncio.LimitOverrunError:
                raise _Framing("malformed chunked body") from None
            except OSError as exc:
                raise _Lost(f"connection lost mid-response: {reason_of(exc)}") from None
            close = close or close_delimited
        return _Answer(head.status, head.reason, head.headers, body, not close, head.encoded)

    async def _read_body(
        self,
        reader: asyncio.StreamReader,
        length: int | None,
        chunked: bool,
    ) -> tuple[bytes, bool]:
        limit = self._max_body
        if chunked:
            parts: list[bytes] = []
            total = 0
            while True:
                line = await reader.readuntil(b"\r\n")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _Framing("malformed chunk size") from None
                if size < 0:
                    raise _Framing("malformed chunk size")
                if size == 0:
                    break
                total += size
                if total > limit:
                    raise _Framing("response body too large")
                chunk = await reader.readexactly(size + 2)
                if chunk[-2:] != b"\r\n":
                    raise _Framing("malformed chunk")
                parts.append(chunk[:-2])
            for _ in range(_MAX_TRAILER_LINES):  # trailers are read and ignored
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    break
            else:
                raise _Framing("too many trailer lines")
            return b"".join(parts), False
        if length is not None:
            if length > limit:
                raise _Framing("response body too large")
            if length == 0:
                return b"", False
            return await reader.readexactly(length), False
        # No length and not chunked: the body ends when the server closes the connection.
        parts = []
        total = 0
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return b"".join(parts), True
            total += len(chunk)
            if total > limit:
                raise _Framing("response body too large")
            parts.append(chunk)

    async def aclose(self) -> None:
        self._closed = True
        conns = list(self._open)
        self._open.clear()
        self._idle.clear()
        for conn in conns:
            conn.writer.close()
        if conns:
            # All at once and under one short deadline: a TLS peer that never answers
            # close_notify would otherwise hold shutdown for a second per connection.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_GRACE):
                    await asyncio.gather(
                        *(conn.writer.wait_closed() for conn in conns), return_exceptions=True
                    )
        for conn in conns:
            conn.abort()


async def send(transport: FastTransport, request: httpx.Request) -> httpx.Response:
    """Send ``request`` straight through ``transport``: no client, no auth or redirect layer.

    The response's content is already read (``.content``, ``.json()``). Timeouts come from the
    request's "timeout" extension if present, otherwise from the transport's default.
    ``response.elapsed`` is not set on this path (it belongs to AsyncClient); time it yourself.
    """
    return await transport._handle(request, read=True)


# Unreserved and sub-delim characters plus "%", ":", "@" and "/": a path httpx would keep
# byte for byte, so it can go into the URL without httpx's parser.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*")


class RequestBuilder:
    """Makes ``httpx.Request`` objects for one base URL and fixed headers, cheaply.

    Requests are identical to ``httpx.Request(method, base_url + path, headers=..., content=
    body)`` (same URL, same headers on the wire, ``request.content`` readable); the builder
    checks that on a sample when created and otherwise falls back to the plain spelling.
    """

    def __init__(self, base_url: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self._base = base_url.rstrip("/")
        base = httpx.URL(self._base)
        if base.query or base.fragment:
            raise ValueError("base URL must not have a query or fragment")
        self._proto = uri_reference(base)  # skipping httpx's URL parser needs its parts
        self._prefix = base.path.rstrip("/")
        host = base.netloc  # "host" or "host:port", as httpx itself sends it
        self._headers = [(b"Host", host), *headers]
        self._fast = True
        self._fast = self._agrees("/chats/%2B15551230001/messages")

    def _agrees(self, sample: str) -> bool:
        try:
            fast = self._url(sample)
        except Exception:
            return False
        if not isinstance(fast, httpx.URL):
            return False
        slow = httpx.URL(self._base + sample)
        return str(fast) == str(slow) and fast.raw_path == slow.raw_path and fast == slow

    def _url(self, path: str) -> httpx.URL | str:
        # "/." could start a dot segment, which httpx would resolve away: leave those to it.
        if self._fast and _PLAIN_PATH.fullmatch(path) and "/." not in path:
            return url_from_reference(self._proto._replace(path=self._prefix + path))
        return self._base + path

    def __call__(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> httpx.Request:
        """``path`` starts with "/" and is already URL-encoded; ``body`` is the exact bytes."""
        if body or method in ("POST", "PUT", "PATCH"):
            headers = [*self._headers, (b"Content-Length", b"%d" % len(body)), *headers]
        else:  # no "Content-Length: 0" on a GET
            headers = [*self._headers, *headers]
        request = httpx.Request(
            method, self._url(path), headers=headers, stream=httpx.ByteStream(body)
        )
        request.read()  # makes request.content available, as content= would
        return request


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run`` on uvloop when it is installed (optional; ~15-30% less loop overhead)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# -- wire format -----------------------------------------------------------------------------


def _serialise(
    request: httpx.Request, url: httpx.URL, body: bytes, forward: Proxy | None = None
) -> bytes:
    if forward is None:
        target = url.raw_path
    else:  # absolute form, for a proxy to forward
        target = b"%s://%s%s" % (url.raw_scheme, url.netloc, url.raw_path)
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    has_host = has_length = has_encoding = chunked = False
    headers = request.headers.raw
    breaks = len(headers) + 2  # the request line, one per header, the blank line
    for key, value in headers:
        lower = key.lower()
        if lower == b"host":
            has_host = True
        elif lower == b"content-length":
            has_length = True
        elif lower == b"accept-encoding":
            has_encoding = True
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        lines += (key, b": ", value, b"\r\n")
    if not has_host:
        lines += (b"Host: ", url.netloc, b"\r\n")
        breaks += 1
    if not has_encoding:
        # What httpx's decoder undoes without optional packages; answers come back smaller.
        lines.append(b"Accept-Encoding: gzip, deflate\r\n")
        breaks += 1
    if forward is not None and forward.authorization is not None:
        lines += (b"Proxy-Authorization: ", forward.authorization, b"\r\n")
        breaks += 1
    if chunked:
        # The stream was collected, so it goes out as one chunk plus the terminator.
        body = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    elif not has_length and (body or request.method in ("POST", "PUT", "PATCH")):
        lines += (b"Content-Length: ", b"%d" % len(body), b"\r\n")
        breaks += 1
    lines.append(b"\r\n")
    head = b"".join(lines)
    # A CR or LF inside a header would let input split the request, and other control
    # characters are refused by servers (h11 among them). Counting line breaks over the
    # whole head is one C-level pass instead of four checks per header.
    if head.count(b"\n") != breaks or head.count(b"\r") != breaks or _has_control(head):
        raise httpx.LocalProtocolError(_bad_header(request), request=request)
    return head + body


def _bad_header(request: httpx.Request) -> str:
    # Names the header but never echoes the value: it may be the Authorization header.
    for key, value in request.headers.raw:
        if any(_BAD_LINE_BYTES.search(part) for part in (key, value)):
            return f"illegal line break or control character in header {key.decode('latin-1')!r}"
    return "illegal line break or control character in the request line"


async def _read_head(reader: asyncio.StreamReader) -> list[bytes]:
    """The response head as lines without their line ends (the blank line dropped).

    Usually the whole head arrives at once with CRLF line ends, and one readuntil takes it
    from the buffer. Otherwise (a head split across packets, or a server ending lines with a
    bare LF, which h11 accepts too) it is read line by line, so a bare-LF head is parsed
    instead of waiting for a CRLF CRLF that never comes.
    """
    # StreamReader has no public peek: wait for the first bytes, then look at its buffer.
    waiting = buffered(reader)
    if not waiting and not saw_eof(reader):
        await wait_for_data(reader)
        waiting = buffered(reader)
    end = waiting.find(b"\r\n\r\n")
    # The fast path only for a head whose every line ends in CRLF up to that blank line: a
    # bare-LF head may be followed by a body holding CRLF CRLF, which is not its end.
    if end >= 0 and waiting.count(b"\n", 0, end) == waiting.count(b"\r\n", 0, end):
        head = await reader.readuntil(b"\r\n\r\n")  # at once: the bytes are there
        pairs = head.count(b"\r\n")
        if head.count(b"\r") != pairs or head.count(b"\n") != pairs or _has_control(head):
            raise _Framing("control character or bare CR/LF in the response head")
        return head[:-4].split(b"\r\n")
    lines = [await reader.readuntil(b"\n")]
    size = len(lines[0])
    for _ in range(_MAX_HEADER_LINES):
        line = await reader.readuntil(b"\n")
        if line == b"\r\n" or line == b"\n":
            break
        size += len(line)
        if size > _MAX_HEAD_BYTES:
            raise _Framing("response head too large")
        lines.append(line)
    else:
        raise _Framing("too many response header lines")
    out = []
    for line in lines:
        line = line[:-2] if line[-2:] == b"\r\n" else line[:-1]
        if _BAD_LINE_BYTES.search(line):
            raise _Framing("control character or bare CR in the response head")
        out.append(line)
    return out


@dataclass(frozen=True, slots=True)
class _Head:
    """A response head, parsed: how to read the body and whether the connection stays open."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    length: int | None  # Content-Length, if given
    chunked: bool
    close: bool  # the server closes the connection after this response
    encoded: bool  # a Content-Encoding httpx must undo


@dataclass(frozen=True, slots=True)
class _Answer:
    """A whole response as read off the connection."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes  # as sent (still encoded when ``encoded``)
    keep_alive: bool  # the connection may carry the next request
    encoded: bool


def _parse_head(lines: list[bytes]) -> _Head:
    parts = lines[0].split(b" ", 2)
    try:
        version = parts[0]
        status = int(parts[1])
    except (IndexError, ValueError):
        raise _Framing("malformed status line") from None
    if not version.startswith(b"HTTP/1.") or not parts[1].isdigit() or not 100 <= status <= 999:
        raise _Framing("malformed status line")
    reason = parts[2] if len(parts) > 2 else b""
    headers: list[tuple[bytes, bytes]] = []
    length: int | None = None
    chunked = encoded = False
    # HTTP/1.0 closes by default unless the server opts into keep-alive.
    close = version == b"HTTP/1.0"
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(key):
            # Also refuses obsolete line folding (a line starting with a space), as a
            # name with whitespace before the colon.
            raise _Framing("malformed response header")
        value = value.strip(b" \t")
        headers.append((key, value))
        lower = key.lower()
        if lower == b"content-length":
            # Plain digits only (int() would take "+1", " 1" or "1_0"); a list of one
            # repeated value is tolerated, as h11 does.
            if value.isdigit():
                n = int(value)
            else:
                values = {v.strip(b" \t") for v in value.split(b",")}
                text = values.pop() if len(values) == 1 else b""
                if not text.isdigit():
                    raise _Framing("malformed Content-Length")
                n = int(text)
            if length is not None and n != length:
                raise _Framing("malformed Content-Length")
            length = n
        elif lower == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                raise _Framing("unsupported Transfer-Encoding (only a single chunked is)")
            chunked = True
        elif lower == b"content-encoding":
            encoded = value.lower() not in (b"", b"identity")
        elif lower == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens:
                close = False
    if chunked and length is not None:
        # A smuggling vector: a proxy and we might frame it differently (RFC 9112 6.3).
        raise _Framing("both Transfer-Encoding and Content-Length in the response")
    return _Head(status, reason, headers, length, chunked, close, encoded)

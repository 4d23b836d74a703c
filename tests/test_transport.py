"""FastTransport against loopback servers that each test starts and stops itself.

Every scenario runs in its own ``asyncio.run``; the server records what it saw (connections
opened, the most open at once, the requests) so pool behaviour is asserted server-side.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import json
import socket
import ssl
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from net_fixtures import open_transport

from runner.http.transport import FastTransport, RequestBuilder, send

TOKEN = "sk_live_SECRET_TOKEN_123"
HEADERS = [
    (b"Authorization", f"Bearer {TOKEN}".encode()),
    (b"Content-Type", b"application/json"),
]


@dataclass
class Req:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    conn_id: int
    index_on_conn: int


Handler = Callable[[Req], Awaitable[bytes | None]]


def reply(status: int = 202, body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


async def echo(req: Req) -> bytes:
    return reply(body=json.dumps({"path": req.path, "conn": req.conn_id}).encode())


@dataclass
class Server:
    """A keep-alive HTTP/1.1 server; the handler returns raw response bytes, or None to drop
    the connection without answering."""

    handler: Handler = echo
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    requests: list[Req] = field(default_factory=list)
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    tasks: set[asyncio.Task] = field(default_factory=set)  # one per open connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        conn_id = self.connections
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            for index in range(10_000):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                if headers.get("transfer-encoding") == "chunked":
                    body = b""
                    for _ in range(1000):
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        chunk = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        body += chunk[:-2]
                else:
                    body = await reader.readexactly(int(headers.get("content-length", 0)))
                req = Req(method, path, headers, body, conn_id, index)
                self.requests.append(req)
                out = await self.handler(req)
                if out is None:
                    return
                writer.write(out)
                await writer.drain()
                if b"connection: close" in out.lower():
                    return
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()
            self.tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    @contextlib.asynccontextmanager
    async def running(self):
        srv = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = srv.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            srv.close()
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            await srv.wait_closed()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"


def request(base: str, path: str = "/x", body: bytes = b'{"a": 1}', **kw) -> httpx.Request:
    return httpx.Request("POST", base + path, headers=HEADERS, content=body, **kw)


def assert_no_secret(exc: BaseException) -> None:
    seen = exc
    while seen is not None:
        assert TOKEN not in str(seen) and TOKEN not in repr(seen)
        assert "Bearer" not in str(seen) and "Bearer" not in repr(seen)
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.RequestError):
        assert TOKEN not in repr(exc.request)


# -- keep-alive and the pool -----------------------------------------------------------------


def test_sequential_requests_reuse_one_connection():
    async def scenario():
        server = Server()
        async with server.running(), open_transport(8) as transport:
            for i in range(25):
                response = await send(transport, request(server.url, f"/m/{i}"))
                assert response.status_code == 202
                assert response.json() == {"path": f"/m/{i}", "conn": 1}
                assert response.request.url.path == f"/m/{i}"
            assert transport.open_connections == 1
        assert server.connections == 1
        assert [r.index_on_conn for r in server.requests] == list(range(25))
        # What went on the wire: our headers, a Host, a Content-Length, the exact body.
        first = server.requests[0]
        assert first.headers["authorization"] == f"Bearer {TOKEN}"
        assert first.headers["host"] == f"127.0.0.1:{server.port}"
        assert first.headers["content-length"] == "8"
        assert first.body == b'{"a": 1}'

    asyncio.run(scenario())


def test_pool_limit_is_respected_and_all_connections_used():
    async def slow(req: Req) -> bytes:
        await asyncio.sleep(0.02)
        return await echo(req)

    async def scenario():
        server = Server(slow)
        async with server.running(), open_transport(4) as transport:
            responses = await asyncio.gather(
                *(send(transport, request(server.url, f"/{i}")) for i in range(40))
            )
            assert transport.open_connections <= 4
        assert [r.json()["path"] for r in responses] == [f"/{i}" for i in range(40)]
        assert server.max_open == 4
        assert server.connections == 4

    asyncio.run(scenario())


def test_gather_200_requests_over_16_connections():
    async def slow(req: Req) -> bytes:
        await asyncio.sleep(0.005)
        return await echo(req)

    async def scenario():
        server = Server(slow)
        async with server.running(), open_transport(16) as transport:
            responses = await asyncio.gather(
                *(send(transport, request(server.url, f"/{i}")) for i in range(200))
            )
        assert sorted(r.json()["path"] for r in responses) == sorted(f"/{i}" for i in range(200))
        assert all(r.status_code == 202 for r in responses)
        assert server.max_open <= 16
        assert server.connections <= 16
        assert len(server.requests) == 200

    asyncio.run(scenario())


def test_pool_timeout_when_every_connection_is_busy():
    gate = None

    async def stuck(req: Req) -> bytes:
        await gate.wait()
        return reply()

    async def scenario():
        nonlocal gate
        gate = asyncio.Event()
        server = Server(stuck)
        async with server.running(), open_transport(1) as transport:
            first = asyncio.ensure_future(send(transport, request(server.url)))
            await asyncio.sleep(0.02)
            timeout = httpx.Timeout(5.0, pool=0.05)
            with pytest.raises(httpx.PoolTimeout) as info:
                await send(
                    transport, request(server.url, extensions={"timeout": timeout.as_dict()})
                )
            gate.set()
            assert (await first).status_code == 202
        assert server.connections == 1
        assert_no_secret(info.value)

    asyncio.run(scenario())


# -- bodies ----------------------------------------------------------------------------------


def test_chunked_body_is_decoded_and_connection_reused():
    async def chunked(req: Req) -> bytes:
        if req.index_on_conn == 0:
            payload = b'{"message_id": "m1", "status": "queued"}'
            return (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\n"
                + payload[:5]
                + b"\r\n"
                + b"%x\r\n" % (len(payload) - 5)
                + payload[5:]
                + b"\r\n"
                b"0\r\nX-Trailer: yes\r\n\r\n"
            )
        return reply(body=b'{"second": true}')

    async def scenario():
        server = Server(chunked)
        async with server.running(), open_transport(2) as transport:
            first = await send(transport, request(server.url))
            second = await send(transport, request(server.url))
        assert first.status_code == 200
        assert first.json() == {"message_id": "m1", "status": "queued"}
        assert first.headers["transfer-encoding"] == "chunked"
        assert second.json() == {"second": True}
        assert server.connections == 1

    asyncio.run(scenario())


def test_content_length_body_and_headers():
    async def handler(req: Req) -> bytes:
        return reply(201, b'{"x": "\xc3\xa9"}', extra="X-Request-Id: abc\r\n")

    async def scenario():
        server = Server(handler)
        async with server.running(), open_transport(1) as transport:
            return await send(transport, request(server.url))

    response = asyncio.run(scenario())
    assert response.status_code == 201
    assert response.reason_phrase == "X"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["x-request-id"] == "abc"
    assert response.content == b'{"x": "\xc3\xa9"}'
    assert response.json() == {"x": "é"}


def test_body_delimited_by_close_and_connection_close_are_not_reused():
    async def handler(req: Req) -> bytes:
        if req.conn_id == 1:
            return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close body"
        return reply(extra="Connection: close\r\n")

    async def scenario():
        server = Server(handler)
        async with server.running(), open_transport(2) as transport:
            first = await send(transport, request(server.url))
            assert transport.open_connections == 0
            second = await send(transport, request(server.url))
            assert transport.open_connections == 0
        assert first.content == b"until-close body"
        assert second.json() == {"ok": True}
        assert server.connections == 2

    asyncio.run(scenario())


def test_gzip_body_is_decoded_and_empty_bodies_need_no_read():
    async def handler(req: Req) -> bytes:
        if req.path == "/gz":
            body = gzip.compress(b'{"z": 1}')
            return reply(body=body, extra="Content-Encoding: gzip\r\n")
        # 204 carries no body even with a misleading length; the next request proves framing.
        return b"HTTP/1.1 204 No Content\r\n\r\n"

    async def scenario():
        server = Server(handler)
        async with server.running(), open_transport(1) as transport:
            empty = await send(transport, request(server.url, "/none"))
            zipped = await send(transport, request(server.url, "/gz"))
        assert empty.status_code == 204 and empty.content == b""
        assert zipped.json() == {"z": 1}
        assert server.connections == 1

    asyncio.run(scenario())


def test_streamed_request_body_goes_out_chunked():
    async def parts():
        yield b'{"text": '
        yield b'"hi"}'

    async def scenario():
        server = Server()
        async with server.running(), open_transport(1) as transport:
            streamed = httpx.Request("POST", server.url + "/s", headers=HEADERS, content=parts())
            first = await send(transport, streamed)
            second = await send(transport, request(server.url, "/after"))
        assert first.status_code == second.status_code == 202
        assert server.requests[0].headers["transfer-encoding"] == "chunked"
        assert server.requests[0].body == b'{"text": "hi"}'
        assert server.requests[1].body == b'{"a": 1}'
        assert server.connections == 1

    asyncio.run(scenario())


def test_other_origins_idle_connections_make_room_under_the_limit():
    async def scenario():
        a, b = Server(), Server()
        async with a.running(), b.running(), open_transport(1) as transport:
            await send(transport, request(a.url))
            await send(transport, request(b.url))
            assert transport.open_connections == 1
            await send(transport, request(a.url))
            assert transport.open_connections == 1
            for _ in range(100):  # the server notices the close on its next loop turns
                if a.open_now + b.open_now == 1:
                    break
                await asyncio.sleep(0.01)
            assert a.open_now + b.open_now == 1
        assert (a.connections, b.connections) == (2, 1)

    asyncio.run(scenario())


# -- stale connections and failures ----------------------------------------------------------


def test_server_closing_idle_connection_then_next_request_succeeds():
    async def scenario():
        server = Server()
        async with server.running(), open_transport(2) as transport:
            await send(transport, request(server.url))
            # The server drops every connection it holds, as an idle timeout would.
            for task in list(server.tasks):
                task.cancel()
            await asyncio.sleep(0.05)
            response = await send(transport, request(server.url))
        assert response.status_code == 202
        assert server.connections == 2

    asyncio.run(scenario())


def test_bytes_left_on_an_idle_connection_are_never_read_as_the_next_answer():
    async def handler(req: Req) -> bytes:
        if req.conn_id == 1:
            # Some servers announce an idle timeout with a 408 and close: it must not be
            # mistaken for the answer to whatever is sent next on that connection.
            return await echo(req) + (
                b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        return await echo(req)

    async def scenario():
        server = Server(handler)
        async with server.running(), open_transport(2) as transport:
            first = await send(transport, request(server.url, "/a"))
            await asyncio.sleep(0.02)
            second = await send(transport, request(server.url, "/b"))
        assert first.json() == {"path": "/a", "conn": 1}
        assert second.status_code == 202
        assert second.json() == {"path": "/b", "conn": 2}

    asyncio.run(scenario())


def test_reused_connection_dying_before_response_is_retried_once_on_a_fresh_one():
    async def drop_second(req: Req) -> bytes | None:
        # Reading the request and closing without a byte of answer is the race a keep-alive
        # client cannot see coming: the retry must go out on a new connection.
        if req.index_on_conn == 1:
            return None
        return await echo(req)

    async def scenario():
        server = Server(drop_second)
        async with server.running(), open_transport(2) as transport:
            await send(transport, request(server.url, "/a"))
            response = await send(transport, request(server.url, "/b"))
        assert response.json() == {"path": "/b", "conn": 2}
        assert [(r.path, r.conn_id) for r in server.requests] == [("/a", 1), ("/b", 1), ("/b", 2)]

    asyncio.run(scenario())


def test_fresh_connection_dying_before_response_is_not_retried():
    async def drop(req: Req) -> None:
        return None

    async def scenario():
        server = Server(drop)
        async with server.running(), open_transport(2) as transport:
            with pytest.raises(httpx.RemoteProtocolError) as info:
                await send(transport, request(server.url))
        assert len(server.requests) == 1
        assert_no_secret(info.value)

    asyncio.run(scenario())


def test_server_closing_mid_response_raises_remote_protocol_error():
    async def truncated(req: Req) -> bytes:
        return b'HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{"par'

    async def scenario():
        server = Server(truncated)
        async with server.running(), open_transport(2) as transport:
            with pytest.raises(httpx.RemoteProtocolError) as info:
                await send(transport, request(server.url))
            assert transport.open_connections == 0
        assert_no_secret(info.value)

    asyncio.run(scenario())


def test_malformed_status_line_raises_remote_protocol_error():
    async def garbage(req: Req) -> bytes:
        return b"NOT HTTP AT ALL\r\n\r\n"

    async def scenario():
        server = Server(garbage)
        async with server.running(), open_transport(1) as transport:
            with pytest.raises(httpx.RemoteProtocolError) as info:
                await send(transport, request(server.url))
        assert_no_secret(info.value)

    asyncio.run(scenario())


def test_read_timeout_raises_read_timeout():
    gate = None

    async def silent(req: Req) -> bytes:
        await gate.wait()
        return reply()

    async def scenario():
        nonlocal gate
        gate = asyncio.Event()
        server = Server(silent)
        async with server.running():
            transport = FastTransport(2, timeout=httpx.Timeout(5.0, read=0.1))
            try:
                with pytest.raises(httpx.ReadTimeout) as info:
                    await send(transport, request(server.url))
                # The timed-out connection is discarded, not returned to the pool.
                assert transport.open_connections == 0
            finally:
                gate.set()
                await transport.aclose()
        assert_no_secret(info.value)

    asyncio.run(scenario())


def test_cancelled_request_discards_its_connection_and_frees_the_slot():
    gate = None

    async def handler(req: Req) -> bytes:
        if req.path == "/slow":
            await gate.wait()
        if req.path == "/stream":
            await asyncio.sleep(0.02)
        return await echo(req)

    async def scenario():
        nonlocal gate
        gate = asyncio.Event()
        server = Server(handler)
        async with server.running():
            transport = FastTransport(1)
            try:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await send(transport, request(server.url, "/slow"))
                # The half-used connection must not be reused for the next answer.
                assert transport.open_connections == 0
                response = await send(transport, request(server.url, "/next"))
            finally:
                gate.set()
                await transport.aclose()
        assert response.json() == {"path": "/next", "conn": 2}

    asyncio.run(scenario())


def test_connection_refused_raises_connect_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now (bound but never listening, then closed).

    async def scenario():
        async with open_transport(2) as transport:
            with pytest.raises(httpx.ConnectError) as info:
                await send(transport, request(f"http://127.0.0.1:{port}"))
            assert transport.open_connections == 0
        return info.value

    exc = asyncio.run(scenario())
    assert str(port) in str(exc)
    assert_no_secret(exc)


@pytest.mark.parametrize(
    "header",
    [
        (b"Authorization", f"Bearer {TOKEN}\r\nX-Evil: 1".encode()),
        (b"Authorization", f"Bearer {TOKEN}\nX-Evil: 1".encode()),
        (b"Authorization", f"Bearer {TOKEN}\rX".encode()),
        (b"X-Evil\r\nAuthorization", f"Bearer {TOKEN}".encode()),
    ],
)
def test_header_with_line_break_is_refused_without_echoing_it(header):
    async def scenario():
        async with open_transport(1) as transport:
            bad = httpx.Request("POST", "http://127.0.0.1:9/x", headers=[header], content=b"{}")
            with pytest.raises(httpx.LocalProtocolError) as info:
                await send(transport, bad)
        return info.value

    exc = asyncio.run(scenario())
    assert "line break" in str(exc)
    assert_no_secret(exc)


def test_unsupported_scheme():
    async def scenario():
        async with open_transport(1) as transport:
            with pytest.raises(httpx.UnsupportedProtocol):
                await send(transport, httpx.Request("GET", "ftp://127.0.0.1/x"))

    asyncio.run(scenario())


# -- client integration, shutdown, TLS -------------------------------------------------------


def test_works_under_async_client_with_its_timeouts():
    gate = None

    async def handler(req: Req) -> bytes:
        if req.path == "/slow":
            await gate.wait()
        if req.path == "/stream":
            await asyncio.sleep(0.02)
        return await echo(req)

    async def scenario():
        nonlocal gate
        gate = asyncio.Event()
        server = Server(handler)
        async with server.running():
            transport = FastTransport(4)
            try:
                async with httpx.AsyncClient(
                    transport=transport, base_url=server.url, timeout=httpx.Timeout(5.0, read=0.1)
                ) as client:
                    response = await client.post(
                        "/fast", json={"a": 1}, headers={"Authorization": f"Bearer {TOKEN}"}
                    )
                    assert response.json() == {"path": "/fast", "conn": 1}
                    with pytest.raises(httpx.ReadTimeout) as info:
                        await client.post("/slow", headers={"Authorization": f"Bearer {TOKEN}"})
                    assert_no_secret(info.value)
                    streamed = await client.get("/stream")
                    assert streamed.json()["path"] == "/stream"
                    # The client read the body through its own wrapper, which closed the
                    # response and timed it from the request (the server waited 20 ms).
                    assert streamed.is_closed
                    assert streamed.elapsed.total_seconds() >= 0.015
            finally:
                gate.set()
        assert transport.open_connections == 0  # the client's exit closed the transport
        assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"

    asyncio.run(scenario())


def test_aclose_closes_every_connection_and_leaks_nothing():
    async def slow(req: Req) -> bytes:
        await asyncio.sleep(0.01)
        return await echo(req)

    async def scenario():
        server = Server(slow)
        async with server.running():
            transport = FastTransport(8)
            await asyncio.gather(*(send(transport, request(server.url)) for i in range(32)))
            assert transport.open_connections == 8
            await transport.aclose()
            assert transport.open_connections == 0
            # The server sees every connection end (EOF) without being told to.
            for _ in range(100):
                if server.open_now == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.open_now == 0
            assert server.connections == 8
            with pytest.raises(RuntimeError):
                await send(transport, request(server.url))
        assert asyncio.all_tasks() == {asyncio.current_task()}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(scenario())
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


TLS = Path(__file__).resolve().parent / "tls"


def _self_signed() -> tuple[str, str]:
    """A self-signed certificate for localhost and 127.0.0.1 (valid 2000-2126), made once
    with openssl and kept beside the tests, so the HTTPS test needs no extra package."""
    return str(TLS / "localhost.pem"), str(TLS / "localhost.key")


def test_https_with_sni_and_verification():
    cert, key = _self_signed()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    sni_seen: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: sni_seen.append(name)
    client_ctx = ssl.create_default_context(cafile=cert)

    async def scenario():
        server = Server(ssl_context=server_ctx)
        async with server.running():
            base = f"https://localhost:{server.port}"
            async with open_transport(2, ssl_context=client_ctx) as transport:
                responses = [await send(transport, request(base, f"/{i}")) for i in range(3)]
            # Without trusting the self-signed cert, verification must fail as ConnectError.
            untrusting = FastTransport(1)
            try:
                with pytest.raises(httpx.ConnectError) as info:
                    await send(untrusting, request(base))
            finally:
                await untrusting.aclose()
        assert [r.json()["path"] for r in responses] == ["/0", "/1", "/2"]
        assert server.connections == 1  # kept alive for all three (the refused handshake never
        # reaches the handler)
        assert_no_secret(info.value)

    asyncio.run(scenario())
    assert sni_seen and sni_seen[0] == "localhost"


# -- building requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "base, path",
    [
        ("https://api.blooio.com/v2/api", "/chats/%2B15551230001/messages"),
        ("https://api.blooio.com/v2/api/", "/chats/user%40example.com/messages"),
        ("http://127.0.0.1:8080", "/chats/%2B1555%2C%2B1556/messages"),
        ("http://localhost:8080/v2", "/chats/grp_abc123/messages?x=1"),  # query: slow path
        ("http://localhost:8080/v2", "/chats/needs encoding/messages"),  # slow path too
        ("https://api.blooio.com", "/chats/caf\u00e9/messages"),  # non-ASCII: slow path
        ("https://api.blooio.com/v2", "/chats/../messages"),  # dot segment: slow path
    ],
)
def test_request_builder_matches_plain_httpx_request(base, path):
    body = b'{"text": "hi"}'
    extra = [(b"Content-Type", b"application/json"), (b"Idempotency-Key", b"k1")]
    built = RequestBuilder(base, HEADERS[:1])("POST", path, body, extra)
    plain = httpx.Request(
        "POST", base.rstrip("/") + path, headers=[*HEADERS[:1], *extra], content=body
    )
    assert built.method == plain.method
    assert str(built.url) == str(plain.url)
    assert built.url.raw_path == plain.url.raw_path
    assert (built.url.scheme, built.url.host, built.url.port) == (
        plain.url.scheme,
        plain.url.host,
        plain.url.port,
    )
    assert sorted(built.headers.multi_items()) == sorted(plain.headers.multi_items())
    assert built.content == plain.content == body


@pytest.mark.parametrize("base", ["https://api.blooio.com/v2/api", "http://localhost:80/a/"])
def test_request_builder_urls_match_httpx_for_random_paths(base):
    # The builder bypasses httpx's URL parser for "plain" paths; whatever it bypasses must come
    # out exactly as httpx would have made it (dot segments, stray "%", reserved characters).
    import random

    build = RequestBuilder(base)
    alphabet = "aZ09-._~%!$&'()*+,;=:@/ 2B?#[]<>^`{|}\\\u00e9"
    rnd = random.Random(5)
    checked = 0
    for _ in range(3000):
        path = "/" + "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 10)))
        try:
            expected = httpx.URL(base.rstrip("/") + path)
        except httpx.InvalidURL:
            continue
        url = build("GET", path).url
        assert (str(url), url.raw_path) == (str(expected), expected.raw_path), path
        checked += 1
    assert checked > 1000


def test_request_builder_requests_go_through_the_transport():
    async def scenario():
        server = Server()
        async with server.running():
            build = RequestBuilder(server.url + "/v2/api", HEADERS)
            async with open_transport(2) as transport:
                response = await send(
                    transport, build("POST", "/chats/%2B15551230001/messages", b'{"n": 2}')
                )
        assert response.json() == {"path": "/v2/api/chats/%2B15551230001/messages", "conn": 1}
        seen = server.requests[0]
        assert seen.body == b'{"n": 2}'
        assert seen.headers["host"] == f"127.0.0.1:{server.port}"
        assert seen.headers["content-length"] == "8"
        assert seen.headers["authorization"] == f"Bearer {TOKEN}"

    asyncio.run(scenario())


def test_request_builder_rejects_a_base_with_a_query():
    with pytest.raises(ValueError):
        RequestBuilder("https://api.blooio.com/v2/api?x=1")

"""Strict HTTP/1.1 framing (as h11), content codings, and errors that name host and phase:
gzip, bare LF heads, extra bytes, bad Content-Length, TE with CL, control characters,
timeouts that fire before an outer deadline, DNS failures, Happy Eyeballs past a blackhole."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import zlib

import httpx
import pytest
from net_fixtures import RawServer, blackhole, open_transport

from runner.http.neterror import (
    BodyDecodingFailed,
    ConnectFailed,
    ConnectTimedOut,
    NetworkFailure,
    ProtocolFailed,
    ReadTimedOut,
)
from runner.http.transport import RETRYABLE_ERRORS, RequestBuilder, send


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


def _answer(raw: bytes):
    async def answer(head: bytes, body: bytes) -> bytes:
        return raw

    return answer


async def _one(raw: bytes, method: str = "GET", timeout: float = 5.0, **kw) -> httpx.Response:
    server = RawServer(_answer(raw))
    async with server.running(), open_transport(1, timeout=timeout, **kw) as transport:
        return await send(transport, httpx.Request(method, f"http://127.0.0.1:{server.port}/"))


def test_gzip_and_deflate_are_asked_for_and_decoded():
    body = b'{"ok": true}'
    for coding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
        seen = []

        async def answer(head, _body, coding=coding, packed=packed, seen=seen):
            seen.append(head)
            return (
                f"HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\n"
                f"Content-Length: {len(packed)}\r\n\r\n"
            ).encode() + packed

        async def scenario(answer=answer):
            server = RawServer(answer)
            async with server.running(), open_transport(1) as transport:
                return await send(
                    transport, httpx.Request("GET", f"http://127.0.0.1:{server.port}/")
                )

        assert asyncio.run(scenario()).json() == {"ok": True}
        assert b"\r\nAccept-Encoding: gzip, deflate\r\n" in seen[0]


def test_body_not_matching_its_content_encoding_is_a_retryable_read_error():
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"
    with pytest.raises(BodyDecodingFailed) as info:
        asyncio.run(_one(raw))
    error = info.value
    assert isinstance(error, httpx.TransportError) and isinstance(error, httpx.DecodingError)
    assert isinstance(error, RETRYABLE_ERRORS)
    assert error.phase == "read" and "Content-Encoding (gzip)" in error.reason
    assert httpx.DecodingError in RETRYABLE_ERRORS  # what an AsyncClient raises for the same


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
        b"HTTP/1.1 200 OK\nContent-Type: text/plain\nX-A: b\nContent-Length: 2\n\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\n\nok",  # mixed line ends
        # A bare-LF blank line ends the head; the CRLF CRLF after it is the body's.
        b"HTTP/1.1 200 OK\r\nContent-Length: 6\n\nok\r\n\r\n",
    ],
)
def test_bare_lf_heads_are_parsed_not_waited_on(raw):
    started = time.monotonic()
    response = asyncio.run(_one(raw, timeout=5.0))
    assert response.content[:2] == b"ok"
    assert time.monotonic() - started < 2.0


def test_bytes_after_a_response_are_never_the_next_answer():
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nonegarbage HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo",
        ]
    )

    async def answer(head, body):
        return next(answers)

    async def scenario():
        server = RawServer(answer)
        async with server.running(), open_transport(1) as transport:
            first = await send(transport, httpx.Request("GET", f"http://127.0.0.1:{server.port}/"))
            await asyncio.sleep(0.05)
            second = await send(transport, httpx.Request("GET", f"http://127.0.0.1:{server.port}/"))
        return first, second, server.connections

    first, second, connections = asyncio.run(scenario())
    assert (first.content, second.content) == (b"one", b"two")
    assert connections == 2  # the dirty connection was dropped


@pytest.mark.parametrize(
    "raw, says",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1_0\r\n\r\n0123456789", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "Content-Length"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "both Transfer-Encoding and Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "Transfer-Encoding",
        ),
        (b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok", "control character"),
        (b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok", "bare CR"),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
            "malformed response header",
        ),
        (b"HTTP/1.1 +20 OK\r\nContent-Length: 2\r\n\r\nok", "malformed status line"),
    ],
)
def test_malformed_framing_is_refused(raw, says):
    with pytest.raises(ProtocolFailed) as info:
        asyncio.run(_one(raw))
    error = info.value
    assert isinstance(error, httpx.RemoteProtocolError) and error.phase == "read"
    assert says in str(error)
    assert str(error).startswith("reading the response from 127.0.0.1:")


def test_repeated_identical_content_length_is_tolerated_like_h11():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok"
    assert asyncio.run(_one(raw)).content == b"ok"


def test_get_has_no_content_length_and_post_has_one():
    seen = []

    async def answer(head, body):
        seen.append(head.lower())
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def scenario():
        server = RawServer(answer)
        async with server.running():
            build = RequestBuilder(f"http://127.0.0.1:{server.port}")
            async with open_transport(1) as transport:
                await send(transport, build("GET", "/a"))
                await send(transport, httpx.Request("GET", f"http://127.0.0.1:{server.port}/b"))
                await send(transport, build("POST", "/c"))

    asyncio.run(scenario())
    assert b"content-length" not in seen[0] and b"content-length" not in seen[1]
    assert b"content-length: 0" in seen[2]


def test_control_character_in_a_request_header_is_refused_without_echoing_it():
    request = httpx.Request("GET", "http://127.0.0.1:9/", headers={"X-Key": "abc\x01secret"})

    async def scenario():
        async with open_transport(1) as transport:
            await send(transport, request)

    with pytest.raises(httpx.LocalProtocolError) as info:
        asyncio.run(scenario())
    assert "X-Key" in str(info.value) and "secret" not in str(info.value)


def test_read_timeout_fires_before_an_outer_deadline_of_the_same_length():
    async def never(head, body):
        await asyncio.sleep(10)
        return b""

    async def scenario():
        server = RawServer(never)
        async with server.running(), open_transport(1, timeout=0.5) as transport:
            async with asyncio.timeout(0.5):  # what runner.http.client does
                await send(transport, httpx.Request("GET", f"http://127.0.0.1:{server.port}/"))

    with pytest.raises(ReadTimedOut) as info:
        asyncio.run(scenario())
    assert info.value.phase == "read" and "timed out after 0.5 s" in str(info.value)


def test_connect_timeout_names_the_connect_phase():
    async def scenario(address):
        async with open_transport(1, timeout=httpx.Timeout(5.0, connect=0.4)) as transport:
            await send(transport, httpx.Request("GET", f"http://{address[0]}:{address[1]}/"))

    with blackhole() as address, pytest.raises(ConnectTimedOut) as info:
        asyncio.run(scenario(address))
    assert info.value.phase == "connect"
    assert str(info.value) == (
        f"connecting to {address[0]}:{address[1]} failed: timed out after 0.4 s"
    )


def _fake_resolver(monkeypatch, answers):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            found = answers[host]
            if isinstance(found, Exception):
                raise found
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", a) for a in found]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_dns_failure_names_the_dns_phase(monkeypatch):
    _fake_resolver(
        monkeypatch,
        {"api.example.test": socket.gaierror(socket.EAI_NONAME, "Name or service not known")},
    )

    async def scenario():
        async with open_transport(1) as transport:
            await send(transport, httpx.Request("GET", "https://api.example.test/"))

    with pytest.raises(ConnectFailed) as info:
        asyncio.run(scenario())
    assert info.value.phase == "dns" and info.value.host == "api.example.test:443"
    assert str(info.value) == (
        "DNS lookup of api.example.test:443 failed: Name or service not known"
    )


def test_refused_connection_names_the_connect_phase():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ConnectFailed) as info:
        asyncio.run(_one_to(f"http://127.0.0.1:{port}/"))
    assert info.value.phase == "connect" and "refused" in info.value.reason.lower()
    assert isinstance(info.value, NetworkFailure)


async def _one_to(url: str, timeout: float = 5.0) -> httpx.Response:
    async with open_transport(1, timeout=timeout) as transport:
        return await send(transport, httpx.Request("GET", url))


def test_blackholed_first_address_still_connects_fast(monkeypatch):
    async def scenario():
        server = RawServer(_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        async with server.running():
            with blackhole() as dead:
                _fake_resolver(
                    monkeypatch, {"dual.example.test": [dead, ("127.0.0.1", server.port)]}
                )
                started = time.monotonic()
                response = await _one_to("http://dual.example.test/", timeout=5.0)
                return response, time.monotonic() - started

    response, took = asyncio.run(scenario())
    assert response.content == b"ok"
    assert took < 2.0, f"took {took:.2f} s"  # ~0.25 s: the next address after 250 ms

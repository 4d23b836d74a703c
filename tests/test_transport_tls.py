"""TLS through the transport: the trust store (certifi, SSL_CERT_FILE), clear verification
errors, and closing TLS connections whose peer never answers close_notify."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx
import pytest
from net_fixtures import RawServer, Relay, open_transport

from runner.http.neterror import ConnectFailed, NetworkFailure
from runner.http.transport import FastTransport, send

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


async def _ok(head: bytes, body: bytes) -> bytes:
    return OK


def test_private_ca_trusted_through_ssl_cert_file(ca, server_ctx, tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))

    async def scenario():
        server = RawServer(_ok, ssl_context=server_ctx)
        async with server.running(), open_transport(2) as transport:
            for host in ("localhost", "127.0.0.1"):
                response = await send(
                    transport, httpx.Request("GET", f"https://{host}:{server.port}/x")
                )
                assert response.json() == {"ok": True}
        assert server.connections == 2

    asyncio.run(scenario())


def test_untrusted_ca_fails_with_a_clear_certificate_error(server_ctx):
    # No SSL_CERT_FILE: certifi's bundle, which does not hold the test CA.
    async def scenario():
        server = RawServer(_ok, ssl_context=server_ctx)
        async with server.running(), open_transport(1) as transport:
            with pytest.raises(ConnectFailed) as info:
                await send(transport, httpx.Request("GET", f"https://localhost:{server.port}/"))
        return info.value, server.port

    error, port = asyncio.run(scenario())
    assert isinstance(error, httpx.ConnectError) and isinstance(error, NetworkFailure)
    assert error.phase == "tls"
    assert error.host == f"localhost:{port}"
    assert error.reason.startswith("certificate verify failed")
    assert str(error).startswith(
        f"TLS handshake with localhost:{port} failed: certificate verify failed"
    )


def test_wrong_host_name_is_refused(ca, server_ctx, tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("api.example.test").configure_cert(other)

    async def scenario():
        server = RawServer(_ok, ssl_context=other)
        async with server.running(), open_transport(1) as transport:
            with pytest.raises(ConnectFailed) as info:
                await send(transport, httpx.Request("GET", f"https://127.0.0.1:{server.port}/"))
        return info.value

    error = asyncio.run(scenario())
    assert error.phase == "tls" and "certificate verify failed" in error.reason


def test_missing_ssl_cert_file_is_named_in_the_error(tmp_path, monkeypatch, server_ctx):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nowhere.pem"))

    async def scenario():
        server = RawServer(_ok, ssl_context=server_ctx)
        async with server.running(), open_transport(1) as transport:
            with pytest.raises(ConnectFailed) as info:
                await send(transport, httpx.Request("GET", f"https://localhost:{server.port}/"))
        return info.value

    error = asyncio.run(scenario())
    assert error.phase == "tls"
    assert "SSL_CERT_FILE=" in str(error) and "nowhere.pem" in str(error)


def test_closing_many_tls_connections_to_a_silent_peer_is_bounded(ca, server_ctx):
    # 16 TLS connections through a relay that, at close time, stops passing our bytes on:
    # the server never sees (so never answers) close_notify. Closing one after another took
    # about a second each; in parallel under one deadline it takes about one.
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    release = asyncio.Event

    async def scenario():
        gate = release()

        async def slow(head: bytes, body: bytes) -> bytes:
            await asyncio.wait_for(gate.wait(), 5)
            return OK

        server = RawServer(slow, ssl_context=server_ctx)
        async with server.running():
            relay = Relay(server.port)
            async with relay.running():
                transport = FastTransport(16, ssl_context=client_ctx)
                try:
                    pending = [
                        asyncio.ensure_future(
                            send(
                                transport,
                                httpx.Request("GET", f"https://localhost:{relay.port}/{i}"),
                            )
                        )
                        for i in range(16)
                    ]
                    for _ in range(200):
                        if len(server.heads) == 16:
                            break
                        await asyncio.sleep(0.01)
                    gate.set()
                    responses = await asyncio.gather(*pending)
                    assert transport.open_connections == 16
                    relay.freeze()
                finally:
                    started = time.monotonic()
                    await transport.aclose()
                    took = time.monotonic() - started
                assert transport.open_connections == 0
        return responses, took

    responses, took = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in responses)
    assert took < 2.5, f"closing 16 silent TLS connections took {took:.1f} s"

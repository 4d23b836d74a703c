"""Proxies from the environment: CONNECT tunnels for https, absolute form for http, Basic
auth from the proxy URL (never shown), NO_PROXY by httpx's rules, errors that name the proxy."""

from __future__ import annotations

import asyncio
import base64
import ssl

import httpx
import pytest
import trustme
from net_fixtures import Proxy, RawServer, open_transport

from runner.http.neterror import NetworkFailure
from runner.http.proxy import ProxyConfigError, ProxyRules
from runner.http.transport import FastTransport, RequestBuilder, send

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
PASSWORD = "s3cr3t-proxy-pw"
AUTH = b"Basic " + base64.b64encode(f"alice:{PASSWORD}".encode())
_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        *_VARS,
        *(v.lower() for v in _VARS),
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUEST_METHOD",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def tls(tmp_path, monkeypatch):
    """A private CA trusted through SSL_CERT_FILE, and a server context for localhost."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


async def _ok(head: bytes, body: bytes) -> bytes:
    return OK


def _no_secret(error: BaseException) -> None:
    assert PASSWORD not in str(error) and PASSWORD not in repr(error)
    assert "alice" not in str(error)


def test_https_goes_through_one_connect_tunnel_with_basic_auth(tls, monkeypatch):
    async def scenario():
        target = RawServer(_ok, ssl_context=tls)
        proxy = Proxy(expect_auth=AUTH)
        async with target.running(), proxy.running():
            monkeypatch.setenv("HTTPS_PROXY", f"http://alice:{PASSWORD}@127.0.0.1:{proxy.port}")
            async with open_transport(1) as transport:
                for i in range(3):
                    response = await send(
                        transport, httpx.Request("GET", f"https://localhost:{target.port}/{i}")
                    )
                    assert response.json() == {"ok": True}
        return proxy, target

    proxy, target = asyncio.run(scenario())
    assert proxy.tunnels == [f"localhost:{target.port}".encode()]  # one, kept alive
    assert proxy.auth_seen == [AUTH]
    # Inside the tunnel the target never sees the proxy's credentials.
    assert all(b"proxy-authorization" not in h.lower() for h in target.heads)


def test_no_proxy_bypasses_the_proxy(tls, monkeypatch):
    async def scenario():
        target = RawServer(_ok, ssl_context=tls)
        proxy = Proxy()
        async with target.running(), proxy.running():
            monkeypatch.setenv("https_proxy", f"127.0.0.1:{proxy.port}")
            monkeypatch.setenv("no_proxy", "example.com, localhost")
            async with open_transport(1) as transport:
                response = await send(
                    transport, httpx.Request("GET", f"https://localhost:{target.port}/")
                )
        return proxy, response

    proxy, response = asyncio.run(scenario())
    assert response.status_code == 200
    assert proxy.tunnels == [] and proxy.forwarded == []


def test_http_target_is_asked_for_in_absolute_form(monkeypatch):
    async def scenario():
        proxy = Proxy(expect_auth=AUTH)
        async with proxy.running():
            monkeypatch.setenv("ALL_PROXY", f"http://alice:{PASSWORD}@127.0.0.1:{proxy.port}")
            build = RequestBuilder("http://api.example.test/v2/api", [(b"Accept", b"*/*")])
            async with open_transport(1) as transport:
                get = await send(transport, build("GET", "/chats/%2B1555/messages"))
                post = await send(transport, build("POST", "/x", b"{}"))
        return proxy, get, post

    proxy, get, post = asyncio.run(scenario())
    assert get.json() == post.json() == {"via": "proxy"}
    assert proxy.forwarded == [
        b"GET http://api.example.test/v2/api/chats/%2B1555/messages HTTP/1.1",
        b"POST http://api.example.test/v2/api/x HTTP/1.1",
    ]
    assert proxy.auth_seen == [AUTH, AUTH]
    assert proxy.tunnels == []


def test_refused_credentials_say_via_proxy_and_never_show_them(tls, monkeypatch):
    async def scenario():
        proxy = Proxy(expect_auth=b"Basic other")
        async with proxy.running():
            monkeypatch.setenv("HTTPS_PROXY", f"http://alice:{PASSWORD}@127.0.0.1:{proxy.port}")
            async with open_transport(1) as transport:
                with pytest.raises(httpx.ProxyError) as info:
                    await send(transport, httpx.Request("GET", "https://api.example.test/"))
        return proxy.port, info.value

    port, error = asyncio.run(scenario())
    assert isinstance(error, NetworkFailure) and isinstance(error, httpx.TransportError)
    assert error.phase == "proxy" and error.proxy == f"127.0.0.1:{port}"
    assert str(error).startswith(f"via proxy 127.0.0.1:{port}: ")
    assert "CONNECT refused 407 Proxy Authentication Required" in str(error)
    _no_secret(error)


def test_unreachable_proxy_is_named(monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://alice:{PASSWORD}@127.0.0.1:{port}")

    async def scenario():
        async with open_transport(1) as transport:
            with pytest.raises(httpx.ProxyError) as info:
                await send(transport, httpx.Request("GET", "https://api.example.test/"))
        return info.value

    error = asyncio.run(scenario())
    assert error.phase == "proxy" and error.host == "api.example.test:443"
    assert str(error).startswith(f"via proxy 127.0.0.1:{port}: ")
    assert "connecting to the proxy failed" in str(error)
    _no_secret(error)


def test_https_proxy_url_tls_to_the_proxy_then_connect(tls, monkeypatch):
    async def scenario():
        target = RawServer(_ok, ssl_context=tls)
        proxy = Proxy(ssl_context=tls)
        async with target.running(), proxy.running():
            monkeypatch.setenv("HTTPS_PROXY", f"https://localhost:{proxy.port}")
            async with open_transport(1) as transport:
                response = await send(
                    transport, httpx.Request("GET", f"https://localhost:{target.port}/")
                )
        return proxy, response

    proxy, response = asyncio.run(scenario())
    assert response.json() == {"ok": True}
    assert len(proxy.tunnels) == 1


def test_socks_proxy_is_a_clear_error_without_the_password(monkeypatch):
    monkeypatch.setenv("ALL_PROXY", f"socks5://alice:{PASSWORD}@127.0.0.1:1080")
    with pytest.raises(ProxyConfigError) as info:
        FastTransport(1)
    assert "ALL_PROXY" in str(info.value) and "socks5" in str(info.value)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    "no_proxy, url, proxied",
    [
        ("", "https://api.blooio.com/x", True),
        ("blooio.com", "https://api.blooio.com/x", False),  # the domain and its subdomains
        ("blooio.com", "https://blooio.com/x", False),
        ("blooio.com", "https://notblooio.com/x", True),
        (".blooio.com", "https://blooio.com/x", True),  # a leading dot: subdomains only
        (".blooio.com", "https://api.blooio.com/x", False),
        ("*", "https://api.blooio.com/x", False),
        ("127.0.0.1", "http://127.0.0.1:8765/x", False),
        ("127.0.0.1", "http://127.0.0.2:8765/x", True),
        ("10.0.0.0/8", "http://10.1.2.3/x", False),
        ("::1", "http://[::1]:8765/x", False),
        ("localhost", "http://localhost:8765/x", False),
        ("api.blooio.com:8443", "https://api.blooio.com/x", True),
        ("api.blooio.com:8443", "https://api.blooio.com:8443/x", False),
        ("http://api.blooio.com", "https://api.blooio.com/x", True),
        ("API.Blooio.com", "https://api.blooio.com/x", False),
    ],
)
def test_no_proxy_rules_match_httpx(no_proxy, url, proxied):
    rules = ProxyRules.from_environment(
        {
            "HTTPS_PROXY": "http://proxy:3128",
            "HTTP_PROXY": "http://proxy:3128",
            "NO_PROXY": no_proxy,
        }
    )
    u = httpx.URL(url)
    chosen = rules.select(u.scheme, u.host, u.port or {"http": 80, "https": 443}[u.scheme])
    assert (chosen is not None) is proxied


def test_scheme_proxy_wins_over_all_proxy_and_lower_case_over_upper():
    rules = ProxyRules.from_environment(
        {
            "ALL_PROXY": "http://all:1",
            "HTTPS_PROXY": "http://upper:2",
            "https_proxy": "lower:3",
        }
    )
    assert rules.select("https", "a.example", 443).display == "lower:3"
    assert rules.select("http", "a.example", 80).display == "all:1"
    assert ProxyRules.from_environment({}).select("https", "a.example", 443) is None


def test_proxy_repr_hides_credentials():
    rules = ProxyRules.from_environment({"HTTPS_PROXY": f"http://alice:{PASSWORD}@p:3128"})
    chosen = rules.select("https", "a.example", 443)
    assert chosen.authorization == AUTH
    assert PASSWORD not in repr(chosen) and PASSWORD not in str(chosen)

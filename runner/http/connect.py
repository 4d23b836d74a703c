"""Opening one connection: DNS, TCP with Happy Eyeballs, CONNECT through a proxy, TLS.

Each step is its own phase so that a failure says which one failed (runner.http.neterror).
The steps are done by hand rather than by ``asyncio.open_connection`` because that call
does DNS, TCP and TLS in one await, and a timeout inside it cannot say which.

Happy Eyeballs (RFC 8305): every address of the name is tried, families interleaved, the next
attempt starting 250 ms after the previous one unless it has connected; the first to connect
wins and the others are closed. A name whose first address is blackholed therefore connects
in about 250 ms instead of timing out.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from asyncio import staggered
from collections.abc import Callable

import httpx

from runner.http.neterror import (
    ConnectFailed,
    ConnectTimedOut,
    ProxyFailed,
    reason_of,
    seconds,
)
from runner.http.proxy import Proxy
from runner.http.tls import TrustStoreError

HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended "Connection Attempt Delay"
_MAX_PROXY_HEAD = 16 * 1024

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_stream(
    scheme: str,
    host: str,
    port: int,
    *,
    proxy: Proxy | None,
    ssl_context: Callable[[], ssl.SSLContext],
    deadline: float | None,
    timeout: float | None,
    limit: int,
    request: httpx.Request | None = None,
) -> Streams:
    """A connected (and for https, verified) stream pair to ``host:port``, by ``deadline``
    (event-loop time; ``timeout`` is only for the error text)."""
    target = host_port(host, port)
    via = proxy.display if proxy else None
    step = "dns"  # what is being waited for: dns, connect, proxy-tls, proxy, tls
    writer: asyncio.StreamWriter | None = None

    def fail(cls: type, phase: str, reason: str) -> Exception:
        if proxy is not None and phase in ("dns", "connect", "proxy-tls"):
            # The hop to the proxy itself failed.
            word = {
                "dns": "DNS lookup of",
                "connect": "connecting to",
                "proxy-tls": "TLS handshake with",
            }[phase]
            reason, phase = f"{word} the proxy failed: {reason}", "proxy"
        if cls is not ConnectTimedOut and phase == "proxy":
            cls = ProxyFailed
        return cls(phase, target, reason, proxy=via, request=request)

    try:
        async with asyncio.timeout_at(deadline):
            hop_host, hop_port = (proxy.host, proxy.port) if proxy else (host, port)
            infos = await _resolve(hop_host, hop_port)
            step = "connect"
            sock = await _happy_eyeballs(infos)
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=limit, loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            try:
                transport, _ = await loop.create_connection(lambda: protocol, sock=sock)
            except BaseException:
                sock.close()
                raise
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            if proxy is not None:
                if proxy.scheme == "https":
                    step = "proxy-tls"
                    await writer.start_tls(ssl_context(), server_hostname=proxy.host)
                if scheme == "https":
                    step = "proxy"
                    await _tunnel(reader, writer, target, proxy)
            if scheme == "https":
                step = "tls"
                await writer.start_tls(ssl_context(), server_hostname=host)
            return reader, writer
    except BaseException as exc:
        if writer is not None:
            writer.transport.abort()
        if isinstance(exc, TimeoutError):
            raise fail(
                ConnectTimedOut, step, seconds(timeout) if timeout else "timed out"
            ) from None
        if isinstance(exc, _ProxyAnswer):
            raise fail(ProxyFailed, "proxy", str(exc)) from None
        if isinstance(exc, TrustStoreError):
            raise fail(ConnectFailed, step, str(exc)) from None
        if isinstance(exc, socket.gaierror):
            raise fail(ConnectFailed, "dns", reason_of(exc)) from None
        if isinstance(exc, _AllFailed):
            raise fail(ConnectFailed, "connect", str(exc)) from None
        if isinstance(exc, TypeError) and step == "tls" and proxy and proxy.scheme == "https":
            # uvloop cannot start TLS inside TLS.
            raise fail(
                ProxyFailed,
                "proxy",
                "TLS inside an https:// proxy tunnel is not "
                "supported by this event loop; use an http:// proxy URL",
            ) from None
        if isinstance(exc, asyncio.IncompleteReadError):
            raise fail(ConnectFailed, step, "the peer closed the connection") from None
        if isinstance(exc, (OSError, ssl.SSLError)):
            raise fail(ConnectFailed, step, reason_of(exc)) from None
        raise


# -- DNS and TCP ---------------------------------------------------------------------------


async def _resolve(host: str, port: int) -> list[tuple]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # a literal needs no resolver (and no trip to the executor thread)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    return infos


def _interleave(infos: list[tuple]) -> list[tuple]:
    """Alternate address families, keeping the resolver's order within each (RFC 8305 §4)."""
    by_family: dict[int, list[tuple]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())
    out = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return out


class _AllFailed(OSError):
    """Every address refused or failed; the text lists the distinct reasons."""


async def _happy_eyeballs(infos: list[tuple]) -> socket.socket:
    loop = asyncio.get_running_loop()
    connected: list[socket.socket] = []

    async def attempt(info: tuple) -> socket.socket:
        family, type_, proto, _, address = info
        sock = socket.socket(family, type_, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        connected.append(sock)
        return sock

    ordered = _interleave(infos)
    winner = None
    try:
        winner, _, errors = await staggered.staggered_race(
            [functools.partial(attempt, info) for info in ordered],
            HAPPY_EYEBALLS_DELAY if len(ordered) > 1 else None,
            loop=loop,
        )
    finally:
        # Attempts that connected after the winner (or at all, if we are cancelled) are
        # closed here rather than leaked.
        for sock in connected:
            if sock is not winner:
                sock.close()
    if winner is None:
        reasons = list(dict.fromkeys(reason_of(e) for e in errors if e is not None))
        raise _AllFailed(", ".join(reasons) or "no address could be reached")
    return winner


# -- the CONNECT tunnel --------------------------------------------------------------------


class _ProxyAnswer(Exception):
    """The proxy answered CONNECT with something other than 2xx."""


async def _tunnel(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str, proxy: Proxy
) -> None:
    head = b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (target.encode("ascii"), target.encode("ascii"))
    if proxy.authorization is not None:
        head += b"Proxy-Authorization: " + proxy.authorization + b"\r\n"
    writer.write(head + b"\r\n")
    await writer.drain()
    try:
        answer = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _ProxyAnswer("the proxy's answer to CONNECT is too large") from None
    except asyncio.IncompleteReadError:
        raise _ProxyAnswer("the proxy closed the connection without answering CONNECT") from None
    status_line = answer.split(b"\r\n", 1)[0]
    parts = status_line.split(b" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        raise _ProxyAnswer("the proxy's answer to CONNECT is not HTTP") from None
    if not 200 <= status < 300:
        phrase = parts[2].decode("latin-1", "replace")[:100] if len(parts) > 2 else ""
        text = f"CONNECT refused {status} {phrase}".rstrip()
        if status == 407:
            text += (
                " (the proxy rejected the user:password in the proxy URL)"
                if proxy.authorization
                else " (the proxy wants a user:password in the proxy URL)"
            )
        raise _ProxyAnswer(text)

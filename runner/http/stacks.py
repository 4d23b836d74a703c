"""Which HTTP stack carries the requests: the runner's fast transport, or httpx's own.

The fast transport (runner/http/transport.py) is the default: the fastest client measured and
the most robust under keep-alive churn. The escape hatch, ``--http-stack httpx`` or
``RUNNER_HTTP_STACK=httpx``, sends through stock httpx instead (its connection pool, and its
own reading of the proxy variables and the trust store from the environment), for a network
the fast path cannot handle. Everything above the transport stays the same: the client's
headers, deadline and redaction, the one retry loop, the journal, the idempotency keys.

Failures on the httpx stack are reworded as runner.http.neterror errors (host, phase,
reason), so summaries and journals read the same whichever stack was used.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping
from enum import StrEnum

import httpx

from runner.errors import CampaignError
from runner.http.connect import host_port
from runner.http.neterror import (
    BodyDecodingFailed,
    ConnectFailed,
    ConnectTimedOut,
    ProtocolFailed,
    ProxyFailed,
    ReadFailed,
    ReadTimedOut,
    WriteTimedOut,
    reason_of,
    seconds,
)
from runner.http.proxy import Proxy, ProxyRules
from runner.http.transport import FastTransport


class Stack(StrEnum):
    """The HTTP stacks a command can send through (--http-stack, RUNNER_HTTP_STACK)."""

    FAST = "fast"  # the runner's own transport (the default)
    HTTPX = "httpx"  # stock httpx: the escape hatch for networks the fast one cannot handle


ENV_VAR = "RUNNER_HTTP_STACK"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def stack_from(option: str | None, environ: Mapping[str, str] | None = None) -> Stack:
    """The stack asked for: the option, else RUNNER_HTTP_STACK, else the fast one."""
    env = os.environ if environ is None else environ
    source = "--http-stack" if option is not None else ENV_VAR
    value = option if option is not None else env.get(ENV_VAR, "")
    name = value.strip().lower()
    if not name:
        return Stack.FAST
    if name not in Stack.__members__.values():
        raise CampaignError(
            f"{source}: unknown HTTP stack {value!r}; choose fast or httpx",
            hint="fast is the default; httpx sends through stock httpx "
            "(the escape hatch for networks the fast one cannot handle)",
            layer="network",
        )
    return Stack(name)


def make_transport(stack: Stack, concurrency: int) -> httpx.AsyncBaseTransport:
    """A transport of the named stack keeping at most ``concurrency`` connections open."""
    if stack == Stack.HTTPX:
        return HttpxStack(concurrency)
    if stack == Stack.FAST:
        # httpx stays the API (requests, responses, errors), but its default connection pool
        # collapses at high concurrency (5% of ideal with 128 in flight): the runner's own
        # transport keeps one keep-alive pool of `concurrency` connections.
        return FastTransport(max_connections=concurrency)
    raise ValueError(f"unknown HTTP stack {stack!r}")


def proxy_for(base_url: str, environ: Mapping[str, str] | None = None) -> Proxy | None:
    """The proxy requests to ``base_url`` go through, by the environment (None: direct).
    Both stacks follow httpx's rules, which do not bypass loopback unless NO_PROXY says so."""
    url = httpx.URL(base_url)
    rules = ProxyRules.from_environment(environ)
    return rules.select(url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 443))


class HttpxStack(httpx.AsyncBaseTransport):
    """Stock httpx (``AsyncClient(trust_env=True)``: proxies, NO_PROXY, SSL_CERT_FILE and
    SSL_CERT_DIR as httpx reads them) behind the transport interface the client uses."""

    def __init__(self, max_connections: int) -> None:
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        try:
            self._client = httpx.AsyncClient(trust_env=True, limits=limits, follow_redirects=False)
        except ImportError as exc:  # a socks:// proxy without httpx's optional socksio
            raise CampaignError(
                f"the httpx stack cannot use the proxy settings: {exc}",
                hint="unset ALL_PROXY / HTTPS_PROXY or use an http:// proxy",
                layer="network",
            ) from None
        except ValueError as exc:  # a proxy URL httpx cannot read (it never holds the password)
            raise CampaignError(
                f"the httpx stack cannot use the proxy settings: {exc}",
                hint="proxy URLs look like http://user:password@host:3128",
                layer="network",
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise CampaignError(
                f"cannot load the CA certificates (SSL_CERT_FILE / SSL_CERT_DIR): {reason_of(exc)}",
                layer="network",
            ) from None
        try:
            self._proxies: ProxyRules | None = ProxyRules.from_environment()
        except CampaignError:
            self._proxies = None  # httpx accepted what our reading refuses: name no proxy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._client.send(request)
        except httpx.RequestError as exc:
            raise self._described(exc, request) from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    def _described(self, exc: httpx.RequestError, request: httpx.Request) -> Exception:
        """``exc`` as a NetworkFailure naming host, phase and reason (or ``exc`` itself when
        httpx's kind of error has no phase)."""
        url = request.url
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 443)
        host = host_port(url.host, port)
        proxy = self._proxies.select(url.scheme, url.host, port) if self._proxies else None
        shown = proxy.display if proxy is not None else None
        timeouts = request.extensions.get("timeout") or {}
        cause = _root_cause(exc)
        reason = reason_of(cause) if cause is not None else (str(exc) or type(exc).__name__)
        match exc:
            case httpx.ProxyError():
                return ProxyFailed("proxy", host, reason, proxy=shown, request=request)
            case httpx.ConnectTimeout() | httpx.PoolTimeout():
                return ConnectTimedOut(
                    "connect",
                    host,
                    seconds(timeouts.get("connect") or 0),
                    proxy=shown,
                    request=request,
                )
            case httpx.ConnectError():
                tls = isinstance(cause, ssl.SSLError)
                dns = isinstance(cause, socket.gaierror)
                phase = "tls" if tls else "dns" if dns else "connect"
                return ConnectFailed(phase, host, reason, proxy=shown, request=request)
            case httpx.WriteTimeout():
                return WriteTimedOut(
                    "write", host, seconds(timeouts.get("write") or 0), proxy=shown, request=request
                )
            case httpx.ReadTimeout():
                return ReadTimedOut(
                    "read", host, seconds(timeouts.get("read") or 0), proxy=shown, request=request
                )
            case httpx.WriteError():
                return ReadFailed("write", host, reason, proxy=shown, request=request)
            case httpx.DecodingError():
                return BodyDecodingFailed("read", host, reason, proxy=shown, request=request)
            case httpx.RemoteProtocolError():
                return ProtocolFailed("read", host, reason, proxy=shown, request=request)
            case httpx.ReadError():
                return ReadFailed("read", host, reason, proxy=shown, request=request)
        return exc


def _root_cause(exc: BaseException) -> BaseException | None:
    """The OS or SSL error under httpx's and httpcore's wrappers, if there is one."""
    found = None
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            seen = seen.exceptions[0]  # anyio: "All connection attempts failed", from each
            continue
        if isinstance(seen, OSError):  # ssl.SSLError and socket.gaierror are OSErrors
            found = seen
            if seen.errno or isinstance(seen, ssl.SSLError):
                return seen
        seen = seen.__cause__ or seen.__context__
    return found

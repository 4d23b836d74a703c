"""Network errors that say what failed: which host, in which phase, and why.

Each class is a subclass of the httpx exception a caller already handles (``ConnectError``,
``ReadTimeout``, ``ProxyError``, ...), so retry logic that catches ``httpx.TransportError``
keeps working, and adds three attributes for whoever reports the failure:

* ``host``: the target as ``host:port`` (never the proxy, never credentials);
* ``phase``: one of ``PHASES`` (where the exchange stopped);
* ``reason``: a short human text, e.g. "certificate verify failed: self-signed certificate";
* ``proxy``: ``host:port`` of the proxy the connection went through, or None.

``str()`` reads as one line: ``"TLS handshake with api.blooio.com:443 failed: certificate
verify failed: self-signed certificate"``, prefixed ``"via proxy 10.0.0.1:3128: "`` when a
proxy was in the way. Texts are built from the host, the proxy's host and port, status lines
and OS/SSL wording: never from request headers or the proxy URL's user:password.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable

import httpx

PHASES = ("dns", "connect", "tls", "proxy", "write", "read")

_LABEL = {
    "dns": "DNS lookup of {} failed",
    "connect": "connecting to {} failed",
    "tls": "TLS handshake with {} failed",
    "proxy": "reaching {} through the proxy failed",
    "write": "sending the request to {} failed",
    "read": "reading the response from {} failed",
}


class NetworkFailure:
    """Mixed into the httpx exception classes below; catch this to read the details."""

    host: str
    phase: str
    reason: str
    proxy: str | None


def describe(phase: str, host: str, reason: str, proxy: str | None) -> str:
    text = f"{_LABEL[phase].format(host)}: {reason}"
    return f"via proxy {proxy}: {text}" if proxy else text


def _init(
    self: NetworkFailure,
    exc_base: type[httpx.RequestError],
    phase: str,
    host: str,
    reason: str,
    proxy: str | None,
    request: httpx.Request | None,
) -> None:
    exc_base.__init__(self, describe(phase, host, reason, proxy), request=request)  # type: ignore[arg-type]
    self.host, self.phase, self.reason, self.proxy = host, phase, reason, proxy


def _failure(base: type[httpx.RequestError]) -> Callable[..., None]:
    def __init__(
        self,
        phase: str,
        host: str,
        reason: str,
        *,
        proxy: str | None = None,
        request: httpx.Request | None = None,
    ) -> None:
        _init(self, base, phase, host, reason, proxy, request)

    return __init__


class ConnectFailed(httpx.ConnectError, NetworkFailure):
    __init__ = _failure(httpx.ConnectError)


class ConnectTimedOut(httpx.ConnectTimeout, NetworkFailure):
    __init__ = _failure(httpx.ConnectTimeout)


class ProxyFailed(httpx.ProxyError, NetworkFailure):
    __init__ = _failure(httpx.ProxyError)


class WriteTimedOut(httpx.WriteTimeout, NetworkFailure):
    __init__ = _failure(httpx.WriteTimeout)


class ReadFailed(httpx.ReadError, NetworkFailure):
    __init__ = _failure(httpx.ReadError)


class ReadTimedOut(httpx.ReadTimeout, NetworkFailure):
    __init__ = _failure(httpx.ReadTimeout)


class ProtocolFailed(httpx.RemoteProtocolError, NetworkFailure):
    """The server's answer broke HTTP/1.1 framing (phase "read")."""

    __init__ = _failure(httpx.RemoteProtocolError)


class BodyDecodingFailed(httpx.ReadError, httpx.DecodingError, NetworkFailure):
    """The body does not match its Content-Encoding: a damaged answer, retried like a read
    error (it is an ``httpx.TransportError``) and still an ``httpx.DecodingError``."""

    __init__ = _failure(httpx.ReadError)


def reason_of(exc: BaseException) -> str:
    """Short wording of an OS or SSL error: never more than the OS's or OpenSSL's text."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or ""
        return f"certificate verify failed: {detail}" if detail else "certificate verify failed"
    if isinstance(exc, ssl.SSLError):
        if exc.reason:
            return str(exc.reason).replace("_", " ").lower()
        return str(exc.args[1] if len(exc.args) > 1 else exc) or "TLS error"
    errno = getattr(exc, "errno", None)
    if errno and not isinstance(exc, socket.gaierror):
        # asyncio's sock_connect words it "Connect call failed (addr)": the OS says why.
        return os.strerror(errno)
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return str(strerror)
    text = str(exc)
    return text[:200] if text else type(exc).__name__


def seconds(value: float) -> str:
    return f"timed out after {value:g} s"

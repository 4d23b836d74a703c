"""One way to talk HTTP to the Blooio API, shared by `send`, `track`, `reach` and `optouts`.

Headers (the bearer key among them) are built once; requests go straight through the
runner's fast transport (no client layer: see runner/http/transport.py), or through stock httpx
when the escape hatch asks for it (runner/http/stacks.py); every exchange has an
overall deadline; a network failure comes back as data with its text redacted, because the
reprs of some httpx errors carry request headers. What an answer means is read by
runner.http.classify, and retries are paced by runner.http.retry, the same for every command.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from runner.contract import DEFAULT_BASE_URL
from runner.errors import CampaignError
from runner.http.connect import host_port
from runner.http.neterror import NetworkFailure
from runner.http.stacks import Stack, make_transport
from runner.http.transport import RETRYABLE_ERRORS, FastTransport, RequestBuilder
from runner.http.transport import send as fast_send
from runner.version import __version__

USER_AGENT = f"blooio-runner/{__version__}"
MAX_ERROR_TEXT = 500  # error texts kept in journals and reports are cut to this length
# Any bearer token, not only ours: a proxy or server echoing an Authorization header.
_BEARER = re.compile(rb"(bearer)(\s+)[^\s\"',;}\]]+", re.IGNORECASE)

# Errors of the network layer that say nothing about the request itself: retry with the key.
# A body that does not match its Content-Encoding is one of them too (RETRYABLE_ERRORS).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    *RETRYABLE_ERRORS,
    httpx.StreamError,
    OSError,
    TimeoutError,
    EOFError,
    asyncio.IncompleteReadError,
)


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """What send, track, reach and optouts share: where, how fast, and how to retry."""

    base_url: str = DEFAULT_BASE_URL
    rate_per_second: float | None = None  # client-side ceiling across the run
    concurrency: int = 8  # requests in flight
    max_attempts: int = 6  # tries of one request in one run before it waits for the next run
    backoff_base: float = 0.5  # full-jitter exponential backoff between tries
    backoff_cap: float = 30.0
    # A Retry-After longer than this is not waited for: the request is left for a later run.
    max_retry_after: float = 120.0
    user_agent: str = USER_AGENT
    http_stack: Stack = Stack.FAST  # ours, or stock httpx (the escape hatch)


@dataclass(slots=True)
class Exchange:
    """What came back: an HTTP answer, or (status None) the network error's redacted text."""

    status: int | None
    body: bytes = b""
    headers: httpx.Headers | None = None
    error: str | None = None
    error_kind: str | None = None  # the network error's class name (a text with no detail)


def api_key_from_env(command: str) -> str:
    """BLOOIO_API_KEY, checked without ever echoing it (a pasted smart quote or space would
    otherwise surface as an encoding traceback deep in the HTTP layer)."""
    key = os.environ.get("BLOOIO_API_KEY", "").strip()
    if not key:
        raise CampaignError(
            f"BLOOIO_API_KEY is not set: {command} needs your Blooio API key",
            hint="export BLOOIO_API_KEY=... (plan and preview need no key)",
        )
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise CampaignError(
            "BLOOIO_API_KEY contains characters an API key cannot have "
            "(non-ASCII, spaces or control characters)",
            hint="copy the key again from the Blooio dashboard (watch for smart quotes)",
        )
    return key


def base_url_from(option: str | None) -> str:
    """--base-url, else BLOOIO_BASE_URL, else the live API; checked before anything is sent."""
    base = (option or os.environ.get("BLOOIO_BASE_URL") or DEFAULT_BASE_URL).strip()
    hint = "set --base-url or BLOOIO_BASE_URL, e.g. http://127.0.0.1:8765/v2/api"
    if not base.startswith(("http://", "https://")):
        raise CampaignError(
            f"the base URL must start with http:// or https:// (got {base!r})", hint=hint
        )
    try:
        url = httpx.URL(base)
        url.port  # noqa: B018 - parsing the port is what fails on "http://[::1"
    except (httpx.InvalidURL, ValueError) as err:
        raise CampaignError(f"the base URL {base!r} is not a valid URL: {err}", hint=hint) from None
    if url.userinfo:
        # Never echo it: it holds a password. It would be shown, journalled and reported.
        raise CampaignError(
            "the base URL must not hold a user name or password (user:pass@)",
            hint="remove them from --base-url / BLOOIO_BASE_URL; the API key "
            "goes in BLOOIO_API_KEY",
        )
    if not url.host or url.query or url.fragment:
        raise CampaignError(
            f"the base URL {base!r} needs a host and no query or fragment", hint=hint
        )
    return base


def default_transport(concurrency: int, stack: Stack = Stack.FAST) -> httpx.AsyncBaseTransport:
    """The transport of ``stack`` (runner.http.stacks), keeping ``concurrency`` connections."""
    return make_transport(stack, concurrency)


def error_text(exc: BaseException, request: httpx.Request, timeout: float) -> str:
    """What a network failure reads as in journals and summaries: host, phase and reason when
    the transport says them (runner.http.neterror), else the error's class and text."""
    if isinstance(exc, NetworkFailure):
        return str(exc)
    if isinstance(exc, TimeoutError) and not str(exc):
        # The client's own deadline over the whole exchange: no phase is known, the host is.
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        return f"no answer from {host_port(url.host, port)} within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class ApiClient:
    """Requests to one API base URL with one key. Use as an async context manager; a
    transport passed in (tests: the emulator, httpx.MockTransport) is not closed here."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float,
        concurrency: int,
        transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str = USER_AGENT,
        stack: Stack = Stack.FAST,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self._api_key = api_key
        self._key_bytes = api_key.encode("utf-8", "surrogatepass")
        self._timeout = timeout
        self._own = transport is None
        self.transport = transport or default_transport(concurrency, stack)
        self._build = RequestBuilder(
            base_url.rstrip("/"),
            [
                (b"Authorization", f"Bearer {api_key}".encode("latin-1")),
                (b"Accept", b"application/json"),
                (b"User-Agent", user_agent.encode("ascii")),
            ],
        )
        self._extensions = {"timeout": {k: timeout for k in ("connect", "read", "write", "pool")}}

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self.transport.aclose()

    def redact(self, text: str | None) -> str | None:
        """Remove the API key (and any bearer token) from any text that might be stored or shown."""
        if text is None:
            return None
        return self.scrub(text.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")

    def scrub(self, raw: bytes) -> bytes:
        """A response body without the key or bearer tokens, before anything reads, cuts or
        stores its error `code` and message (a server may echo the Authorization header)."""
        key = self._key_bytes
        if key in raw:
            raw = raw.replace(key, b"***")
        if b"earer" in raw or b"EARER" in raw:
            raw = _BEARER.sub(rb"\1\2***", raw)
        return raw

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> Exchange:
        """``path`` is relative to the base URL and already URL-encoded."""
        request = self._build(method, path, body, headers)
        request.extensions = self._extensions
        transport = self.transport
        try:
            if isinstance(transport, FastTransport):
                # The direct path: no client layer, the body already read (about a third of
                # the CPU per message of httpx.AsyncClient; see benchmarks/). Its own timers
                # hold every phase (pool, connect, write, read) to one deadline just inside
                # self._timeout (FastTransport._budget), so no second timer is set here: a
                # timer per request is measurable CPU at thousands of requests a second.
                response = await fast_send(transport, request)
                raw = response.content
            else:
                # Any other transport: a deadline over the whole exchange, whatever the
                # transport does with its own.
                async with asyncio.timeout(self._timeout):
                    response = await transport.handle_async_request(request)
                    try:
                        raw = await response.aread()
                    finally:
                        await response.aclose()
        except NETWORK_ERRORS as exc:
            text = error_text(exc, request, self._timeout)
            return Exchange(
                None,
                error=(self.redact(text) or "")[:MAX_ERROR_TEXT],
                error_kind=type(exc).__name__,
            )
        return Exchange(response.status_code, self.scrub(raw), response.headers)

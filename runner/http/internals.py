"""The private attributes of asyncio and httpx the fast transport relies on, in one place.

Each is reached only through a function here, so a Python or httpx release that renames one
breaks this module alone, and ``missing()`` (run by tests/test_transport_internals.py, and
cheap enough for a health check) names what is gone instead of a send failing with an
``AttributeError`` deep in a connection. Why each is needed:

- ``StreamReader._buffer``, ``_eof``, ``_wait_for_data``: asyncio has no public peek. The
  transport looks at the bytes already received to take a whole response head in one
  ``readuntil`` and to tell an idle connection with unread bytes (a late "408") from a clean
  one.
- ``httpx.URL._uri_reference``: building a request URL from the parsed base URL's parts skips
  httpx's URL parser, the largest share of a request's CPU; ``RequestBuilder`` checks the
  result against httpx's own and falls back when they differ.
- ``httpx.Response._content``: hands over a body already read whole, as ``Response.read()``
  would, without its decoder machinery.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx

# What ``missing`` checks: (owner, attribute) as a reader of the failure would look it up.
ATTRIBUTES = (
    ("asyncio.StreamReader", "_buffer"),
    ("asyncio.StreamReader", "_eof"),
    ("asyncio.StreamReader", "_wait_for_data"),
    ("httpx.URL", "_uri_reference"),
    ("httpx.Response", "_content"),
)


def buffered(reader: asyncio.StreamReader) -> bytearray:
    """The bytes received and not read yet (not a copy: do not change it)."""
    return reader._buffer  # type: ignore[attr-defined]


def saw_eof(reader: asyncio.StreamReader) -> bool:
    """Whether the peer closed its side (bytes may still be buffered, unlike ``at_eof()``)."""
    return reader._eof  # type: ignore[attr-defined]


async def wait_for_data(reader: asyncio.StreamReader) -> None:
    """Wait until some bytes (or EOF) arrive, reading none of them."""
    await reader._wait_for_data("readuntil")  # type: ignore[attr-defined]


def uri_reference(url: httpx.URL) -> Any:
    """The parsed parts of ``url`` (a named tuple: ``_replace`` makes a variant)."""
    return url._uri_reference


def url_from_reference(reference: Any) -> httpx.URL:
    """An ``httpx.URL`` made from parsed parts, without parsing a string again."""
    url = httpx.URL.__new__(httpx.URL)
    url._uri_reference = reference
    return url


def set_content(response: httpx.Response, body: bytes) -> None:
    """Make ``body`` the response's content, read and closed, as ``Response.read()`` does."""
    response._content = body
    response.is_stream_consumed = True
    response.is_closed = True


def missing() -> list[str]:
    """The attributes above this Python and httpx no longer have, each named with the
    versions: an empty list when the transport can run."""
    gone = []
    python = ".".join(map(str, sys.version_info[:3]))
    versions = f"(Python {python}, httpx {httpx.__version__})"

    async def probe_reader() -> asyncio.StreamReader:
        reader = asyncio.StreamReader()
        reader.feed_data(b"x")
        reader.feed_eof()
        return reader

    try:
        reader = asyncio.run(probe_reader())
    except Exception as exc:  # noqa: BLE001  (the probe itself failing is worth a name too)
        return [f"asyncio.StreamReader could not be made: {exc} {versions}"]
    checks = {
        ("asyncio.StreamReader", "_buffer"): lambda: bytes(buffered(reader)) == b"x",
        ("asyncio.StreamReader", "_eof"): lambda: saw_eof(reader) is True,
        ("asyncio.StreamReader", "_wait_for_data"): lambda: callable(reader._wait_for_data),  # type: ignore[attr-defined]
        ("httpx.URL", "_uri_reference"): _url_round_trip,
        ("httpx.Response", "_content"): _content_round_trip,
    }
    for (owner, name), check in checks.items():
        try:
            ok = check()
        except AttributeError:
            ok = False
        if not ok:
            gone.append(
                f"{owner}.{name} is gone or changed {versions}: the fast transport "
                "needs it (runner/http/internals.py); use --http-stack httpx meanwhile"
            )
    return gone


def _url_round_trip() -> bool:
    base = httpx.URL("https://api.example.test/v2/api")
    url = url_from_reference(uri_reference(base)._replace(path="/v2/api/chats/x"))
    return str(url) == "https://api.example.test/v2/api/chats/x"


def _content_round_trip() -> bool:
    response = httpx.Response(200, stream=httpx.ByteStream(b"{}"))
    set_content(response, b'{"a": 1}')
    return response.content == b'{"a": 1}' and response.json() == {"a": 1}

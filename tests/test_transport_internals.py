"""The canary for the private attributes the fast transport reads (runner/http/internals.py):
on a Python or httpx release where one is gone, this fails naming it, instead of sends failing
with an AttributeError inside a connection."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from runner.http import internals


def test_every_private_attribute_the_transport_reads_is_there():
    gone = internals.missing()
    assert gone == [], "\n".join(gone)


def test_a_missing_attribute_is_named_with_the_versions(monkeypatch):
    # Stand in for a release without httpx.Response._content: reading it raises.
    def no_content(response, body):
        raise AttributeError("_content")

    monkeypatch.setattr(internals, "set_content", no_content)
    gone = internals.missing()
    assert len(gone) == 1
    assert gone[0].startswith("httpx.Response._content is gone or changed")
    assert f"httpx {httpx.__version__}" in gone[0] and "--http-stack httpx" in gone[0]


def test_a_changed_attribute_is_named_too(monkeypatch):
    monkeypatch.setattr(internals, "saw_eof", lambda reader: None)  # there, but not a bool
    assert [g.split(" ")[0] for g in internals.missing()] == ["asyncio.StreamReader._eof"]


def test_the_reader_helpers_peek_without_reading():
    async def scenario():
        reader = asyncio.StreamReader()
        waiter = asyncio.ensure_future(internals.wait_for_data(reader))
        await asyncio.sleep(0)
        assert not waiter.done() and not internals.buffered(reader)
        reader.feed_data(b"HTTP/1.1 200 OK\r\n\r\n")
        await waiter
        assert bytes(internals.buffered(reader)) == b"HTTP/1.1 200 OK\r\n\r\n"
        assert not internals.saw_eof(reader)
        reader.feed_eof()
        assert internals.saw_eof(reader) and not reader.at_eof()  # bytes still buffered
        assert await reader.read() == b"HTTP/1.1 200 OK\r\n\r\n"

    asyncio.run(scenario())


def test_only_the_internals_module_reaches_private_attributes():
    names = "|".join(re.escape(name) for _, name in internals.ATTRIBUTES)
    pattern = re.compile(rf"\.({names})\b")
    http = Path(internals.__file__).parent
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(http.glob("*.py"))
        if path.name != "internals.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []

"""Reading the inbound replies of the chats a campaign messaged: the one path `optouts` and
`track` share.

What to ask comes from the journal's rows (`chat_windows`: every chat with a send attempt,
read from a little before its first attempt, or from a cursor; a window of chats at a time);
each chat is read with ``GET /chats/{chat}/messages?direction=inbound&since=…&sort=asc``
through the shared client, rate ceiling and retry loop (`Fetcher`), page by page
(`inbound_messages`), many chats at once (`read_replies`). What a reply means (a stop word or not) is the callers' business.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from runner.contract import INBOUND_MESSAGES
from runner.http.classify import Disposition, Reading, read_exchange
from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.retry import retrying
from runner.store.journal import Journal

PAGE_LIMIT = 200  # the API's maximum page size
MAX_PAGES = 500  # per chat: 100,000 inbound messages is far beyond any real conversation
# The journal's times are this machine's clock, `time_sent` is the API's: a reply that arrives
# right after the first send must not be lost to a little clock skew between the two.
SKEW_MS = 60_000
# Chats read, recorded and committed together by a reply reading (`track`, `optouts`): what a
# reading holds in memory, whatever the campaign's size.
CHAT_WINDOW = 1000


# -- what to ask ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatToCheck:
    chat: str  # the normalised chat id of the campaign (a comma list for a multi-recipient chat)
    api_id: str  # what goes in the URL: the group id the API answered with, else the chat id
    since_ms: int  # replies after this are read


@dataclass
class ChatWindows:
    """The chats to read, a window at a time: ``count`` of them in ``pages``."""

    count: int
    pages: Iterator[list[ChatToCheck]]


def chat_windows(
    journal: Journal, since_ms: int | None = None, *, cursors: bool = False, size: int | None = None
) -> ChatWindows:
    """Every chat the journal shows a send attempt to, read from a little before its first
    attempt (``since_ms`` replaces that), ``size`` chats at a time (sorted), so a campaign of a
    million chats is never held at once. An attempt whose outcome is unknown or pending may
    have been delivered, so it counts; a row only marked (never attempted) does not; a group
    chat is asked by the group id the API answered with. ``cursors``: start each chat after its
    latest stored reply (`track`'s passes)."""
    found = journal.attempted_chats(size or CHAT_WINDOW)

    def pages() -> Iterator[list[ChatToCheck]]:
        for page in found.pages:
            where = journal.reply_cursors_of(c.chat for c in page) if cursors else {}
            out = []
            for c in page:
                since = (
                    since_ms if since_ms is not None else int(c.first_attempt_at * 1000) - SKEW_MS
                )
                if c.chat in where:
                    since = max(since, where[c.chat])
                api_id = c.group_id if c.group_id and "," in c.chat else c.chat
                out.append(ChatToCheck(c.chat, api_id, max(since, 0)))
            yield out

    return ChatWindows(found.count, pages())


# -- reading (HTTP edge) --------------------------------------------------------------------


class ReadUnauthorized(Exception):
    """The API refused the key (401): every reading stops."""


class ReadFailed(Exception):
    """Retries ran out, or an answer made no sense; the text says which."""


@dataclass
class Fetcher:
    """Reads inbound messages through the shared client, rate ceiling and retry loop."""

    api: ApiClient
    limiter: RateLimiter
    options: ApiOptions
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time
    requests: int = 0

    async def get(self, path: str, params: dict[str, Any]) -> Reading:
        """The answer that ended the retries; raises ReadUnauthorized on 401, ReadFailed when
        retries run out."""
        target = f"{path}?{urlencode(params)}"

        async def try_once(attempt: int) -> Reading:
            await self.limiter.acquire()
            self.requests += 1
            ex = await self.api.request("GET", target)
            return read_exchange(ex, INBOUND_MESSAGES, self.clock())

        retried = await retrying(try_once, self.options, self.rng, self.sleep)
        reading, gave_up = retried.verdict, retried.gave_up
        if reading.disposition is Disposition.UNAUTHORIZED:
            raise ReadUnauthorized()
        if gave_up:
            # A network error as the client words it (host, phase, reason; redacted).
            raise ReadFailed(
                (reading.message or reading.error_kind or "network error")
                if reading.http_status is None
                else f"HTTP {reading.http_status}"
            )
        return reading


@dataclass
class ChatReplies:
    check: ChatToCheck
    messages: list[dict[str, Any]]  # inbound, oldest first
    complete: bool = True  # False: pages remain past ``max_pages`` (read by the next pass)


async def inbound_messages(
    fetcher: Fetcher, check: ChatToCheck, max_pages: int = MAX_PAGES
) -> ChatReplies | None:
    """The inbound messages of one chat since `check.since_ms`, oldest first, at most
    ``max_pages`` pages; None if the API does not know the chat. Raises ReadFailed when retries
    run out or an answer makes no sense."""
    path = f"/chats/{quote(check.api_id, safe='')}/messages"
    out: list[dict[str, Any]] = []
    offset = 0
    for _ in range(max_pages):
        params = {
            "direction": "inbound",
            "since": check.since_ms,
            "sort": "asc",
            "limit": PAGE_LIMIT,
            "offset": offset,
        }
        reading = await fetcher.get(path, params)
        if reading.disposition is Disposition.GONE:
            return None
        body = reading.payload
        if (
            reading.disposition is not Disposition.OK
            or body is None
            or not isinstance(body.get("messages"), list)
        ):
            message = reading.message
            raise ReadFailed(
                f"HTTP {reading.http_status}" + (f": {message[:200]}" if message else "")
            )
        page = body["messages"]
        out.extend(page)
        total = (body.get("pagination") or {}).get("total")
        offset += len(page)
        if not page or not isinstance(total, int) or offset >= total:
            return ChatReplies(check, out)
    return ChatReplies(check, out, complete=False)


@dataclass
class ReadResult:
    chats: list[ChatReplies] = field(default_factory=list)  # in the order of the checks
    requests: int = 0
    not_found: int = 0  # chats the API does not know (never created, or deleted)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (chat, reason)


@dataclass
class ReadTally:
    """What the windows of one reading came to (counts only: the replies are stored as each
    window is read)."""

    done: int = 0  # chats read to the end of their page, or unknown to the API
    failed: int = 0
    requests: int = 0

    def add(self, read: ReadResult) -> None:
        self.done += len(read.chats) + read.not_found
        self.failed += len(read.failed)
        self.requests += read.requests


async def read_replies(
    checks: list[ChatToCheck],
    fetcher: Fetcher,
    *,
    concurrency: int,
    max_pages: int = MAX_PAGES,
    stopping: Callable[[], bool] = lambda: False,
) -> ReadResult:
    """Read every chat's inbound messages, ``concurrency`` chats at a time. A chat not started
    when ``stopping()`` turns true is left out. Raises ReadUnauthorized on a 401 (the other
    readings are cancelled)."""
    result = ReadResult()
    found: dict[int, ChatReplies] = {}
    sem = asyncio.Semaphore(max(1, concurrency))
    before = fetcher.requests

    async def one(i: int, check: ChatToCheck) -> None:
        async with sem:
            if stopping():
                return
            try:
                got = await inbound_messages(fetcher, check, max_pages)
            except ReadFailed as exc:
                result.failed.append((check.chat, str(exc)))
                return
        if got is None:
            result.not_found += 1
        else:
            found[i] = got

    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(checks)]
    try:
        await asyncio.gather(*tasks)
    except ReadUnauthorized:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        result.requests = fetcher.requests - before
    result.chats = [found[i] for i in sorted(found)]
    return result

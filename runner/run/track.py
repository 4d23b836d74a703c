"""Delivery tracking: poll the status of every accepted message until it is final.

A 202 only says the API took a message; ``GET /chats/{chat}/messages/{id}/status`` says whether
it was delivered, over iMessage, SMS or RCS, and why it failed. The tracker polls each open
message (``deliveries`` rows not yet ``delivered``/``failed``/``cancelled``) on its own
schedule: first a little after acceptance, then further and further apart (a message still
queued after 4 s gains nothing from being asked every 100 ms), never faster than the run's
rate ceiling and never more than ``concurrency`` requests at a time.

Everything learnt is written to the journal in small batches, and the next poll time with it,
so killing the process loses at most the last fraction of a second of answers: the next run
asks those again. Polling is read-only, so asking twice is harmless.

What an answer means is decided by :func:`poll_verdict` alone (pure, tested rule by rule), on
top of the classifier every command shares (runner.http.classify).

With ``TrackOptions.replies`` the run ends with one pass over the inbound replies of every
messaged chat (runner.run.replies, the path `optouts` reads by): one page per chat, from
where the last pass stopped, stored in the journal's ``replies`` (length and whether it is a
stop word; the text only when asked). Each pass leaves its own record (``reply_passes``: when,
chats read and failed, finished or stopped), so a report can tell unread replies from none.
A pass costs at most one request per chat (a failed request is retried like any other); a
chat with more than a page of new replies goes on at the next pass.

Memory is bounded whatever the journal's size: a window of open messages is queued (``WINDOW``,
topped up from the journal's keyset pages as they finish), messages already final are only
counted, and the reply pass reads, records and commits a window of chats at a time
(runner.run.replies.chat_windows).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import httpx

from runner import exitcodes
from runner.consent.match import Vocabulary
from runner.contract import FINAL_DELIVERY_STATUSES, MESSAGE_STATUS, DeliveryStatus
from runner.http.caller import ApiCaller
from runner.http.classify import (
    Disposition,
    EndpointVerdict,
    Reading,
    error_text,
    read_exchange,
    read_response,
)
from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.retry import StopReason, retry_delay
from runner.run.answers import AnswerStats
from runner.run.consent import events_of
from runner.run.optouts import DEFAULT_WORDS, stop_word
from runner.run.replies import (
    Fetcher,
    ReadResult,
    ReadTally,
    ReadUnauthorized,
    chat_windows,
    read_replies,
)
from runner.store.journal import (
    Delivery,
    DeliveryPoll,
    DeliveryPollError,
    Journal,
    JournalOp,
    Reply,
    ReplyPassEnd,
)
from runner.store.ledger import ConsentEvent, Ledger

_FLUSH_EVERY_S = 0.2  # answers are committed at least this often (what a SIGKILL can lose)
_FLUSH_OPS = 512  # ... or as soon as this many are waiting
# Open messages queued in memory at once; more are read from the journal as these finish.
WINDOW = 20_000


@dataclass(frozen=True, slots=True)
class ReplyOptions:
    """How `track` reads replies: the vocabulary (``runner.run.optouts.stop_words``, a
    campaign's `optout_words` added), whether each reply's text is kept, and the consent
    ledger the replies are recorded in (``campaign``: the id its events name)."""

    words: Vocabulary = DEFAULT_WORDS
    keep_text: bool = False
    ledger: Ledger | None = None
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class TrackOptions(ApiOptions):
    # max_attempts counts consecutive failed polls of one message (5xx, timeouts).
    request_timeout: float = 30.0
    timeout: float | None = 300.0  # the whole run; None = until everything is final
    # Per-message polling: the first poll this long after acceptance, then each interval
    # ``poll_factor`` times the last (with jitter), at most ``poll_cap``.
    first_poll: float = 1.0
    poll_factor: float = 2.0
    poll_cap: float = 60.0
    replies: ReplyOptions | None = None  # None: delivery only, no reply pass


class PollKind(StrEnum):
    STATUS = "status"  # the API said where the message is
    GONE = "gone"  # the API does not know the message: final as DeliveryStatus.NOT_FOUND
    RETRY = "retry"  # no usable answer: ask again
    UNAUTHORIZED = "unauthorized"


@dataclass(slots=True)
class PollVerdict(EndpointVerdict[PollKind]):
    """What one status request means for the message."""

    status: str | None = None
    protocol: str | None = None
    time_sent: int | None = None
    time_delivered: int | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def final(self) -> bool:
        return self.kind is PollKind.GONE or (
            self.kind is PollKind.STATUS and self.status in FINAL_DELIVERY_STATUSES
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify_poll(
    status: int, raw: bytes, headers: httpx.Headers | dict[str, str], now: float
) -> PollVerdict:
    """Turn a status-endpoint response into a verdict (MessageStatus, API reference §3)."""
    return poll_verdict(read_response(status, raw, headers, now, MESSAGE_STATUS))


_POLL_KINDS = {Disposition.UNAUTHORIZED: PollKind.UNAUTHORIZED, Disposition.GONE: PollKind.GONE}


def poll_verdict(reading: Reading) -> PollVerdict:
    """What a classified answer of the status endpoint means for the message."""
    status, payload = reading.http_status, reading.payload
    if reading.disposition is Disposition.OK:
        if payload is None:
            # A 2xx we cannot read says nothing about the message: ask again later.
            return PollVerdict(PollKind.RETRY, status, error="unreadable status response")
        value = payload.get("status")
        return PollVerdict(
            PollKind.STATUS,
            status,
            status=value if isinstance(value, str) else "pending",  # nullable in the spec
            protocol=error_text(payload.get("protocol")) or "pending",
            time_sent=_int(payload.get("time_sent")),
            time_delivered=_int(payload.get("time_delivered")),
            error=error_text(payload.get("error")),
        )
    kind = _POLL_KINDS.get(reading.disposition, PollKind.RETRY)
    # GONE: the API does not know this message in this chat; asking again will not change that.
    return PollVerdict(
        kind,
        status,
        status=DeliveryStatus.NOT_FOUND if kind is PollKind.GONE else None,
        error=reading.why,
        retry_after=reading.retry_after,
    )


def poll_interval(polls: int, options: TrackOptions, rng: random.Random) -> float:
    """Seconds until the next poll of a message already polled ``polls`` times (>= 1).

    Grows geometrically up to ``poll_cap``; "equal jitter" (half fixed, half random) keeps
    thousands of messages accepted together from being polled in lock step.
    """
    ceiling = min(options.poll_cap, options.first_poll * options.poll_factor ** max(polls, 0))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


def status_path(chat: str, message_id: str) -> str:
    return f"/chats/{quote(chat, safe='')}/messages/{quote(message_id, safe='')}/status"


@dataclass
class TrackStats:
    """Live counters of a tracking run (read by the progress line)."""

    total: int = 0  # messages with a deliveries row
    open: int = 0  # not final yet
    given_up: int = 0  # left open by this run after max_attempts failed polls in a row
    polls: int = 0  # HTTP requests this run
    poll_errors: int = 0  # of which got no usable answer
    # Polls that got no answer at all, by the client's text (host, phase, reason).
    network_errors: Counter[str] = field(default_factory=Counter)
    became_final: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # final statuses reached this run
    started: float = field(default_factory=time.monotonic)
    # The reply pass (None: not run): chats asked, requests, new replies stored, of which
    # stop words, chats that could not be read.
    reply_chats: int | None = None
    reply_requests: int = 0
    replies_new: int = 0
    reply_stops: int = 0
    reply_failed: int = 0
    consent_changes: int = 0  # chats whose standing in the consent ledger the pass changed
    polls_saved: int = 0  # messages a webhook made final: never polled (campaign listen)


@dataclass
class TrackResult:
    stats: TrackStats
    stop_reason: StopReason | None
    duration: float = 0.0
    answered: AnswerStats | None = None  # HELP answers and confirmations sent after

    @property
    def exit_code(self) -> int:
        return (
            exitcodes.OK if self.stats.open == 0 and self.stop_reason is None else exitcodes.STOPPED
        )


class Tracker(ApiCaller[TrackOptions]):
    """Polls one journal's open deliveries. ``await run()``; ``request_stop()`` stops it."""

    def __init__(
        self,
        journal: Journal,
        *,
        api_key: str,
        options: TrackOptions,
        revision: int,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        window: int = WINDOW,
    ) -> None:
        super().__init__(
            api_key=api_key, options=options, transport=transport, limiter=limiter, rng=rng
        )
        self.journal = journal
        self.revision = revision
        self.stats = TrackStats()
        self._clock = clock
        self._wake: asyncio.Event | None = None
        self._ops: list[JournalOp] = []
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = 0
        self.window = window  # open messages held in memory at once
        self._after = 0  # the journal cursor of open deliveries queued so far
        self._exhausted = False
        self._loaded = False
        self._held = 0  # messages queued or being polled: what the window bounds

    # -- control -------------------------------------------------------------------------
    def _wake_on_stop(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- the run -------------------------------------------------------------------------
    def load(self) -> int:
        """Add rows for newly accepted messages, count them, and queue the first window of
        open ones; returns how many are open."""
        self.journal.seed_deliveries(self.revision)
        counts = self.journal.delivery_counts(self.revision)
        self.stats.total = counts.total
        self.stats.open = counts.open
        self.stats.polls_saved = counts.final_unpolled  # finished by a webhook: never asked
        self._loaded = True
        self._refill()
        return counts.open

    def _refill(self) -> None:
        """Top the queue up to ``window`` messages from the journal's open ones not queued yet.

        The journal is walked once, in seeding order: a message queued stays queued until it is
        final or left for a later run, so the rows past the cursor are exactly those not seen
        yet. Memory holds a window, not the campaign (a million messages: ~ a few MB)."""
        if self._exhausted or self._held > self.window // 2:
            return
        page = self.journal.open_deliveries(self.revision, self._after, self.window - self._held)
        self._after = page.after
        if not page.rows:
            self._exhausted = True
            return
        self._held += len(page.rows)
        now = self._clock()
        for d in page.rows:
            if d.next_poll_at is not None:
                due = d.next_poll_at
            else:
                due = (d.accepted_at or now) + self.options.first_poll
            self._push(max(due, now), d)

    def _push(self, due: float, d: Delivery) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, d))

    async def run(self) -> TrackResult:
        self._wake = asyncio.Event()
        if not self._loaded:
            self.load()
        opts = self.options
        started = time.monotonic()
        deadline = started + opts.timeout if opts.timeout is not None else None
        api = self.client(opts.request_timeout)
        slots = asyncio.Semaphore(opts.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        flusher = asyncio.create_task(self._flush_loop(), name="track-flush")
        timed_out = False

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            slots.release()
            assert self._wake is not None
            self._wake.set()

        try:
            while not self.stopping:
                if deadline is not None and time.monotonic() >= deadline:
                    timed_out = bool(self._heap) or not self._exhausted
                    break
                self._refill()
                if not self._heap:
                    if not tasks:
                        break
                    await self._idle(None, deadline)
                    continue
                wait = self._heap[0][0] - self._clock()
                if wait > 0:
                    await self._idle(wait, deadline)
                    continue
                await slots.acquire()
                if self.stopping or not self._heap:
                    slots.release()
                    continue
                _, _, delivery = heapq.heappop(self._heap)
                await self._limiter.acquire()
                if self.stopping:  # released by a stop: its delivery stays open in the journal
                    slots.release()
                    break
                task = asyncio.create_task(self._poll(api, delivery))
                tasks.add(task)
                task.add_done_callback(done)
            if tasks:
                await asyncio.gather(*list(tasks), return_exceptions=True)
            if opts.replies is not None and not self.stopping:
                self.flush()
                await self._read_replies(api, opts.replies)
        finally:
            for task in list(tasks):
                task.cancel()
            if tasks:
                await asyncio.gather(*list(tasks), return_exceptions=True)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            self.flush()
            await api.aclose()
        reason = self._stop_reason
        if reason is None and timed_out:
            reason = StopReason.TIMEOUT
        if reason is None and (self.stats.given_up or self.stats.reply_failed):
            reason = StopReason.RETRIES_EXHAUSTED
        return TrackResult(self.stats, reason, time.monotonic() - started)

    async def _idle(self, seconds: float | None, deadline: float | None) -> None:
        """Wait until the next message is due, a poll finishes, a stop, or the deadline."""
        assert self._wake is not None
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            seconds = left if seconds is None else min(seconds, left)
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # -- one poll ------------------------------------------------------------------------
    async def _poll(self, api: ApiClient, d: Delivery) -> None:
        opts = self.options
        stats = self.stats
        ex = await api.request("GET", status_path(d.chat, d.message_id))
        verdict = poll_verdict(read_exchange(ex, MESSAGE_STATUS, self._clock()))
        stats.polls += 1
        now = self._clock()
        if verdict.kind is PollKind.UNAUTHORIZED:
            stats.poll_errors += 1
            self.request_stop(StopReason.UNAUTHORIZED)
            return
        if verdict.kind is PollKind.RETRY:
            stats.poll_errors += 1
            if verdict.http_status is None:
                stats.network_errors[api.redact(verdict.error) or "network error"] += 1
            d.poll_errors += 1
            d.polls += 1
            delay = retry_delay(d.poll_errors, verdict.retry_after, opts, self._rng)
            if delay is None:
                # Left open for a later run; it will be asked first thing then.
                stats.given_up += 1
                self._held -= 1
                self._ops.append(DeliveryPollError(d.message_id, now=now, next_poll_at=now))
                return
            self._ops.append(DeliveryPollError(d.message_id, now=now, next_poll_at=now + delay))
            self._push(now + delay, d)
            self._maybe_flush()
            return
        d.polls += 1
        d.poll_errors = 0
        final = verdict.final
        next_at = None if final else now + poll_interval(d.polls, opts, self._rng)
        self._ops.append(
            DeliveryPoll(
                d.message_id,
                status=verdict.status,
                protocol=verdict.protocol,
                time_sent=verdict.time_sent,
                time_delivered=verdict.time_delivered,
                error=api.redact(verdict.error),
                now=now,
                next_poll_at=next_at,
                final=final,
            )
        )
        if final:
            self._held -= 1
            stats.open -= 1
            stats.became_final += 1
            stats.statuses[verdict.status or "unknown"] += 1
        else:
            assert next_at is not None
            self._push(next_at, d)
        self._maybe_flush()

    # -- replies -------------------------------------------------------------------------
    async def _read_replies(self, api: ApiClient, how: ReplyOptions) -> None:
        """One page of new inbound replies per messaged chat, stored in the journal with the
        pass's own record (``reply_passes``): when it ran, how many chats it read, how many
        failed, and whether it finished or was stopped.

        The chats are read a window at a time (runner.run.replies.chat_windows), each
        window's replies recorded and committed before the next is read: memory holds one
        window whatever the campaign's size, and a pass killed midway keeps what it read."""
        windows = chat_windows(self.journal, cursors=True)
        stats = self.stats
        stats.reply_chats = windows.count
        pass_id = self.journal.start_reply_pass(windows.count, self._clock())
        fetcher = Fetcher(api, self._limiter, self.options, rng=self._rng, clock=self._clock)
        total = ReadTally()
        try:
            for checks in windows.pages:
                if self.stopping:
                    break
                read = await read_replies(
                    checks,
                    fetcher,
                    concurrency=self.options.concurrency,
                    max_pages=1,
                    stopping=lambda: self.stopping,
                )
                total.add(read)
                self._store_window(read, how)
        except ReadUnauthorized:
            # The window being read is dropped: none of its replies is stored.
            stats.reply_requests = fetcher.requests
            self.request_stop(StopReason.UNAUTHORIZED)
            total.requests = fetcher.requests
            self.journal.apply([self._pass_end(pass_id, windows.count, total)])
            return
        except (asyncio.CancelledError, KeyboardInterrupt):
            # A second Ctrl-C: say the pass was stopped if the journal still takes a write.
            total.requests = fetcher.requests
            with contextlib.suppress(sqlite3.Error):
                self.journal.apply(
                    [
                        self._pass_end(
                            pass_id,
                            windows.count,
                            total,
                            reason=self._stop_reason or StopReason.INTERRUPTED,
                        )
                    ]
                )
            raise
        stats.reply_requests = total.requests
        stats.reply_failed = total.failed
        self.journal.apply([self._pass_end(pass_id, windows.count, total, stats.replies_new)])

    def _store_window(self, read: ReadResult, how: ReplyOptions) -> None:
        """One window's replies: their meaning into the ledger, then the journal's rows."""
        stats = self.stats
        self._record_consent(read, how)
        now = self._clock()
        known = self.journal.replies_of(c.check.chat for c in read.chats)
        ops: list[JournalOp] = []
        for chat in read.chats:
            for msg in chat.messages:
                reply = reply_row(chat.check.chat, msg, how, now)
                if reply is None or reply.message_id in known:
                    continue
                known.add(reply.message_id)
                ops.append(reply)
                stats.replies_new += 1
                stats.reply_stops += reply.is_stop
        if ops:
            self.journal.apply(ops)

    def _record_consent(self, read: ReadResult, how: ReplyOptions) -> None:
        """The replies' meaning into the state's consent ledger, before the journal's rows: a
        crash between the two reads them again, and the ledger records a reply once."""
        if how.ledger is None or not read.chats:
            return
        contacts = how.ledger.contacts([c.check.chat for c in read.chats])
        events: list[ConsentEvent] = []
        cursors: dict[str, int] = {}
        for chat in read.chats:
            contact = contacts.get(chat.check.chat)
            found = events_of(
                chat.check.chat,
                chat.messages,
                how.words,
                campaign=how.campaign,
                step=contact.last_step if contact is not None else None,
            )
            events.extend(found.events)
            if found.cursor_ms is not None:
                cursors[chat.check.chat] = found.cursor_ms
        changes = how.ledger.record(events, cursors)
        self.stats.consent_changes += len(changes)

    def _pass_end(
        self,
        pass_id: int,
        chats: int,
        read: ReadTally,
        new: int = 0,
        reason: StopReason | None = None,
    ) -> ReplyPassEnd:
        """The pass's closing record. A stop (Ctrl-C, 401) that left chats unread is named; one
        that came after every chat was read changed nothing, so the pass counts as finished."""
        if reason is None and read.done + read.failed < chats:
            reason = self._stop_reason
        return ReplyPassEnd(
            pass_id,
            chats_read=read.done,
            chats_failed=read.failed,
            requests=read.requests,
            replies_new=new,
            stop_reason=reason,
            now=self._clock(),
        )

    # -- journal -------------------------------------------------------------------------
    def _maybe_flush(self) -> None:
        if len(self._ops) >= _FLUSH_OPS:
            self.flush()

    def flush(self) -> None:
        """Commit every answer received so far (one transaction)."""
        if self._ops:
            ops, self._ops = self._ops, []
            self.journal.apply(ops)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            self.flush()


def reply_row(chat: str, msg: Any, how: ReplyOptions, now: float) -> Reply | None:
    """The journal row of one inbound message (None when it is not one or has no id)."""
    if not isinstance(msg, dict) or msg.get("direction", "inbound") != "inbound":
        return None
    mid = msg.get("message_id")
    if not isinstance(mid, str) or not mid:
        return None
    raw_text = msg.get("text")
    text = raw_text if isinstance(raw_text, str) else ""
    at = _int(msg.get("time_sent"))
    sender = msg.get("sender") if isinstance(msg.get("sender"), str) else None
    return Reply(
        mid,
        chat,
        at if at is not None else int(now * 1000),
        len(text),
        stop_word(text, how.words) is not None,
        sender=sender,
        text=text if how.keep_text else None,
        now=now,
    )

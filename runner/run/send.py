"""The executor: sends a plan's requests, journalling each attempt before it leaves.

Shape of a run: a feeder streams the plan (it may hold 100k+ requests, so it is never
materialised), groups consecutive requests by recipient, looks their keys up in the journal in
bulk and hands each recipient to a pool of ``concurrency`` workers. A worker sends one
recipient's steps in order (a step only after the previous one was accepted), so recipients
go in parallel and each recipient's conversation stays in order. A shared token bucket caps the
rate across workers; the transport is injected so tests and benchmarks choose it.

What a response means is decided by :func:`verdict_of` alone (pure, tested rule by rule), on
top of the classifier every command shares (runner.http.classify); retries go through the one
loop of runner.http.retry.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from runner import exitcodes
from runner.campaign.schedule import Readiness
from runner.contract import CAP_DETAILS, SEND_MESSAGE, CapCode
from runner.errors import StoppedEarly
from runner.http.caller import ApiCaller
from runner.http.classify import Disposition, EndpointVerdict, Reading, read_exchange
from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.retry import StopReason, retrying
from runner.planning.keys import content_hash
from runner.planning.request import PlannedRequest
from runner.run.consent import Clearance, ConsentGate, ConsentStats
from runner.run.replies import Fetcher
from runner.states import RequestStatus, Wait
from runner.store.journal import (
    ACCEPTED,
    COMMIT_AHEAD,
    EXPIRED,
    FAILED,
    PENDING,
    SCHEDULED,
    Attempt,
    Entry,
    Journal,
    JournalWriter,
    Mark,
    Outcome,
)

# Failures decided by the runner, not the API: reconsidered on every run, since the step they
# waited on may have been accepted since.
REPLY_PARENT_MISSING = "reply_parent_missing"
PREVIOUS_STEP_FAILED = "previous_step_failed"
_RECONSIDERED = (REPLY_PARENT_MISSING, PREVIOUS_STEP_FAILED)
UNCONFIRMED_PAST_NOT_AFTER = "unconfirmed_past_not_after"
REPLIES_UNREAD = "replies_unread"  # a chat messaged before whose new replies could not be read

_LOOKUP_BATCH = 512  # keys looked up in the journal per round trip
_RECORDED_OPTIONS = ("base_url", "rate_per_second", "concurrency", "timeout", "max_attempts")


@dataclass(frozen=True, slots=True)
class SendOptions(ApiOptions):
    timeout: float = 30.0  # seconds per HTTP request

    def to_dict(self) -> dict[str, Any]:
        """What the journal's run row records of the options."""
        return {name: getattr(self, name) for name in _RECORDED_OPTIONS}


# One recipient's requests in step order, each with its journal row (None: never tried).
Group = list[tuple[PlannedRequest, Entry | None]]


class Kind(StrEnum):
    """What one try of a request came to."""

    ACCEPTED = "accepted"
    FAILED = "failed"  # for good
    RETRY = "retry"
    UNAUTHORIZED = "unauthorized"
    CAP = "cap"
    STOPPED = "stopped"  # not sent: the run is stopping (or new conversations are closed)
    NOT_DUE = "not_due"  # not sent: its window closed while it waited for its turn


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where one request stands after its tries this run (``Executor._deliver``)."""

    status: RequestStatus  # ACCEPTED, FAILED, SCHEDULED (its window closed) or PENDING
    message_id: str | None = None  # the API's id, when accepted


@dataclass(slots=True)
class Verdict(EndpointVerdict[Kind]):
    """What one HTTP exchange means for the message."""

    # Why it was not accepted: the API's code and message, a cap's figures, when to ask again.
    code: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None
    # What an accepted request became.
    message_id: str | None = None
    message_ids: list[str] | None = None
    group_id: str | None = None


# (request, previous step accepted at, has a previous step, now) -> its readiness: see
# runner.campaign.schedule.gate_for.
Gate = Callable[[PlannedRequest, "float | None", bool, float], Readiness]


def verdict_of(reading: Reading) -> Verdict:
    """What a classified answer of the send endpoint means for the message."""
    status, code, message = reading.http_status, reading.code, reading.message
    payload = reading.payload or {}
    match reading.disposition:
        case Disposition.OK if payload.get("status") == "failed":
            # Rejected before dispatch although the HTTP layer said yes: failed for good.
            return Verdict(Kind.FAILED, status, code or "rejected_before_dispatch", message)
        case Disposition.OK:
            ids = payload.get("message_ids")
            return Verdict(
                Kind.ACCEPTED,
                status,
                message_id=payload.get("message_id")
                if isinstance(payload.get("message_id"), str)
                else None,
                message_ids=[str(i) for i in ids] if isinstance(ids, list) else None,
                group_id=payload.get("group_id")
                if isinstance(payload.get("group_id"), str)
                else None,
            )
        case Disposition.UNAUTHORIZED:
            return Verdict(Kind.UNAUTHORIZED, status, code or "unauthorized", message)
        case Disposition.CAP:
            details = {k: payload[k] for k in CAP_DETAILS if k in payload}
            return Verdict(Kind.CAP, status, code, message, details=details)
        case Disposition.RETRY if status is None:
            return Verdict(Kind.RETRY, None, "network_error", message)
        case Disposition.RETRY:
            return Verdict(
                Kind.RETRY,
                status,
                code or f"http_{status}",
                message,
                retry_after=reading.retry_after,
            )
    return Verdict(Kind.FAILED, status, code or f"http_{status}", message)


@dataclass
class RunStats:
    """Live counters of a run (read by the progress display)."""

    total: int | None = None  # requests in the plan, when the caller knows it
    accepted: int = 0  # requests accepted, including those accepted by earlier runs
    already: int = 0  # of which accepted before this run
    failed: int = 0  # failed for good
    pending: int = 0  # left unconfirmed by this run (retryable later)
    retrying: int = 0  # currently waiting to retry
    scheduled: int = 0  # not due yet (window, delay, not_before): left for a later run
    expired: int = 0  # past not_after: never sent
    kept: int = 0  # not sent: the consent ledger keeps the chat (opted out, held)
    next_due: float | None = None  # epoch seconds when the next scheduled request falls due
    messages_accepted: int = 0
    http_requests: int = 0  # requests that left this run, retries included
    started: float = field(default_factory=time.monotonic)
    failures: Counter[str] = field(default_factory=Counter)
    # Tries that got no answer, by the client's text (host, phase, reason), retried or not.
    network_errors: Counter[str] = field(default_factory=Counter)

    @property
    def done(self) -> int:
        return (
            self.accepted + self.failed + self.pending + self.scheduled + self.expired + self.kept
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "accepted": self.accepted,
            "already_accepted": self.already,
            "failed": self.failed,
            "pending": self.pending,
            "retrying": self.retrying,
            "scheduled": self.scheduled,
            "expired": self.expired,
            "kept_by_consent": self.kept,
            "next_due": self.next_due,
            "messages_accepted": self.messages_accepted,
            "http_requests": self.http_requests,
        }


@dataclass
class RunResult:
    stats: RunStats
    stop_reason: StopReason | None
    cap: dict[str, Any] | None = None
    duration: float = 0.0
    consent: ConsentStats | None = None  # what reading replies before re-messaging found

    @property
    def exit_code(self) -> int:
        if self.stop_reason is not None or self.stats.pending:
            return exitcodes.STOPPED
        if self.stats.failed or self.stats.expired:
            return (
                exitcodes.FAILED
            )  # failed for good, or expired (past not_after): will never be sent
        # Everything due was accepted; the rest waits on its schedule (re-run, or --wait).
        return exitcodes.WAITING if self.stats.scheduled else exitcodes.OK

    def counts(self) -> dict[str, Any]:
        out = self.stats.snapshot()
        out.pop("retrying", None)
        out["duration_s"] = round(self.duration, 3)
        return out


def group_by_recipient(plan: Iterable[PlannedRequest]) -> Iterator[list[PlannedRequest]]:
    """Consecutive requests of one recipient, in plan order."""
    for _, reqs in itertools.groupby(plan, key=lambda r: (r.recipient_index, r.recipient)):
        yield list(reqs)


class Executor(ApiCaller[SendOptions]):
    """Sends one plan. Create, then ``await run(plan)``; ``request_stop()`` stops gracefully."""

    def __init__(
        self,
        journal: Journal,
        *,
        api_key: str,
        options: SendOptions,
        transport: httpx.AsyncBaseTransport | None = None,
        revision: int = 1,
        run_id: int | None = None,
        limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        gate: Gate | None = None,
        consent: ConsentGate | None = None,
        on_accepted: Callable[[str, float, int], None] | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, options=options, transport=transport, limiter=limiter, rng=rng
        )
        self.journal = journal
        self.revision = revision
        self.run_id = run_id
        self.stats = RunStats()
        self._wall = wall
        self._sleep = sleep
        self._gate = gate
        self._consent = consent
        self._on_accepted = on_accepted  # (chat, when, messages): frequency caps count it
        self._fetcher: Fetcher | None = None
        self._api: ApiClient | None = None
        self._stop: asyncio.Event | None = None
        self._new_conversations_closed = False
        self._cap: dict[str, Any] | None = None
        self._exhausted = False
        self._writer: JournalWriter | None = None
        self._in_flight = asyncio.Semaphore(1)  # set per run: `concurrency` slots
        self._workers = 1

    # -- control -------------------------------------------------------------------------
    def _wake_on_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # -- the run -------------------------------------------------------------------------
    async def run(self, plan: Iterable[PlannedRequest], total: int | None = None) -> RunResult:
        self._stop = asyncio.Event()
        if self._stop_reason is not None:
            self._stop.set()
        self.stats = RunStats(total=total)
        self._api = self.client(self.options.timeout)
        self._fetcher = Fetcher(
            self._api,
            self._limiter,
            self.options,
            sleep=self._wait_retry,
            rng=self._rng,
            clock=self._wall,
        )
        self._writer = JournalWriter(self.journal)
        self._writer.start()
        concurrency = self.options.concurrency
        # At most `concurrency` requests in flight, whatever the transport. A few more workers
        # than that have their next attempt committed to the journal while they wait for a
        # slot, so a freed slot carries the next request at once instead of after a commit:
        # as many more as the journal's commits are slow (a database over the network, whose
        # commit may take a good part of the API's answer time, needs more of them).
        self._in_flight = asyncio.Semaphore(concurrency)
        ahead = getattr(self.journal, "commit_ahead", COMMIT_AHEAD)
        self._workers = concurrency + max(2, int(concurrency * ahead))
        queue: asyncio.Queue[Group | None] = asyncio.Queue(maxsize=self._workers * 2)
        workers = [
            asyncio.create_task(self._worker(queue), name=f"send-worker-{i}")
            for i in range(self._workers)
        ]
        feeder = asyncio.create_task(self._feed(plan, queue), name="send-feeder")
        tasks = [feeder, *workers]
        try:
            # If any task fails (the journal cannot be written, the plan raises), the others
            # must not wait forever on the queue for it: stop them all and report the error.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._writer.close()
            await self._api.aclose()
            if self._consent is not None:
                self._consent.flush()
        stats = self.stats
        if stats.total is not None and stats.total > stats.done:
            stats.pending += stats.total - stats.done  # never handed out: the run stopped early
        reason = self._stop_reason
        if reason is None and self._cap is not None:
            reason = StopReason(self._cap["code"])
        if reason is None and self._exhausted:
            reason = StopReason.RETRIES_EXHAUSTED
        return RunResult(
            stats,
            reason,
            self._cap,
            time.monotonic() - stats.started,
            self._consent.stats if self._consent is not None else None,
        )

    async def _feed(
        self, plan: Iterable[PlannedRequest], queue: asyncio.Queue[Group | None]
    ) -> None:
        groups = group_by_recipient(plan)
        # On failure or cancellation this simply ends: run() cancels the workers, so no
        # sentinel is owed (a blocking put on a full queue nobody drains would hang).
        while not self.stopping:
            batch: list[list[PlannedRequest]] = []
            size = 0
            for group in groups:
                batch.append(group)
                size += len(group)
                if size >= _LOOKUP_BATCH:
                    break
            if not batch:
                break
            keys = [r.key for g in batch for r in g]
            # A database's journal answers on the loop (runner.store.pgjournal): the workers
            # keep sending while the lookup travels.
            lookup_async = getattr(self.journal, "lookup_async", None)
            known = await lookup_async(keys) if lookup_async else self.journal.lookup(keys)
            for group in batch:
                if self.stopping:
                    break
                await queue.put([(r, known.get(r.key)) for r in group])
        # Normal end (or a graceful stop): one sentinel per worker, after the work queued.
        for _ in range(self._workers):
            await queue.put(None)

    async def _worker(self, queue: asyncio.Queue[Group | None]) -> None:
        while True:
            group = await queue.get()
            if group is None:
                return
            if self.stopping:
                self._leave_pending(group)
            else:
                await self._send_recipient(group)

    def _leave_pending(
        self, rest: list[tuple[PlannedRequest, Entry | None]], *, kept: bool = False
    ) -> None:
        """Count the requests a recipient will not get this run: accepted earlier, else
        pending (or, ``kept``, kept by the consent ledger: they left the plan)."""
        for _, entry in rest:
            if entry is not None and entry.status == ACCEPTED:
                self.stats.accepted += 1
                self.stats.already += 1
            elif kept:
                self.stats.kept += 1
            else:
                self.stats.pending += 1

    async def _send_recipient(self, group: list[tuple[PlannedRequest, Entry | None]]) -> None:
        stats = self.stats
        ids: dict[str, str | None] = {}  # step -> message_id, for accepted steps
        established = any(e is not None and e.status == ACCEPTED for _, e in group)
        blocked_by: str | None = None  # step that failed for good; later steps wait on it
        prev_accepted: float | None = None  # when this recipient's previous step was accepted
        cleared = self._consent is None  # the ledger allows this chat (asked once, before its
        # first message of the run)
        for index, (req, entry) in enumerate(group):
            if entry is not None and entry.status == ACCEPTED:
                stats.accepted += 1
                stats.already += 1
                ids[req.step] = entry.message_id
                prev_accepted = entry.finished_at or entry.last_attempt_at
                continue
            if self.stopping or (self._new_conversations_closed and not established):
                self._leave_pending(group[index:])
                return
            body_hash = content_hash(req.body)
            if (
                entry is not None
                and entry.status == FAILED
                and entry.error_code not in _RECONSIDERED
                and entry.content_hash == body_hash
            ):
                # Failed for good earlier, and the content is unchanged: it would fail again.
                stats.failed += 1
                stats.failures[entry.error_code or "failed"] += 1
                blocked_by = blocked_by or req.step
                continue
            if blocked_by is not None:
                self._mark_failed(
                    req,
                    body_hash,
                    PREVIOUS_STEP_FAILED,
                    f"not sent: step {blocked_by!r} failed for this recipient",
                )
                continue
            # Time first: an expired or waiting step is neither sent nor failed for its parent.
            if self._gate is not None:
                ready = self._gate(req, prev_accepted, index > 0, self._wall())
                if ready.state == Wait.EXPIRED:
                    if entry is not None and entry.attempts and entry.status != EXPIRED:
                        # Tried before and never confirmed: it may have gone out. Resending
                        # could send past not_after, and "expired" would claim it never went.
                        self._mark_failed(
                            req,
                            body_hash,
                            UNCONFIRMED_PAST_NOT_AFTER,
                            "may have been sent before an earlier run stopped; "
                            "not retried past not_after",
                        )
                        blocked_by = blocked_by or req.step
                        continue
                    self._mark(
                        req, body_hash, EXPIRED, "expired", "not_after passed before it was due"
                    )
                    stats.expired += 1
                    continue
                if ready.state != Wait.DUE:
                    self._leave_scheduled(group[index:], ready.due_at, ready.state.value)
                    return
            body = req.body
            if req.reply_to_step is not None:
                parent_id = ids.get(req.reply_to_step)
                if parent_id is None:
                    self._mark_failed(
                        req,
                        body_hash,
                        REPLY_PARENT_MISSING,
                        f"step {req.reply_to_step!r} has no accepted message_id to reply to",
                    )
                    blocked_by = req.step
                    continue
                body = {**body, "reply_to": {"message_id": parent_id}}
            if not cleared:
                clearance = await self._clearance(req.recipient)
                if clearance is not Clearance.CLEAR:
                    self._not_cleared(clearance, group[index:], body_hash)
                    return
                cleared = True
            elif self._consent is not None and self._consent.kept_now(req.recipient):
                # An opt-out that arrived during the run (`campaign listen` wrote it): the
                # chat's later steps stop here.
                self._not_cleared(Clearance.KEPT, group[index:], body_hash)
                return
            delivered = await self._deliver(
                req, body, body_hash, established, prev_accepted, index > 0
            )
            state = delivered.status
            if state == SCHEDULED:
                self._leave_scheduled(group[index:], None, "window_closed_while_queued")
                return
            if state == ACCEPTED:
                established = True
                ids[req.step] = delivered.message_id
                prev_accepted = self._wall()
            elif state == FAILED:
                blocked_by = req.step
            else:
                # Pending: it and the later steps wait for a later run.
                self._leave_pending(group[index:])
                return

    async def _clearance(self, chat: str) -> Clearance:
        """The consent ledger's word on messaging ``chat`` now; reading its new replies (when
        the state messaged it before) takes a slot like any request."""
        assert self._consent is not None and self._fetcher is not None
        quick = self._consent.quick(chat)
        if quick is not None:
            return quick
        async with self._in_flight:
            if self.stopping:
                return Clearance.STOPPED
            return await self._consent.read(chat, self._fetcher)

    def _not_cleared(
        self, clearance: Clearance, rest: list[tuple[PlannedRequest, Entry | None]], body_hash: str
    ) -> None:
        """A chat the run does not message: kept by the ledger (its requests are not sent and
        get no row: they left the plan), or its replies unread (left pending, said why)."""
        if clearance is Clearance.KEPT:
            self._leave_pending(rest, kept=True)
            return
        if clearance is Clearance.STOPPED:
            self.request_stop(StopReason.UNAUTHORIZED)
            self._leave_pending(rest)
            return
        req = rest[0][0]
        self._mark(
            req,
            body_hash,
            PENDING,
            REPLIES_UNREAD,
            "not sent: this chat's new replies could not be read (never messaged blind)",
        )
        self._leave_pending(rest)

    def _mark_failed(self, req: PlannedRequest, body_hash: str, code: str, message: str) -> None:
        self._mark(req, body_hash, FAILED, code, message)
        self.stats.failed += 1
        self.stats.failures[code] += 1

    def _mark(
        self, req: PlannedRequest, body_hash: str, status: RequestStatus, code: str, message: str
    ) -> None:
        assert self._writer is not None
        self._writer.write(
            Mark.of(
                req,
                self.revision,
                status=status,
                error_code=code,
                error_message=message,
                content_hash=body_hash,
                run_id=self.run_id,
                now=self._wall(),
            )
        )

    def _leave_scheduled(
        self,
        rest: list[tuple[PlannedRequest, Entry | None]],
        due_at: float | None,
        reason: str = "not_due",
    ) -> None:
        """The rest of a recipient's steps wait for their time (a later run, or --wait); the
        journal says so (status "scheduled", why, and when the first of them falls due)."""
        stats = self.stats
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due_at)) if due_at else None
        for i, (req, entry) in enumerate(rest):
            if entry is not None and entry.status == ACCEPTED:
                stats.accepted += 1
                stats.already += 1
                continue
            stats.scheduled += 1
            code = reason if i == 0 else "previous"
            note = f"due at {when}" if when and i == 0 else "waits for the previous step"
            self._mark(req, content_hash(req.body), SCHEDULED, code, note)
        if due_at is not None and (stats.next_due is None or due_at < stats.next_due):
            stats.next_due = due_at

    async def _deliver(
        self,
        req: PlannedRequest,
        body: dict[str, Any],
        body_hash: str,
        established: bool,
        prev_accepted: float | None = None,
        has_previous: bool = False,
    ) -> Delivered:
        """Send one request until it is accepted, fails for good, or must wait for a later run."""
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

        async def try_once(attempt: int) -> Verdict:
            return await self._try(
                req, content, body_hash, established, prev_accepted, has_previous
            )

        retried = await retrying(try_once, self.options, self._rng, self._wait_retry)
        verdict, gave_up = retried.verdict, retried.gave_up
        if gave_up:
            self._exhausted = True
        if verdict.kind is Kind.ACCEPTED:
            return Delivered(ACCEPTED, verdict.message_id)
        if verdict.kind is Kind.FAILED:
            return Delivered(FAILED)
        if verdict.kind is Kind.NOT_DUE:
            return Delivered(SCHEDULED)
        # Everything else leaves the request unconfirmed (pending) for a later run.
        return Delivered(PENDING)

    async def _try(
        self,
        req: PlannedRequest,
        content: bytes,
        body_hash: str,
        established: bool,
        prev_accepted: float | None,
        has_previous: bool,
    ) -> Verdict:
        """One try: journalled before it leaves, its outcome journalled after."""
        assert self._writer is not None
        stats = self.stats
        if self.stopping or (self._new_conversations_closed and not established):
            return Verdict(Kind.STOPPED)
        await self._writer.attempt(
            Attempt.of(
                req, self.revision, content_hash=body_hash, run_id=self.run_id, now=self._wall()
            )
        )
        # A slot first, then the rate limiter's token: a token is spent only by a request that
        # leaves at once, so requests waiting for slots cannot bunch up above the rate.
        async with self._in_flight:
            await self._limiter.acquire()
            # Asked again: a stop, or a cap on new conversations, may have come while this
            # request waited.
            if self.stopping or (self._new_conversations_closed and not established):
                verdict = Verdict(
                    Kind.STOPPED,
                    code="interrupted" if self.stopping else CapCode.NEW_CONVERSATION_LIMIT,
                )
                self._write_outcome(req.key, PENDING, verdict)
                return verdict
            if (
                self._gate is not None
                and self._gate(req, prev_accepted, has_previous, self._wall()).state != Wait.DUE
            ):
                # The window closed (or not_after passed) while this request waited for the
                # rate limiter or a retry: never send outside the schedule.
                verdict = Verdict(Kind.NOT_DUE, code="not_due")
                self._write_outcome(req.key, PENDING, verdict)
                return verdict
            verdict = await self._send_once(req, content)
        stats.http_requests += 1
        if verdict.kind is Kind.ACCEPTED:
            self._write_outcome(req.key, ACCEPTED, verdict)
            if self._on_accepted is not None:
                self._on_accepted(req.recipient, self._wall(), req.messages)
            stats.accepted += 1
            stats.messages_accepted += (
                len(verdict.message_ids) if verdict.message_ids else req.messages
            )
            return verdict
        if verdict.kind is Kind.FAILED:
            self._write_outcome(req.key, FAILED, verdict)
            stats.failed += 1
            stats.failures[verdict.code or "failed"] += 1
            return verdict
        self._write_outcome(req.key, PENDING, verdict)
        if verdict.http_status is None and verdict.kind is Kind.RETRY:
            assert self._api is not None  # opened by run() before any request
            stats.network_errors[self._api.redact(verdict.message) or "network error"] += 1
        if verdict.kind is Kind.UNAUTHORIZED:
            self.request_stop(StopReason.UNAUTHORIZED)
        elif verdict.kind is Kind.CAP:
            # A cap is not a blip: retrying this request now is pointless.
            self._on_cap(verdict)
        return verdict

    async def _wait_retry(self, delay: float) -> None:
        self.stats.retrying += 1
        try:
            await self._wait(delay)
        finally:
            self.stats.retrying -= 1

    async def _wait(self, delay: float) -> None:
        """Sleep before a retry, cut short when the run is asked to stop."""
        if self._sleep is not None:
            await self._sleep(delay)
            return
        assert self._stop is not None
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except TimeoutError:
            pass

    def _on_cap(self, verdict: Verdict) -> None:
        self._cap = {"code": verdict.code, "message": verdict.message, **verdict.details}
        if verdict.code == CapCode.NEW_CONVERSATION_LIMIT:
            # Existing conversations keep sending (the API allows it); new ones wait.
            self._new_conversations_closed = True
        else:
            self.request_stop(StopReason(verdict.code or CapCode.OUTBOUND_LIMIT))

    def _write_outcome(self, key: str, status: RequestStatus, verdict: Verdict) -> None:
        assert self._writer is not None and self._api is not None
        self._writer.write(
            Outcome(
                key,
                status,
                message_id=verdict.message_id,
                message_ids=verdict.message_ids,
                group_id=verdict.group_id,
                error_code=verdict.code if status != ACCEPTED else None,
                error_message=self._api.redact(verdict.message) if status != ACCEPTED else None,
                http_status=verdict.http_status,
                now=self._wall(),
            )
        )

    async def _send_once(self, req: PlannedRequest, content: bytes) -> Verdict:
        assert self._api is not None
        ex = await self._api.request(
            req.method,
            req.path,
            content,
            ((b"Content-Type", b"application/json"), (b"Idempotency-Key", req.key.encode("utf-8"))),
        )
        return verdict_of(read_exchange(ex, SEND_MESSAGE, self._wall()))


def interrupted_twice(command: str) -> StoppedEarly:
    """What a second Ctrl-C (a KeyboardInterrupt out of the run) means: stopped at once, and
    resumable like any stop (every request left has its journal row; the keys make a resend safe)."""
    return StoppedEarly(
        "stopped at once (Ctrl-C twice)",
        hint=f"run the same {command} command again to carry on; nothing is sent twice",
    )


def install_signal_handlers(executor: Executor) -> Callable[[], None]:
    """Ctrl-C (and SIGTERM) stop the run gracefully; a second Ctrl-C interrupts at once
    (a KeyboardInterrupt the caller turns into ``interrupted_twice``: exit 3, not 1).

    Call inside the running loop; returns a function that restores the default handlers.
    """
    loop = asyncio.get_running_loop()
    installed: list[int] = []

    def on_signal(signum: int) -> None:
        executor.request_stop(StopReason.INTERRUPTED)
        # The next one gets Python's default behaviour (KeyboardInterrupt): an impatient user
        # wins, and the journal still makes the run resumable.
        loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            pass

    def remove() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return remove

"""The answers the runner owes a chat, from what the consent ledger recorded: a HELP (or INFO)
is answered with the team's `help_text` once per chat per day, and a chat's first opt-out gets
the one `optout_confirmation` the FCC allows.

Which answers are due is a pure function of the ledger's events and answers (``answers_due``);
sending them (``send_answers``) goes through the one client, classifier and retry loop of every
send, each answer with its own deterministic key (runner.planning.keys.answer_key: a HELP's key
holds its UTC day, a confirmation's none), its attempt committed to the ledger before the
request leaves and its outcome after. So a crash, a second process or the same reply read by
`send`, `track` and `optouts` never answers twice: the key is the same, the API replays it.

Only replies from the last ``ANSWER_WINDOW_MS`` are answered: a ledger rebuilt from months of
replies must not answer old questions. Group chats are not answered (the answer would go to
every member). Both go to chats that opted out too: carriers require HELP to be answered
subscribed or not, and the confirmation is the one message allowed after an opt-out.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

import httpx

from runner.campaign.policy import Policy
from runner.consent.standing import EventKind
from runner.contract import SEND_MESSAGE
from runner.http.classify import read_exchange
from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.retry import retrying
from runner.planning.keys import answer_key
from runner.run.send import Kind, Verdict, verdict_of
from runner.states import RequestStatus
from runner.store.ledger import AnswerRow, Ledger, RecordedEvent

ANSWER_WINDOW_MS = 24 * 3600 * 1000
_DONE = (
    RequestStatus.ACCEPTED,
    RequestStatus.FAILED,
)  # an answer never tried again (failed: for good, say why)


class AnswerKind(StrEnum):
    HELP = "help"
    OPTOUT_CONFIRMATION = "optout_confirmation"


@dataclass(frozen=True, slots=True)
class AnswerTexts:
    """The team's texts (the policy file's `help_text` and `optout_confirmation`)."""

    help_text: str | None = None
    optout_confirmation: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.help_text or self.optout_confirmation)


def policy_answers(policy: Policy) -> AnswerTexts:
    """The team policy's HELP answer and opt-out confirmation (runner.yaml)."""
    return AnswerTexts(policy.help_text, policy.optout_confirmation)


@dataclass(frozen=True, slots=True)
class Answer:
    key: str
    chat: str
    kind: AnswerKind
    text: str
    event_id: int  # the ledger event it answers


@dataclass
class AnswerStats:
    help: int = 0  # HELP answers accepted by the API in this call
    confirmations: int = 0
    failed: int = 0  # for good (the API refused them)
    pending: int = 0  # not confirmed (retries ran out, the key refused): a later run retries


def _day(at_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at_ms / 1000))


def answers_due(
    events: Iterable[RecordedEvent],
    answered: Mapping[str, AnswerRow],
    texts: AnswerTexts,
    now_ms: int,
) -> list[Answer]:
    """The answers owed and not yet given, oldest first (pure)."""
    due: dict[str, Answer] = {}
    first_out: dict[str, RecordedEvent] = {}
    for e in sorted(events, key=lambda e: (e.at_ms, e.id)):
        if "," in e.chat or e.chat.startswith("grp_"):
            continue
        if e.kind is EventKind.OPTED_OUT and e.chat not in first_out:
            first_out[e.chat] = e
        if e.kind is EventKind.HELP and texts.help_text and now_ms - e.at_ms <= ANSWER_WINDOW_MS:
            key = answer_key(AnswerKind.HELP, e.chat, _day(e.at_ms))
            due.setdefault(key, Answer(key, e.chat, AnswerKind.HELP, texts.help_text, e.id))
    if texts.optout_confirmation:
        for chat, e in first_out.items():
            if e.source == "reply" and now_ms - e.at_ms <= ANSWER_WINDOW_MS:
                key = answer_key(AnswerKind.OPTOUT_CONFIRMATION, chat)
                due[key] = Answer(
                    key, chat, AnswerKind.OPTOUT_CONFIRMATION, texts.optout_confirmation, e.id
                )
    return [a for a in due.values() if a.key not in answered or answered[a.key].status not in _DONE]


async def send_answers(
    answers: list[Answer],
    ledger: Ledger,
    api: ApiClient,
    options: ApiOptions,
    *,
    limiter: RateLimiter | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
) -> AnswerStats:
    """Send each answer (a few at a time) and record what came of it in the ledger."""
    stats = AnswerStats()
    limiter = limiter or RateLimiter(options.rate_per_second)
    rng = rng or random.Random()
    sem = asyncio.Semaphore(max(1, min(options.concurrency, 4)))
    stop = False

    async def one(a: Answer) -> None:
        nonlocal stop
        async with sem:
            if stop:
                stats.pending += 1
                return
            ledger.answer_attempt(a.key, a.chat, a.kind, a.event_id, clock())
            body = ('{"text":' + _json_string(a.text) + "}").encode("utf-8")
            headers = (
                (b"Content-Type", b"application/json"),
                (b"Idempotency-Key", a.key.encode("ascii")),
            )

            async def try_once(attempt: int) -> Verdict:
                await limiter.acquire()
                ex = await api.request(
                    "POST", f"/chats/{quote(a.chat, safe='')}/messages", body, headers
                )
                return verdict_of(read_exchange(ex, SEND_MESSAGE, clock()))

            verdict = (await retrying(try_once, options, rng, asyncio.sleep)).verdict
            if verdict.kind is Kind.ACCEPTED:
                ledger.answer_outcome(
                    a.key, RequestStatus.ACCEPTED, verdict.message_id, None, clock()
                )
                if a.kind is AnswerKind.HELP:
                    stats.help += 1
                else:
                    stats.confirmations += 1
            elif verdict.kind is Kind.FAILED:
                ledger.answer_outcome(
                    a.key, RequestStatus.FAILED, None, api.redact(verdict.code), clock()
                )
                stats.failed += 1
            else:
                if verdict.kind is Kind.UNAUTHORIZED:
                    stop = True
                ledger.answer_outcome(
                    a.key, RequestStatus.PENDING, None, api.redact(verdict.code), clock()
                )
                stats.pending += 1

    await asyncio.gather(*(one(a) for a in answers))
    return stats


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


async def answer_owed(
    ledger: Ledger,
    texts: AnswerTexts,
    *,
    base_url: str,
    api_key: str,
    options: ApiOptions,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    now: float | None = None,
) -> AnswerStats:
    """Send every answer the ledger says is owed (nothing when the team set no texts)."""
    if not texts.any:
        return AnswerStats()
    at = time.time() if now is None else now
    due = answers_due(
        ledger.events(kinds=(EventKind.HELP, EventKind.OPTED_OUT)),
        ledger.answers(),
        texts,
        int(at * 1000),
    )
    if not due:
        return AnswerStats()
    async with ApiClient(
        base_url,
        api_key,
        timeout=timeout,
        concurrency=options.concurrency,
        transport=transport,
        stack=options.http_stack,
    ) as api:
        return await send_answers(due, ledger, api, options)

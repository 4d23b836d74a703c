"""Opt-outs: find stop-word replies from the chats a campaign has messaged and record them in
its first suppression file, so the next `send` (which re-reads the files) skips those people.

What a reply means (`read_reply`: an opt-out, a reply for a person to review, or nothing;
`read_chat`), and the two edges: reading inbound messages over HTTP (`collect`, through
runner.run.replies, the path `track` reads replies by too) and appending to the file
(`record`, atomic, idempotent).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import re
import tempfile
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.mask import mask_one
from runner.audience.suppress import load_suppression
from runner.contract import STOP_WORDS
from runner.errors import CampaignError, StoppedEarly
from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.stacks import FAST
from runner.run.replies import SKEW_MS as SKEW_MS  # re-exported: callers met it here first
from runner.run.replies import ChatToCheck as ChatToCheck
from runner.run.replies import (
    Fetcher,
    ReadUnauthorized,
    read_replies,
)
from runner.run.replies import chats_to_check as chats_to_check

NOTE_COLUMNS = ("note", "notes", "comment", "reason")


# -- what a reply means ---------------------------------------------------------------------


OPTOUT = "optout"  # the reply revokes consent: recorded
REVIEW = "review"  # a stop word elsewhere in the reply ("please stop texting me"): for a person
REVIEW_EXCERPT = 160  # characters of a reply shown for review
_EMAIL = re.compile(r"[^\s@,;:<>()\[\]\"']+@[^\s@,;:<>()\[\]\"']+\.[^\s@,;:<>()\[\]\"']+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def normalize_reply(text: str) -> str:
    """Trimmed, case-folded, punctuation (and symbols) gone, spaces collapsed: "Opt-Out!" is
    "opt out". NFKC first: full-width or styled letters from a phone keyboard read as plain."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in folded).split())


def stop_words(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The standard stop words and a campaign's own, normalised, longest first (so a phrase
    wins over its first word), without repeats or empties."""
    words = {normalize_reply(w) for w in (*STOP_WORDS, *extra)}
    words.discard("")
    return tuple(sorted(words, key=lambda w: (-len(w), w)))


DEFAULT_WORDS = stop_words()


def read_reply(text: Any, words: tuple[str, ...] = DEFAULT_WORDS) -> tuple[str, str] | None:
    """``(OPTOUT, WORD)`` when the reply is a stop word or starts with one, ``(REVIEW, WORD)``
    when one appears later in it, else None. ``words`` come from ``stop_words``."""
    if not isinstance(text, str):
        return None
    reply = normalize_reply(text)
    if not reply:
        return None
    for word in words:
        if reply == word or reply.startswith(word + " "):
            return OPTOUT, word.upper()
    padded = f" {reply} "
    for word in words:
        if f" {word} " in padded:
            return REVIEW, word.upper()
    return None


def stop_word(text: Any, words: tuple[str, ...] = DEFAULT_WORDS) -> str | None:
    """The stop word a reply opts out with (see ``read_reply``), else None."""
    meaning = read_reply(text, words)
    return meaning[1] if meaning is not None and meaning[0] == OPTOUT else None


def mask_text(text: str) -> str:
    """A reply cut to an excerpt, with the phone numbers and emails in it masked."""
    cut = " ".join(text.split())
    cut = cut if len(cut) <= REVIEW_EXCERPT else cut[:REVIEW_EXCERPT - 1] + "…"
    cut = _EMAIL.sub(lambda m: mask_one(m.group()), cut)
    return _PHONE.sub(lambda m: mask_one("+" + re.sub(r"\D", "", m.group())), cut)


@dataclass(frozen=True)
class OptOut:
    chat: str  # what to suppress: the chat, or in a group the member who wrote the word
    word: str
    at_ms: int

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.at_ms / 1000, tz=UTC).date().isoformat()


@dataclass(frozen=True)
class Review:
    """A reply with a stop word not at its start: perhaps an opt-out; a person decides."""

    chat: str
    word: str
    at_ms: int
    text: str  # the reply as written (shown masked unless asked otherwise)

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.at_ms / 1000, tz=UTC).date().isoformat()


def optouts_in(check: ChatToCheck, messages: Iterable[dict[str, Any]],
               words: tuple[str, ...] = DEFAULT_WORDS) -> list[OptOut]:
    """The opt-outs among one chat's inbound messages: the first stop word of each writer."""
    return read_chat(check, messages, words)[0]


def read_chat(check: ChatToCheck, messages: Iterable[dict[str, Any]],
              words: tuple[str, ...] = DEFAULT_WORDS) -> tuple[list[OptOut], list[Review]]:
    """The opt-outs (the first of each writer) and the replies to review of one chat.

    In a group only the member who wrote the word opted out (its `sender`); when a group
    message names no sender, the whole chat is suppressed, which errs on the safe side."""
    seen: dict[str, OptOut] = {}
    reviews: list[Review] = []
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("direction", "inbound") != "inbound":
            continue
        meaning = read_reply(msg.get("text"), words)
        if meaning is None:
            continue
        kind, word = meaning
        who = check.chat
        sender = msg.get("sender")
        if isinstance(sender, str) and sender.strip() and ("," in who or who.startswith("grp_")):
            try:
                who = normalize_chat(sender)
            except ChatIdError:
                who = check.chat
        at = msg.get("time_sent")
        at_ms = int(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else 0
        if kind == REVIEW:
            reviews.append(Review(who, word, at_ms, msg["text"]))
        elif who not in seen or at_ms < seen[who].at_ms:
            seen[who] = OptOut(who, word, at_ms)
    # Someone who opted out needs no second look.
    return list(seen.values()), [r for r in reviews if r.chat not in seen]


# -- reading replies (HTTP edge) ------------------------------------------------------------


@dataclass
class CollectResult:
    optouts: list[OptOut] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)  # not recorded: for a person to judge
    chats: int = 0
    replies: int = 0  # inbound messages read
    requests: int = 0
    not_found: int = 0  # chats the API does not know (never created, or deleted)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (chat, reason)


async def collect(checks: list[ChatToCheck], *, base_url: str, api_key: str,
                  concurrency: int = 4, rate_per_second: float | None = 5.0,
                  transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                  max_attempts: int = 5, rng: random.Random | None = None,
                  http_stack: str = FAST, words: tuple[str, ...] = DEFAULT_WORDS) -> CollectResult:
    """Read every chat's inbound replies (runner.run.replies) and find the opt-outs (and replies
    to review) among them; ``words`` from ``stop_words`` (a campaign's `optout_words` added)."""
    result = CollectResult(chats=len(checks))
    concurrency = max(1, concurrency)
    options = ApiOptions(base_url=base_url, rate_per_second=rate_per_second,
                         concurrency=concurrency, max_attempts=max_attempts,
                         http_stack=http_stack)
    async with ApiClient(base_url, api_key, timeout=timeout, concurrency=concurrency,
                         transport=transport, stack=http_stack) as api:
        fetcher = Fetcher(api, RateLimiter(rate_per_second), options, sleep=sleep,
                          rng=rng or random.Random())
        try:
            read = await read_replies(checks, fetcher, concurrency=concurrency)
        except ReadUnauthorized:
            raise StoppedEarly("the API refused the key (401)",
                               hint=f"check BLOOIO_API_KEY (refused by {options.base_url}; "
                                    "--base-url or BLOOIO_BASE_URL chooses the API); nothing "
                                    "was written") from None
        finally:
            result.requests = fetcher.requests
    result.not_found = read.not_found
    result.failed = read.failed
    for chat in read.chats:
        result.replies += len(chat.messages)
        found, reviews = read_chat(chat.check, chat.messages, words)
        result.optouts.extend(found)
        result.reviews.extend(reviews)
    # One line per person: the earliest stop word wins when they opted out in several chats.
    best: dict[str, OptOut] = {}
    for o in result.optouts:
        if o.chat not in best or o.at_ms < best[o.chat].at_ms:
            best[o.chat] = o
    result.optouts = [best[k] for k in sorted(best)]
    result.reviews = sorted((r for r in result.reviews if r.chat not in best),
                            key=lambda r: (r.chat, r.at_ms))
    return result


# -- recording (file edge) ------------------------------------------------------------------


def not_yet_held(path: Path, optouts: list[OptOut], campaign_file: str) -> list[OptOut]:
    """The opt-outs the file does not suppress yet, sorted (a group counts as held when any
    member is). Entries of the file that do not parse are `validate`'s business, not ours."""
    if not path.is_file():
        return sorted(optouts, key=lambda o: o.chat)
    held, problems = load_suppression([path.name], path.parent, campaign_file)
    # A list that cannot be read at all (outside the campaign, not a file) would have every
    # opt-out appended again: stop instead. Bad entries inside it are validate's business.
    unusable = [p for p in problems if p.path.startswith("suppress[")]
    if unusable:
        raise CampaignError(unusable)
    return [o for o in sorted(optouts, key=lambda o: o.chat) if o.chat not in held]


def record(path: Path, optouts: list[OptOut], campaign_file: str) -> list[OptOut]:
    """Append the opt-outs the file does not already hold, sorted, and return them.

    A plain list gets `<id>  # opted out <date> via <WORD>` lines; a CSV with a `to` column
    gets rows (the note goes in a note/comment/reason column when it has one). The file is
    replaced atomically, so a `send` starting meanwhile reads either the old or the new list."""
    if not path.is_file() and not path.parent.is_dir():
        raise CampaignError(f"cannot create the suppression file {path}: its folder does not exist",
                            file=campaign_file, hint="create the folder or fix the `suppress` path")
    first: dict[str, OptOut] = {}  # one line per chat: its earliest opt-out
    for o in not_yet_held(path, optouts, campaign_file):
        if o.chat not in first or o.at_ms < first[o.chat].at_ms:
            first[o.chat] = o
    new = [first[chat] for chat in sorted(first)]
    if not new:
        return []
    existing = path.read_text(encoding="utf-8-sig") if path.is_file() else ""
    header = _csv_header(existing)
    lines = []
    if header is not None:
        to_col = header.index("to")
        note_col = next((header.index(c) for c in NOTE_COLUMNS if c in header), None)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for o in new:
            row = [""] * len(header)
            row[to_col] = o.chat
            if note_col is not None:
                row[note_col] = f"opted out {o.date} via {o.word}"
            writer.writerow(row)
        lines.append(buf.getvalue())
    else:
        lines.extend(f"{o.chat}  # opted out {o.date} via {o.word}\n" for o in new)
    text = existing + ("\n" if existing and not existing.endswith("\n") else "") + "".join(lines)
    # Through a symlink to its target: replacing the link itself would fork a shared list
    # (the link's target never learns the opt-out).
    _replace(Path(os.path.realpath(path)), text)
    return new


def _csv_header(text: str) -> list[str] | None:
    """The header of a CSV suppression file (as suppress.py reads it), else None."""
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        return None
    header = [h.strip() for h in next(csv.reader([first]))]
    return header if ("to" in header and len(header) > 1) or header == ["to"] else None


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Opt-outs: read the replies of the chats a campaign has messaged into the state's consent
ledger (runner.store.ledger), and export the ledger's opt-outs into a suppression file for
review in git.

The two edges: reading inbound messages over HTTP (`collect`, through runner.run.replies, the
path `send` and `track` read replies by too; what each reply means is runner.run.consent's
``events_of``), and writing the suppression file (`export`: under an exclusive lock on its
folder, the file re-read under the lock and replaced atomically, so two exports at once never
lose or double a line).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fcntl
import io
import os
import random
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from runner.audience.suppress import Suppression, csv_header, id_column, load_suppression
from runner.consent.match import Meaning, Vocabulary, read_reply, vocabulary
from runner.errors import CampaignError, StoppedEarly
from runner.http.client import ApiClient, ApiOptions
from runner.http.ratelimit import RateLimiter
from runner.http.stacks import Stack
from runner.run.consent import events_of
from runner.run.replies import SKEW_MS as SKEW_MS  # re-exported: callers met it here first
from runner.run.replies import ChatReplies as ChatReplies
from runner.run.replies import ChatToCheck as ChatToCheck
from runner.run.replies import Fetcher, ReadUnauthorized, read_replies
from runner.store.ledger import ConsentEvent, Contact

NOTE_COLUMNS = ("note", "notes", "comment", "reason")


def stop_words(extra: list[str] | tuple[str, ...] = ()) -> Vocabulary:
    """The vocabulary replies are read with: the standard words and a campaign's own."""
    return vocabulary(extra)


DEFAULT_WORDS = stop_words()


def stop_word(text: object, words: Vocabulary = DEFAULT_WORDS) -> str | None:
    """The stop word (or phrase) a reply opts out with, else None."""
    reading = read_reply(text, words)
    return reading.word if reading is not None and reading.meaning is Meaning.OPT_OUT else None


# -- reading replies (HTTP edge) ------------------------------------------------------------


@dataclass
class CollectResult:
    """What reading the replies of a campaign's chats found."""

    events: list[ConsentEvent] = field(default_factory=list)  # to record in the ledger
    cursors: dict[str, int] = field(default_factory=dict)  # chat -> API ms read up to
    chats: int = 0
    replies: int = 0  # inbound messages read
    requests: int = 0
    not_found: int = 0  # chats the API does not know (never created, or deleted)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (chat, reason)
    checked: list[str] = field(default_factory=list)  # a window's chats (``collect_windows``)


async def collect(
    checks: list[ChatToCheck],
    *,
    base_url: str,
    api_key: str,
    concurrency: int = 4,
    rate_per_second: float | None = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_attempts: int = 5,
    rng: random.Random | None = None,
    http_stack: Stack = Stack.FAST,
    words: Vocabulary = DEFAULT_WORDS,
    campaign: str | None = None,
    contacts: dict[str, Contact] | None = None,
) -> CollectResult:
    """Read every chat's inbound replies (runner.run.replies) into ledger events; ``contacts``
    (the ledger's) name the step each chat's replies answered."""
    cursors: dict[str, int] = {}
    result = await collect_windows(
        [checks],
        len(checks),
        base_url=base_url,
        api_key=api_key,
        concurrency=concurrency,
        rate_per_second=rate_per_second,
        transport=transport,
        timeout=timeout,
        sleep=sleep,
        max_attempts=max_attempts,
        rng=rng,
        http_stack=http_stack,
        words=words,
        campaign=campaign,
        contacts_of=lambda chats: contacts or {},
        on_window=lambda w: cursors.update(w.cursors),
    )
    result.cursors = cursors
    return result


async def collect_windows(
    windows: Iterable[list[ChatToCheck]],
    chats: int,
    *,
    base_url: str,
    api_key: str,
    on_window: Callable[[CollectResult], None],
    contacts_of: Callable[[list[str]], dict[str, Contact]],
    concurrency: int = 4,
    rate_per_second: float | None = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_attempts: int = 5,
    rng: random.Random | None = None,
    http_stack: Stack = Stack.FAST,
    words: Vocabulary = DEFAULT_WORDS,
    campaign: str | None = None,
) -> CollectResult:
    """``collect`` a window of chats at a time (runner.run.replies.chat_windows): each window's
    events and cursors go to ``on_window`` (which records them) before the next is read, so
    memory holds one window. The result totals the counts and keeps the events (one per reply
    that means something), not the cursors."""
    result = CollectResult(chats=chats)
    concurrency = max(1, concurrency)
    options = ApiOptions(
        base_url=base_url,
        rate_per_second=rate_per_second,
        concurrency=concurrency,
        max_attempts=max_attempts,
        http_stack=http_stack,
    )
    async with ApiClient(
        base_url,
        api_key,
        timeout=timeout,
        concurrency=concurrency,
        transport=transport,
        stack=http_stack,
    ) as api:
        fetcher = Fetcher(
            api, RateLimiter(rate_per_second), options, sleep=sleep, rng=rng or random.Random()
        )
        try:
            for checks in windows:
                read = await read_replies(checks, fetcher, concurrency=concurrency)
                window = CollectResult(
                    chats=len(checks),
                    requests=read.requests,
                    not_found=read.not_found,
                    failed=read.failed,
                    checked=[c.chat for c in checks],
                )
                contacts = contacts_of([c.check.chat for c in read.chats]) if read.chats else {}
                for chat in read.chats:
                    window.replies += len(chat.messages)
                    contact = contacts.get(chat.check.chat)
                    found = events_of(
                        chat.check.chat,
                        chat.messages,
                        words,
                        campaign=campaign,
                        step=contact.last_step if contact is not None else None,
                    )
                    window.events.extend(found.events)
                    if found.cursor_ms is not None:
                        window.cursors[chat.check.chat] = found.cursor_ms
                on_window(window)
                result.events.extend(window.events)
                result.replies += window.replies
                result.not_found += window.not_found
                result.failed.extend(window.failed)
        except ReadUnauthorized:
            raise StoppedEarly(
                "the API refused the key (401)",
                hint=f"check BLOOIO_API_KEY (refused by {options.base_url}; "
                "--base-url or BLOOIO_BASE_URL chooses the API); what was "
                "read before is recorded, nothing else was written",
            ) from None
        finally:
            result.requests = fetcher.requests
    return result


# -- exporting (file edge) ------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """An opt-out written (or, for a dry run, to be written) to the suppression file."""

    chat: str
    word: str
    at_ms: int

    @property
    def date(self) -> str:
        return datetime.fromtimestamp(self.at_ms / 1000, tz=UTC).date().isoformat()


@contextlib.contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the folder of ``path``, held while it is re-read and replaced: the
    file itself cannot carry the lock, since replacing it makes a new file (a second exporter
    would lock the old one). The kernel drops it when its holder dies."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def not_yet_in(path: Path, optouts: list[Exported], campaign_file: str) -> list[Exported]:
    """The opt-outs the file does not suppress yet, one per chat, sorted."""
    held = Suppression()
    if path.is_file():
        held, problems = load_suppression([path.name], path.parent, campaign_file)
        # A list that cannot be read at all would have every opt-out appended again: stop.
        unusable = [p for p in problems if p.path.startswith("suppress[")]
        if unusable:
            raise CampaignError(unusable)
    first: dict[str, Exported] = {}
    for o in optouts:
        # A group is held when a member is (Suppression's rule), so it is not written again.
        if o.chat not in held and (o.chat not in first or o.at_ms < first[o.chat].at_ms):
            first[o.chat] = o
    return [first[c] for c in sorted(first)]


def export(
    path: Path, optouts: list[Exported], campaign_file: str, *, dry_run: bool = False
) -> list[Exported]:
    """Append the opt-outs the file does not hold yet, sorted, and return them.

    A plain list gets `<id>  # opted out <date> via <WORD>` lines; a CSV with a `to` column gets
    rows (the note in a note/comment/reason column when it has one). Through a symlink, its
    target is written (replacing the link would fork a shared list)."""
    if not path.is_file() and not path.parent.is_dir():
        raise CampaignError(
            f"cannot create the suppression file {path}: its folder does not exist",
            file=campaign_file,
            hint="create the folder or fix the `suppress` path",
        )
    target = Path(os.path.realpath(path))
    if dry_run:
        return not_yet_in(path, optouts, campaign_file)
    with folder_lock(target):
        new = not_yet_in(path, optouts, campaign_file)  # re-read under the lock
        if new:
            existing = target.read_text(encoding="utf-8-sig") if target.is_file() else ""
            text = existing + ("\n" if existing and not existing.endswith("\n") else "")
            _replace(target, text + _lines(existing, new))
    return new


def _lines(existing: str, new: list[Exported]) -> str:
    first = existing.splitlines()[0] if existing.strip() else ""
    header = csv_header(first)
    if header is None:
        return "".join(f"{o.chat}  # opted out {o.date} via {o.word}\n" for o in new)
    to_col = id_column(header)  # `to`, else the header's phone/email column
    note_col = next((header.index(c) for c in NOTE_COLUMNS if c in header), None)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for o in new:
        row = [""] * len(header)
        row[to_col] = o.chat
        if note_col is not None:
            row[note_col] = f"opted out {o.date} via {o.word}"
        writer.writerow(row)
    return buf.getvalue()


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

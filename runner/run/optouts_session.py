"""`optouts` as library calls. Nothing prints.

- ``collect_optouts``: the chats a campaign's journal sent to, their replies read from the API
  and recorded in the state's consent ledger (opt-outs, holds, opt-ins); with ``export`` the
  ledger's opt-outs are then written into the campaign's first `suppress` file for review in git.
- ``review_holds`` / ``decide``: the holds a person must look at, and their decision
  (`campaign optouts review`): release a hold, or confirm it as an opt-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import exitcodes
from runner.audience.chatids import ChatIdError, normalize_chat
from runner.audience.mask import display_chat
from runner.audience.suppress import suppression_target
from runner.campaign.load import load_campaign
from runner.campaign.policy import policy_for
from runner.campaign.schedule import ScheduleError, parse_instant
from runner.campaign.steps import parse_delay
from runner.consent.standing import EventKind, Standing
from runner.errors import CampaignError, Problem
from runner.http.client import ApiOptions, api_key_from_env, base_url_from
from runner.http.stacks import stack_from
from runner.run.answers import AnswerStats, AnswerTexts, answer_owed, policy_answers
from runner.run.optouts import CollectResult, Exported, collect_windows, export, stop_words
from runner.run.replies import chat_windows
from runner.store.backend import campaign_lock, open_journal, open_ledger, sync_contacts
from runner.store.ledger import (
    Change,
    ChatStanding,
    ConsentEvent,
    Ledger,
    RecordedEvent,
    Source,
)
from runner.store.paths import journal_path, ledger_path
from runner.store.state import FolderState, State
from runner.store.where import locate_state


def since_ms(text: str | None, now: float) -> int | None:
    """`--since`: an ISO 8601 instant with an offset, or a duration back from now (`7d`)."""
    if text is None:
        return None
    seconds = parse_delay(text)
    if seconds is not None:
        return int((now - seconds) * 1000)
    try:
        return int(parse_instant(text, ()).timestamp() * 1000)
    except ScheduleError as err:
        raise CampaignError(
            Problem(f"--since: {err}", hint=f"{err.hint}, or a duration such as 7d")
        ) from None


def _standing_doc(s: ChatStanding, show: bool) -> dict[str, Any]:
    e = s.event
    return {
        "id": e.id,
        "chat": display_chat(s.chat, show),
        "state": s.state.value,
        "word": e.word,
        "date": _date(e.at_ms),
        "campaign": e.campaign,
        "step": e.step,
        "text": e.excerpt,
        "source": e.source,
        "by": e.actor,
    }


def _date(at_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at_ms / 1000))


@dataclass
class OptoutsOutcome:
    """What was read, what the ledger learnt, and what was exported to the file."""

    ledger: Path | str  # a file, or a database (its label: never a password)
    journal: Path | str
    sent_yet: bool  # False: no journal, nothing was sent, nothing was asked
    dry_run: bool = False
    result: CollectResult = field(default_factory=CollectResult)
    changes: list[Change] = field(default_factory=list)  # standings this run changed
    opted_out: list[ChatStanding] = field(default_factory=list)  # newly opted out
    holds: list[ChatStanding] = field(default_factory=list)  # held among the campaign's chats
    target: Path | None = None  # the suppression file exported to (``export``)
    exported: list[Exported] = field(default_factory=list)
    answered: AnswerStats | None = None  # HELP answers and confirmations sent after reading

    @property
    def already_out(self) -> int:
        """Opt-outs read again that the ledger already had."""
        found = {e.chat for e in self.result.events if e.kind is EventKind.OPTED_OUT}
        return len(found - {s.chat for s in self.opted_out})

    def to_dict(self, show_recipients: bool = False) -> dict[str, Any]:
        """The outcome as `optouts --format json` prints it (chats masked unless asked)."""
        r = self.result
        return {
            "ledger": str(self.ledger),
            "journal": str(self.journal),
            "sent_yet": self.sent_yet,
            "dry_run": self.dry_run,
            "chats_checked": r.chats,
            "requests": r.requests,
            "replies_read": r.replies,
            "opted_out": [_standing_doc(s, show_recipients) for s in self.opted_out],
            "already_opted_out": self.already_out,
            "held": [_standing_doc(s, show_recipients) for s in self.holds],
            "released": [
                display_chat(c.chat, show_recipients) for c in self.changes if c.after is None
            ],
            "unknown_chats": r.not_found,
            "failed": [
                {"chat": display_chat(c, show_recipients), "reason": why} for c, why in r.failed
            ],
            "suppression_file": str(self.target) if self.target is not None else None,
            "exported": [
                {"chat": display_chat(o.chat, show_recipients), "word": o.word, "date": o.date}
                for o in self.exported
            ],
        }

    @property
    def exit_code(self) -> int:
        # Chats that could not be read: what was found is recorded; a re-run reads them again.
        return exitcodes.STOPPED if self.result.failed else exitcodes.OK


def _dry_changes(ledger: Ledger, events: list[ConsentEvent]) -> list[Change]:
    """What recording ``events`` would change, without writing (the last reading of each chat)."""
    now = ledger.standings()
    last: dict[str, Standing | None] = {}
    for e in sorted(events, key=lambda e: e.at_ms):
        if e.kind is EventKind.OPTED_OUT:
            last[e.chat] = Standing.OPTED_OUT
        elif (
            e.kind is EventKind.HELD and last.get(e.chat, now.get(e.chat)) is not Standing.OPTED_OUT
        ):
            last[e.chat] = Standing.HELD
        elif e.kind is EventKind.OPTED_IN:
            last[e.chat] = None
    return [
        Change(c, now.get(c), s)
        for c, s in sorted(last.items(), key=lambda x: x[0])
        if now.get(c) != s
    ]


def collect_optouts(
    file: str | Path,
    *,
    state_dir: str | Path | State | None = None,
    base_url: str | None = None,
    since: str | None = None,
    rate: float = 5.0,
    concurrency: int = 4,
    max_attempts: int = 5,
    dry_run: bool = False,
    export_to_file: bool = False,
    api_key: str | None = None,
    http_stack: str | None = None,
    answers: AnswerTexts | None = None,
) -> OptoutsOutcome:
    """Record a sent campaign's replies into the state's consent ledger; with
    ``export_to_file`` write the ledger's opt-outs into the campaign's first `suppress` file."""
    if not (math.isfinite(rate) and rate > 0):  # click's FloatRange lets nan through
        raise CampaignError(
            Problem("--rate must be a positive number of requests per second", hint="e.g. --rate 5")
        )
    campaign = load_campaign(file)
    target = None
    if export_to_file:
        if not campaign.suppress:
            raise CampaignError(
                campaign.doc.problem(
                    (),
                    "the campaign has no `suppress` file to export opt-outs to",
                    "add e.g.  suppress: [suppression/optouts.txt]  (the file may start empty; it "
                    "is relative to the campaign file)",
                )
            )
        target = suppression_target(campaign.doc, campaign.base_dir, campaign.suppress)
    state = locate_state(state_dir, file, policy=campaign.policy, campaign_id=campaign.id)
    path = (
        journal_path(state.path, campaign.id)
        if isinstance(state, FolderState)
        else f"{state.label}#{campaign.id}"
    )
    sent_yet = state.has_journal(campaign.id)
    key = (api_key if api_key is not None else api_key_from_env("optouts")) if sent_yet else ""
    base = base_url_from(base_url)
    stack = stack_from(http_stack)
    lower = since_ms(since, time.time())
    outcome = OptoutsOutcome(
        ledger_path(state.path) if isinstance(state, FolderState) else state.label,
        path,
        sent_yet,
        dry_run=dry_run,
        target=target,
    )
    # Held to the end: a `send` of this campaign must not start between reading the replies and
    # recording them. A dry run writes nothing: no lock.
    if not sent_yet and target is None:
        return outcome  # nothing was sent, nothing to export: no state is created
    with (
        contextlib.nullcontext()
        if dry_run or not sent_yet
        else campaign_lock(state, campaign.id, "optouts"),
        _ledger_for(state, dry_run) as ledger,
    ):
        if sent_yet:
            if not dry_run:
                sync_contacts(state, ledger)
            holds: dict[str, ChatStanding] = {}

            def on_window(window: CollectResult) -> None:
                # Recorded a window at a time (a million chats are never held at once); the
                # holds among the window's chats (a group's members too) are kept: they are few.
                if not dry_run:
                    outcome.changes.extend(ledger.record(window.events, window.cursors))
                mine = {c for chat in window.checked for c in (chat, *chat.split(","))}
                mine |= {e.chat for e in window.events}
                for h in ledger.standing_rows(Standing.HELD, mine):
                    holds[h.chat] = h

            with open_journal(state, campaign.id) as journal:
                windows = chat_windows(journal, lower)
                result = asyncio.run(
                    collect_windows(
                        windows.pages,
                        windows.count,
                        base_url=base,
                        api_key=key,
                        concurrency=concurrency,
                        rate_per_second=rate,
                        max_attempts=max_attempts,
                        http_stack=stack,
                        words=stop_words(campaign.optout_words),
                        campaign=campaign.id,
                        contacts_of=ledger.contacts,
                        on_window=on_window,
                    )
                )
            outcome.result = result
            if dry_run:
                outcome.changes = _dry_changes(ledger, result.events)
            else:
                texts = answers if answers is not None else policy_answers(campaign.policy)
                outcome.answered = asyncio.run(
                    answer_owed(
                        ledger,
                        texts,
                        base_url=base,
                        api_key=key,
                        options=ApiOptions(
                            base_url=base,
                            rate_per_second=rate,
                            concurrency=concurrency,
                            max_attempts=max_attempts,
                            http_stack=stack,
                        ),
                    )
                )
            outcome.holds = sorted(holds.values(), key=lambda h: h.chat)
            if dry_run:  # the holds it would record too
                latest = {e.chat: e for e in result.events if e.kind is EventKind.HELD}
                outcome.holds += [
                    _pretend(latest[c.chat], Standing.HELD)
                    for c in outcome.changes
                    if c.after is Standing.HELD and c.chat in latest
                ]
            new_out = {c.chat for c in outcome.changes if c.after is Standing.OPTED_OUT}
            if dry_run:
                latest = {e.chat: e for e in result.events if e.kind is EventKind.OPTED_OUT}
                outcome.opted_out = [
                    _pretend(latest[c], Standing.OPTED_OUT) for c in sorted(new_out) if c in latest
                ]
            else:
                outcome.opted_out = ledger.standing_rows(Standing.OPTED_OUT, new_out)
        if target is not None:
            rows = ledger.standing_rows(Standing.OPTED_OUT)
            everyone = [Exported(s.chat, s.event.word or "STOP", s.event.at_ms) for s in rows]
            everyone += [
                Exported(s.chat, s.event.word or "STOP", s.event.at_ms)
                for s in outcome.opted_out
                if dry_run
            ]
            outcome.exported = export(target, everyone, str(campaign.path), dry_run=dry_run)
    return outcome


def _ledger_for(state: State, dry_run: bool) -> Ledger:
    """The state's ledger; a dry run without one reads an empty one in memory (writes nothing)."""
    if dry_run and not state.has_ledger():
        return Ledger(":memory:")
    return open_ledger(state, command="optouts")


def _pretend(e: ConsentEvent, state: Standing) -> ChatStanding:
    """A dry run's opt-out or hold as the ledger would show it once recorded."""
    return ChatStanding(
        e.chat,
        state,
        RecordedEvent(
            0,
            e.chat,
            e.kind,
            e.at_ms,
            e.word,
            e.excerpt,
            e.campaign,
            e.step,
            e.source,
            e.reply_id,
            e.actor,
            time.time(),
        ),
    )


# -- a person's review ----------------------------------------------------------------------


@dataclass
class ReviewOutcome:
    """The holds of a state, and what a person decided (``decided``: the standings changed)."""

    ledger: Path | str
    holds: list[ChatStanding]
    decided: list[Change] = field(default_factory=list)
    by: str | None = None

    def to_dict(self, show_recipients: bool = False) -> dict[str, Any]:
        return {
            "ledger": str(self.ledger),
            "by": self.by,
            "held": [_standing_doc(s, show_recipients) for s in self.holds],
            "decided": [
                {
                    "chat": display_chat(c.chat, show_recipients),
                    "now": c.after.value if c.after is not None else "clear",
                }
                for c in self.decided
            ],
        }


def default_actor() -> str:
    """Who decides, when not told: the OS user (what the journal's audit trail records too)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _find_holds(ledger: Ledger, wanted: list[str]) -> list[ChatStanding]:
    """The holds named by their ids (the number `review` lists) or chat ids."""
    holds = ledger.standing_rows(Standing.HELD)
    by_id = {str(h.event.id): h for h in holds}
    by_chat = {h.chat: h for h in holds}
    found: list[ChatStanding] = []
    problems: list[Problem] = []
    for raw in wanted:
        name = raw.strip().lstrip("#")
        hold = by_id.get(name)
        if hold is None:
            try:
                hold = by_chat.get(normalize_chat(name))
            except ChatIdError:
                hold = None
        if hold is None:
            problems.append(
                Problem(
                    f"no hold {raw!r} in the consent ledger",
                    hint="`campaign optouts review` lists the holds with their "
                    "numbers; use a number from that list (or the chat id)",
                )
            )
        elif hold not in found:
            found.append(hold)
    if problems:
        raise CampaignError(problems)
    return found


def review_holds(
    *,
    state_dir: str | Path | State | None = None,
    release: tuple[str, ...] = (),
    opt_out: tuple[str, ...] = (),
    by: str | None = None,
    now: float | None = None,
) -> ReviewOutcome:
    """List a state's holds; ``release`` dismisses holds, ``opt_out`` confirms them as opt-outs
    (each named by its number in the list, or its chat id), recorded with ``by``."""
    state = locate_state(state_dir, None, policy=lambda: policy_for(Path.cwd()))
    if not state.has_ledger():
        raise CampaignError(
            f"no consent ledger in {state.label}",
            hint="nothing was sent or read with this state yet; pass --state DIR",
        )
    with open_ledger(state, command="optouts review") as ledger:
        decided: list[Change] = []
        who = by or default_actor()
        if release or opt_out:
            to_release, to_opt_out = (
                _find_holds(ledger, list(release)),
                _find_holds(ledger, list(opt_out)),
            )
            both = {h.chat for h in to_release} & {h.chat for h in to_opt_out}
            if both:
                raise CampaignError(
                    Problem(
                        "a hold cannot be both released and opted out", hint="name each hold once"
                    )
                )
            at_ms = int((time.time() if now is None else now) * 1000)
            events = [
                ConsentEvent(
                    h.chat,
                    EventKind.RELEASED,
                    at_ms,
                    source=Source.REVIEW,
                    actor=who,
                    word=h.event.word,
                )
                for h in to_release
            ]
            # A confirmed opt-out dates from the reply held (what it answered, and so the
            # report's step), not from the review.
            events += [
                ConsentEvent(
                    h.chat,
                    EventKind.OPTED_OUT,
                    h.event.at_ms,
                    source=Source.REVIEW,
                    actor=who,
                    word=h.event.word,
                    excerpt=h.event.excerpt,
                    campaign=h.event.campaign,
                    step=h.event.step,
                )
                for h in to_opt_out
            ]
            decided = ledger.record(events, now=now)
        where = ledger.path if isinstance(state, FolderState) else state.label
        return ReviewOutcome(
            where, ledger.standing_rows(Standing.HELD), decided, who if decided else None
        )

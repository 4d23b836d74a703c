"""`optouts` as one library call: the chats a campaign's journal sent to, their STOP replies
read from the API, and the new ones appended to the campaign's first suppression file (or
only listed, for a dry run). Nothing prints."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import exitcodes
from runner.audience.mask import display_chat
from runner.audience.suppress import suppression_target
from runner.campaign.load import load_campaign
from runner.campaign.schedule import ScheduleError, parse_instant
from runner.campaign.steps import parse_delay
from runner.errors import CampaignError, Problem
from runner.http.client import api_key_from_env, base_url_from
from runner.http.stacks import stack_from
from runner.run.optouts import (
    CollectResult,
    OptOut,
    chats_to_check,
    collect,
    mask_text,
    not_yet_held,
    record,
    stop_words,
)
from runner.store.journal import Journal
from runner.store.lock import JournalLock
from runner.store.paths import DEFAULT_STATE_DIR, journal_path


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
        raise CampaignError(Problem(f"--since: {err}", hint=f"{err.hint}, or a duration such as 7d")) from None


@dataclass
class OptoutsOutcome:
    """What was read and what was (or, for a dry run, would be) added to ``target``."""

    target: Path
    journal: Path
    sent_yet: bool  # False: no journal, nothing was sent, nothing was asked
    result: CollectResult = field(default_factory=CollectResult)
    added: list[OptOut] = field(default_factory=list)

    @property
    def already_held(self) -> int:
        return len(self.result.optouts) - len(self.added)

    def to_dict(self, show_recipients: bool = False) -> dict[str, Any]:
        """The outcome as `optouts --format json` prints it (chats and review texts masked
        unless ``show_recipients``)."""
        def chat(c: str) -> str:
            return display_chat(c, show_recipients)

        r = self.result
        return {
            "suppression_file": str(self.target), "journal": str(self.journal),
            "sent_yet": self.sent_yet, "chats_checked": r.chats, "requests": r.requests,
            "replies_read": r.replies,
            "added": [{"chat": chat(o.chat), "word": o.word, "date": o.date} for o in self.added],
            "already_held": self.already_held, "unknown_chats": r.not_found,
            "failed": [{"chat": chat(c), "reason": why} for c, why in r.failed],
            "review": [{"chat": chat(v.chat), "word": v.word, "date": v.date,
                        "text": v.text if show_recipients else mask_text(v.text)}
                       for v in r.reviews],
        }

    @property
    def exit_code(self) -> int:
        # Chats that could not be read: what was found is recorded; a re-run reads them again.
        return exitcodes.STOPPED if self.result.failed else exitcodes.OK


def collect_optouts(file: str | Path, *, state_dir: str | Path = DEFAULT_STATE_DIR,
                    base_url: str | None = None, since: str | None = None, rate: float = 5.0,
                    concurrency: int = 4, max_attempts: int = 5, dry_run: bool = False,
                    api_key: str | None = None, http_stack: str | None = None) -> OptoutsOutcome:
    """Record stop-word replies to a sent campaign into its first `suppress` file."""
    if not (math.isfinite(rate) and rate > 0):  # click's FloatRange lets nan through
        raise CampaignError(Problem("--rate must be a positive number of requests per second",
                                    hint="e.g. --rate 5"))
    campaign = load_campaign(file)
    if not campaign.suppress:
        raise CampaignError(campaign.doc.problem((), "the campaign has no `suppress` file to record opt-outs in",
                                                 "add e.g.  suppress: [suppression/optouts.txt]  (the file "
                                                 "may start empty; it is relative to the campaign file)"))
    target = suppression_target(campaign.doc, campaign.base_dir, campaign.suppress)
    key = api_key if api_key is not None else api_key_from_env("optouts")
    base = base_url_from(base_url)
    stack = stack_from(http_stack)
    lower = since_ms(since, time.time())

    path = journal_path(state_dir, campaign.id)
    if not path.is_file():
        return OptoutsOutcome(target, path, sent_yet=False)
    # Held to the end: a `send` must not start between reading the replies and recording them,
    # and two `optouts` must not write the file at once. A dry run writes nothing: no lock.
    with contextlib.nullcontext() if dry_run else JournalLock(path, "optouts"):
        with Journal(path) as journal, journal.snapshot("optouts"):
            checks = chats_to_check(journal.entries(), lower)

        result = asyncio.run(collect(checks, base_url=base, api_key=key, concurrency=concurrency,
                                     rate_per_second=rate, max_attempts=max_attempts, http_stack=stack,
                                     words=stop_words(campaign.optout_words)))
        if dry_run:
            added = not_yet_held(target, result.optouts, str(campaign.path))
        else:
            added = record(target, result.optouts, str(campaign.path))
    return OptoutsOutcome(target, path, True, result, added)

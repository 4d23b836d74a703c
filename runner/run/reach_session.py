"""`reach` as one library call: the campaign's audience, the capability cache, the API asked
only about contacts the cache holds no fresh answer for, and the analysis. Nothing prints."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import exitcodes
from runner.campaign.load import Campaign, load_campaign
from runner.campaign.steps import parse_delay
from runner.errors import CampaignError, Problem
from runner.http.client import api_key_from_env
from runner.planning.planner import Planner
from runner.run.reach import (
    Audience,
    CapabilityCache,
    CapabilityChecker,
    CheckResult,
    ReachOptions,
    analyse,
    contacts_of,
    step_features,
)
from runner.run.send import install_signal_handlers, interrupted_twice
from runner.run.session import resolve_options, run_coroutine
from runner.store.state import FolderState
from runner.store.where import anchor_of, default_state_dir, locate_state


def parse_max_age(text: str) -> float:
    """`--max-age`: how old a cached answer may be, as a duration (45s, 30m, 2h, 7d)."""
    seconds = parse_delay(text)
    if seconds is None:
        raise CampaignError(
            Problem(
                f"--max-age: {text!r} is not a duration",
                hint="e.g. 30m, 12h or 7d (0s re-checks everything)",
            )
        )
    return float(seconds)


def audience_of(campaign: Campaign) -> tuple[list[Audience], int]:
    """Each 1:1 recipient with the features each step would use; group chats are counted
    apart (capabilities are per contact). An invalid recipient anywhere is a user error."""
    planner = Planner(campaign)
    audience: list[Audience] = []
    skipped_groups = 0
    for rec, rendered in planner.recipients():
        chat = rec.chat or ""
        if chat.startswith("grp_"):
            skipped_groups += 1
            continue
        audience.append(
            Audience(
                chat,
                {
                    r.step.id: step_features(r.body, r.step.reply_to_step is not None)
                    for r in rendered
                    if r.body is not None
                },
            )
        )
    planner.raise_if_invalid()
    return audience, skipped_groups


@dataclass
class ReachOutcome:
    """The reach document (see ``runner.run.reach.analyse``) and why checking stopped, if it did."""

    doc: dict[str, Any]
    stop_reason: str | None
    asked: int = 0  # contacts asked of the API this time
    answered: int = 0  # of them, those the API answered (a capability, or "invalid")

    @property
    def exit_code(self) -> int:
        # Nothing answered (the API unreachable, every check out of retries) is not a finding:
        # the document would read as if nobody were reachable.
        if self.stop_reason or (self.asked and not self.answered):
            return exitcodes.STOPPED
        return exitcodes.OK


def reach(
    file: str | Path,
    *,
    state_dir: str | Path | None = None,
    max_age: str = "7d",
    show_recipients: bool = False,
    base_url: str | None = None,
    rate: float | None = None,
    concurrency: int | None = None,
    request_timeout: float = 30.0,
    backoff_base: float = 0.5,
    api_key: str | None = None,
    http_stack: str | None = None,
) -> ReachOutcome:
    """Who gets iMessage, only SMS, or nothing; answers are cached under ``state_dir``.

    The API key is needed (and read from BLOOIO_API_KEY when not given) only when some
    contact has no fresh cached answer.
    """
    age = parse_max_age(max_age)
    campaign = load_campaign(file)
    send = resolve_options(
        campaign.send_options,
        base_url=base_url,
        rate=rate,
        concurrency=concurrency,
        timeout=request_timeout,
        max_attempts=4,
        http_stack=http_stack,
    )
    audience, skipped_groups = audience_of(campaign)
    contacts = sorted({c for a in audience for c in contacts_of(a.chat)})

    # The capability cache is this machine's: with a database state it stays in the folder.
    state = locate_state(state_dir, file, policy=campaign.policy)
    cache = CapabilityCache(
        state.path if isinstance(state, FolderState) else default_state_dir(anchor_of(file)),
        send.base_url,
    )
    try:
        caps = cache.fresh(contacts, age, time.time())
        missing = [c for c in contacts if c not in caps]
        stop_reason = None
        failed: dict[str, str] = {}
        answered = 0
        if missing:
            checker = CapabilityChecker(
                api_key=api_key if api_key is not None else api_key_from_env("reach"),
                options=ReachOptions(
                    base_url=send.base_url,
                    rate_per_second=send.rate_per_second,
                    concurrency=send.concurrency,
                    request_timeout=request_timeout,
                    backoff_base=backoff_base,
                    http_stack=send.http_stack,
                ),
            )

            async def go() -> CheckResult:
                remove = install_signal_handlers(checker)  # type: ignore[arg-type]
                try:
                    return await checker.check(missing)
                finally:
                    remove()

            try:
                result = run_coroutine(go())
            except KeyboardInterrupt:
                raise interrupted_twice("reach") from None
            cache.put(result.caps.values())
            caps.update(result.caps)
            stop_reason, failed = result.stop_reason, result.failed
            answered = len(result.caps)
    except sqlite3.Error as err:  # a read-only or full state folder: no traceback
        raise CampaignError(
            f"cannot use the capability cache in {cache.path.parent}: {err}",
            file=str(cache.path),
            hint="pass --state DIR with a folder you can write (answers are cached there)",
        ) from None
    finally:
        cache.close()
    doc = analyse(audience, caps, skipped_groups, show_recipients)
    doc["cache_note"] = (
        f"{len(contacts) - len(missing):,} from the cache (younger than "
        f"{max_age}), {len(missing):,} asked now"
    )
    doc["no_answer"] = len(failed)
    # The commonest reason, as the client words a network failure (host, phase, reason).
    doc["no_answer_reason"] = Counter(failed.values()).most_common(1)[0][0] if failed else None
    doc["stop_reason"] = stop_reason
    return ReachOutcome(doc, stop_reason, len(missing), answered)

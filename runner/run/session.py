"""A whole send as one library call: options, journal, send → wait → track, exit codes.

`campaign send` and `campaign track` are thin over this module; so is ``runner.send`` /
``runner.track``. Nothing here prints: progress and "waiting" notices go to callbacks the
caller passes (the CLI prints them on stderr), and Ctrl-C is handled here (the run stops
gracefully and stays resumable; Ctrl-C while waiting for the schedule ends the wait).
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from runner import exitcodes
from runner.campaign.load import Campaign, load_campaign
from runner.campaign.schedule import gate_for
from runner.errors import CampaignError, StoppedEarly
from runner.http.client import api_key_from_env, base_url_from
from runner.http.retry import StopReason
from runner.http.stacks import stack_from
from runner.http.transport import run as run_on_loop
from runner.planning.current import CurrentPlan
from runner.planning.planfile import (
    PlanFile,
    check_inputs,
    digest,
    find_campaign,
    input_paths,
    inputs_of,
)
from runner.planning.planner import JournalOverlay, PlanSummary, iter_plan
from runner.run.answers import AnswerStats, AnswerTexts, answer_owed, policy_answers
from runner.run.caps import caps_of
from runner.run.consent import ConsentGate, ConsentStats
from runner.run.optouts import stop_words
from runner.run.rehearsal import rehearsal_clock
from runner.run.send import (
    Executor,
    RunResult,
    RunStats,
    SendOptions,
    install_signal_handlers,
    interrupted_twice,
)
from runner.run.spool import PlanSpool, current_plan_of, spool_plan
from runner.run.track import ReplyOptions, Tracker, TrackOptions, TrackResult, TrackStats
from runner.store.audit import Audit, audit, require_clean
from runner.store.backend import (
    existing_journal,
    open_ledger,
    sync_campaign,
    sync_contacts,
)
from runner.store.backend import open_journal as open_state_journal
from runner.store.journal import Journal, journal_error
from runner.store.ledger import Ledger
from runner.store.state import State, open_state
from runner.store.where import locate_state

T = TypeVar("T")
S = TypeVar("S")

# The pace when neither the campaign (send.rate_per_second) nor the caller sets one. The API
# documents no request-rate limit (no Retry-After or X-RateLimit-* headers; its 429s are daily
# caps), so a new account's tolerance is unknown: 10 requests/s is a cautious guess that still
# sends 36,000 requests an hour. rate="unlimited" asks for no ceiling at all.
DEFAULT_RATE = 10.0
UNLIMITED = "unlimited"


def resolve_options(
    campaign_send: dict[str, Any],
    *,
    base_url: str | None,
    rate: float | str | None,
    concurrency: int | None,
    timeout: float = 30.0,
    max_attempts: int = 6,
    backoff_base: float = 0.5,
    backoff_cap: float = 30.0,
    http_stack: str | None = None,
) -> SendOptions:
    """Campaign ``send:`` settings give the defaults; explicit arguments (CLI flags) override;
    with neither, ``DEFAULT_RATE``. ``rate="unlimited"`` removes the ceiling."""
    base = base_url_from(base_url)
    if rate is None:
        rate = campaign_send.get("rate_per_second")
    if rate is None:
        rate = DEFAULT_RATE
    if concurrency is None:
        concurrency = campaign_send.get("concurrency")
    if isinstance(rate, str) and rate.strip().lower() == UNLIMITED:
        rate = math.inf  # the one way to ask for no ceiling: said in words, never by overflow
    elif not (math.isfinite(float(rate)) and float(rate) > 0):  # NaN, inf, 0, negatives
        raise CampaignError(
            "the rate must be a positive number of requests per second",
            hint="e.g. --rate 5, or --rate unlimited for no ceiling",
        )
    return SendOptions(
        base_url=base,
        rate_per_second=None if math.isinf(float(rate)) else float(rate),
        concurrency=int(concurrency) if concurrency else 8,
        timeout=timeout,
        max_attempts=max_attempts,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        http_stack=stack_from(http_stack),
    )


def track_options(send: SendOptions, **rest: Any) -> TrackOptions:
    """Tracking goes to the same API at the same pace as the send; ``rest`` sets the polling."""
    return TrackOptions(
        base_url=send.base_url,
        rate_per_second=send.rate_per_second,
        concurrency=send.concurrency,
        http_stack=send.http_stack,
        **rest,
    )


def open_journal(state_dir: str | Path | State, campaign_id: str) -> Journal:
    """The campaign's journal, created if needed; a state folder that cannot be made or written
    is a user error, not a traceback."""
    state = open_state(state_dir)
    try:
        return open_state_journal(state, campaign_id, lock="send")
    except (OSError, sqlite3.Error) as err:
        raise CampaignError(
            f"cannot open the journal in {state.label}: {err}",
            hint="pass --state DIR with a folder you can write",
        ) from None


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run one top-level coroutine on the event loop our HTTP transport is tuned for."""
    return run_on_loop(coro)


async def _with_ticks(
    work: Awaitable[T], stats_of: Callable[[], S], on_tick: Callable[[S], None] | None, every: float
) -> T:
    """Await ``work`` while calling ``on_tick(stats_of())`` every ``every`` seconds."""

    async def ticker(tick: Callable[[S], None]) -> None:
        while True:
            await asyncio.sleep(every)
            tick(stats_of())

    task = asyncio.create_task(ticker(on_tick)) if on_tick is not None else None
    try:
        return await work
    finally:
        if task is not None:
            task.cancel()


def journal_failed(err: sqlite3.Error, journal: Journal, command: str) -> StoppedEarly:
    # Nothing is sent without its journal row, so stopping here loses nothing.
    hint = journal_error(err, journal.path, command).problems[0].hint
    return StoppedEarly(
        f"the journal could not be written: {err}", file=str(journal.path), hint=hint
    )


def plan_doc(summary: PlanSummary) -> dict[str, Any]:
    """What the journal records about the plan a run started from."""
    return {
        "requests": summary.requests,
        "messages": summary.messages,
        "recipients": summary.recipients,
        "suppressed": summary.suppressed,
        "excluded": summary.excluded,
        "excluded_by": summary.excluded_by,
        "duplicates": summary.duplicates,
        "steps": {
            k: {"requests": c.requests, "messages": c.messages} for k, c in summary.steps.items()
        },
    }


def track_journal(
    journal: Journal,
    revision: int,
    options: TrackOptions,
    api_key: str,
    *,
    on_tick: Callable[[TrackStats], None] | None = None,
    tick_every: float = 1.0,
    clock: Callable[[], float] = time.time,
) -> TrackResult:
    """Track one journal to the end (or the timeout); Ctrl-C stops it gracefully. ``clock``:
    a rehearsal's (`--now`), so what it records agrees with what `send --now` recorded."""
    tracker = Tracker(journal, api_key=api_key, options=options, revision=revision, clock=clock)

    async def go() -> TrackResult:
        remove = install_signal_handlers(tracker)  # type: ignore[arg-type]
        try:
            return await _with_ticks(tracker.run(), lambda: tracker.stats, on_tick, tick_every)
        finally:
            remove()

    try:
        tracker.load()
        return run_coroutine(go())
    except sqlite3.Error as err:
        raise journal_failed(err, journal, "track") from None
    except KeyboardInterrupt:
        raise interrupted_twice("track") from None


def exit_after_track(send_exit: int, tracked: TrackResult) -> int:
    """`send --track`: the send's exit code, unless it was OK and tracking left some in flight
    (STOPPED); a refused key while tracking is always STOPPED."""
    if tracked.stop_reason is StopReason.UNAUTHORIZED:
        return exitcodes.STOPPED
    return send_exit if send_exit != exitcodes.OK else tracked.exit_code


# A send that stopped early (a refused key, a cap, Ctrl-C) is not tracked: it resumes first.
_TRACKED_AFTER = (exitcodes.OK, exitcodes.FAILED, exitcodes.WAITING)


@dataclass
class SendOutcome:
    """What a send did: the last run, the tracking (if asked for), and the exit code."""

    result: RunResult
    tracked: TrackResult | None
    exit_code: int  # runner.exitcodes
    journal: Path | str  # where the run is recorded: a file, or a database label and campaign

    @property
    def unauthorized(self) -> bool:
        """Whether the API refused the key, while sending or while tracking."""
        return self.result.stop_reason is StopReason.UNAUTHORIZED or (
            self.tracked is not None and self.tracked.stop_reason is StopReason.UNAUTHORIZED
        )


class SendSession:
    """One campaign's send: loaded, planned in full, its journal open. Use as a context manager.

    Opening it validates everything (an invalid recipient anywhere stops before anything is
    sent) and needs the API key; ``run`` sends, ``track`` polls delivery.
    """

    def __init__(
        self,
        file: str | Path,
        campaign: Campaign,
        summary: PlanSummary,
        options: SendOptions,
        api_key: str,
        journal: Journal,
        ledger: Ledger,
        state: State | None = None,
    ) -> None:
        self.file = Path(file)
        self.ledger = ledger  # the state's consent ledger: every message is checked against it
        self.campaign = campaign
        self.summary = summary
        self.options = options
        self.journal = journal
        self._api_key = api_key
        self.plan: PlanFile | None = None  # `send --plan`: send exactly this reviewed plan
        self.plan_skipped = 0  # planned requests skipped: their recipient opted out since
        self.plan_reread: list[str] = []  # suppression files changed since the plan (re-read)
        self.audit: Audit | None = None  # git commit, dirty files, plan digest, OS user
        self.state = state if state is not None else open_state(Path(journal.path).parent)
        self._spool: PlanSpool | None = None  # the validated requests, rendered once
        self.wall: Callable[[], float] = time.time  # `--now`: a rehearsal's clock (rehearsal.py)
        self.answer_texts = AnswerTexts()  # the team's HELP answer and opt-out confirmation
        self.answered = AnswerStats()  # what this session answered (over every run)

    @classmethod
    def open(
        cls,
        file: str | Path | None,
        *,
        state_dir: str | Path | State | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        rate: float | None = None,
        concurrency: int | None = None,
        timeout: float = 30.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        http_stack: str | None = None,
        plan: str | Path | None = None,
        clean: bool = False,
        answers: AnswerTexts | None = None,
        policy: str | Path | None = None,
        now: str | None = None,
    ) -> SendSession:
        """``plan``: a `plan --out` file to send exactly (its inputs must not have changed);
        ``file`` may then be None (the planned campaign is looked up next to the plan).
        ``clean``: refuse uncommitted changes to the campaign or its files (git).
        ``policy``: a team policy file instead of the repository's runner.yaml.
        ``now``: rehearsal time against a non-live API (ISO 8601, or "emulator": its clock)."""
        planned = PlanFile.read(plan) if plan is not None else None
        if file is None and planned is not None:
            file = find_campaign(planned)
        if file is None:
            raise CampaignError(
                "which campaign? give FILE, or --plan PLAN", hint="campaign send FILE"
            )
        campaign = load_campaign(file, policy=policy)
        files = input_paths(campaign)
        # The digest of the inputs as read now, never the plan header's (a header can be
        # edited; PlanFile.read refuses one whose digest is not its inputs').
        found = audit(files, digest(inputs_of(campaign)))
        if clean:
            require_clean(files, found)
        reread = check_inputs(campaign, planned) if planned is not None else []
        # Options first: a bad base URL or rate is refused before anything is written.
        options = resolve_options(
            campaign.send_options,
            base_url=base_url,
            rate=rate,
            concurrency=concurrency,
            timeout=timeout,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            http_stack=http_stack,
        )
        wall = rehearsal_clock(now, options.base_url)
        # The consent ledger first: a damaged one stops the send before anything is planned.
        state = locate_state(state_dir, file, policy=campaign.policy, campaign_id=campaign.id)
        ledger = open_ledger(state, command="send")
        try:
            sync_contacts(state, ledger)  # who the state has messaged, from every journal
            # Validated and planned in one pass; the spool is what run_once sends.
            spooled = spool_plan(campaign, state.work_dir, planned, consent=ledger.standings())
            summary, spool, skipped = spooled.summary, spooled.spool, spooled.skipped
        except BaseException:
            ledger.close()
            raise
        try:
            key = api_key if api_key is not None else api_key_from_env("send")
            session = cls(
                file,
                campaign,
                summary,
                options,
                key,
                open_journal(state, campaign.id),
                ledger,
                state,
            )
        except BaseException:
            spool.close()
            ledger.close()
            raise
        session.audit, session._spool, session.wall = found, spool, wall
        session.plan, session.plan_skipped, session.plan_reread = planned, skipped, reread
        session.answer_texts = answers or policy_answers(campaign.policy)
        return session

    def __enter__(self) -> SendSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
        try:
            self.journal.close()
        finally:
            self.ledger.close()

    def journal_overlay(self) -> JournalOverlay:
        """What the journal says of the current plan: requests already accepted, and what a
        send would repeat (an earlier revision, a renamed step, older content). Read in one
        snapshot: a damaged journal is a user error here, before anything is sent."""
        with self.journal.snapshot("send"):
            overlay = JournalOverlay(self.journal, self.campaign.revision)
            if self.journal.is_empty():
                return overlay  # a first send: every count is 0 without reading the plan again
            # The spooled requests (rendered once, or the reviewed plan's): what run_once sends.
            planned = iter(self._spool) if self._spool is not None else iter_plan(self.campaign)
            return overlay.run(planned)

    def current_plan(self) -> CurrentPlan:
        """The campaign's plan now, for the report (from the spool while no input changed)."""
        return current_plan_of(self.campaign, self._spool, self.ledger.standings())

    def already_accepted(self) -> int:
        """Requests of the current plan an earlier run already got accepted (resuming skips
        them); rows the plan no longer holds do not count."""
        return self.journal_overlay().accepted

    def run_once(
        self, *, on_tick: Callable[[RunStats], None] | None = None, tick_every: float = 1.0
    ) -> RunResult:
        """Send every due request not yet accepted; one run in the journal."""
        campaign, options = self.campaign, self.options
        try:
            run_id = self.journal.start_run(
                campaign.id,
                campaign.revision,
                options.to_dict(),
                plan_doc(self.summary),
                self.audit.to_dict() if self.audit else None,
            )
        except sqlite3.Error as err:
            raise journal_failed(err, self.journal, "send") from None
        consent = ConsentGate(self.ledger, stop_words(campaign.optout_words))
        caps = caps_of(campaign, self.state)
        executor = Executor(
            self.journal,
            api_key=self._api_key,
            options=options,
            revision=campaign.revision,
            run_id=run_id,
            gate=gate_for(campaign, [caps] if caps else []),
            consent=consent,
            on_accepted=caps.note if caps else None,
            wall=self.wall,
        )

        async def go() -> RunResult:
            remove = install_signal_handlers(executor)
            try:
                return await _with_ticks(
                    executor.run(self._spool or (), total=self.summary.requests),
                    lambda: executor.stats,
                    on_tick,
                    tick_every,
                )
            finally:
                remove()

        try:
            result = run_coroutine(go())
        except sqlite3.Error as err:
            raise journal_failed(err, self.journal, "send") from None
        except KeyboardInterrupt:
            raise interrupted_twice("send") from None
        # Other campaigns of the state learn whom this run messaged (their sends read those
        # chats' replies before messaging them).
        sync_campaign(self.state, self.ledger, campaign.id)
        if result.stop_reason != StopReason.UNAUTHORIZED:
            self._answer()
        counts = result.counts()
        if result.consent is not None and result.consent.chats_read:
            counts["consent_reads"] = {
                "chats": result.consent.chats_read,
                "requests": result.consent.requests,
                "opted_out": result.consent.opted_out,
                "held": result.consent.held,
            }
        if result.cap:
            counts["cap"] = {k: v for k, v in result.cap.items() if k != "message"}
        try:
            self.journal.finish_run(run_id, counts, result.exit_code, result.stop_reason)
        except sqlite3.Error as err:
            raise journal_failed(err, self.journal, "send") from None
        return result

    def _answer(self) -> None:
        """Send the HELP answers and opt-out confirmations the ledger says are owed."""
        got = run_coroutine(
            answer_owed(
                self.ledger,
                self.answer_texts,
                base_url=self.options.base_url,
                api_key=self._api_key,
                options=self.options,
                timeout=self.options.timeout,
            )
        )
        for name in ("help", "confirmations", "failed", "pending"):
            setattr(self.answered, name, getattr(self.answered, name) + getattr(got, name))

    def run(
        self,
        *,
        wait: bool = False,
        on_tick: Callable[[RunStats], None] | None = None,
        tick_every: float = 1.0,
        on_wait: Callable[[float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] | None = None,
    ) -> RunResult:
        """Send; with ``wait``, sleep until the next message falls due and send again, until
        nothing waits on the schedule (or Ctrl-C while waiting, which keeps what was sent).
        ``clock``: default the session's (a rehearsal's `--now`, else the wall clock)."""
        clock = clock or self.wall
        consent = ConsentStats()  # over every run of a --wait
        while True:
            result = self.run_once(on_tick=on_tick, tick_every=tick_every)
            if result.consent is not None:
                consent.add(result.consent)
                result.consent = consent
            if result.exit_code != exitcodes.WAITING or not wait:
                return result
            due = result.stats.next_due
            delay = max(1.0, (due or clock() + 60) - clock())
            if on_wait is not None:
                on_wait(delay)
            try:
                sleep(delay)
            except KeyboardInterrupt:
                return result  # interrupted while waiting: what was sent is journalled
            # Re-read the campaign: suppression files may have grown (opt-outs) meanwhile.
            self.campaign = load_campaign(self.file, policy=self.campaign.policy)
            if self.plan is not None:
                check_inputs(self.campaign, self.plan)
            if self._spool is not None:
                self._spool.close()
                self._spool = None
            spooled = spool_plan(
                self.campaign, self.state.work_dir, self.plan, consent=self.ledger.standings()
            )
            self.summary, self._spool, self.plan_skipped = (
                spooled.summary,
                spooled.spool,
                spooled.skipped,
            )

    def send(
        self,
        *,
        wait: bool = False,
        track: bool = False,
        track_timeout: float = 300.0,
        on_tick: Callable[[RunStats], None] | None = None,
        tick_every: float = 1.0,
        on_wait: Callable[[float], None] | None = None,
        on_sent: Callable[[RunResult], None] | None = None,
        on_track_tick: Callable[[TrackStats], None] | None = None,
        track_tick_every: float = 1.0,
    ) -> SendOutcome:
        """Send (``run``), then with ``track`` poll delivery unless the send stopped early;
        the exit code merges both. ``on_sent`` is called between the two (the CLI closes its
        progress bar and says what waits)."""
        result = self.run(wait=wait, on_tick=on_tick, tick_every=tick_every, on_wait=on_wait)
        if on_sent is not None:
            on_sent(result)
        exit_code, tracked = result.exit_code, None
        if track and exit_code in _TRACKED_AFTER:
            tracked = self.track(
                timeout=track_timeout, on_tick=on_track_tick, tick_every=track_tick_every
            )
            exit_code = exit_after_track(exit_code, tracked)
        return SendOutcome(result, tracked, exit_code, self.journal.path)

    def track(
        self,
        *,
        timeout: float = 300.0,
        on_tick: Callable[[TrackStats], None] | None = None,
        tick_every: float = 1.0,
    ) -> TrackResult:
        """Poll delivery of what this campaign's runs got accepted (`send --track`)."""
        o = self.options
        topts = track_options(
            o,
            request_timeout=o.timeout,
            timeout=timeout,
            max_attempts=o.max_attempts,
            backoff_base=o.backoff_base,
            backoff_cap=o.backoff_cap,
        )
        return track_journal(
            self.journal,
            self.campaign.revision,
            topts,
            self._api_key,
            on_tick=on_tick,
            tick_every=tick_every,
        )


def send(
    file: str | Path,
    *,
    state_dir: str | Path | State | None = None,
    wait: bool = False,
    track: bool = False,
    track_timeout: float = 300.0,
    api_key: str | None = None,
    **options: Any,
) -> SendOutcome:
    """Send a campaign without asking (the library has no prompt): resumes from its journal.

    ``options`` are those of ``SendSession.open`` (base_url, rate, concurrency, timeout, ...).
    """
    with SendSession.open(file, state_dir=state_dir, api_key=api_key, **options) as session:
        return session.send(wait=wait, track=track, track_timeout=track_timeout)


def track(
    file: str | Path,
    *,
    state_dir: str | Path | State | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    rate: float | None = None,
    concurrency: int | None = None,
    on_tick: Callable[[TrackStats], None] | None = None,
    tick_every: float = 1.0,
    http_stack: str | None = None,
    replies: bool = True,
    keep_reply_text: bool = False,
    answers: AnswerTexts | None = None,
    now: str | None = None,
    **polling: Any,
) -> TrackResult:
    """Poll the delivery status of a sent campaign's accepted messages into its journal, then
    (``replies``) read the inbound replies of every messaged chat once.

    ``polling`` are ``TrackOptions`` fields (timeout, request_timeout, max_attempts, ...);
    ``now``: rehearsal time against a non-live API (ISO 8601, or "emulator": its clock).
    """
    campaign = load_campaign(file)
    send_opts = resolve_options(
        campaign.send_options,
        base_url=base_url,
        rate=rate,
        concurrency=concurrency,
        http_stack=http_stack,
    )
    clock = rehearsal_clock(now, send_opts.base_url)  # `--now`: refused against the live API
    key = api_key if api_key is not None else api_key_from_env("track")
    state = locate_state(state_dir, file, policy=campaign.policy, campaign_id=campaign.id)
    with (
        existing_journal(state, campaign.id, file, lock="track") as journal,
        open_ledger(state, command="track") as ledger,
    ):
        reading = None
        if replies:
            sync_contacts(state, ledger)
            reading = ReplyOptions(
                stop_words(campaign.optout_words), keep_reply_text, ledger, campaign.id
            )
        options = track_options(send_opts, replies=reading, **polling)
        result = track_journal(
            journal,
            campaign.revision,
            options,
            key,
            on_tick=on_tick,
            tick_every=tick_every,
            clock=clock,
        )
        if answers is None and policy_answers(campaign.policy).any:
            answers = policy_answers(campaign.policy)
        if replies and answers is not None and result.stop_reason != StopReason.UNAUTHORIZED:
            result.answered = run_coroutine(
                answer_owed(
                    ledger, answers, base_url=send_opts.base_url, api_key=key, options=send_opts
                )
            )
        return result

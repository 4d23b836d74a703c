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
from runner.http.transport import run as run_on_loop
from runner.planning.planner import PlanSummary, iter_plan, summarize
from runner.run.send import Executor, RunResult, RunStats, SendOptions, install_signal_handlers
from runner.run.track import Tracker, TrackOptions, TrackResult, TrackStats
from runner.store.journal import ACCEPTED, Journal
from runner.store.paths import DEFAULT_STATE_DIR

T = TypeVar("T")
S = TypeVar("S")

# The pace when neither the campaign (send.rate_per_second) nor the caller sets one. The API
# documents no request-rate limit (no Retry-After or X-RateLimit-* headers; its 429s are daily
# caps), so a new account's tolerance is unknown: 10 requests/s is a cautious guess that still
# sends 36,000 requests an hour. rate="unlimited" (or math.inf) asks for no ceiling at all.
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
) -> SendOptions:
    """Campaign ``send:`` settings give the defaults; explicit arguments (CLI flags) override;
    with neither, ``DEFAULT_RATE``. ``rate="unlimited"`` (or infinity) removes the ceiling."""
    base = base_url_from(base_url)
    if rate is None:
        rate = campaign_send.get("rate_per_second")
    if rate is None:
        rate = DEFAULT_RATE
    if concurrency is None:
        concurrency = campaign_send.get("concurrency")
    if isinstance(rate, str) and rate.strip().lower() == UNLIMITED:
        rate = math.inf
    if not float(rate) > 0:  # NaN too
        raise CampaignError("the rate must be a positive number of requests per second",
                            hint="e.g. --rate 5, or --rate unlimited for no ceiling")
    return SendOptions(
        base_url=base,
        rate_per_second=None if math.isinf(float(rate)) else float(rate),
        concurrency=int(concurrency) if concurrency else 8,
        timeout=timeout,
        max_attempts=max_attempts,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
    )


def track_options(send: SendOptions, **rest: Any) -> TrackOptions:
    """Tracking goes to the same API at the same pace as the send; ``rest`` sets the polling."""
    return TrackOptions(base_url=send.base_url, rate_per_second=send.rate_per_second,
                        concurrency=send.concurrency, **rest)


def open_journal(state_dir: str | Path, campaign_id: str) -> Journal:
    """The campaign's journal, created if needed; a state folder that cannot be made or written
    is a user error, not a traceback."""
    try:
        return Journal.for_campaign(state_dir, campaign_id)
    except (OSError, sqlite3.Error) as err:
        raise CampaignError(f"cannot open the journal in {state_dir}: {err}",
                            hint="pass --state DIR with a folder you can write") from None


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run one top-level coroutine on the event loop our HTTP transport is tuned for."""
    return run_on_loop(coro)


async def _with_ticks(work: Awaitable[T], stats_of: Callable[[], S],
                      on_tick: Callable[[S], None] | None, every: float) -> T:
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
    return StoppedEarly(f"the journal could not be written: {err}", file=str(journal.path),
                        hint=f"check the disk and permissions, then run {command} again")


def plan_doc(summary: PlanSummary) -> dict[str, Any]:
    """What the journal records about the plan a run started from."""
    return {"requests": summary.requests, "messages": summary.messages,
            "recipients": summary.recipients, "suppressed": summary.suppressed,
            "duplicates": summary.duplicates,
            "steps": {k: {"requests": c.requests, "messages": c.messages}
                      for k, c in summary.steps.items()}}


def track_journal(journal: Journal, revision: int, options: TrackOptions, api_key: str, *,
                  on_tick: Callable[[TrackStats], None] | None = None,
                  tick_every: float = 1.0) -> TrackResult:
    """Track one journal to the end (or the timeout); Ctrl-C stops it gracefully."""
    tracker = Tracker(journal, api_key=api_key, options=options, revision=revision)

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


def exit_after_track(send_exit: int, tracked: TrackResult) -> int:
    """`send --track`: the send's exit code, unless it was OK and tracking left some in flight
    (STOPPED); a refused key while tracking is always STOPPED."""
    if tracked.stop_reason == "unauthorized":
        return exitcodes.STOPPED
    return send_exit if send_exit != exitcodes.OK else tracked.exit_code


@dataclass
class SendOutcome:
    """What a send did: the last run, the tracking (if asked for), and the exit code."""

    result: RunResult
    tracked: TrackResult | None
    exit_code: int  # runner.exitcodes
    journal: Path  # where the run is recorded (``runner.report.data.build_report`` reads it)


class SendSession:
    """One campaign's send: loaded, planned in full, its journal open. Use as a context manager.

    Opening it validates everything (an invalid recipient anywhere stops before anything is
    sent) and needs the API key; ``run`` sends, ``track`` polls delivery.
    """

    def __init__(self, file: str | Path, campaign: Campaign, summary: PlanSummary,
                 options: SendOptions, api_key: str, journal: Journal) -> None:
        self.file = Path(file)
        self.campaign = campaign
        self.summary = summary
        self.options = options
        self.journal = journal
        self._api_key = api_key

    @classmethod
    def open(cls, file: str | Path, *, state_dir: str | Path = DEFAULT_STATE_DIR,
             api_key: str | None = None, base_url: str | None = None, rate: float | None = None,
             concurrency: int | None = None, timeout: float = 30.0, max_attempts: int = 6,
             backoff_base: float = 0.5, backoff_cap: float = 30.0) -> SendSession:
        campaign = load_campaign(file)
        summary = summarize(campaign)
        options = resolve_options(campaign.send_options, base_url=base_url, rate=rate,
                                  concurrency=concurrency, timeout=timeout,
                                  max_attempts=max_attempts, backoff_base=backoff_base,
                                  backoff_cap=backoff_cap)
        key = api_key if api_key is not None else api_key_from_env("send")
        return cls(file, campaign, summary, options, key, open_journal(state_dir, campaign.id))

    def __enter__(self) -> SendSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.journal.close()

    def already_accepted(self) -> int:
        """Requests of this revision an earlier run already got accepted (resuming skips them)."""
        return sum(1 for e in self.journal.entries(self.campaign.revision) if e.status == ACCEPTED)

    def run_once(self, *, on_tick: Callable[[RunStats], None] | None = None,
                 tick_every: float = 1.0) -> RunResult:
        """Send every due request not yet accepted; one run in the journal."""
        campaign, options = self.campaign, self.options
        run_id = self.journal.start_run(campaign.id, campaign.revision, options.to_dict(),
                                        plan_doc(self.summary))
        executor = Executor(self.journal, api_key=self._api_key, options=options,
                            revision=campaign.revision, run_id=run_id, gate=gate_for(campaign))

        async def go() -> RunResult:
            remove = install_signal_handlers(executor)
            try:
                return await _with_ticks(executor.run(iter_plan(campaign), total=self.summary.requests),
                                         lambda: executor.stats, on_tick, tick_every)
            finally:
                remove()

        try:
            result = run_coroutine(go())
        except sqlite3.Error as err:
            raise journal_failed(err, self.journal, "send") from None
        counts = result.counts()
        if result.cap:
            counts["cap"] = {k: v for k, v in result.cap.items() if k != "message"}
        self.journal.finish_run(run_id, counts, result.exit_code, result.stop_reason)
        return result

    def run(self, *, wait: bool = False, on_tick: Callable[[RunStats], None] | None = None,
            tick_every: float = 1.0, on_wait: Callable[[float], None] | None = None,
            sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.time) -> RunResult:
        """Send; with ``wait``, sleep until the next message falls due and send again, until
        nothing waits on the schedule (or Ctrl-C while waiting, which keeps what was sent)."""
        while True:
            result = self.run_once(on_tick=on_tick, tick_every=tick_every)
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
            self.campaign = load_campaign(self.file)
            self.summary = summarize(self.campaign)

    def track(self, *, timeout: float = 300.0,
              on_tick: Callable[[TrackStats], None] | None = None,
              tick_every: float = 1.0) -> TrackResult:
        """Poll delivery of what this campaign's runs got accepted (`send --track`)."""
        o = self.options
        topts = track_options(o, request_timeout=o.timeout, timeout=timeout,
                              max_attempts=o.max_attempts, backoff_base=o.backoff_base,
                              backoff_cap=o.backoff_cap)
        return track_journal(self.journal, self.campaign.revision, topts, self._api_key,
                             on_tick=on_tick, tick_every=tick_every)


def send(file: str | Path, *, state_dir: str | Path = DEFAULT_STATE_DIR, wait: bool = False,
         track: bool = False, track_timeout: float = 300.0, api_key: str | None = None,
         **options: Any) -> SendOutcome:
    """Send a campaign without asking (the library has no prompt): resumes from its journal.

    ``options`` are those of ``SendSession.open`` (base_url, rate, concurrency, timeout, ...).
    """
    with SendSession.open(file, state_dir=state_dir, api_key=api_key, **options) as session:
        result = session.run(wait=wait)
        exit_code = result.exit_code
        tracked = None
        if track and exit_code in (exitcodes.OK, exitcodes.FAILED, exitcodes.WAITING):
            tracked = session.track(timeout=track_timeout)
            exit_code = exit_after_track(exit_code, tracked)
    return SendOutcome(result, tracked, exit_code, session.journal.path)


def track(file: str | Path, *, state_dir: str | Path = DEFAULT_STATE_DIR,
          api_key: str | None = None, base_url: str | None = None, rate: float | None = None,
          concurrency: int | None = None, on_tick: Callable[[TrackStats], None] | None = None,
          tick_every: float = 1.0, **polling: Any) -> TrackResult:
    """Poll the delivery status of a sent campaign's accepted messages into its journal.

    ``polling`` are ``TrackOptions`` fields (timeout, request_timeout, max_attempts, ...).
    """
    campaign = load_campaign(file)
    send_opts = resolve_options(campaign.send_options, base_url=base_url, rate=rate,
                                concurrency=concurrency)
    options = track_options(send_opts, **polling)
    key = api_key if api_key is not None else api_key_from_env("track")
    with Journal.existing(state_dir, campaign.id, file) as journal:
        return track_journal(journal, campaign.revision, options, key, on_tick=on_tick,
                             tick_every=tick_every)

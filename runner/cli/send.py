"""`campaign send FILE`: validate and plan, confirm, send with a journal, report.

Exit codes: 0 all accepted, 1 some failed for good (or invalid campaign), 3 stopped early and
resumable (bad key, a cap, Ctrl-C, retries exhausted): running the same command again resumes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import click

from runner.cli._base import api_options, main, user_errors
from runner.errors import CampaignError, StoppedEarly
from runner.http.client import api_key_from_env, base_url_from
from runner.report.data import build_report, render
from runner.run.send import (
    Executor,
    RunResult,
    RunStats,
    SendOptions,
    install_signal_handlers,
)
from runner.store.journal import ACCEPTED, Journal


def open_journal(state_dir: Path, campaign_id: str) -> Journal:
    """The campaign's journal, created if needed; a state folder that cannot be made or written
    is a user error, not a traceback."""
    try:
        return Journal.for_campaign(state_dir, campaign_id)
    except (OSError, sqlite3.Error) as err:
        raise CampaignError(f"cannot open the journal in {state_dir}: {err}",
                            hint="pass --state DIR with a folder you can write") from None


def resolve_options(
    campaign_send: dict[str, Any],
    *,
    base_url: str | None,
    rate: float | None,
    concurrency: int | None,
    timeout: float,
    max_attempts: int,
) -> SendOptions:
    """Campaign ``send:`` settings give the defaults; CLI flags override them."""
    base = base_url_from(base_url)
    if rate is None:
        rate = campaign_send.get("rate_per_second")
    if concurrency is None:
        concurrency = campaign_send.get("concurrency")
    if rate is not None and float(rate) <= 0:
        raise CampaignError("the rate must be a positive number of requests per second",
                            hint="e.g. --rate 5")
    return SendOptions(
        base_url=base,
        rate_per_second=float(rate) if rate is not None else None,
        concurrency=int(concurrency) if concurrency else 8,
        timeout=timeout,
        max_attempts=max_attempts,
    )


class Progress:
    """Counts on one rewritten line on a terminal; a plain line every ``every`` requests in logs."""

    def __init__(self, stats_of: Any, total: int, *, tty: bool) -> None:
        self._stats_of = stats_of
        self.total = total
        self.tty = tty
        self.every = max(100, total // 20)
        self._last_bucket = 0
        self._started = time.monotonic()

    def line(self, stats: RunStats) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        fresh = stats.done - stats.already
        rate = fresh / elapsed
        remaining = max(self.total - stats.done, 0)
        eta = f"{remaining / rate:,.0f} s" if rate > 0 and remaining else "-"
        return (f"{stats.done:,}/{self.total:,}  accepted {stats.accepted:,}  failed "
                f"{stats.failed:,}  retrying {stats.retrying:,}  {rate:,.1f}/s  ETA {eta}")

    def tick(self) -> None:
        stats = self._stats_of()
        if self.tty:
            click.echo("\r\x1b[2K" + self.line(stats), err=True, nl=False)
        elif stats.done // self.every > self._last_bucket:
            self._last_bucket = stats.done // self.every
            click.echo(self.line(stats), err=True)

    def finish(self) -> None:
        if self.tty:
            click.echo("\r\x1b[2K" + self.line(self._stats_of()), err=True)

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(0.25 if self.tty else 1.0)
            self.tick()


def _summary_lines(summary: Any, options: SendOptions, journal: Journal, already: int) -> str:
    steps = ", ".join(f"{name} {c.requests:,}" for name, c in summary.steps.items())
    rate = f"{options.rate_per_second:g}/s" if options.rate_per_second else "unlimited"
    lines = [
        f"campaign {summary.campaign} (revision {summary.revision}): {summary.recipients:,} "
        f"recipients, {summary.requests:,} requests, {summary.messages:,} messages",
        f"  steps: {steps}",
        f"  to {options.base_url}  rate {rate}  concurrency {options.concurrency}",
        f"  journal {journal.path}",
    ]
    if summary.suppressed:
        lines.append(f"  suppressed: {summary.suppressed:,} recipients are not sent anything")
    if already:
        lines.append(f"  resuming: {already:,} of {summary.requests:,} requests already accepted")
    return "\n".join(lines)


def _already_accepted(journal: Journal, revision: int) -> int:
    return sum(1 for e in journal.entries(revision) if e.status == ACCEPTED)


async def _send(executor: Executor, campaign: Any, total: int, progress: bool) -> RunResult:
    from runner.planning.planner import iter_plan

    remove = install_signal_handlers(executor)
    ticker = Progress(lambda: executor.stats, total, tty=sys.stderr.isatty())
    task = asyncio.create_task(ticker.loop()) if progress else None
    try:
        return await executor.run(iter_plan(campaign), total=total)
    finally:
        remove()
        if task is not None:
            task.cancel()
            ticker.finish()


def _one_run(journal: Journal, campaign: Any, options: SendOptions, api_key: str,
             plan_doc: dict[str, Any], total: int, progress: bool) -> RunResult:
    from runner.campaign.schedule import gate_for

    run_id = journal.start_run(campaign.id, campaign.revision, options.to_dict(), plan_doc)
    executor = Executor(journal, api_key=api_key, options=options, revision=campaign.revision,
                        run_id=run_id, gate=gate_for(campaign))
    try:
        result = _run_loop(_send(executor, campaign, total, progress))
    except sqlite3.Error as err:
        # Nothing is sent without its journal row, so stopping here loses nothing.
        raise StoppedEarly(f"the journal could not be written: {err}", file=str(journal.path),
                           hint="check the disk and permissions, then run send again") from None
    counts = result.counts()
    if result.cap:
        counts["cap"] = {k: v for k, v in result.cap.items() if k != "message"}
    journal.finish_run(run_id, counts, result.exit_code, result.stop_reason)
    return result


def _sleep_until(due: float | None) -> bool:
    """Sleep (not spin) until `due`; False when interrupted (Ctrl-C)."""
    delay = max(1.0, (due or time.time() + 60) - time.time())
    click.echo(f"waiting {delay:,.0f} s for the next message to fall due (Ctrl-C to stop)", err=True)
    try:
        time.sleep(delay)
    except KeyboardInterrupt:
        return False
    return True


def _run_loop(coro: Any) -> Any:
    try:
        from runner.http.transport import run
    except ImportError:
        return asyncio.run(coro)
    return run(coro)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@api_options()
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the run's JSON report to this file.")
@click.option("--yes", "-y", is_flag=True, help="Send without asking for confirmation.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=30.0, show_default=True,
              help="Seconds per HTTP request.")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=6, show_default=True,
              help="Attempts per request in this run before leaving it pending.")
@click.option("--show-recipients", is_flag=True, help="Do not mask recipients in the report.")
@click.option("--progress/--no-progress", default=True, help="Show progress on stderr.")
@click.option("--track", "track", is_flag=True,
              help="After sending, poll delivery status until every accepted message is final "
                   "(as campaign track; see --track-timeout).")
@click.option("--track-timeout", type=click.FloatRange(0, 86400), default=300.0,
              show_default=True, help="With --track: stop tracking after this many seconds.")
@click.option("--wait", "wait", is_flag=True,
              help="With a schedule or delays: keep running, sleeping until the next message is due, "
                   "until everything is sent or expired.")
# Retry pacing: hidden because the defaults suit the API; tests and rehearsals shorten them.
@click.option("--backoff-base", type=click.FloatRange(0, 60), default=0.5, hidden=True)
@click.option("--backoff-cap", type=click.FloatRange(0, 600), default=30.0, hidden=True)
@user_errors(None)
def send(
    file: Path,
    base_url: str | None,
    rate: float | None,
    concurrency: int | None,
    state_dir: Path,
    report_file: Path | None,
    yes: bool,
    timeout: float,
    max_attempts: int,
    show_recipients: bool,
    progress: bool,
    backoff_base: float,
    backoff_cap: float,
    wait: bool,
    track: bool,
    track_timeout: float,
) -> None:
    """Send a campaign (asks first unless --yes). Re-running resumes: nothing is sent twice."""
    from runner.campaign.load import load_campaign
    from runner.planning.planner import summarize

    campaign = load_campaign(file)
    # A full plan first: an invalid recipient anywhere stops the run before anything is sent.
    summary = summarize(campaign)
    options = resolve_options(campaign.send_options, base_url=base_url, rate=rate,
                              concurrency=concurrency, timeout=timeout,
                              max_attempts=max_attempts)
    options = dataclasses.replace(options, backoff_base=backoff_base, backoff_cap=backoff_cap)
    api_key = api_key_from_env("send")
    journal = open_journal(state_dir, campaign.id)
    try:
        already = _already_accepted(journal, campaign.revision)
        click.echo(_summary_lines(summary, options, journal, already), err=True)
        if not yes:
            if not sys.stdin.isatty():
                raise CampaignError("not on a terminal: confirm the send with --yes",
                                    hint="campaign send FILE --yes")
            if not click.confirm(f"Send {summary.requests - already:,} requests?", err=True):
                click.echo("nothing sent", err=True)
                sys.exit(1)
        plan_doc = {"requests": summary.requests, "messages": summary.messages,
                    "recipients": summary.recipients, "suppressed": summary.suppressed,
                    "duplicates": summary.duplicates,
                    "steps": {k: {"requests": c.requests, "messages": c.messages}
                              for k, c in summary.steps.items()}}
        while True:
            result = _one_run(journal, campaign, options, api_key, plan_doc, summary.requests, progress)
            if result.exit_code != 4 or not wait:
                break
            if not _sleep_until(result.stats.next_due):
                break  # interrupted while waiting: what was sent is journalled
            # Re-read the campaign: suppression files may have grown (opt-outs) meanwhile.
            campaign = load_campaign(file)
            summary = summarize(campaign)
        if result.exit_code == 4:
            due = result.stats.next_due
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(due)) if due else "later"
            click.echo(f"{result.stats.scheduled:,} request(s) wait for their schedule; the next is due "
                       f"at {when}. Run the same command again then (or use --wait).", err=True)
        exit_code = result.exit_code
        if track and exit_code in (0, 1, 4):
            exit_code = _track_after_send(journal, campaign.revision, options, api_key,
                                          track_timeout, progress, exit_code)
        report = build_report(journal, show_recipients=show_recipients)
        click.echo(render(report, "text"), nl=False)
        if report_file is not None:
            report_file.parent.mkdir(parents=True, exist_ok=True)
            report_file.write_text(render(report, "json"), encoding="utf-8")
    finally:
        journal.close()
    sys.exit(exit_code)


def _track_after_send(journal: Journal, revision: int, options: SendOptions, api_key: str,
                      timeout: float, progress: bool, send_exit: int) -> int:
    """`send --track`: the send's exit code, unless it was 0 and tracking left some in flight
    (3); a refused key while tracking is always 3."""
    from runner.cli.track import run_tracking, summary_text
    from runner.run.track import TrackOptions

    topts = TrackOptions(base_url=options.base_url, rate_per_second=options.rate_per_second,
                         concurrency=options.concurrency, request_timeout=options.timeout,
                         timeout=timeout, max_attempts=options.max_attempts,
                         backoff_base=options.backoff_base, backoff_cap=options.backoff_cap)
    result = run_tracking(journal, revision, topts, api_key, progress)
    click.echo(summary_text(result), err=True)
    if result.stop_reason == "unauthorized":
        return 3
    return send_exit if send_exit else result.exit_code

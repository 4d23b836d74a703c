"""`campaign send FILE`: validate and plan, confirm, send with a journal, report.
`campaign send DIR --due-only`: resume every campaign under DIR with something due (a scheduler's
command; runner.run.send_many), one line each and one exit code.

Exit codes (runner.exitcodes): 0 all accepted, 1 some failed for good (or invalid campaign),
3 stopped early and resumable (bad key, a cap, Ctrl-C, retries exhausted): running the same
command again resumes; 4 everything due was sent and the rest waits on its schedule.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

# httpx's package imports its own command-line tool (httpx._main: rich, pygments, ~45 ms)
# whenever those are installed, and rich is; send never uses it, and httpx falls back to a
# stub when that import fails. Blocked before the send path first imports httpx.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from runner import exitcodes  # noqa: E402  (after the block above)
from runner.cli._base import api_options, policy_option, user_errors
from runner.cli.console import echo
from runner.cli.progress import (
    SendProgress,
    TrackProgress,
    network_summary,
    terminal_console,
    track_summary,
)
from runner.errors import CampaignError, Problem
from runner.http.stacks import proxy_for
from runner.report.build import build
from runner.report.diagnostics import render_problems
from runner.report.reporters import render
from runner.report.words import answers_line, confirm_question, unauthorized_hint
from runner.run.send import RunResult
from runner.run.send_many import CampaignRun, SendOptions, Verdict, campaign_files, send_due
from runner.run.session import SendSession

_EPILOG = """\b
Exit codes:
  0  every request accepted
  1  some failed for good (or expired), or the campaign is invalid, or a user error
  3  stopped early and resumable (refused key, a cap, Ctrl-C, retries exhausted):
     run the same command again to resume; nothing is sent twice
  4  everything due was sent; the rest waits on its schedule (run again later, or --wait)
With DIR --due-only, the most serious of the campaigns' codes: 1 > 3 > 4 > 0 (a campaign
locked by a run elsewhere counts 3; one with nothing due, or never sent, counts 0).
"""


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "later"


def _campaign_line(run: CampaignRun) -> str:
    name = str(run.file)
    if run.verdict is Verdict.NEVER_SENT:
        return (
            f"{name}: skipped, never sent (a schedule only resumes; send it once: "
            f"campaign send {name})"
        )
    if run.verdict is Verdict.NOTHING_DUE:
        due = run.due.next_due if run.due is not None else None
        return f"{name}: skipped, nothing due" + (
            f" (next due {_when(due.timestamp())})" if due is not None else ""
        )
    if run.verdict is Verdict.REFUSED or run.outcome is None:
        return f"{name}: not sent (exit {run.exit_code})"
    st = run.outcome.result.stats
    line = (
        f"{name}: sent {st.accepted - st.already:,} accepted, {st.failed:,} failed, "
        f"{st.pending:,} pending (exit {run.exit_code})"
    )
    if st.scheduled:
        line += f"; {st.scheduled:,} wait, next due {_when(st.next_due)}"
    return line


def _send_due(
    folder: Path,
    yes: bool,
    options: SendOptions,
    state_dir: Path | str | None,
    base_url: str | None,
    now: str | None,
) -> int:
    """`send DIR --due-only` (or `send FILE --due-only`): each campaign's line, one summary."""
    files = campaign_files(folder) if folder.is_dir() else [folder]
    if not files:
        raise CampaignError(
            f"no campaign file under {folder}",
            hint="campaign send DIR --due-only resumes the campaigns a folder holds",
        )
    if not yes:
        if not sys.stdin.isatty():
            raise CampaignError(
                "not on a terminal: confirm the send with --yes",
                hint=f"campaign send {folder} --due-only --yes",
            )
        if not click.confirm(
            f"Send what is due now in {len(files):,} campaign file(s) under {folder}?", err=True
        ):
            echo("nothing sent", err=True)
            return exitcodes.FAILED

    def said(run: CampaignRun) -> None:
        echo(_campaign_line(run))
        if run.problems:
            out = render_problems(run.problems, "text", color=False)
            echo(out, err=True, nl=not out.endswith("\n"))

    done = send_due(
        files, state_dir=state_dir, now=now, base_url=base_url, on_campaign=said, options=options
    )
    echo(
        f"{len(done.runs):,} campaign(s): {done.count(Verdict.SENT):,} sent, "
        f"{done.count(Verdict.NOTHING_DUE):,} nothing due, {done.count(Verdict.NEVER_SENT):,} "
        f"never sent, {done.count(Verdict.REFUSED):,} not sent; exit {done.exit_code}"
    )
    return done.exit_code


def consent_summary(result: RunResult) -> str | None:
    """What reading replies before re-messaging cost and found, in one line (None: nothing)."""
    c = result.consent
    if c is None or not (c.chats_read or c.kept or c.unread):
        return None
    parts = []
    if c.chats_read:
        parts.append(
            f"read the new replies of {c.chats_read:,} chats messaged before "
            f"({c.requests:,} requests): {c.opted_out:,} opted out, {c.held:,} held"
        )
    if c.kept:
        parts.append(f"{c.kept:,} chats not messaged (the consent ledger keeps them)")
    if c.unread:
        parts.append(
            f"{len(c.unread):,} chats not messaged: their replies could not be read "
            f"({c.unread[0][1]}); run again to carry on"
        )
    return "consent: " + "; ".join(parts)


def _summary_lines(session: SendSession, already: int, default_rate: bool) -> str:
    summary, options = session.summary, session.options
    steps = ", ".join(f"{name} {c.requests:,}" for name, c in summary.steps.items())
    rate = f"{options.rate_per_second:g}/s" if options.rate_per_second else "unlimited"
    # Proxies apply to every base URL NO_PROXY does not cover, the emulator's too (as httpx).
    proxy = proxy_for(options.base_url)
    via = f"  via proxy {proxy.display}" if proxy is not None else ""
    if default_rate:
        rate += " (default; set send.rate_per_second or --rate)"
    lines = [
        f"campaign {summary.campaign} (revision {summary.revision}): {summary.recipients:,} "
        f"recipients, {summary.requests:,} requests, {summary.messages:,} messages",
        f"  steps: {steps}",
        f"  to {options.base_url}{via}  rate {rate}  concurrency {options.concurrency}",
        f"  journal {session.journal.path}",
    ]
    if session.plan is not None:
        recomputed = session.audit.plan_digest if session.audit is not None else None
        lines.append(f"  plan {session.plan.path}  {recomputed}: inputs unchanged")
        for name in session.plan_reread:
            lines.append(f"  re-read {name}: changed since the plan (suppression wins)")
        if session.plan_skipped:
            lines.append(
                f"  skipped: {session.plan_skipped:,} planned requests (opted out since the plan)"
            )
    if summary.suppressed:
        lines.append(f"  suppressed: {summary.suppressed:,} recipients are not sent anything")
    if summary.opted_out or summary.held:
        lines.append(
            f"  consent ledger: {summary.opted_out:,} opted out, {summary.held:,} held for "
            "review (of the suppressed; `campaign optouts review` lists the holds)"
        )
    if already:
        lines.append(f"  resuming: {already:,} of {summary.requests:,} requests already accepted")
    return "\n".join(lines)


@click.command(epilog=_EPILOG)
@click.argument("file", type=click.Path(path_type=Path), required=False)
@api_options()
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Send exactly this reviewed `plan --out` file; refused if any input changed since.",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the run's JSON report to this file.",
)
@click.option(
    "--require-clean",
    "clean",
    is_flag=True,
    help="Refuse uncommitted changes (git) to the campaign or its data files.",
)
@click.option("--yes", "-y", is_flag=True, help="Send without asking for confirmation.")
@click.option(
    "--due-only",
    "due_only",
    is_flag=True,
    help="Only campaigns with messages due now and a journal (a scheduler's resume): "
    "FILE may be a folder, every campaign under it is checked; the others are "
    "skipped and named.",
)
@policy_option()
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    default=30.0,
    show_default=True,
    help="Seconds per HTTP request.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 100),
    default=6,
    show_default=True,
    help="Attempts per request in this run before leaving it pending.",
)
@click.option("--show-recipients", is_flag=True, help="Do not mask recipients in the report.")
@click.option(
    "--progress/--no-progress",
    default=True,
    help="Show progress on stderr: a bar on a terminal, a plain line now and then otherwise.",
)
@click.option(
    "--track",
    "track",
    is_flag=True,
    help="After sending, poll delivery status until every accepted message is final "
    "(as campaign track; see --track-timeout).",
)
@click.option(
    "--track-timeout",
    type=click.FloatRange(0, 86400),
    default=300.0,
    show_default=True,
    help="With --track: stop tracking after this many seconds.",
)
@click.option(
    "--wait",
    "wait",
    is_flag=True,
    help="With a schedule or delays: keep running, sleeping until the next message is due, "
    "until everything is sent or expired.",
)
@click.option(
    "--now",
    "now",
    metavar="TIME|emulator",
    help="Rehearsal time, against a non-live base URL only: act as if it were TIME "
    "(ISO 8601 with an offset), or the emulator's clock ('emulator').",
)
# Retry pacing: hidden because the defaults suit the API; tests and rehearsals shorten them.
@click.option("--backoff-base", type=click.FloatRange(0, 60), default=0.5, hidden=True)
@click.option("--backoff-cap", type=click.FloatRange(0, 600), default=30.0, hidden=True)
@user_errors(None)
def send(
    file: Path | None,
    plan_file: Path | None,
    base_url: str | None,
    rate: float | None,
    concurrency: int | None,
    http_stack: str | None,
    state_dir: Path,
    report_file: Path | None,
    clean: bool,
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
    policy: Path | None,
    now: str | None,
    due_only: bool,
) -> None:
    """Send a campaign (asks first unless --yes). Re-running resumes: nothing is sent twice."""
    if file is None and plan_file is None:
        raise CampaignError("which campaign? give FILE, or --plan PLAN", hint="campaign send FILE")
    if file is not None and file.is_dir() and not due_only:
        raise CampaignError(
            f"{file} is a folder: a folder is resumed with --due-only",
            hint=f"campaign send {file} --due-only --yes (each campaign with "
            "something due), or name one campaign file",
        )
    if due_only:
        unsupported = [
            name
            for name, given in (
                ("--plan", plan_file),
                ("--wait", wait),
                ("--track", track),
                ("--report", report_file),
            )
            if given
        ]
        if file is None or unsupported:
            raise CampaignError(
                f"--due-only does not take {', '.join(unsupported) or '--plan'}",
                hint="campaign send DIR --due-only --yes; then `campaign track` "
                "and `campaign report` per campaign",
            )
        sys.exit(
            _send_due(
                file,
                yes,
                SendOptions(
                    rate=rate,
                    concurrency=concurrency,
                    timeout=timeout,
                    max_attempts=max_attempts,
                    backoff_base=backoff_base,
                    backoff_cap=backoff_cap,
                    http_stack=http_stack,
                    policy=policy,
                    clean=clean,
                ),
                state_dir,
                base_url,
                now,
            )
        )
    session = SendSession.open(
        file,
        plan=plan_file,
        clean=clean,
        state_dir=state_dir,
        base_url=base_url,
        rate=rate,
        concurrency=concurrency,
        timeout=timeout,
        max_attempts=max_attempts,
        backoff_base=backoff_base,
        backoff_cap=backoff_cap,
        http_stack=http_stack,
        policy=policy,
        now=now,
    )
    with session:
        overlay = session.journal_overlay()
        already = overlay.accepted
        default_rate = rate is None and "rate_per_second" not in session.campaign.send_options
        echo(_summary_lines(session, already, default_rate), err=True)
        for warning in overlay.warnings():
            echo(f"  warning: {warning}", err=True)
        if not yes:
            if not sys.stdin.isatty():
                raise CampaignError(
                    "not on a terminal: confirm the send with --yes",
                    hint="campaign send FILE --yes",
                )
            if not click.confirm(
                confirm_question(
                    session.summary.requests,
                    already,
                    overlay.earlier_revision,
                    overlay.same_content_other_step,
                ),
                err=True,
            ):
                echo("nothing sent", err=True)
                sys.exit(exitcodes.FAILED)
        console = terminal_console() if progress else None
        ticker = SendProgress(session.summary.requests, console=console)
        tticker = TrackProgress(console=console)

        def sent(result: RunResult) -> None:
            if progress:
                ticker.finish(result.stats)
            network = network_summary(result.stats.network_errors)
            if network:
                echo(f"this run: {network}", err=True)
            consent_line = consent_summary(result)
            if consent_line:
                echo(consent_line, err=True)
            answered = answers_line(session.answered)
            if answered:
                echo(answered, err=True)
            if result.exit_code == exitcodes.WAITING:
                due = result.stats.next_due
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(due)) if due else "later"
                echo(
                    f"{result.stats.scheduled:,} request(s) wait for their schedule; the next "
                    f"is due at {when}. Run the same command again then (or use --wait).",
                    err=True,
                )

        try:
            outcome = session.send(
                wait=wait,
                track=track,
                track_timeout=track_timeout,
                on_tick=ticker.tick if progress else None,
                tick_every=ticker.every_s,
                on_wait=ticker.waiting,
                on_sent=sent,
                on_track_tick=tticker.tick if progress else None,
                track_tick_every=tticker.every_s,
            )
        finally:
            ticker.close()  # an escaping error must not leave the cursor hidden
            tticker.finish()
        if outcome.tracked is not None:
            echo(track_summary(outcome.tracked), err=True)
        try:
            with session.journal.snapshot("report"):
                report = build(
                    session.journal,
                    show_recipients=show_recipients,
                    current=session.current_plan(),
                    ledger=session.ledger,
                )
            echo(render(report, "text", file=str(session.file)), nl=False)
            if report_file is not None:
                report_file.parent.mkdir(parents=True, exist_ok=True)
                report_file.write_text(render(report, "json"), encoding="utf-8")
        except (CampaignError, OSError) as err:
            # What was sent stays sent: the report's failure is told, the send's exit code stands.
            problems = (
                err.problems
                if isinstance(err, CampaignError)
                else [
                    Problem(
                        f"cannot write the report to {report_file}: {err.strerror or err}",
                        file=str(report_file),
                        hint="choose a path in a folder you can write",
                    )
                ]
            )
            out = render_problems(problems, "text", color=False)
            echo(out, err=True, nl=not out.endswith("\n"))
            echo(
                "the send itself is done and journalled: `campaign report FILE` shows it again",
                err=True,
            )
        if outcome.unauthorized:
            echo(unauthorized_hint(session.options.base_url), err=True)
    sys.exit(outcome.exit_code)

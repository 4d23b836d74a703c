"""Build the report model (runner.report.model) from a journal and the consent ledger.

Bounded memory whatever the campaign's size: the journal's rows are streamed a few columns at a
time (``Journal.report_*``; server-side cursors on PostgreSQL) into counters per step, per
reason and per protocol; the reply figures walk the accepted requests ordered by chat beside
the stored replies ordered the same way, holding one chat at a time; the delivery latencies are
kept as 8-byte floats in one ``array('d')`` (8 MB for a million), not as Python objects.

Built from the journal alone (the plan's per-step totals are stored with each run), so
``campaign report`` needs neither the network nor the key. Recipients are masked unless the
caller asks to show them.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runner.audience.mask import display_chat
from runner.consent.standing import EventKind, Standing
from runner.contract import DeliveryStatus
from runner.errors import CampaignError
from runner.planning.current import CurrentPlan
from runner.report.engagement import replies_report
from runner.report.model import (
    PROTOCOLS,
    REPORT_SCHEMA_VERSION,
    Audit,
    ConsentReport,
    DeliveryFailure,
    DeliveryReport,
    FailureGroup,
    HeldChat,
    Histogram,
    Latency,
    MessageCounts,
    OutsidePlan,
    PendingGroup,
    ProtocolCount,
    Report,
    RunInfo,
    RunState,
    RunStateName,
    StepCount,
    StepReport,
    Totals,
)
from runner.states import RequestStatus
from runner.store.journal import NOT_FOUND, Journal
from runner.store.ledger import Ledger

NETWORK_ERROR = "network_error"  # the error code of a request that got no answer (run.send)
EXAMPLES = 5  # recipients named per failure reason
MIN_RATE_REQUESTS = 20
MIN_RATE_SECONDS = 1.0
_BINS = 12

_ACCEPTED = RequestStatus.ACCEPTED.value
_FAILED = RequestStatus.FAILED.value
_SCHEDULED = RequestStatus.SCHEDULED.value
_EXPIRED = RequestStatus.EXPIRED.value
_DELIVERED = DeliveryStatus.DELIVERED.value
_DELIVERY_FAILED = DeliveryStatus.FAILED.value
_CANCELLED = DeliveryStatus.CANCELLED.value


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_rate(sent: int | None, duration: float | None) -> float | None:
    """Requests per second over a run, when the run is long enough for a rate to mean something.

    The first request leaves at t=0, so ``n`` requests span ``n - 1`` intervals: counted so, a
    run limited to 5/s never reads above 5/s. Shorter runs (under a second, under 20 requests)
    give no rate: "285.71 requests/s" for two requests says nothing.
    """
    if not sent or not duration or sent < MIN_RATE_REQUESTS or duration < MIN_RATE_SECONDS:
        return None
    return round((sent - 1) / duration, 2)


def _reason(code: str | None, http_status: int | None) -> str:
    if code:
        return code
    return f"http_{http_status}" if http_status else "unknown"


@dataclass
class _Step:
    """One step's counts while the rows stream by."""

    requests: int = 0
    messages: int = 0
    accepted: int = 0
    failed: int = 0
    scheduled: int = 0
    expired: int = 0
    messages_accepted: int = 0
    seen: int = 0
    delivered: int = 0
    failed_delivery: int = 0
    cancelled: int = 0
    untracked: int = 0

    @property
    def pending(self) -> int:
        return self.requests - self.accepted - self.failed - self.scheduled - self.expired


@dataclass
class _Group:
    """Failures of one reason (or delivery error) while the rows stream by."""

    count: int = 0
    http_status: int | None = None
    message: str | None = None
    steps: Counter[str] = field(default_factory=Counter)
    protocols: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, step: str, shown: str) -> None:
        self.count += 1
        self.steps[step] += 1
        if len(self.examples) < EXAMPLES and shown not in self.examples:
            self.examples.append(shown)


@dataclass
class _Outside:
    requests: int = 0
    accepted: int = 0
    messages_accepted: int = 0
    suppressed: int = 0
    removed: int = 0


def build(
    journal: Journal,
    *,
    show_recipients: bool = False,
    now: float | None = None,
    current: CurrentPlan | None = None,
    ledger: Ledger | None = None,
    running: int | bool = False,
) -> Report:
    """The report of the journal's last run (its revision's requests).

    ``ledger``: the state's consent ledger (opt-outs per step, the ``consent`` section).

    With ``current`` (the campaign file's plan today, ``runner.planning.current.current_plan``)
    the totals count exactly the current plan's keys, and journal rows the plan no longer holds
    (a removed step or recipient, a chat suppressed after it was sent to) are counted under
    ``outside_plan``. Without it, the plan's totals stored with the run are used.
    """
    runs = journal.runs()
    if not runs:
        raise CampaignError(
            "no run has been recorded for this campaign yet",
            file=str(journal.path),
            hint="send it first: campaign send FILE",
        )
    run = runs[-1]
    revision = run["revision"]
    plan = run.get("plan") or {}
    if current is not None and current.revision != revision:
        current = None  # the file moved on to a new revision: its keys say nothing of this run
    planned_steps: Mapping[str, Mapping[str, int]] = (
        current.steps if current is not None else plan.get("steps") or {}
    )
    steps = {
        name: _Step(c.get("requests", 0), c.get("messages", 0)) for name, c in planned_steps.items()
    }
    outside = _Outside() if current is not None else None
    failures: dict[str, _Group] = {}
    pending_reasons: Counter[str] = Counter()
    network_texts: Counter[str] = Counter()
    held: Counter[str] = Counter()  # scheduled rows the law ("law") or a cap ("capped") holds
    # The keys today's plan no longer holds (few, as a rule): the deliveries' and the replies'
    # passes ask this set, not the plan's million sorted hashes again.
    gone: set[str] = set()
    for e in journal.report_requests(revision):
        if current is not None and outside is not None:
            if not current.has(e.key):
                # Not in today's plan: sent before the change, or never to be sent now.
                gone.add(e.key)
                outside.requests += 1
                if e.status == _ACCEPTED:
                    outside.accepted += 1
                    outside.messages_accepted += e.accepted_messages
                elif current.is_suppressed(e.chat):
                    outside.suppressed += 1
                else:
                    outside.removed += 1
                continue
            step = steps.setdefault(e.step, _Step())
            if e.status == _ACCEPTED:
                # The plan's messages, as sent: an accepted request counts what was accepted.
                step.messages += e.accepted_messages - current.planned_messages(e.step, e.chat)
        else:
            step = steps.setdefault(e.step, _Step())
        step.seen += 1
        if e.status == _ACCEPTED:
            step.accepted += 1
            step.messages_accepted += e.accepted_messages
        elif e.status == _FAILED:
            step.failed += 1
            reason = _reason(e.error_code, e.http_status)
            group = failures.get(reason)
            if group is None:
                group = failures[reason] = _Group(
                    http_status=e.http_status, message=e.error_message
                )
            group.add(e.step, display_chat(e.chat, show_recipients))
        elif e.status in (_SCHEDULED, _EXPIRED):
            # Not due yet (window, delay, not_before), or past not_after: never sent.
            if e.status == _SCHEDULED:
                step.scheduled += 1
                if e.error_code in ("law", "capped"):
                    held[e.error_code] += 1  # the legal hours or a frequency cap holds it
            else:
                step.expired += 1
        else:
            # Tried and unconfirmed: its last error says why (none = the process stopped).
            pending_reasons[
                _reason(e.error_code, e.http_status)
                if e.error_code or e.http_status
                else "unconfirmed"
            ] += 1
            if e.error_code == NETWORK_ERROR and e.error_message:
                network_texts[e.error_message] += 1  # the client's words: host, phase, reason
    not_tried = 0
    for step in steps.values():
        # Requests of the plan with no row yet were never tried: pending too.
        step.requests = max(step.requests, step.seen)
        step.messages = max(step.messages, step.messages_accepted)
        not_tried += step.requests - step.seen
    if not_tried:
        pending_reasons["not_attempted"] += not_tried

    keep = (lambda key: key not in gone) if current is not None else None  # noqa: E731
    delivery = _delivery(journal, revision, steps, show_recipients, keep)
    step_reports = tuple(_step_report(name, s) for name, s in steps.items())
    totals = _totals(step_reports, current, plan, held)
    run_info = _run_info(run)
    # Sent before the chat was suppressed (it opted out, say): outside today's plan, but its
    # replies and opt-out still count for the step that was sent.
    engage: Callable[[str, str], bool] | None = None
    if current is not None:
        suppressed = current.is_suppressed
        engage = lambda key, chat: key not in gone or suppressed(chat)  # noqa: E731
    replies = replies_report(journal, revision, engage, iso=iso, optouts=ledger_optouts(ledger))
    outside_plan = (
        None
        if outside is None
        else OutsidePlan(
            outside.requests,
            outside.accepted,
            outside.messages_accepted,
            outside.suppressed,
            outside.removed,
        )
    )
    return Report(
        schema_version=REPORT_SCHEMA_VERSION,
        generated_at=iso(now if now is not None else datetime.now(UTC).timestamp()),
        campaign=run["campaign"],
        revision=revision,
        runs=len(runs),
        run=run_info,
        totals=totals,
        outside_plan=outside_plan,
        steps=step_reports,
        failures=tuple(
            sorted(
                (
                    FailureGroup(
                        reason,
                        g.count,
                        g.http_status,
                        g.message,
                        _step_counts(g.steps),
                        tuple(g.examples),
                    )
                    for reason, g in failures.items()
                ),
                key=lambda g: (-g.count, g.reason),
            )
        ),
        pending=tuple(
            PendingGroup(
                r,
                n,
                network_texts.most_common(1)[0][0]
                if r == NETWORK_ERROR and network_texts
                else None,
            )
            for r, n in sorted(pending_reasons.items(), key=lambda x: (-x[1], x[0]))
        ),
        delivery=delivery,
        replies=replies,
        consent=consent_section(ledger, journal, revision, show_recipients),
        recipients_masked=not show_recipients,
        state=run_state(run_info, totals, outside_plan, running=running),
    )


def _step_counts(c: Counter[str]) -> tuple[StepCount, ...]:
    return tuple(StepCount(k, n) for k, n in c.items())


def _step_report(name: str, s: _Step) -> StepReport:
    accepted = s.messages_accepted
    return StepReport(
        name=name,
        requests=s.requests,
        messages=s.messages,
        accepted=s.accepted,
        failed=s.failed,
        pending=s.pending,
        scheduled=s.scheduled,
        expired=s.expired,
        messages_accepted=accepted,
        delivered=s.delivered,
        failed_delivery=s.failed_delivery,
        cancelled=s.cancelled,
        # Accepted but not final: still travelling, or never polled yet.
        in_flight=max(0, accepted - s.delivered - s.failed_delivery - s.cancelled - s.untracked),
        never_accepted=max(0, s.messages - accepted),
        untracked=s.untracked,
    )


def _totals(
    steps: tuple[StepReport, ...],
    current: CurrentPlan | None,
    plan: Mapping[str, Any],
    held: Counter[str],
) -> Totals:
    excluded = current.excluded if current is not None else plan.get("excluded", 0)
    excluded_by = current.excluded_by if current is not None else plan.get("excluded_by", "")
    suppressed = current.suppressed if current is not None else plan.get("suppressed", 0)
    return Totals(
        requests=sum(s.requests for s in steps),
        messages=sum(s.messages for s in steps),
        accepted=sum(s.accepted for s in steps),
        failed=sum(s.failed for s in steps),
        pending=sum(s.pending for s in steps),
        scheduled=sum(s.scheduled for s in steps),
        expired=sum(s.expired for s in steps),
        suppressed_recipients=int(suppressed) if isinstance(suppressed, int) else 0,
        messages_accepted=sum(s.messages_accepted for s in steps),
        held_by_law=held["law"],
        capped=held["capped"],
        excluded_recipients=excluded if isinstance(excluded, int) else 0,
        excluded_by=str(excluded_by or "") if excluded else "",
    )


def _run_info(run: Mapping[str, Any]) -> RunInfo:
    """The journal's run row (``Journal.runs``: its JSON columns decoded) as the model's."""
    counts = run.get("counts") or {}
    started, ended = run["started_at"], run.get("ended_at")
    duration = counts.get("duration_s")
    if duration is None and ended is not None:
        duration = ended - started
    sent = counts.get("http_requests")
    options = run.get("options") or {}
    dirty = run.get("dirty")
    return RunInfo(
        id=int(run["id"]),
        started_at=iso(started),
        ended_at=iso(ended),
        finished=ended is not None,
        duration_s=round(duration, 3) if duration is not None else None,
        exit_code=run.get("exit_code"),
        stop_reason=run.get("stop_reason"),
        options=options,
        http_requests=sent,
        accepted_this_run=(counts.get("accepted", 0) - counts.get("already_accepted", 0))
        if counts
        else None,
        achieved_rate=run_rate(sent, duration),
        rate_limit=options.get("rate_per_second"),
        # Who sent it from which commit (runner.store.audit); None for runs of older runners.
        audit=Audit(
            git_commit=run.get("git_commit"),
            dirty=dirty if isinstance(dirty, dict) else None,
            plan_digest=run.get("plan_digest"),
            user=run.get("os_user"),
        ),
        cap=counts.get("cap") or None,
        next_due=iso(counts["next_due"]) if counts.get("next_due") else None,
    )


def _delivery(
    journal: Journal,
    revision: int,
    steps: dict[str, _Step],
    show_recipients: bool,
    keep: Callable[[str], bool] | None,
) -> DeliveryReport:
    """What became of the accepted messages (``campaign track``), overall and per step; adds
    the message counts to ``steps``."""
    protocols: Counter[str] = Counter()
    seconds = array("d")  # 8 bytes a delivered message
    failures: dict[str, _Group] = {}
    polled = 0
    last_polled: float | None = None
    outside = 0
    known = set(PROTOCOLS)
    for d in journal.report_deliveries(revision):
        if keep is not None and not keep(d.key):
            outside += 1  # a message of a request the current plan no longer holds
            continue
        step = steps.get(d.step)
        if step is None:
            step = _Step()  # a step only the deliveries know: counted nowhere, as before
        if d.status is not None:
            polled += 1
        if d.last_polled_at is not None and (last_polled is None or d.last_polled_at > last_polled):
            last_polled = d.last_polled_at
        if d.status == NOT_FOUND:
            step.untracked += 1
            continue
        protocols[d.protocol if d.protocol in known else "pending"] += 1
        if d.status == _DELIVERED:
            step.delivered += 1
            if d.time_delivered is not None and d.time_sent is not None:
                seconds.append(max(0, d.time_delivered - d.time_sent) / 1000.0)
        elif d.status in (_DELIVERY_FAILED, _CANCELLED):
            cancelled = d.status == _CANCELLED
            if cancelled:
                step.cancelled += 1
            else:
                step.failed_delivery += 1
            reason = d.error or ("cancelled" if cancelled else "no error given")
            group = failures.setdefault(reason, _Group())
            group.add(d.step, display_chat(d.chat, show_recipients))
            group.protocols[d.protocol or "unknown"] += 1
    ordered = array("d", sorted(seconds))
    del seconds
    totals = [_step_report(name, s) for name, s in steps.items()]
    return DeliveryReport(
        tracked=polled > 0,
        last_polled_at=iso(last_polled),
        messages=MessageCounts(
            planned=sum(s.messages for s in totals),
            accepted=sum(s.messages_accepted for s in totals),
            delivered=sum(s.delivered for s in totals),
            failed=sum(s.failed_delivery for s in totals),
            cancelled=sum(s.cancelled for s in totals),
            in_flight=sum(s.in_flight for s in totals),
            never_accepted=sum(s.never_accepted for s in totals),
            untracked=sum(s.untracked for s in totals),
            outside_plan=outside,
        ),
        protocols=tuple(ProtocolCount(p, protocols[p]) for p in PROTOCOLS),
        time_to_delivery_s=Latency(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            max=ordered[-1] if ordered else None,
            histogram=histogram(ordered),
        ),
        failures=tuple(
            sorted(
                (
                    DeliveryFailure(
                        error,
                        g.count,
                        tuple(ProtocolCount(p, n) for p, n in g.protocols.items()),
                        _step_counts(g.steps),
                        tuple(g.examples),
                    )
                    for error, g in failures.items()
                ),
                key=lambda g: (-g.count, g.error),
            )
        ),
    )


def percentile(sorted_values: array[float] | list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ascending values; None when empty (exact:
    every value is kept, as a float of 8 bytes)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil without floats drifting
    return sorted_values[min(int(rank), len(sorted_values)) - 1]


def _nice(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= x."""
    if x <= 0:
        return 0.001
    p = 10 ** math.floor(math.log10(x))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= x - 1e-12)


def histogram(sorted_seconds: array[float] | list[float]) -> Histogram:
    """Counts in equal bins of a round width from 0 up to the maximum (for charts)."""
    if not sorted_seconds:
        return Histogram(None, ())
    width = _nice(sorted_seconds[-1] / _BINS)
    counts = [0] * (int(sorted_seconds[-1] // width) + 1)
    last = len(counts) - 1
    for v in sorted_seconds:
        counts[min(int(v // width), last)] += 1
    return Histogram(width, tuple(counts))


def ledger_optouts(ledger: Ledger | None) -> dict[str, list[int]] | None:
    """Each opted-out chat's opt-out times (API ms) in the ledger, for the reply figures."""
    if ledger is None:
        return None
    out: dict[str, list[int]] = {}
    for e in ledger.events(kinds=(EventKind.OPTED_OUT,)):
        out.setdefault(e.chat, []).append(e.at_ms)
    return out


def consent_section(
    ledger: Ledger | None, journal: Journal, revision: int, show_recipients: bool
) -> ConsentReport | None:
    """What the consent ledger holds of the chats this campaign messaged: how many opted out,
    and each hold a person must decide (masked), with how to review them."""
    if ledger is None:
        return None
    rows = ledger.standing_rows()
    answers = [a for a in ledger.answers().values() if a.status == "accepted"]
    # The ledger's chats are few; the campaign's may be a million: keep only those it has.
    ledger_chats = {r.chat for r in rows} | {a.chat for a in answers}
    members = _messaged_among(journal.report_messaged_chats(revision), ledger_chats)
    rows = [r for r in rows if r.chat in members]
    held = tuple(
        HeldChat(
            r.event.id,
            display_chat(r.chat, show_recipients),
            r.event.word,
            iso(r.event.at_ms / 1000),
            r.event.excerpt,
            r.event.campaign,
            r.event.step,
        )
        for r in rows
        if r.state is Standing.HELD
    )
    answered = [a for a in answers if a.chat in members]
    return ConsentReport(
        ledger=str(ledger.path),
        opted_out=sum(1 for r in rows if r.state is Standing.OPTED_OUT),
        held=held,
        review="campaign optouts review" if held else None,
        help_answered=sum(1 for a in answered if a.kind == "help"),
        optouts_confirmed=sum(1 for a in answered if a.kind == "optout_confirmation"),
    )


def _messaged_among(messaged: Iterable[str], wanted: set[str]) -> set[str]:
    """The chats of ``wanted`` that were messaged, themselves or as a member of a group chat
    ("+1555…,+1555…")."""
    found: set[str] = set()
    if not wanted:
        return found
    for chat in messaged:
        if chat in wanted:
            found.add(chat)
        if "," in chat:
            found.update(m for m in chat.split(",") if m in wanted)
    return found


def run_state(
    run: RunInfo, t: Totals, outside: OutsidePlan | None, *, running: int | bool = False
) -> RunState:
    """Where the campaign stands, in one word a person (or a dashboard) can act on:

    ``running`` (the last run has not finished and a process holds the journal's lock: a
    send is running now, and the report is what it has journalled so far; ``running`` given
    as the holder's PID, or True when it is not known),

    ``stopped`` (the last run stopped early or did not finish: send again resumes it),
    ``waiting`` (everything due was sent; the rest waits on its schedule, until ``next_due``),
    ``failed`` (finished, but some requests failed for good or expired), ``finished``.
    """
    if running and not run.finished:
        state = RunStateName.RUNNING
    elif not run.finished or run.stop_reason is not None or t.pending:
        state = RunStateName.STOPPED
    elif t.scheduled:
        state = RunStateName.WAITING
    elif t.failed or t.expired:
        state = RunStateName.FAILED
    else:
        state = RunStateName.FINISHED
    pid = running if state is RunStateName.RUNNING and running is not True else None
    return RunState(
        name=state,
        next_due=run.next_due if state is RunStateName.WAITING else None,
        pid=int(pid) if pid else None,
        scheduled=t.scheduled,
        expired=t.expired,
        suppressed_recipients=t.suppressed_recipients,
        suppressed_after_sending=outside.suppressed if outside is not None else 0,
    )

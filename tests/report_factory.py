"""A small report model made by hand, for reporter tests that need text the journal would not
easily hold (markup in a campaign id, a step name, a server's error)."""

from __future__ import annotations

from runner.report.model import (
    Audit,
    DeliveryFailure,
    DeliveryReport,
    Histogram,
    Latency,
    MessageCounts,
    ProtocolCount,
    RepliesReport,
    Report,
    RunInfo,
    RunState,
    RunStateName,
    StepCount,
    StepReport,
    Totals,
)


def tiny_report(
    *, campaign: str = "c", step: str = "s", error: str = "boom", example: str = "+1•••"
) -> Report:
    steps = (
        StepReport(
            step,
            requests=1,
            messages=1,
            accepted=1,
            failed=0,
            pending=0,
            scheduled=0,
            expired=0,
            messages_accepted=1,
            delivered=0,
            failed_delivery=1,
            cancelled=0,
            in_flight=0,
            never_accepted=0,
            untracked=0,
        ),
    )
    return Report(
        schema_version=6,
        generated_at="x",
        campaign=campaign,
        revision=1,
        runs=1,
        run=RunInfo(
            id=1,
            started_at="s",
            ended_at="e",
            finished=True,
            duration_s=None,
            exit_code=0,
            stop_reason=None,
            options={},
            http_requests=None,
            accepted_this_run=None,
            achieved_rate=None,
            rate_limit=None,
            audit=Audit(None, None, None, None),
        ),
        totals=Totals(
            requests=1,
            messages=1,
            accepted=1,
            failed=0,
            pending=0,
            scheduled=0,
            expired=0,
            suppressed_recipients=0,
            messages_accepted=1,
        ),
        outside_plan=None,
        steps=steps,
        failures=(),
        pending=(),
        delivery=DeliveryReport(
            tracked=True,
            last_polled_at="t",
            messages=MessageCounts(
                planned=1,
                accepted=1,
                delivered=0,
                failed=1,
                cancelled=0,
                in_flight=0,
                never_accepted=0,
                untracked=0,
                outside_plan=0,
            ),
            protocols=tuple(
                ProtocolCount(p, int(p == "sms"))
                for p in ("imessage", "sms", "rcs", "unknown", "pending")
            ),
            time_to_delivery_s=Latency(0, None, None, None, Histogram(None, ())),
            failures=(
                DeliveryFailure(
                    error, 1, (ProtocolCount("sms", 1),), (StepCount(step, 1),), (example,)
                ),
            ),
        ),
        replies=RepliesReport(
            read=False,
            last_read_at=None,
            passes=0,
            last_read_pass=None,
            last_pass=None,
            replies_stored=0,
            chats_replied=None,
            min_delivered_to_compare=30,
            steps=(),
        ),
        consent=None,
        recipients_masked=True,
        state=RunState(RunStateName.FINISHED, None, None, 0, 0, 0, 0),
    )

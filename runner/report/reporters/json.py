"""The JSON reporter: the report model as report ``schema_version`` 6 (schemas/report.schema.json).

The key order is the one the runner has always written (same inputs, byte-identical output);
keys said only when they apply (``totals.held_by_law``, ``run.cap``, ``state.pid``...) are left
out otherwise, as before.
"""

from __future__ import annotations

import json

from runner.report.model import (
    ConsentReport,
    DeliveryReport,
    FailureGroup,
    RepliesReport,
    Report,
    RunInfo,
    RunState,
    StepCount,
    StepReplies,
    StepReport,
    Totals,
    VariantReplies,
)
from runner.report.stats import Comparison

# A JSON value, as json.dumps takes it.
Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


def render(report: Report, file: str | None = None) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def report_json(r: Report) -> dict[str, Json]:
    """The report as the JSON document (``schema_version`` 6)."""
    o = r.outside_plan
    return {
        "schema_version": r.schema_version,
        "generated_at": r.generated_at,
        "campaign": r.campaign,
        "revision": r.revision,
        "runs": r.runs,
        "run": _run(r.run),
        "totals": _totals(r.totals),
        "outside_plan": None
        if o is None
        else {
            "requests": o.requests,
            "accepted": o.accepted,
            "messages_accepted": o.messages_accepted,
            "suppressed": o.suppressed,
            "removed": o.removed,
        },
        "steps": {s.name: _step(s) for s in r.steps},
        "failures": [_failure(g) for g in r.failures],
        "pending": [
            {
                "reason": p.reason,
                "count": p.count,
                **({"most": p.most} if p.most is not None else {}),
            }
            for p in r.pending
        ],
        "delivery": _delivery(r.delivery),
        "replies": _replies(r.replies),
        "consent": _consent(r.consent),
        "recipients_masked": r.recipients_masked,
        "state": _state(r.state),
    }


def _obj(value: object) -> Json:
    """A free-form JSON object the send recorded, as it was read."""
    return json.loads(json.dumps(value))


def _run(run: RunInfo) -> dict[str, Json]:
    a = run.audit
    doc: dict[str, Json] = {
        "id": run.id,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "finished": run.finished,
        "duration_s": run.duration_s,
        "exit_code": run.exit_code,
        "stop_reason": run.stop_reason,
        "options": _obj(run.options),
        "http_requests": run.http_requests,
        "accepted_this_run": run.accepted_this_run,
        "achieved_rate": run.achieved_rate,
        "rate_limit": run.rate_limit,
        "audit": {
            "git_commit": a.git_commit,
            "dirty": _obj(a.dirty),
            "plan_digest": a.plan_digest,
            "user": a.user,
        },
    }
    if run.cap:
        doc["cap"] = _obj(run.cap)
    if run.next_due:
        doc["next_due"] = run.next_due
    return doc


def _totals(t: Totals) -> dict[str, Json]:
    doc: dict[str, Json] = {
        "requests": t.requests,
        "messages": t.messages,
        "accepted": t.accepted,
        "failed": t.failed,
        "pending": t.pending,
        "scheduled": t.scheduled,
        "expired": t.expired,
        "suppressed_recipients": t.suppressed_recipients,
        "messages_accepted": t.messages_accepted,
    }
    if t.held_by_law:
        doc["held_by_law"] = t.held_by_law
    if t.capped:
        doc["capped"] = t.capped
    if t.excluded_recipients:  # recipients.exclude_when: said only when it left someone out
        doc["excluded_recipients"] = t.excluded_recipients
        doc["excluded_by"] = t.excluded_by
    return doc


def _step(s: StepReport) -> dict[str, Json]:
    return {
        "requests": s.requests,
        "messages": s.messages,
        "accepted": s.accepted,
        "failed": s.failed,
        "pending": s.pending,
        "scheduled": s.scheduled,
        "expired": s.expired,
        "messages_accepted": s.messages_accepted,
        "delivered": s.delivered,
        "failed_delivery": s.failed_delivery,
        "cancelled": s.cancelled,
        "in_flight": s.in_flight,
        "never_accepted": s.never_accepted,
        "untracked": s.untracked,
    }


def _counts(steps: tuple[StepCount, ...]) -> dict[str, Json]:
    return {s.step: s.count for s in steps}


def _failure(g: FailureGroup) -> dict[str, Json]:
    return {
        "reason": g.reason,
        "count": g.count,
        "http_status": g.http_status,
        "message": g.message,
        "steps": _counts(g.steps),
        "examples": list(g.examples),
    }


def _delivery(d: DeliveryReport) -> dict[str, Json]:
    m, t = d.messages, d.time_to_delivery_s
    return {
        "tracked": d.tracked,
        "last_polled_at": d.last_polled_at,
        "messages": {
            "planned": m.planned,
            "accepted": m.accepted,
            "delivered": m.delivered,
            "failed": m.failed,
            "cancelled": m.cancelled,
            "in_flight": m.in_flight,
            "never_accepted": m.never_accepted,
            "untracked": m.untracked,
            "outside_plan": m.outside_plan,
        },
        "protocols": {p.protocol: p.count for p in d.protocols},
        "time_to_delivery_s": {
            "count": t.count,
            "p50": t.p50,
            "p95": t.p95,
            "max": t.max,
            "histogram": {"bin_s": t.histogram.bin_s, "counts": list(t.histogram.counts)},
        },
        "failures": [
            {
                "error": g.error,
                "count": g.count,
                "protocols": {p.protocol: p.count for p in g.protocols},
                "steps": _counts(g.steps),
                "examples": list(g.examples),
            }
            for g in d.failures
        ],
    }


def comparison_json(c: Comparison) -> dict[str, Json]:
    return {
        "a": c.a,
        "b": c.b,
        "difference": round(c.difference, 4),
        "ci95": [round(c.low, 4), round(c.high, 4)],
        "verdict": c.verdict,
    }


def _variant(v: VariantReplies) -> dict[str, Json]:
    return {
        "variant": v.variant,
        "delivered": v.delivered,
        "replied": v.replied,
        "opted_out": v.opted_out,
        "reply_rate": v.reply_rate,
        "reply_rate_ci95": list(v.reply_rate_ci95) if v.reply_rate_ci95 else None,
        "opt_out_rate": v.opt_out_rate,
        "median_time_to_reply_s": v.median_time_to_reply_s,
        "sent_after_last_read": v.sent_after_last_read,
    }


def replies_steps_json(steps: tuple[StepReplies, ...]) -> dict[str, Json]:
    return {
        s.step: {
            "variants": [_variant(v) for v in s.variants],
            "comparisons": [comparison_json(c) for c in s.comparisons],
        }
        for s in steps
    }


def _replies(rep: RepliesReport) -> dict[str, Json]:
    p = rep.last_pass
    return {
        "read": rep.read,
        "last_read_at": rep.last_read_at,
        "passes": rep.passes,
        "last_read_pass": rep.last_read_pass,
        "last_pass": None
        if p is None
        else {
            "number": p.number,
            "started_at": p.started_at,
            "ended_at": p.ended_at,
            "finished": p.finished,
            "stop_reason": p.stop_reason,
            "chats": p.chats,
            "chats_read": p.chats_read,
            "chats_failed": p.chats_failed,
            "chats_not_read": p.chats_not_read,
            "requests": p.requests,
            "replies_new": p.replies_new,
            "complete": p.complete,
        },
        "replies_stored": rep.replies_stored,
        "chats_replied": rep.chats_replied,
        "min_delivered_to_compare": rep.min_delivered_to_compare,
        "steps": replies_steps_json(rep.steps),
    }


def _consent(c: ConsentReport | None) -> dict[str, Json] | None:
    if c is None:
        return None
    return {
        "ledger": c.ledger,
        "opted_out": c.opted_out,
        "held": [
            {
                "id": h.id,
                "chat": h.chat,
                "word": h.word,
                "at": h.at,
                "text": h.text,
                "campaign": h.campaign,
                "step": h.step,
            }
            for h in c.held
        ],
        "review": c.review,
        "help_answered": c.help_answered,
        "optouts_confirmed": c.optouts_confirmed,
    }


def _state(s: RunState) -> dict[str, Json]:
    return {
        "name": s.name.value,
        "next_due": s.next_due,
        **({"pid": s.pid} if s.name.value == "running" else {}),
        "scheduled": s.scheduled,
        "expired": s.expired,
        "suppressed_recipients": s.suppressed_recipients,
        "suppressed_after_sending": s.suppressed_after_sending,
    }

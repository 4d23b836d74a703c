"""Sentences every reporter says the same way (text, markdown, HTML): the run's stop line,
what waits, what left the plan, the achieved rate, the consent lines."""

from __future__ import annotations

import json
import shlex

from runner.report.model import Report, RunInfo, RunState, RunStateName
from runner.report.words import WAITING_TEXT, stop_text


def stop_line(run: RunInfo, state: RunState | None = None) -> str:
    if state is not None and state.name is RunStateName.WAITING:
        return WAITING_TEXT
    if state is not None and state.name is RunStateName.RUNNING:
        pid = state.pid
        return (
            f"a send is running now{f' (process {pid})' if pid else ''}: this is what it "
            "has journalled so far"
        )
    if not run.finished:
        return stop_text("send", "unfinished")
    return stop_text("send", run.stop_reason)


def waiting(report: Report) -> str | None:
    """What the schedule holds back and suppression leaves out, in one line."""
    t, r = report.totals, report.run
    parts = [f"{n:,} {k}" for k, n in (("scheduled", t.scheduled), ("expired", t.expired)) if n]
    held = [
        f"{n:,} {name}" for n, name in ((t.held_by_law, "held by law"), (t.capped, "capped")) if n
    ]
    if held and parts:
        parts[0] += f" ({', '.join(held)})"
    if t.suppressed_recipients:
        parts.append(f"{t.suppressed_recipients:,} recipients suppressed (never sent)")
    if t.excluded_recipients:
        parts.append(
            f"{t.excluded_recipients:,} recipients excluded "
            f"({t.excluded_by or 'exclude_when'}, never sent)"
        )
    if not parts:
        return None
    due = f"; next due {r.next_due}" if r.next_due and t.scheduled else ""
    return ", ".join(parts) + due


def outside(report: Report) -> str | None:
    """Journal rows the current plan no longer holds, in one line (None when there are none)."""
    o = report.outside_plan
    if o is None or not o.requests:
        return None
    parts = []
    if o.accepted:
        parts.append(f"{o.accepted:,} accepted earlier ({o.messages_accepted:,} messages)")
    if o.suppressed:
        parts.append(f"{o.suppressed:,} not sent: the chat is suppressed now")
    if o.removed:
        parts.append(f"{o.removed:,} not sent: step or recipient removed")
    return f"{o.requests:,} journal requests are no longer in the plan: " + ", ".join(parts)


def rate(run: RunInfo) -> str:
    """The achieved rate, only when meaningful, with the limit the run was held to."""
    if not run.achieved_rate:
        return ""
    limit = f" (limited to {run.rate_limit:g}/s)" if run.rate_limit else ""
    return f", {run.achieved_rate:,} requests/s{limit}"


def track_command(file: str | None) -> str:
    return f"campaign track {shlex.quote(file)}" if file else "campaign track FILE"


def variant_name(v: str | None) -> str:
    return "(no variant)" if v is None else v


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def consent_lines(report: Report) -> list[str]:
    c = report.consent
    if c is None or not (c.opted_out or c.held or c.help_answered):
        return []
    lines = [
        f"Consent: {c.opted_out:,} of this campaign's chats opted out, {len(c.held):,} "
        "held for review (nothing is sent to them until a person decides)"
        + (
            f"; HELP answered {c.help_answered:,}, opt-outs confirmed {c.optouts_confirmed:,}"
            if c.help_answered or c.optouts_confirmed
            else ""
        )
    ]
    for h in c.held[:20]:
        lines.append(
            f"  #{h.id}  {h.chat}  {h.word}  {json.dumps(h.text or '', ensure_ascii=False)}"
        )
    if c.held:
        lines.append(f"  review them: {c.review} (--release N or --opt-out N)")
    return lines

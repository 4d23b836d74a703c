"""The run report: what the journal says about a campaign, as text, markdown or versioned JSON.

Built from the journal alone (the plan's per-step totals are stored with each run), so
``campaign report`` needs neither the network nor a re-render of 100k recipients. Recipients
are masked unless the caller asks to show them.

Two views of the same run: *requests* (what the API accepted; schema 1) and *messages* (what
became of each accepted message, from ``campaign track``; added in schema 2 under
``delivery`` and as message counts per step). Schema 2 only adds fields, as do 3 (run state,
outside the plan) and 4 (``replies``: replies and opt-outs per step and variant, with
intervals; runner.report.engagement). Schema 5 says whether and when replies were read
(``replies.read``, ``last_read_at``, ``last_pass``) and changes one meaning: when they were
never read, reply counts and rates are ``null``, not 0 (schema 4 wrote 0: a real-looking zero).
Schema 6 adds ``consent`` (the state's consent ledger: this campaign's chats opted out and held,
the holds named) and counts opt-outs per step from the ledger too, and keeps the replies of
chats suppressed after they were messaged in the reply figures (they were sent; they count).
"""

from __future__ import annotations

import json
import math
import shlex
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from runner.audience.mask import display_chat
from runner.consent.standing import EventKind, Standing
from runner.contract import DeliveryStatus
from runner.errors import CampaignError
from runner.planning.current import CurrentPlan
from runner.report.engagement import (
    build_engagement,
    comparison_line,
    pct,
    reading_text,
    unread_since_text,
)
from runner.report.html import render_html
from runner.report.words import PROTOCOL_NAMES, WAITING_TEXT, fmt_seconds, stop_text
from runner.safe_text import md_code, md_text, one_line
from runner.store.journal import ACCEPTED, EXPIRED, FAILED, NOT_FOUND, SCHEDULED, Entry, Journal
from runner.store.ledger import Ledger

REPORT_SCHEMA_VERSION = 6
NETWORK_ERROR = "network_error"  # the error code of a request that got no answer (run.send)
PROTOCOLS = ("imessage", "sms", "rcs", "unknown", "pending")
EXAMPLES = 5  # recipients named per failure reason


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _reason(code: str | None, http_status: int | None) -> str:
    if code:
        return code
    return f"http_{http_status}" if http_status else "unknown"


def _blank_step(requests: int = 0, messages: int = 0) -> dict[str, int]:
    return {"requests": requests, "messages": messages, "accepted": 0, "failed": 0,
            "pending": 0, "scheduled": 0, "expired": 0, "messages_accepted": 0}


def _outside_line() -> dict[str, int]:
    return {"requests": 0, "accepted": 0, "messages_accepted": 0, "suppressed": 0, "removed": 0}


def run_rate(sent: int | None, duration: float | None) -> float | None:
    """Requests per second over a run, when the run is long enough for a rate to mean something.

    The first request leaves at t=0, so ``n`` requests span ``n - 1`` intervals: counted so, a
    run limited to 5/s never reads above 5/s. Shorter runs (under a second, under 20 requests)
    give no rate: "285.71 requests/s" for two requests says nothing.
    """
    if not sent or not duration or sent < MIN_RATE_REQUESTS or duration < MIN_RATE_SECONDS:
        return None
    return round((sent - 1) / duration, 2)


MIN_RATE_REQUESTS = 20
MIN_RATE_SECONDS = 1.0


def build_report(
    journal: Journal,
    *,
    show_recipients: bool = False,
    now: float | None = None,
    current: CurrentPlan | None = None,
    ledger: Ledger | None = None,
    running: int | bool = False,
) -> dict[str, Any]:
    """The report document for the journal's last run (its revision's requests).

    ``ledger``: the state's consent ledger (opt-outs per step, the ``consent`` section).

    With ``current`` (the campaign file's plan today, ``runner.planning.current.current_plan``)
    the totals count exactly the current plan's keys, and journal rows the plan no longer holds
    (a removed step or recipient, a chat suppressed after it was sent to) are counted under
    ``outside_plan``. Without it, the plan's totals stored with the run are used.
    """
    run = journal.last_run()
    if run is None:
        raise CampaignError(
            "no run has been recorded for this campaign yet",
            file=str(journal.path),
            hint="send it first: campaign send FILE",
        )
    revision = run["revision"]
    plan = run.get("plan") or {}
    if current is not None and current.revision != revision:
        current = None  # the file moved on to a new revision: its keys say nothing of this run
    planned_steps: dict[str, dict[str, int]] = (current.steps if current is not None
                                                else plan.get("steps") or {})

    steps: dict[str, dict[str, int]] = {
        name: _blank_step(c.get("requests", 0), c.get("messages", 0))
        for name, c in planned_steps.items()
    }
    outside = _outside_line() if current is not None else None
    failures: dict[str, dict[str, Any]] = {}
    pending_reasons: Counter = Counter()
    network_texts: Counter = Counter()
    held: Counter = Counter()  # scheduled rows the law ("law") or a cap ("capped") holds
    seen: Counter = Counter()
    accepted_rows: list[Entry] = []  # read once: the replies section needs them too
    engaged_outside: list[Entry] = []  # accepted, outside today's plan only as suppressed
    messaged: set[str] = set()  # chats with an attempt: what the consent section looks at
    for e in journal.entries(revision):
        if e.attempts:
            messaged.add(e.chat)
        accepted_messages = len(e.message_ids) if e.message_ids else e.messages
        if current is not None and outside is not None:
            if not current.has(e.key):
                # Not in today's plan: sent before the change, or never to be sent now.
                outside["requests"] += 1
                if e.status == ACCEPTED:
                    outside["accepted"] += 1
                    outside["messages_accepted"] += accepted_messages
                    if current.is_suppressed(e.chat):
                        # Sent before the chat was suppressed (it opted out, say): its replies
                        # and opt-out still count for the step that was sent.
                        engaged_outside.append(e)
                elif current.is_suppressed(e.chat):
                    outside["suppressed"] += 1
                else:
                    outside["removed"] += 1
                continue
            step = steps.setdefault(e.step, _blank_step())
            if e.status == ACCEPTED:
                # The plan's messages, as sent: an accepted request counts what was accepted.
                step["messages"] += accepted_messages - current.planned_messages(e.step, e.chat)
        else:
            step = steps.setdefault(e.step, _blank_step())
        seen[e.step] += 1
        if e.status == ACCEPTED:
            accepted_rows.append(e)
            step["accepted"] += 1
            step["messages_accepted"] += accepted_messages
        elif e.status == FAILED:
            step["failed"] += 1
            reason = _reason(e.error_code, e.http_status)
            group = failures.setdefault(reason, {
                "reason": reason, "count": 0, "http_status": e.http_status,
                "message": e.error_message, "steps": Counter(), "examples": [],
            })
            group["count"] += 1
            group["steps"][e.step] += 1
            shown = display_chat(e.chat, show_recipients)
            if len(group["examples"]) < EXAMPLES and shown not in group["examples"]:
                group["examples"].append(shown)
        elif e.status in (SCHEDULED, EXPIRED):
            # Not due yet (window, delay, not_before), or past not_after: never sent.
            step[e.status] += 1
            if e.status == SCHEDULED and e.error_code in ("law", "capped"):
                held[e.error_code] += 1  # the legal hours or a frequency cap holds it
        else:
            # Tried and unconfirmed: its last error says why (none = the process stopped).
            pending_reasons[_reason(e.error_code, e.http_status) if e.error_code or e.http_status
                            else "unconfirmed"] += 1
            if e.error_code == NETWORK_ERROR and e.error_message:
                network_texts[e.error_message] += 1  # the client's words: host, phase, reason
    not_tried = 0
    for name, step in steps.items():
        # Requests of the plan with no row yet were never tried: pending too.
        step["requests"] = max(step["requests"], seen[name])
        step["messages"] = max(step["messages"], step["messages_accepted"])
        step["pending"] = (step["requests"] - step["accepted"] - step["failed"]
                           - step["scheduled"] - step["expired"])
        not_tried += step["requests"] - seen[name]
    if not_tried:
        pending_reasons["not_attempted"] += not_tried

    totals = {
        "requests": sum(s["requests"] for s in steps.values()),
        "messages": sum(s["messages"] for s in steps.values()),
        "accepted": sum(s["accepted"] for s in steps.values()),
        "failed": sum(s["failed"] for s in steps.values()),
        "pending": sum(s["pending"] for s in steps.values()),
        "scheduled": sum(s["scheduled"] for s in steps.values()),
        "expired": sum(s["expired"] for s in steps.values()),
        "suppressed_recipients": (current.suppressed if current is not None
                                  else plan.get("suppressed", 0)),
        "messages_accepted": sum(s["messages_accepted"] for s in steps.values()),
    }
    if held["law"]:
        totals["held_by_law"] = held["law"]
    if held["capped"]:
        totals["capped"] = held["capped"]
    excluded = current.excluded if current is not None else plan.get("excluded", 0)
    if excluded:  # recipients.exclude_when: said only when it left someone out
        totals["excluded_recipients"] = excluded
        totals["excluded_by"] = current.excluded_by if current is not None else plan.get("excluded_by", "")
    counts = run.get("counts") or {}
    duration = counts.get("duration_s")
    if duration is None and run.get("ended_at"):
        duration = run["ended_at"] - run["started_at"]
    sent = counts.get("http_requests")
    options = run.get("options") or {}
    run_doc = {
        "id": run["id"],
        "started_at": _iso(run["started_at"]),
        "ended_at": _iso(run.get("ended_at")),
        "finished": run.get("ended_at") is not None,
        "duration_s": round(duration, 3) if duration is not None else None,
        "exit_code": run.get("exit_code"),
        "stop_reason": run.get("stop_reason"),
        "options": options,
        "http_requests": sent,
        "accepted_this_run": (counts.get("accepted", 0) - counts.get("already_accepted", 0))
        if counts else None,
        "achieved_rate": run_rate(sent, duration),
        "rate_limit": options.get("rate_per_second"),
    }
    # Who sent it from which commit (runner.store.audit); None for runs of older runners.
    run_doc["audit"] = {"git_commit": run.get("git_commit"), "dirty": run.get("dirty"),
                        "plan_digest": run.get("plan_digest"), "user": run.get("os_user")}
    if counts.get("cap"):
        run_doc["cap"] = counts["cap"]
    if counts.get("next_due"):
        run_doc["next_due"] = _iso(counts["next_due"])
    keep = current.has if current is not None else None
    delivery = build_delivery(journal, revision, steps, show_recipients, keep=keep)
    report = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generated_at": _iso(now if now is not None else datetime.now(UTC).timestamp()),
        "campaign": run["campaign"],
        "revision": revision,
        "runs": len(journal.runs()),
        "run": run_doc,
        "totals": totals,
        "outside_plan": outside,
        "steps": steps,
        "failures": sorted(
            ({**g, "steps": dict(g["steps"])} for g in failures.values()),
            key=lambda g: (-g["count"], g["reason"]),
        ),
        "pending": [{"reason": r, "count": n,
                     **({"most": network_texts.most_common(1)[0][0]}
                        if r == NETWORK_ERROR and network_texts else {})}
                    for r, n in sorted(pending_reasons.items(), key=lambda x: (-x[1], x[0]))],
        "delivery": delivery,
        "replies": build_engagement(journal, revision, keep, iso=_iso,
                                    accepted=accepted_rows + engaged_outside,
                                    optouts=ledger_optouts(ledger)),
        "consent": consent_section(ledger, messaged, show_recipients),
        "recipients_masked": not show_recipients,
    }
    report["state"] = run_state(report, running=running)
    return report


def ledger_optouts(ledger: Ledger | None) -> dict[str, list[int]] | None:
    """Each opted-out chat's opt-out times (API ms) in the ledger, for the reply figures."""
    if ledger is None:
        return None
    out: dict[str, list[int]] = {}
    for e in ledger.events(kinds=(EventKind.OPTED_OUT,)):
        out.setdefault(e.chat, []).append(e.at_ms)
    return out


def consent_section(ledger: Ledger | None, chats: set[str],
                    show_recipients: bool) -> dict[str, Any] | None:
    """What the consent ledger holds of the chats this campaign messaged: how many opted out,
    and each hold a person must decide (masked), with how to review them."""
    if ledger is None:
        return None
    members = chats | {m for c in chats if "," in c for m in c.split(",")}
    rows = ledger.standing_rows(chats=members)
    held = [{"id": r.event.id, "chat": display_chat(r.chat, show_recipients),
             "word": r.event.word, "at": _iso(r.event.at_ms / 1000), "text": r.event.excerpt,
             "campaign": r.event.campaign, "step": r.event.step}
            for r in rows if r.state is Standing.HELD]
    answered = [a for a in ledger.answers().values()
                if a.chat in members and a.status == "accepted"]
    return {"ledger": str(ledger.path),
            "opted_out": sum(1 for r in rows if r.state is Standing.OPTED_OUT),
            "held": held,
            "review": "campaign optouts review" if held else None,
            "help_answered": sum(1 for a in answered if a.kind == "help"),
            "optouts_confirmed": sum(1 for a in answered if a.kind == "optout_confirmation")}


def _consent_lines(report: dict[str, Any]) -> list[str]:
    c = report.get("consent")
    if not c or not (c["opted_out"] or c["held"] or c.get("help_answered")):
        return []
    lines = [f"Consent: {c['opted_out']:,} of this campaign's chats opted out, {len(c['held']):,} "
             "held for review (nothing is sent to them until a person decides)"
             + (f"; HELP answered {c['help_answered']:,}, opt-outs confirmed "
                f"{c['optouts_confirmed']:,}" if c.get("help_answered") or
                c.get("optouts_confirmed") else "")]
    for h in c["held"][:20]:
        lines.append(f"  #{h['id']}  {h['chat']}  {h['word']}  {json.dumps(h['text'] or '', ensure_ascii=False)}")
    if c["held"]:
        lines.append(f"  review them: {c['review']} (--release N or --opt-out N)")
    return lines


def run_state(report: dict[str, Any], *, running: int | bool = False) -> dict[str, Any]:
    """Where the campaign stands, in one word a person (or a dashboard) can act on:

    ``running`` (the last run has not finished and a process holds the journal's lock: a
    send is running now, and the report is what it has journalled so far; ``running`` given
    as the holder's PID, or True when it is not known),

    ``stopped`` (the last run stopped early or did not finish: send again resumes it),
    ``waiting`` (everything due was sent; the rest waits on its schedule, until ``next_due``),
    ``failed`` (finished, but some requests failed for good or expired), ``finished``.
    """
    run, t = report["run"], report["totals"]
    if running and not run["finished"]:
        state = "running"
    elif not run["finished"] or run["stop_reason"] is not None or t["pending"]:
        state = "stopped"
    elif t["scheduled"]:
        state = "waiting"
    elif t["failed"] or t["expired"]:
        state = "failed"
    else:
        state = "finished"
    pid = running if state == "running" and running is not True else None
    return {"name": state, "next_due": run.get("next_due") if state == "waiting" else None,
            **({"pid": pid} if state == "running" else {}),
            "scheduled": t["scheduled"], "expired": t["expired"],
            "suppressed_recipients": t["suppressed_recipients"],
            "suppressed_after_sending": (report["outside_plan"] or {}).get("suppressed", 0)}


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an ascending list; None when empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil without floats drifting
    return sorted_values[min(int(rank), len(sorted_values)) - 1]


def build_delivery(journal: Journal, revision: int, steps: dict[str, dict[str, Any]],
                   show_recipients: bool,
                   keep: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """What became of the accepted messages (``campaign track``), overall and per step.

    Adds message counts to each ``steps`` entry in place: ``delivered``, ``failed_delivery``
    (failed after acceptance), ``cancelled``, ``in_flight`` and ``never_accepted``.
    """
    per_step: dict[str, Counter] = {name: Counter() for name in steps}
    protocols: Counter = Counter()
    seconds: list[float] = []
    failures: dict[str, dict[str, Any]] = {}
    polled = 0
    last_polled: float | None = None
    outside = 0
    for d in journal.deliveries(revision):
        if keep is not None and not keep(d.key):
            outside += 1  # a message of a request the current plan no longer holds
            continue
        c = per_step.setdefault(d.step, Counter())
        c["tracked"] += 1
        if d.status is not None:
            polled += 1
        if d.last_polled_at is not None and (last_polled is None or d.last_polled_at > last_polled):
            last_polled = d.last_polled_at
        if d.status == NOT_FOUND:
            c["untracked"] += 1
            continue
        protocols[d.protocol if d.protocol in PROTOCOLS else "pending"] += 1
        if d.status == DeliveryStatus.DELIVERED:
            c["delivered"] += 1
            if d.time_delivered is not None and d.time_sent is not None:
                seconds.append(max(0, d.time_delivered - d.time_sent) / 1000.0)
        elif d.status in (DeliveryStatus.FAILED, DeliveryStatus.CANCELLED):
            cancelled = d.status == DeliveryStatus.CANCELLED
            c["cancelled" if cancelled else "failed_delivery"] += 1
            reason = d.error or ("cancelled" if cancelled else "no error given")
            group = failures.setdefault(reason, {"error": reason, "count": 0,
                                                 "protocols": Counter(), "steps": Counter(),
                                                 "examples": []})
            group["count"] += 1
            group["steps"][d.step] += 1
            group["protocols"][d.protocol or "unknown"] += 1
            shown = display_chat(d.chat, show_recipients)
            if len(group["examples"]) < EXAMPLES and shown not in group["examples"]:
                group["examples"].append(shown)
    totals: Counter = Counter()
    for name, step in steps.items():
        c = per_step.get(name, Counter())
        accepted = step["messages_accepted"]
        step["delivered"] = c["delivered"]
        step["failed_delivery"] = c["failed_delivery"]
        step["cancelled"] = c["cancelled"]
        # Accepted but not final: still travelling, or never polled yet.
        step["in_flight"] = max(0, accepted - c["delivered"] - c["failed_delivery"]
                                - c["cancelled"] - c["untracked"])
        step["never_accepted"] = max(0, step["messages"] - accepted)
        step["untracked"] = c["untracked"]
        for k in ("delivered", "failed_delivery", "cancelled", "in_flight", "never_accepted",
                  "untracked", "messages", "messages_accepted"):
            totals[k] += step[k]
    seconds.sort()
    return {
        "tracked": polled > 0,
        "last_polled_at": _iso(last_polled),
        "messages": {
            "planned": totals["messages"],
            "accepted": totals["messages_accepted"],
            "delivered": totals["delivered"],
            "failed": totals["failed_delivery"],
            "cancelled": totals["cancelled"],
            "in_flight": totals["in_flight"],
            "never_accepted": totals["never_accepted"],
            "untracked": totals["untracked"],
            "outside_plan": outside,
        },
        "protocols": {p: protocols[p] for p in PROTOCOLS},
        "time_to_delivery_s": {
            "count": len(seconds),
            "p50": percentile(seconds, 50),
            "p95": percentile(seconds, 95),
            "max": seconds[-1] if seconds else None,
            "histogram": histogram(seconds),
        },
        "failures": sorted(
            ({**g, "steps": dict(g["steps"]), "protocols": dict(g["protocols"])}
             for g in failures.values()),
            key=lambda g: (-g["count"], g["error"]),
        ),
    }


_BINS = 12


def _nice(x: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is >= x."""
    if x <= 0:
        return 0.001
    p = 10 ** math.floor(math.log10(x))
    return next(m * p for m in (1, 2, 2.5, 5, 10) if m * p >= x - 1e-12)


def histogram(sorted_seconds: list[float]) -> dict[str, Any]:
    """Counts in equal bins of a round width from 0 up to the maximum (for charts)."""
    if not sorted_seconds:
        return {"bin_s": None, "counts": []}
    width = _nice(sorted_seconds[-1] / _BINS)
    counts = [0] * (int(sorted_seconds[-1] // width) + 1)
    for v in sorted_seconds:
        counts[min(int(v // width), len(counts) - 1)] += 1
    return {"bin_s": width, "counts": counts}


# -- rendering -----------------------------------------------------------------------------
def _stop_text(run: dict[str, Any], state: dict[str, Any] | None = None) -> str:
    if state and state.get("name") == "waiting":
        return WAITING_TEXT
    if state and state.get("name") == "running":
        pid = state.get("pid")
        return (f"a send is running now{f' (process {pid})' if pid else ''}: this is what it "
                "has journalled so far")
    if not run["finished"]:
        return stop_text("send", "unfinished")
    return stop_text("send", run["stop_reason"])


def _waiting(report: dict[str, Any]) -> str | None:
    """What the schedule holds back and suppression leaves out, in one line."""
    t, r = report["totals"], report["run"]
    parts = [f"{t[k]:,} {k}" for k in ("scheduled", "expired") if t.get(k)]
    held = [f"{t[k]:,} {name}" for k, name in (("held_by_law", "held by law"), ("capped", "capped"))
            if t.get(k)]
    if held and parts:
        parts[0] += f" ({', '.join(held)})"
    if t.get("suppressed_recipients"):
        parts.append(f"{t['suppressed_recipients']:,} recipients suppressed (never sent)")
    if t.get("excluded_recipients"):
        parts.append(f"{t['excluded_recipients']:,} recipients excluded "
                     f"({t.get('excluded_by') or 'exclude_when'}, never sent)")
    if not parts:
        return None
    due = f"; next due {r['next_due']}" if r.get("next_due") and t.get("scheduled") else ""
    return ", ".join(parts) + due


def _outside(report: dict[str, Any]) -> str | None:
    """Journal rows the current plan no longer holds, in one line (None when there are none)."""
    o = report.get("outside_plan")
    if not o or not o["requests"]:
        return None
    parts = []
    if o["accepted"]:
        parts.append(f"{o['accepted']:,} accepted earlier ({o['messages_accepted']:,} messages)")
    if o["suppressed"]:
        parts.append(f"{o['suppressed']:,} not sent: the chat is suppressed now")
    if o["removed"]:
        parts.append(f"{o['removed']:,} not sent: step or recipient removed")
    return (f"{o['requests']:,} journal requests are no longer in the plan: "
            + ", ".join(parts))


def _rate(run: dict[str, Any]) -> str:
    """The achieved rate, only when meaningful, with the limit the run was held to."""
    if not run.get("achieved_rate"):
        return ""
    limit = f" (limited to {run['rate_limit']:g}/s)" if run.get("rate_limit") else ""
    return f", {run['achieved_rate']:,} requests/s{limit}"


def _track_command(file: str | None) -> str:
    return f"campaign track {shlex.quote(file)}" if file else "campaign track FILE"


def render_text(report: dict[str, Any], file: str | None = None) -> str:
    r, t = report["run"], report["totals"]
    lines = [
        f"Campaign {report['campaign']} (revision {report['revision']}), run #{r['id']} "
        f"started {r['started_at']}: {_stop_text(r, report.get('state'))}",
        f"  requests {t['requests']:,}: {t['accepted']:,} accepted, {t['failed']:,} failed, "
        f"{t['pending']:,} pending; messages accepted {t['messages_accepted']:,} "
        f"of {t['messages']:,}",
    ]
    waiting = _waiting(report)
    if waiting:
        lines.append("  " + waiting)
    outside = _outside(report)
    if outside:
        lines.append("  " + outside)
    if r["duration_s"] is not None:
        lines.append(f"  this run: {r['http_requests'] or 0:,} HTTP requests in "
                     f"{r['duration_s']:,} s{_rate(r)}")
    if r.get("cap"):
        cap = r["cap"]
        extra = ", ".join(f"{k} {cap[k]}" for k in ("limit", "cap", "current") if k in cap)
        lines.append(f"  cap: {cap.get('code')}" + (f" ({extra})" if extra else ""))
    width = max([len(s) for s in report["steps"]] + [4])
    lines.append("Steps:")
    for name, s in report["steps"].items():
        lines.append(f"  {name:<{width}}  {s['requests']:>7,} requests  {s['accepted']:>7,} "
                     f"accepted  {s['failed']:>5,} failed  {s['pending']:>5,} pending")
    if report["failures"]:
        lines.append("Failures by reason:")
        for g in report["failures"]:
            status = f" (HTTP {g['http_status']})" if g["http_status"] else ""
            msg = f": {one_line(g['message'])}" if g["message"] else ""
            lines.append(f"  {g['count']:>6,} × {g['reason']}{status}{msg}")
            lines.append(f"         e.g. {', '.join(g['examples'])}")
    if report["pending"]:
        lines.append("Pending by reason: " + ", ".join(
            f"{p['reason']} {p['count']:,}" + (f" (most: {p['most']})" if p.get("most") else "")
            for p in report["pending"]))
    lines += _delivery_text(report, file)
    lines += _replies_text(report, file)
    lines += _consent_lines(report)
    return "\n".join(lines) + "\n"


def _variant_name(v: str | None) -> str:
    return "(no variant)" if v is None else v


def _replies_text(report: dict[str, Any], file: str | None = None) -> list[str]:
    rep = report.get("replies")
    if not rep or not rep["steps"]:
        return []
    reading = reading_text(rep, _track_command(file))
    if reading is not None and not rep["read"]:
        lines = [f"Replies: {reading}"]
        for step, s in rep["steps"].items():
            for v in s["variants"]:
                label = step if v["variant"] is None else f"{step} / {v['variant']}"
                lines.append(f"  {label}: {v['delivered']:,} delivered, replies not read")
        return lines
    lines = [f"Replies ({rep['replies_stored']:,} stored by campaign track; rates over "
             "delivered):"]
    if reading is not None:
        lines.append(f"  {reading}")
    for step, s in rep["steps"].items():
        for v in s["variants"]:
            label = step if v["variant"] is None else f"{step} / {v['variant']}"
            wait = fmt_seconds(v["median_time_to_reply_s"])
            lines.append(f"  {label}: {v['delivered']:,} delivered, {v['replied']:,} replied "
                         f"({pct(v['reply_rate'])}), {v['opted_out']:,} opted out "
                         f"({pct(v['opt_out_rate'])}), median time to first reply {wait}"
                         + unread_since_text(v))
        for c in s["comparisons"]:
            lines.append(f"    {step}: {comparison_line(c, rep['min_delivered_to_compare'])}")
    return lines


def _replies_markdown(report: dict[str, Any], file: str | None = None) -> list[str]:
    rep = report.get("replies")
    if not rep or not rep["steps"]:
        return []
    reading = reading_text(rep, f"`{_track_command(file)}`")
    if reading is not None and not rep["read"]:
        out = ["", "### Replies and opt-outs", "", f"Replies {reading}.", "",
               "| step | variant | delivered | replied |", "|---|---|---:|---|"]
        out += [f"| `{step}` | {_variant_name(v['variant'])} | {v['delivered']:,} | not read |"
                for step, s in rep["steps"].items() for v in s["variants"]]
        return out
    out = ["", "### Replies and opt-outs", "",
           f"{rep['replies_stored']:,} replies stored by `campaign track`; rates are over the "
           "chats the step was delivered to."
           + (f" Replies {reading}." if reading is not None else ""), "",
           "| step | variant | delivered | replied | reply rate (95% CI) | opted out "
           "| median time to reply |", "|---|---|---:|---:|---:|---:|---:|"]
    for step, s in rep["steps"].items():
        for v in s["variants"]:
            ci = v["reply_rate_ci95"]
            interval = f" ({pct(ci[0])}–{pct(ci[1])})" if ci else ""
            out.append(f"| `{step}` | {_variant_name(v['variant'])} | {v['delivered']:,} "
                       f"| {v['replied']:,} | {pct(v['reply_rate'])}{interval} "
                       f"| {v['opted_out']:,} | {fmt_seconds(v['median_time_to_reply_s'])} |")
    late = [(step, v) for step, s in rep["steps"].items() for v in s["variants"]
            if v.get("sent_after_last_read")]
    if late:
        out.append("")
        out += [f"- `{step}` {_variant_name(v['variant'])}: {v['sent_after_last_read']:,} "
                "delivered after the last reading (replies not read yet)" for step, v in late]
    comparisons = [(step, c) for step, s in rep["steps"].items() for c in s["comparisons"]]
    if comparisons:
        out.append("")
        out += [f"- `{step}`: {comparison_line(c, rep['min_delivered_to_compare'])}"
                for step, c in comparisons]
    return out


def _delivery_text(report: dict[str, Any], file: str | None) -> list[str]:
    d = report.get("delivery")
    if not d:
        return []
    m = d["messages"]
    if not d["tracked"]:
        return [f"Delivery: not tracked yet ({m['accepted']:,} messages accepted); "
                f"run {_track_command(file)}"]
    t = d["time_to_delivery_s"]
    lines = [
        f"Delivery of {m['planned']:,} messages (as of {d['last_polled_at']}): "
        f"{m['delivered']:,} delivered, {m['failed']:,} failed after acceptance, "
        f"{m['in_flight']:,} in flight, {m['never_accepted']:,} never accepted"
        + (f", {m['cancelled']:,} cancelled" if m["cancelled"] else "")
        + (f", {m['untracked']:,} unknown to the status endpoint" if m["untracked"] else ""),
        "  protocols: " + ", ".join(f"{PROTOCOL_NAMES[p]} {n:,}"
                                    for p, n in d["protocols"].items() if n),
        f"  time to delivery: p50 {fmt_seconds(t['p50'])}, p95 {fmt_seconds(t['p95'])}, "
        f"max {fmt_seconds(t['max'])} ({t['count']:,} delivered)",
    ]
    width = max([len(s) for s in report["steps"]] + [4])
    for name, s in report["steps"].items():
        lines.append(f"  {name:<{width}}  {s['delivered']:>7,} delivered  "
                     f"{s['failed_delivery']:>5,} failed  {s['in_flight']:>5,} in flight  "
                     f"{s['never_accepted']:>5,} never accepted")
    if d["failures"]:
        lines.append("Delivery failures by error:")
        for g in d["failures"]:
            lines.append(f"  {g['count']:>6,} × {one_line(g['error'])}")
            lines.append(f"         e.g. {', '.join(g['examples'])}")
    return lines


def _delivery_markdown(report: dict[str, Any], file: str | None) -> list[str]:
    d = report.get("delivery")
    if not d:
        return []
    m = d["messages"]
    if not d["tracked"]:
        return ["", f"Delivery not tracked yet ({m['accepted']:,} messages accepted): run "
                    f"`{_track_command(file)}`."]
    t = d["time_to_delivery_s"]
    out = ["", "### Delivery", "",
           f"{m['delivered']:,} of {m['planned']:,} messages delivered "
           f"({_pct(m['delivered'], m['planned'])}); time to delivery p50 "
           f"{fmt_seconds(t['p50'])}, p95 {fmt_seconds(t['p95'])}, max {fmt_seconds(t['max'])}. "
           "Protocols: " + ", ".join(f"{PROTOCOL_NAMES[p]} {n:,}"
                                     for p, n in d["protocols"].items() if n) + ".",
           "", "| | messages | delivered | failed | in flight | never accepted |",
           "|---|---:|---:|---:|---:|---:|"]
    for name, s in report["steps"].items():
        out.append(f"| `{name}` | {s['messages']:,} | {s['delivered']:,} | "
                   f"{s['failed_delivery']:,} | {s['in_flight']:,} | {s['never_accepted']:,} |")
    out.append(f"| **total** | {m['planned']:,} | {m['delivered']:,} | {m['failed']:,} "
               f"| {m['in_flight']:,} | {m['never_accepted']:,} |")
    if d["failures"]:
        out += ["", "| delivery error | count | e.g. |", "|---|---:|---|"]
        for g in d["failures"]:
            # The server's words: markdown data, never markup (runner.safe_text).
            out.append(f"| {md_text(g['error'])} | {g['count']:,} | "
                       f"{md_text(', '.join(g['examples']))} |")
    return out


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def render_markdown(report: dict[str, Any], file: str | None = None) -> str:
    r, t = report["run"], report["totals"]
    out = [
        f"## Campaign {md_code(report['campaign'])} — revision {report['revision']}, run #{r['id']}",
        "",
        f"{_stop_text(r, report.get('state'))[:1].upper()}"
        f"{_stop_text(r, report.get('state'))[1:]}. Started {r['started_at']}"
        + (f", {r['duration_s']} s{_rate(r)}." if r["achieved_rate"] else "."),
        "",
        "| | requests | accepted | failed | pending |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in report["steps"].items():
        out.append(f"| `{name}` | {s['requests']:,} | {s['accepted']:,} | {s['failed']:,} "
                   f"| {s['pending']:,} |")
    out.append(f"| **total** | {t['requests']:,} | {t['accepted']:,} | {t['failed']:,} "
               f"| {t['pending']:,} |")
    if report["failures"]:
        out += ["", "### Failures by reason", "", "| reason | HTTP | count | message | e.g. |",
                "|---|---:|---:|---|---|"]
        for g in report["failures"]:
            out.append(f"| {md_code(g['reason'], in_table=True)} | {g['http_status'] or ''} | "
                       f"{g['count']:,} | {md_text(g['message'] or '')} "
                       f"| {md_text(', '.join(g['examples']))} |")
    if report["pending"]:
        out += ["", "Pending: " + ", ".join(f"`{p['reason']}` {p['count']:,}"
                                           for p in report["pending"])]
    waiting = _waiting(report)
    if waiting:
        out += ["", "Schedule and suppression: " + waiting]
    outside = _outside(report)
    if outside:
        out += ["", outside[:1].upper() + outside[1:] + "."]
    out += _delivery_markdown(report, file)
    out += _replies_markdown(report, file)
    consent = _consent_lines(report)
    if consent:
        out += ["", "### Consent", "", consent[0] + ".", ""]
        out += [f"- {md_code(line.strip())}" for line in consent[1:]]  # replies: hostile text
    return "\n".join(out) + "\n"


def render(report: dict[str, Any], fmt: str, file: str | None = None) -> str:
    """The report in ``fmt``; ``file`` (the campaign's path) makes the hints runnable as shown."""
    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if fmt == "markdown":
        return render_markdown(report, file)
    if fmt == "html":
        return render_html(report, file)
    return render_text(report, file)

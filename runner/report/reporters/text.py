"""The text reporter: the report for a terminal."""

from __future__ import annotations

from runner.report.engagement import comparison_line, pct, reading_text, unread_since_text
from runner.report.model import Report
from runner.report.reporters.common import (
    consent_lines,
    outside,
    rate,
    stop_line,
    track_command,
    waiting,
)
from runner.report.words import PROTOCOL_NAMES, fmt_seconds
from runner.safe_text import one_line


def render(report: Report, file: str | None = None) -> str:
    r, t = report.run, report.totals
    lines = [
        f"Campaign {report.campaign} (revision {report.revision}), run #{r.id} "
        f"started {r.started_at}: {stop_line(r, report.state)}",
        f"  requests {t.requests:,}: {t.accepted:,} accepted, {t.failed:,} failed, "
        f"{t.pending:,} pending; messages accepted {t.messages_accepted:,} "
        f"of {t.messages:,}",
    ]
    held = waiting(report)
    if held:
        lines.append("  " + held)
    gone = outside(report)
    if gone:
        lines.append("  " + gone)
    if r.duration_s is not None:
        lines.append(
            f"  this run: {r.http_requests or 0:,} HTTP requests in {r.duration_s:,} s{rate(r)}"
        )
    if r.cap:
        cap = r.cap
        extra = ", ".join(f"{k} {cap[k]}" for k in ("limit", "cap", "current") if k in cap)
        lines.append(f"  cap: {cap.get('code')}" + (f" ({extra})" if extra else ""))
    width = max([len(s.name) for s in report.steps] + [4])
    lines.append("Steps:")
    for s in report.steps:
        lines.append(
            f"  {s.name:<{width}}  {s.requests:>7,} requests  {s.accepted:>7,} "
            f"accepted  {s.failed:>5,} failed  {s.pending:>5,} pending"
        )
    if report.failures:
        lines.append("Failures by reason:")
        for g in report.failures:
            status = f" (HTTP {g.http_status})" if g.http_status else ""
            msg = f": {one_line(g.message)}" if g.message else ""
            lines.append(f"  {g.count:>6,} × {g.reason}{status}{msg}")
            lines.append(f"         e.g. {', '.join(g.examples)}")
    if report.pending:
        lines.append(
            "Pending by reason: "
            + ", ".join(
                f"{p.reason} {p.count:,}" + (f" (most: {p.most})" if p.most else "")
                for p in report.pending
            )
        )
    lines += _delivery(report, file)
    lines += _replies(report, file)
    lines += consent_lines(report)
    return "\n".join(lines) + "\n"


def _replies(report: Report, file: str | None) -> list[str]:
    rep = report.replies
    if not rep.steps:
        return []
    reading = reading_text(rep, track_command(file))
    if not rep.read:
        lines = [f"Replies: {reading}"]
        for s in rep.steps:
            for v in s.variants:
                label = s.step if v.variant is None else f"{s.step} / {v.variant}"
                lines.append(f"  {label}: {v.delivered:,} delivered, replies not read")
        return lines
    lines = [
        f"Replies ({rep.replies_stored:,} stored by campaign track; rates over delivered):",
        f"  {reading}",
    ]
    for s in rep.steps:
        for v in s.variants:
            label = s.step if v.variant is None else f"{s.step} / {v.variant}"
            wait = fmt_seconds(v.median_time_to_reply_s)
            lines.append(
                f"  {label}: {v.delivered:,} delivered, {v.replied or 0:,} replied "
                f"({pct(v.reply_rate)}), {v.opted_out or 0:,} opted out "
                f"({pct(v.opt_out_rate)}), median time to first reply {wait}" + unread_since_text(v)
            )
        for c in s.comparisons:
            lines.append(f"    {s.step}: {comparison_line(c, rep.min_delivered_to_compare)}")
    return lines


def _delivery(report: Report, file: str | None) -> list[str]:
    d = report.delivery
    m = d.messages
    if not d.tracked:
        return [
            f"Delivery: not tracked yet ({m.accepted:,} messages accepted); "
            f"run {track_command(file)}"
        ]
    t = d.time_to_delivery_s
    lines = [
        f"Delivery of {m.planned:,} messages (as of {d.last_polled_at}): "
        f"{m.delivered:,} delivered, {m.failed:,} failed after acceptance, "
        f"{m.in_flight:,} in flight, {m.never_accepted:,} never accepted"
        + (f", {m.cancelled:,} cancelled" if m.cancelled else "")
        + (f", {m.untracked:,} unknown to the status endpoint" if m.untracked else ""),
        "  protocols: "
        + ", ".join(f"{PROTOCOL_NAMES[p.protocol]} {p.count:,}" for p in d.protocols if p.count),
        f"  time to delivery: p50 {fmt_seconds(t.p50)}, p95 {fmt_seconds(t.p95)}, "
        f"max {fmt_seconds(t.max)} ({t.count:,} delivered)",
    ]
    width = max([len(s.name) for s in report.steps] + [4])
    for s in report.steps:
        lines.append(
            f"  {s.name:<{width}}  {s.delivered:>7,} delivered  "
            f"{s.failed_delivery:>5,} failed  {s.in_flight:>5,} in flight  "
            f"{s.never_accepted:>5,} never accepted"
        )
    if d.failures:
        lines.append("Delivery failures by error:")
        for g in d.failures:
            lines.append(f"  {g.count:>6,} × {one_line(g.error)}")
            lines.append(f"         e.g. {', '.join(g.examples)}")
    return lines

"""The markdown reporter: the report for a pull request or a wiki page. Every text the API or a
recipient wrote is markdown data, never markup (runner.safe_text)."""

from __future__ import annotations

from runner.report.engagement import comparison_line, pct, reading_text
from runner.report.model import Report
from runner.report.reporters.common import (
    consent_lines,
    outside,
    percent,
    rate,
    stop_line,
    track_command,
    variant_name,
    waiting,
)
from runner.report.words import PROTOCOL_NAMES, fmt_seconds
from runner.safe_text import md_code, md_text


def render(report: Report, file: str | None = None) -> str:
    r, t = report.run, report.totals
    stop = stop_line(r, report.state)
    out = [
        f"## Campaign {md_code(report.campaign)} — revision {report.revision}, run #{r.id}",
        "",
        f"{stop[:1].upper()}{stop[1:]}. Started {r.started_at}"
        + (f", {r.duration_s} s{rate(r)}." if r.achieved_rate else "."),
        "",
        "| | requests | accepted | failed | pending |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in report.steps:
        out.append(
            f"| `{s.name}` | {s.requests:,} | {s.accepted:,} | {s.failed:,} | {s.pending:,} |"
        )
    out.append(f"| **total** | {t.requests:,} | {t.accepted:,} | {t.failed:,} | {t.pending:,} |")
    if report.failures:
        out += [
            "",
            "### Failures by reason",
            "",
            "| reason | HTTP | count | message | e.g. |",
            "|---|---:|---:|---|---|",
        ]
        for g in report.failures:
            out.append(
                f"| {md_code(g.reason, in_table=True)} | {g.http_status or ''} | "
                f"{g.count:,} | {md_text(g.message or '')} "
                f"| {md_text(', '.join(g.examples))} |"
            )
    if report.pending:
        out += ["", "Pending: " + ", ".join(f"`{p.reason}` {p.count:,}" for p in report.pending)]
    held = waiting(report)
    if held:
        out += ["", "Schedule and suppression: " + held]
    gone = outside(report)
    if gone:
        out += ["", gone[:1].upper() + gone[1:] + "."]
    out += _delivery(report, file)
    out += _replies(report, file)
    consent = consent_lines(report)
    if consent:
        out += ["", "### Consent", "", consent[0] + ".", ""]
        out += [f"- {md_code(line.strip())}" for line in consent[1:]]  # replies: hostile text
    return "\n".join(out) + "\n"


def _replies(report: Report, file: str | None) -> list[str]:
    rep = report.replies
    if not rep.steps:
        return []
    reading = reading_text(rep, f"`{track_command(file)}`")
    if not rep.read:
        out = [
            "",
            "### Replies and opt-outs",
            "",
            f"Replies {reading}.",
            "",
            "| step | variant | delivered | replied |",
            "|---|---|---:|---|",
        ]
        out += [
            f"| `{s.step}` | {variant_name(v.variant)} | {v.delivered:,} | not read |"
            for s in rep.steps
            for v in s.variants
        ]
        return out
    out = [
        "",
        "### Replies and opt-outs",
        "",
        f"{rep.replies_stored:,} replies stored by `campaign track`; rates are over the "
        f"chats the step was delivered to. Replies {reading}.",
        "",
        "| step | variant | delivered | replied | reply rate (95% CI) | opted out "
        "| median time to reply |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in rep.steps:
        for v in s.variants:
            ci = v.reply_rate_ci95
            interval = f" ({pct(ci[0])}–{pct(ci[1])})" if ci else ""
            out.append(
                f"| `{s.step}` | {variant_name(v.variant)} | {v.delivered:,} "
                f"| {v.replied or 0:,} | {pct(v.reply_rate)}{interval} "
                f"| {v.opted_out or 0:,} | {fmt_seconds(v.median_time_to_reply_s)} |"
            )
    late = [(s.step, v) for s in rep.steps for v in s.variants if v.sent_after_last_read]
    if late:
        out.append("")
        out += [
            f"- `{step}` {variant_name(v.variant)}: {v.sent_after_last_read:,} "
            "delivered after the last reading (replies not read yet)"
            for step, v in late
        ]
    comparisons = [(s.step, c) for s in rep.steps for c in s.comparisons]
    if comparisons:
        out.append("")
        out += [
            f"- `{step}`: {comparison_line(c, rep.min_delivered_to_compare)}"
            for step, c in comparisons
        ]
    return out


def _delivery(report: Report, file: str | None) -> list[str]:
    d = report.delivery
    m = d.messages
    if not d.tracked:
        return [
            "",
            f"Delivery not tracked yet ({m.accepted:,} messages accepted): run "
            f"`{track_command(file)}`.",
        ]
    t = d.time_to_delivery_s
    out = [
        "",
        "### Delivery",
        "",
        f"{m.delivered:,} of {m.planned:,} messages delivered "
        f"({percent(m.delivered, m.planned)}); time to delivery p50 "
        f"{fmt_seconds(t.p50)}, p95 {fmt_seconds(t.p95)}, max {fmt_seconds(t.max)}. "
        "Protocols: "
        + ", ".join(f"{PROTOCOL_NAMES[p.protocol]} {p.count:,}" for p in d.protocols if p.count)
        + ".",
        "",
        "| | messages | delivered | failed | in flight | never accepted |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in report.steps:
        out.append(
            f"| `{s.name}` | {s.messages:,} | {s.delivered:,} | "
            f"{s.failed_delivery:,} | {s.in_flight:,} | {s.never_accepted:,} |"
        )
    out.append(
        f"| **total** | {m.planned:,} | {m.delivered:,} | {m.failed:,} "
        f"| {m.in_flight:,} | {m.never_accepted:,} |"
    )
    if d.failures:
        out += ["", "| delivery error | count | e.g. |", "|---|---:|---|"]
        for g in d.failures:
            # The server's words: markdown data, never markup (runner.safe_text).
            out.append(f"| {md_text(g.error)} | {g.count:,} | {md_text(', '.join(g.examples))} |")
    return out

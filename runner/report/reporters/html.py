"""The run report as one self-contained HTML page: our own inline SVG charts, no scripts.

It is made to be opened from an e-mail attachment or a CI artifact, so it fetches nothing (no
CDN, no web fonts, no images), runs nothing, and reads well printed. Every value shown comes
from the report model (runner.report.model), as ``--format json`` does, so the page and the JSON
never disagree; recipients appear exactly as the model has them (masked by default).
"""

from __future__ import annotations

import html
import math
import shlex
from collections.abc import Mapping

from runner.report.engagement import comparison_line, pct, reading_text, unread_since_text
from runner.report.model import (
    Latency,
    RepliesReport,
    Report,
    RunStateName,
    StepReport,
    VariantReplies,
)
from runner.report.words import PROTOCOL_NAMES, fmt_seconds

# One palette for every chart: a status keeps its colour from funnel to table.
COLOURS = {
    "delivered": "#1f9d55",
    "failed": "#d64545",
    "in_flight": "#e8a317",
    "never_accepted": "#9aa5b1",
    "accepted": "#3b82f6",
    "planned": "#64748b",
    "final": "#6366f1",
    "imessage": "#0a84ff",
    "sms": "#30b94d",
    "rcs": "#8e5cf7",
    "unknown": "#8d99a6",
    "pending": "#d5dbe1",
}
LABELS = {
    "delivered": "Delivered",
    "failed": "Failed after acceptance",
    "in_flight": "In flight",
    "never_accepted": "Never accepted",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


# -- charts ---------------------------------------------------------------------------------
def funnel_svg(m: Mapping[str, int]) -> str:
    """Planned → accepted → final → delivered, as centred bars narrowing like a funnel."""
    final = m["delivered"] + m["failed"] + m["cancelled"]
    stages = [
        ("Planned", m["planned"], "planned"),
        ("Accepted by the API", m["accepted"], "accepted"),
        ("Reached a final state", final, "final"),
        ("Delivered", m["delivered"], "delivered"),
    ]
    width, bar_h, gap, label_w = 560, 34, 12, 170
    top = max(m["planned"], 1)
    span = width - label_w - 90
    rows = []
    for i, (label, value, key) in enumerate(stages):
        y = i * (bar_h + gap)
        w = max(2.0, span * value / top) if value else 0.0
        x = label_w + (span - w) / 2
        rows.append(
            f'<text x="{label_w - 10}" y="{y + bar_h / 2 + 5}" text-anchor="end" '
            f'class="lbl">{_e(label)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="4" '
            f'fill="{COLOURS[key]}"><title>{_e(label)}: {value:,}</title></rect>'
            f'<text x="{label_w + span + 8}" y="{y + bar_h / 2 + 5}" class="val">{value:,}'
            f'<tspan class="muted"> {_pct(value, m["planned"])}</tspan></text>'
        )
    height = len(stages) * (bar_h + gap) - gap
    return (
        f'<svg class="chart" role="img" aria-label="Delivery funnel" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}">{"".join(rows)}</svg>'
    )


def donut_svg(protocols: Mapping[str, int]) -> str:
    """The protocol split as a donut with the delivered-over-iMessage share in the middle."""
    total = sum(protocols.values())
    size, r, stroke = 200, 70, 30
    c = size / 2
    parts = []
    if total == 0:
        parts.append(
            f'<circle cx="{c}" cy="{c}" r="{r}" fill="none" stroke="{COLOURS["pending"]}" '
            f'stroke-width="{stroke}"/>'
        )
    else:
        start = -math.pi / 2
        for key, value in protocols.items():
            if not value:
                continue
            angle = 2 * math.pi * value / total
            if value == total:
                parts.append(
                    f'<circle cx="{c}" cy="{c}" r="{r}" fill="none" '
                    f'stroke="{COLOURS[key]}" stroke-width="{stroke}"><title>'
                    f"{_e(PROTOCOL_NAMES[key])}: {value:,}</title></circle>"
                )
                break
            end = start + angle
            x1, y1 = c + r * math.cos(start), c + r * math.sin(start)
            x2, y2 = c + r * math.cos(end), c + r * math.sin(end)
            large = 1 if angle > math.pi else 0
            parts.append(
                f'<path d="M {x1:.2f} {y1:.2f} A {r} {r} 0 {large} 1 {x2:.2f} {y2:.2f}" '
                f'fill="none" stroke="{COLOURS[key]}" stroke-width="{stroke}"><title>'
                f"{_e(PROTOCOL_NAMES[key])}: {value:,} ({_pct(value, total)})</title>"
                f"</path>"
            )
            start = end
    if total:
        share = _pct(protocols.get("imessage", 0), total)
        parts.append(
            f'<text x="{c}" y="{c - 2}" text-anchor="middle" class="big">{share}</text>'
            f'<text x="{c}" y="{c + 18}" text-anchor="middle" class="muted">iMessage</text>'
        )
    else:
        parts.append(
            f'<text x="{c}" y="{c + 5}" text-anchor="middle" class="muted">no data yet</text>'
        )
    legend = "".join(
        f'<li><span class="sw" style="background:{COLOURS[k]}"></span>{_e(PROTOCOL_NAMES[k])}'
        f'<b>{v:,}</b><span class="muted">{_pct(v, total)}</span></li>'
        for k, v in protocols.items()
        if v
    )
    return (
        f'<div class="donut"><svg class="chart" role="img" aria-label="Protocol split" '
        f'viewBox="0 0 {size} {size}" width="{size}" height="{size}">{"".join(parts)}</svg>'
        f'<ul class="legend">{legend or "<li>nothing tracked yet</li>"}</ul></div>'
    )


def steps_svg(steps: tuple[StepReport, ...]) -> str:
    """One stacked bar per step: delivered, failed, in flight, never accepted (messages)."""
    keys = ("delivered", "failed_delivery", "in_flight", "never_accepted")
    colour = {
        "delivered": COLOURS["delivered"],
        "failed_delivery": COLOURS["failed"],
        "in_flight": COLOURS["in_flight"],
        "never_accepted": COLOURS["never_accepted"],
    }
    names = {"failed_delivery": "failed"}
    width, bar_h, gap, label_w = 560, 26, 14, 120
    span = width - label_w - 70
    top = max([s.messages for s in steps] + [1])
    rows = []
    for i, s in enumerate(steps):
        name = s.name
        y = i * (bar_h + gap)
        x = float(label_w)
        rows.append(
            f'<text x="{label_w - 10}" y="{y + bar_h / 2 + 5}" text-anchor="end" '
            f'class="lbl">{_e(_short(name))}<title>{_e(name)}</title></text>'
        )
        for k in keys:
            value = int(getattr(s, k))
            if not value:
                continue
            w = span * value / top
            rows.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" height="{bar_h}" '
                f'fill="{colour[k]}"><title>{_e(name)}: {value:,} '
                f"{names.get(k, k.replace('_', ' '))}</title></rect>"
            )
            x += w
        rows.append(
            f'<text x="{x + 8:.1f}" y="{y + bar_h / 2 + 5}" class="val">'
            f"{_pct(s.delivered, s.messages)}</text>"
        )
    height = max(1, len(steps)) * (bar_h + gap) - gap
    return (
        f'<svg class="chart" role="img" aria-label="Messages per step" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}">{"".join(rows)}</svg>'
    )


def histogram_svg(t: Latency) -> str:
    """Time from acceptance to delivery: columns per bin, p50 and p95 marked."""
    counts = t.histogram.counts
    width, height, left, bottom, top_pad = 560, 220, 44, 34, 30
    if not counts:
        return (
            '<svg class="chart" role="img" aria-label="Delivery times" viewBox="0 0 560 60" '
            'width="560" height="60"><text x="10" y="35" class="muted">No delivered message '
            "yet.</text></svg>"
        )
    bin_s = t.histogram.bin_s or 1.0
    plot_w, plot_h = width - left - 30, height - bottom - top_pad
    peak = max(counts)
    col_w = plot_w / len(counts)
    parts = [
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" '
        f'class="axis"/>',
        f'<text x="{left - 6}" y="{top_pad + 5}" text-anchor="end" class="tick">{peak:,}</text>',
        f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end" class="tick">0</text>',
    ]
    for i, value in enumerate(counts):
        h = plot_h * value / peak if peak else 0
        x = left + i * col_w
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{col_w - 2:.1f}" '
            f'height="{h:.1f}" rx="2" fill="{COLOURS["accepted"]}"><title>'
            f"{fmt_seconds(i * bin_s)}–{fmt_seconds((i + 1) * bin_s)}: {value:,}</title>"
            f"</rect>"
        )
    step = max(1, len(counts) // 6)
    for i in range(0, len(counts) + 1, step):
        x = left + i * col_w
        parts.append(
            f'<text x="{x:.1f}" y="{top_pad + plot_h + 16}" text-anchor="middle" '
            f'class="tick">{_tick(i * bin_s)}</text>'
        )
    span_s = bin_s * len(counts)
    key_x = left + 4
    for name, colour in (("p50", "#111827"), ("p95", COLOURS["failed"])):
        at_s = t.p50 if name == "p50" else t.p95
        if at_s is None:
            continue
        x = left + plot_w * min(at_s / span_s, 1.0)
        # The values are named in a key above the plot, not beside their lines: close
        # percentiles would put their labels on top of each other.
        parts.append(
            f'<line x1="{x:.1f}" y1="{top_pad}" x2="{x:.1f}" y2="{top_pad + plot_h}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3">'
            f"<title>{name} {fmt_seconds(at_s)}</title></line>"
            f'<line x1="{key_x}" y1="{top_pad - 16}" x2="{key_x + 18}" y2="{top_pad - 16}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{key_x + 23}" y="{top_pad - 12}" class="tick" '
            f'style="fill:{colour}">{name} {fmt_seconds(at_s)}</text>'
        )
        key_x += 110
    return (
        f'<svg class="chart" role="img" aria-label="Delivery times" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}">{"".join(parts)}</svg>'
    )


def _tick(seconds: float) -> str:
    """Axis labels: as few digits as the value needs (5 s, 2.5 s, 0.25 s, 2 min)."""
    if seconds >= 120:
        return f"{seconds / 60:g} min"
    return f"{round(seconds, 3):g} s"


def _short(name: str, limit: int = 16) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


# -- the page -------------------------------------------------------------------------------
_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f5f8;color:#1f2933;font:14px/1.45 -apple-system,BlinkMacSystemFont,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1160px;margin:0 auto;padding:28px 24px 40px}
header h1{margin:0;font-size:24px}
header h1 code{font-size:22px;background:#e4e7eb;padding:1px 8px;border-radius:6px}
header p{margin:4px 0 0;color:#52606d}
.pill{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600;
margin-left:8px;vertical-align:middle}
.ok{background:#e3f7ea;color:#1f7a43}.warn{background:#fff4d6;color:#8a5a00}
.bad{background:#fde8e8;color:#a61b1b}.info{background:#e0ecff;color:#1d4ed8}
.kpis{display:grid;grid-template-columns:repeat(5,1fr);gap:12px;margin:22px 0}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;border-top:4px solid #cbd2d9;
box-shadow:0 1px 2px rgba(0,0,0,.06)}
.kpi .v{font-size:26px;font-weight:700}.kpi .k{color:#52606d;font-size:12px;text-transform:uppercase;
letter-spacing:.04em}.kpi .s{color:#7b8794;font-size:12px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px;align-items:start}
.card{background:#fff;border-radius:10px;padding:16px 18px;box-shadow:0 1px 2px rgba(0,0,0,.06);
margin-bottom:16px;overflow:hidden}
.card h2{font-size:15px;margin:0 0 12px}
.chart{max-width:100%;height:auto;display:block}
.chart .lbl{font-size:13px;fill:#334e68}.chart .val{font-size:13px;font-weight:600;fill:#1f2933}
.chart .muted,.muted{fill:#7b8794;color:#7b8794;font-weight:400}
.chart .big{font-size:26px;font-weight:700;fill:#1f2933}.chart .tick{font-size:11px;fill:#52606d}
.chart .axis{stroke:#cbd2d9}
.donut{display:flex;align-items:center;gap:24px}
.legend{list-style:none;padding:0;margin:0}
.legend li{display:flex;align-items:center;gap:8px;margin:6px 0}
.legend b{margin-left:auto;padding-left:16px}.legend .muted{width:54px;text-align:right}
.sw{width:12px;height:12px;border-radius:3px;display:inline-block}
.keys{display:flex;gap:16px;flex-wrap:wrap;margin:10px 0 0;font-size:12px;color:#52606d}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:right;padding:6px 8px;border-bottom:1px solid #e4e7eb}
th:first-child,td:first-child,th.t,td.t{text-align:left}
th{color:#52606d;font-weight:600;font-size:12px}
td.t{text-align:left;max-width:420px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
footer{color:#7b8794;font-size:12px;margin-top:8px}
.reading{margin:0 0 12px}.reading .pill{margin:0 8px 0 0}
@media (max-width:800px){.grid{grid-template-columns:1fr}.kpis{grid-template-columns:repeat(2,1fr)}}
@media print{body{background:#fff}.card,.kpi{box-shadow:none;border:1px solid #e4e7eb}}
"""


def _status(report: Report) -> tuple[str, str]:
    """The pill: the run's state first (``runner.report.build.run_state``), then delivery."""
    state = report.state
    d = report.delivery.messages
    name = state.name
    if name is RunStateName.RUNNING:
        return "info", "a send is running: what it has journalled so far"
    if name is RunStateName.STOPPED:
        return "warn", "stopped early (send again to resume)"
    if name is RunStateName.WAITING:
        due = f"; next due {state.next_due}" if state.next_due else ""
        return "info", f"waiting on its schedule{due}"
    if name is RunStateName.FAILED:
        return "bad", "finished with failures"
    if d.failed:
        return "bad", f"finished; {d.failed:,} failed after acceptance"
    if d.in_flight and report.delivery.tracked:
        return "warn", f"finished; {d.in_flight:,} in flight"
    return "ok", "finished, all delivered" if report.delivery.tracked else "finished"


def _state_line(report: Report) -> str:
    """Requests by state, scheduled, expired and suppressed included, in one line."""
    t = report.totals
    bits = [
        f"{t.requests:,} requests: {t.accepted:,} accepted",
        f"{t.failed:,} failed",
        f"{t.pending:,} pending",
        f"{t.scheduled:,} scheduled",
        f"{t.expired:,} expired",
        f"{t.suppressed_recipients:,} recipients suppressed",
    ]
    o = report.outside_plan
    if o is not None and o.requests:
        bits.append(
            f"{o.requests:,} journal requests no longer in the plan "
            f"({o.accepted:,} accepted earlier, {o.suppressed:,} "
            f"suppressed after sending began, {o.removed:,} removed)"
        )
    return " · ".join(_e(b) for b in bits)


def _kpi(label: str, value: str, sub: str, colour: str) -> str:
    return (
        f'<div class="kpi" style="border-top-color:{colour}"><div class="k">{_e(label)}</div>'
        f'<div class="v">{value}</div><div class="s">{sub}</div></div>'
    )


def _keys() -> str:
    return (
        '<div class="keys">'
        + "".join(
            f'<span><span class="sw" style="background:{COLOURS[k]}"></span> {_e(v)}</span>'
            for k, v in LABELS.items()
        )
        + "</div>"
    )


def _steps_table(report: Report) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(s.name)}</code></td><td>{s.requests:,}</td><td>{s.accepted:,}</td>"
        f"<td>{s.messages:,}</td><td>{s.delivered:,}</td><td>{s.failed_delivery:,}</td>"
        f"<td>{s.in_flight:,}</td><td>{s.never_accepted:,}</td></tr>"
        for s in report.steps
    )
    return (
        "<table><tr><th>step</th><th>requests</th><th>accepted</th><th>messages</th>"
        "<th>delivered</th><th>failed</th><th>in flight</th><th>never accepted</th></tr>"
        f"{rows}</table>"
    )


def _failures_table(report: Report) -> str:
    rows = []
    for g in report.delivery.failures:
        rows.append(
            f"<tr><td class='t'>{_e(g.error)}</td><td>{g.count:,}</td>"
            f"<td class='t'>{_e(', '.join(c.step for c in g.steps))}</td>"
            f"<td class='t'>{_e(', '.join(g.examples))}</td></tr>"
        )
    for f in report.failures:
        status = f" (HTTP {f.http_status})" if f.http_status else ""
        rows.append(
            f"<tr><td class='t'>not accepted: <code>{_e(f.reason)}</code>{_e(status)}"
            f"{' — ' + _e(f.message) if f.message else ''}</td>"
            f"<td>{f.count:,} req.</td>"
            f"<td class='t'>{_e(', '.join(c.step for c in f.steps))}</td>"
            f"<td class='t'>{_e(', '.join(f.examples))}</td></tr>"
        )
    if not rows:
        return "<p class='muted'>No failures.</p>"
    return (
        "<table><tr><th>error</th><th>count</th><th class='t'>steps</th>"
        "<th class='t'>e.g.</th></tr>" + "".join(rows) + "</table>"
    )


def _variant_name(v: VariantReplies) -> str:
    return v.variant if v.variant is not None else "(no variant)"


def rates_svg(rows: tuple[VariantReplies, ...]) -> str:
    """Each variant's reply rate as a bar with its 95% interval as a whisker (0–100%)."""
    width, bar_h, gap, label_w = 560, 22, 12, 130
    span = width - label_w - 110
    parts = []
    for i, v in enumerate(rows):
        y = i * (bar_h + gap)
        name = _variant_name(v)
        rate = v.reply_rate or 0.0
        parts.append(
            f'<text x="{label_w - 10}" y="{y + bar_h / 2 + 5}" text-anchor="end" '
            f'class="lbl">{_e(_short(name))}<title>{_e(name)}</title></text>'
            f'<rect x="{label_w}" y="{y}" width="{max(span * rate, 1.5):.1f}" '
            f'height="{bar_h}" rx="3" fill="{COLOURS["accepted"]}"><title>{_e(name)}: '
            f"{v.replied or 0:,} of {v.delivered:,} replied</title></rect>"
        )
        if v.reply_rate_ci95:
            low, high = v.reply_rate_ci95
            x1, x2, mid = label_w + span * low, label_w + span * high, y + bar_h / 2
            parts.append(
                f'<line x1="{x1:.1f}" y1="{mid}" x2="{x2:.1f}" y2="{mid}" '
                f'stroke="#111827" stroke-width="1.5"><title>95% interval '
                f"{pct(low)}–{pct(high)}</title></line>"
                f'<line x1="{x1:.1f}" y1="{mid - 6}" x2="{x1:.1f}" y2="{mid + 6}" '
                f'stroke="#111827" stroke-width="1.5"/>'
                f'<line x1="{x2:.1f}" y1="{mid - 6}" x2="{x2:.1f}" y2="{mid + 6}" '
                f'stroke="#111827" stroke-width="1.5"/>'
            )
        parts.append(
            f'<text x="{label_w + span + 8}" y="{y + bar_h / 2 + 5}" class="val">'
            f'{pct(v.reply_rate)}<tspan class="muted"> of {v.delivered:,}'
            f"</tspan></text>"
        )
    height = max(1, len(rows)) * (bar_h + gap) - gap
    return (
        f'<svg class="chart" role="img" aria-label="Reply rate per variant" viewBox="0 0 '
        f'{width} {height}" width="{width}" height="{height}">{"".join(parts)}</svg>'
    )


def _reading_note(rep: RepliesReport, file: str | None) -> str:
    """The line that says whether, when and how completely replies were read, as a pill-like
    note (warn when never read or the last pass was partial)."""
    track = f"campaign track {shlex.quote(file) if file else 'FILE'}"
    text = reading_text(rep, track)
    p = rep.last_pass
    cls = "ok" if rep.read and (p is None or p.complete) else "warn"
    return f"<p class='reading'><span class='pill {cls}'>replies</span> Replies {_e(text)}.</p>"


def _replies_panels(report: Report, file: str | None = None) -> str:
    """A variants panel per step with two or more variants; without variants, one replies
    panel per step. Replies never read: one card saying so, with what was delivered, and no
    rates drawn."""
    rep = report.replies
    if not rep.steps:
        return ""
    note = _reading_note(rep, file)
    if not rep.read:
        rows = "".join(
            f"<tr><td class='t'><code>{_e(s.step)}</code></td><td class='t'>"
            f"{_e(_variant_name(v))}</td>"
            f"<td>{v.delivered:,}</td><td class='t'>not read</td></tr>"
            for s in rep.steps
            for v in s.variants
        )
        return (
            f'<section class="card replies unread"><h2>Replies and opt-outs</h2>{note}'
            "<table><tr><th class='t'>step</th><th class='t'>variant</th>"
            f"<th>delivered</th><th class='t'>replied</th></tr>{rows}</table></section>"
        )
    n = rep.min_delivered_to_compare
    cards = []
    for s in rep.steps:
        rows_ = s.variants
        named = [v for v in rows_ if v.variant is not None]
        title = (
            f"Variants of <code>{_e(s.step)}</code>"
            if len(named) >= 2
            else f"Replies to <code>{_e(s.step)}</code>"
        )
        table = "".join(
            f"<tr><td class='t'>{_e(_variant_name(v))}"
            f"</td><td>{v.delivered:,}</td><td>{v.replied or 0:,}</td>"
            f"<td>{pct(v.reply_rate)}</td><td>{v.opted_out or 0:,}</td>"
            f"<td>{pct(v.opt_out_rate)}</td><td>{fmt_seconds(v.median_time_to_reply_s)}"
            "</td></tr>"
            for v in rows_
        )
        late = "".join(
            f"<li>{_e(v.variant or s.step)}{_e(unread_since_text(v))}</li>"
            for v in rows_
            if v.sent_after_last_read
        )
        verdicts = "".join(f"<li>{_e(comparison_line(c, n))}</li>" for c in s.comparisons)
        cards.append(
            f'<div class="card replies"><h2>{title}</h2>{rates_svg(rows_)}'
            "<table><tr><th class='t'>variant</th><th>delivered</th><th>replied</th>"
            "<th>reply rate</th><th>opted out</th><th>opt-out rate</th>"
            f"<th>median time to reply</th></tr>{table}</table>"
            + (f"<ul class='late'>{late}</ul>" if late else "")
            + (f"<ul class='verdicts'>{verdicts}</ul>" if verdicts else "")
            + "</div>"
        )
    explained = (
        f"<p class='muted'>{rep.replies_stored:,} replies stored by "
        "<code>campaign track</code>. A chat replied to a step when it answered after "
        "the step and before the next; rates are over delivered chats, with 95% "
        f"intervals (Wilson; differences: Newcombe). Under {n} delivered per variant a "
        "comparison is too small to tell.</p>"
    )
    return f'{note}<section class="grid">{"".join(cards)}</section>{explained}'


def _funnel(report: Report) -> Mapping[str, int]:
    m = report.delivery.messages
    return {
        "planned": m.planned,
        "accepted": m.accepted,
        "delivered": m.delivered,
        "failed": m.failed,
        "cancelled": m.cancelled,
    }


def render(report: Report, file: str | None = None) -> str:
    """The whole page as one string (UTF-8, no external resources). ``file``, the campaign's
    path, makes the "track" hint a command that runs as shown."""
    d = report.delivery
    m = d.messages
    t = d.time_to_delivery_s
    run = report.run
    cls, status = _status(report)
    title = f"Campaign {report.campaign} — delivery report"
    tracked = (
        f"delivery as of {_e(d.last_polled_at)}"
        if d.tracked
        else "delivery not tracked yet: run <code>campaign track "
        f"{_e(shlex.quote(file) if file else 'FILE')}</code>"
    )
    kpis = "".join(
        [
            _kpi(
                "Messages planned",
                _n(m.planned),
                f"{report.totals.requests:,} requests",
                COLOURS["planned"],
            ),
            _kpi("Delivered", _n(m.delivered), _pct(m.delivered, m.planned), COLOURS["delivered"]),
            _kpi(
                "Failed after acceptance",
                _n(m.failed),
                _pct(m.failed, m.planned),
                COLOURS["failed"],
            ),
            _kpi(
                "In flight / never accepted",
                f"{m.in_flight:,} / {m.never_accepted:,}",
                "still travelling / refused, unsent or scheduled",
                COLOURS["in_flight"],
            ),
            _kpi(
                "Time to delivery",
                fmt_seconds(t.p50),
                f"p50 · p95 {fmt_seconds(t.p95)} · max {fmt_seconds(t.max)}",
                COLOURS["accepted"],
            ),
        ]
    )
    masked = (
        "Phone numbers and e-mail addresses are masked."
        if report.recipients_masked
        else "Recipients are shown unmasked."
    )
    protocols = {p.protocol: p.count for p in d.protocols}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><main>
<header><h1>Campaign <code>{_e(report.campaign)}</code><span class="pill {cls}">{_e(status)}</span></h1>
<p>Revision {report.revision} · run #{run.id} started {_e(run.started_at)} · {tracked}</p>
<p class="state">{_state_line(report)}</p></header>
<section class="kpis">{kpis}</section>
<section class="grid">
<div class="card"><h2>Delivery funnel</h2>{funnel_svg(_funnel(report))}</div>
<div class="card"><h2>Protocols</h2>{donut_svg(protocols)}</div>
<div class="card"><h2>Messages per step</h2>{steps_svg(report.steps)}{_keys()}</div>
<div class="card"><h2>Time from acceptance to delivery</h2>{histogram_svg(t)}</div>
</section>
{_replies_panels(report, file)}
<section class="card"><h2>Steps</h2>{_steps_table(report)}</section>
<section class="card"><h2>Failures</h2>{_failures_table(report)}</section>
<footer>Generated {_e(report.generated_at)} by blooio-runner (report schema
{report.schema_version}). {masked}</footer>
</main></body></html>
"""

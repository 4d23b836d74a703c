"""How a plan reads: text for a terminal, markdown for a pull-request comment, JSON for tools.

Previews show each message as a person would read it (bubbles, attachments, effects), not as
JSON; the exact bodies are in `plan --out` and `campaign preview`.
"""

from __future__ import annotations

import json
from typing import Any

from runner.planning.planner import PlanSummary
from runner.safe_text import md_code, md_text

_STATE_NAMES = {
    "due": "due now",
    "window": "waiting for the window",
    "delay": "waiting for a delay",
    "previous": "waiting for the previous step",
    "not_before": "waiting for not_before",
    "expired": "expired (never sent)",
    "accepted": "already accepted",
    "law": "held by law (legal hours)",
    "capped": "capped (frequency limit)",
}


def _policy_line(extra: dict[str, Any]) -> str | None:
    """Which policy applied, said in every plan; `hours: off` loudly."""
    policy = extra.get("policy")
    if not policy:
        return None
    bits = [f"hours {policy['hours']}"]
    if policy["limits"]:
        bits.append("limits " + ", ".join(policy["limits"]))
    if policy.get("max_segments"):
        bits.append(f"max_segments {policy['max_segments']}")
    return f"{policy['file']} — " + "; ".join(bits)


def _segment_rows(s: PlanSummary) -> list[tuple[str, str, str, str]]:
    """(step, SMS segments in all, most in one message, encoding) of steps sent to phones."""
    return [
        (sid, f"{c.segments:,}", f"{c.max_segments}", "UCS-2" if c.ucs2 else "GSM-7")
        for sid, c in s.steps.items()
        if c.sms_messages
    ]


def _bubbles(body: dict[str, Any]) -> list[str]:
    """One line per thing the recipient sees."""
    lines: list[str] = []
    text = body.get("text")
    for t in text if isinstance(text, list) else [text] if text is not None else []:
        lines.extend(
            f"💬 {ln}" if i == 0 else f"   {ln}" for i, ln in enumerate(str(t).splitlines() or [""])
        )
    parts = body.get("parts") or []
    batch = any(p.get("link_preview") is not None for p in parts)
    for p in parts:
        if "text" in p:
            prefix = "🔗" if batch else "💬"
            mention = f" (@{p['mention']})" if p.get("mention") else ""
            lines.append(f"{prefix} {p['text']}{mention}")
            if p.get("link_preview"):
                lines.append("   " + _preview_line(p["link_preview"]))
        else:
            name = f" ({p['name']})" if p.get("name") else ""
            lines.append(f"📎 {p['url']}{name}")
    for a in body.get("attachments") or []:
        if isinstance(a, dict):
            lines.append(f"📎 {a['url']}" + (f" ({a['name']})" if a.get("name") else ""))
        else:
            lines.append(f"📎 {a}")
    if body.get("link_preview"):
        lines.append("   " + _preview_line(body["link_preview"]))
    return lines


def _preview_line(lp: dict[str, Any]) -> str:
    bits = []
    if lp.get("title"):
        bits.append(f"title “{lp['title']}”")
    if lp.get("image_url"):
        bits.append(f"image {lp['image_url']}")
    return "link preview: " + ", ".join(bits) if bits else "link preview"


def _step_notes(item: dict[str, Any]) -> str:
    body = item.get("body") or {}
    notes = []
    if item.get("variant") is not None:
        notes.append(f"variant {item['variant']}")
    if body.get("effect"):
        notes.append(f"effect {body['effect']}")
    if item.get("reply_to_step"):
        notes.append(f"reply to '{item['reply_to_step']}'")
    elif body.get("reply_to"):
        notes.append("reply to " + json.dumps(body["reply_to"]))
    if body.get("from_number"):
        notes.append(f"from {body['from_number']}")
    if item.get("messages", 1) > 1:
        notes.append(f"{item['messages']} messages")
    return f" ({', '.join(notes)})" if notes else ""


def _counts_rows(s: PlanSummary, effects: dict[str, str]) -> list[list[str]]:
    rows = []
    for sid, c in s.steps.items():
        rows.append(
            [
                sid,
                f"{c.requests:,}",
                f"{c.messages:,}",
                f"{c.skipped:,}",
                "by variant" if c.variants is not None else effects.get(sid) or "—",
            ]
        )
    return rows


def _variant_rows(s: PlanSummary) -> list[tuple[str, str, int, str]]:
    """(step, variant, requests, share of the step's requests) of every step with variants."""
    rows = []
    for sid, c in s.steps.items():
        for vid, n in (c.variants or {}).items():
            share = f"{100 * n / c.requests:.1f}%" if c.requests else "—"
            rows.append((sid, vid, n, share))
    return rows


def _previews_title(s: PlanSummary) -> str:
    n = len(s.previews)
    if any(c.variants is not None for c in s.steps.values()):
        return f"{n} recipient{'s' if n != 1 else ''}: the first, and one of each variant"
    return f"first {n} recipient{'s' if n != 1 else ''}"


def _headline(s: PlanSummary, extra: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("recipients", f"{s.recipients:,}"),
        ("requests", f"{s.requests:,}"),
        ("messages", f"{s.messages:,}"),
        ("skipped (when / reply parent skipped)", f"{s.skipped:,}"),
    ]
    if s.duplicates:
        rows.append(("duplicate rows (sent once)", f"{s.duplicates:,}"))
    if s.suppressed:
        rows.append(("suppressed (never sent)", f"{s.suppressed:,}"))
    if s.excluded:
        rows.append((f"excluded ({s.excluded_by})", f"{s.excluded:,}"))
    if s.no_chat:
        rows.append(("rows without a phone/email (skipped)", f"{s.no_chat:,}"))
    if s.read_as:
        rows.append(("recipients file", s.read_as))
    journal = extra.get("journal")
    if journal:
        rows.append(("already accepted (journal)", f"{journal['accepted']:,} requests"))
        rows.append(("to send", f"{s.requests - journal['accepted']:,} requests"))
        if journal["older_content"]:
            rows.append(("got older content of a step", f"{journal['older_content']:,} recipients"))
        if journal.get("other_variant"):
            rows.append(
                (
                    "got another variant than now assigned (not sent again)",
                    f"{journal['other_variant']:,} recipients",
                )
            )
        if journal.get("earlier_revision"):
            rows.append(
                (
                    "got an earlier revision (sent again)",
                    f"{journal['earlier_revision']:,} recipients",
                )
            )
        if journal.get("same_content_other_step"):
            rows.append(
                (
                    "got this content under another step id (sent again)",
                    f"{journal['same_content_other_step']:,} recipients",
                )
            )
    return rows


def render_text(
    s: PlanSummary, *, file: str, effects: dict[str, str], extra: dict[str, Any]
) -> str:
    out = [f"Plan for {s.campaign} (revision {s.revision}) — {file}", ""]
    head = _headline(s, extra)
    width = max(len(k) for k, _ in head)
    out += [f"  {k:<{width}}  {v}" for k, v in head]
    out += ["", "  step" + " " * 16 + "requests  messages  skipped  effect"]
    for sid, req, msg, skip, eff in _counts_rows(s, effects):
        out.append(f"  {sid:<20}{req:>8}  {msg:>8}  {skip:>7}  {eff}")
    variants = _variant_rows(s)
    if variants:
        out += ["", "  variants (requests, share of the step):"]
        out += [f"    {sid} / {vid:<20}{n:>8,}  {share:>6}" for sid, vid, n, share in variants]
    sched = extra.get("schedule")
    if sched:
        out += ["", f"  schedule at {sched['at']} (messages):"]
        out += [f"    {_STATE_NAMES.get(k, k):<28}{v:>8,}" for k, v in sched["messages"].items()]
        for z, n in sched["waiting_for_window_by_zone"].items():
            out.append(f"      window closed in {z}: {n:,}")
        for name, n in sched.get("held_by", {}).items():
            out.append(f"      {name}: {n:,}")
        if sched["next_due"]:
            out.append(f"    next due at {sched['next_due']}")
    segs = _segment_rows(s)
    if segs:
        out += [
            "",
            "  SMS segments if phones fall back to SMS (step, segments, most in one, encoding):",
        ]
        out += [f"    {sid:<20}{n:>8}  {most:>4}  {enc}" for sid, n, most, enc in segs]
    policy = _policy_line(extra)
    if policy:
        out += ["", f"  policy: {policy}"]
    if s.from_numbers:
        out += ["", "  from-number pool (chats per number):"]
        out += [f"    {n}  {c:,}" for n, c in s.from_numbers.items()]
    if s.warnings:
        out += ["", "Warnings:"] + [f"  - {w}" for w in s.warnings]
    if s.previews:
        out += ["", f"Preview ({_previews_title(s)}):"]
        for p in s.previews:
            out.append(f"  → {p['recipient']}")
            for item in p["steps"]:
                if "skipped" in item:
                    out.append(f"    [{item['step']}] skipped ({item['skipped']})")
                    continue
                out.append(f"    [{item['step']}]{_step_notes(item)}")
                out += [f"      {ln}" for ln in _bubbles(item["body"])]
    return "\n".join(out) + "\n"


def render_markdown(
    s: PlanSummary, *, file: str, effects: dict[str, str], extra: dict[str, Any]
) -> str:
    out = [
        f"### Campaign plan: {md_code(s.campaign)} (revision {s.revision})",
        "",
        f"File: {md_code(file)} · dry run, nothing was sent",
        "",
        "| | |",
        "|---|---:|",
    ]
    out += [f"| {k} | {v} |" for k, v in _headline(s, extra)]
    out += ["", "| step | requests | messages | skipped | effect |", "|---|---:|---:|---:|---|"]
    out += [
        f"| {md_code(sid, in_table=True)} | {r} | {m} | {k} | {md_text(e)} |"
        for sid, r, m, k, e in _counts_rows(s, effects)
    ]
    variants = _variant_rows(s)
    if variants:
        out += ["", "| step | variant | requests | share |", "|---|---|---:|---:|"]
        out += [
            f"| {md_code(sid, in_table=True)} | {md_code(vid, in_table=True)} | {n:,} | {share} |"
            for sid, vid, n, share in variants
        ]
    sched = extra.get("schedule")
    if sched:
        out += ["", f"**Schedule at {sched['at']}**", "", "| messages | count |", "|---|---:|"]
        out += [
            f"| {md_text(_STATE_NAMES.get(k, k))} | {v:,} |" for k, v in sched["messages"].items()
        ]
        out += [
            f"| ↳ window closed in {md_text(z)} | {n:,} |"
            for z, n in sched["waiting_for_window_by_zone"].items()
        ]
        out += [f"| ↳ {md_text(name)} | {n:,} |" for name, n in sched.get("held_by", {}).items()]
        if sched["next_due"]:
            out += ["", f"Next message due at {sched['next_due']}."]
    segs = _segment_rows(s)
    if segs:
        out += [
            "",
            "| step | SMS segments (if by SMS) | most in one message | encoding |",
            "|---|---:|---:|---|",
        ]
        out += [f"| `{sid}` | {n} | {most} | {enc} |" for sid, n, most, enc in segs]
    policy = _policy_line(extra)
    if policy:
        out += ["", f"Policy: {md_text(policy)}"]
    if s.from_numbers:
        out += ["", "| from number | chats |", "|---|---:|"]
        out += [f"| {md_text(n)} | {c:,} |" for n, c in s.from_numbers.items()]
    if s.warnings:
        out += ["", "**Warnings**", ""] + [f"- ⚠️ {md_text(w)}" for w in s.warnings]
    if s.previews:
        title = f"the first {len(s.previews)} recipient(s)" if not variants else _previews_title(s)
        out += ["", f"<details><summary>Preview of {title}</summary>", ""]
        for p in s.previews:
            out += [f"**→ {md_text(p['recipient'])}**", ""]
            for item in p["steps"]:
                if "skipped" in item:
                    out += [f"- {md_code(item['step'])} — skipped ({md_text(item['skipped'])})"]
                    continue
                out.append(f"- {md_code(item['step'])}{md_text(_step_notes(item))}")
                out += [f"  > {md_text(ln)}  " for ln in _bubbles(item["body"])]
            out.append("")
        out.append("</details>")
    return "\n".join(out) + "\n"


def render_json(s: PlanSummary, *, extra: dict[str, Any]) -> str:
    doc = s.to_dict()
    doc.update(extra)
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"

"""How `campaign diff` reads: text for a terminal, markdown for a pull-request comment, JSON."""

from __future__ import annotations

import json
from typing import Any

from runner.safe_text import md_code, md_text, one_line

_EXAMPLE_WIDTH = 120


def _short(value: Any) -> str:
    text = (
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    )
    text = " ".join(str(text).split())
    return text if len(text) <= _EXAMPLE_WIDTH else text[: _EXAMPLE_WIDTH - 1] + "…"


def _arrow(pair: dict[str, Any]) -> str:
    before, after = pair["before"], pair["after"]
    return str(after) if before == after else f"{before} → {after}"


def _step_line(s: dict[str, Any]) -> str:
    if s["status"] == "removed":
        return f"removed (was sent to {s['recipients_removed']:,} recipients)"
    parts = [
        f"+{s['recipients_added']:,} recipients",
        f"-{s['recipients_removed']:,}",
        f"{s['recipients_unchanged']:,} unchanged",
    ]
    if s["content_changed"]:
        parts.append(f"content changes for {s['content_changed']:,}")
    if s["would_resend"]:
        parts.append(f"{s['would_resend']:,} would be sent again (new key)")
    if s["would_not_resend"]:
        parts.append(f"{s['would_not_resend']:,} not re-sent to whoever already got it (same key)")
    return ("new step: " if s["status"] == "added" else "") + ", ".join(parts)


def _headline(doc: dict[str, Any]) -> str:
    side = (
        "new campaign"
        if doc["new"]
        else f"{one_line(doc.get('base_said') or doc['base'])} → working tree"
    )
    return f"campaign {one_line(doc['campaign'])} ({one_line(doc['file'])}): {side}"


def _facts(doc: dict[str, Any]) -> list[str]:
    t = doc["totals"]
    out = [
        f"revision {_arrow(doc['revision'])}; requests {_arrow(t['requests'])}; "
        f"recipients {_arrow(t['recipients'])}"
    ]
    if doc["revision"]["before"] not in (None, doc["revision"]["after"]):
        out.append(
            "the revision changed: every request has a new key, so recipients who got "
            "the earlier revision are sent again"
        )
    if doc["steps_added"]:
        out.append("steps added: " + ", ".join(doc["steps_added"]))
    if doc["steps_removed"]:
        out.append("steps removed: " + ", ".join(doc["steps_removed"]))
    out.append(
        f"would send again: {t['would_resend']:,} requests; new requests: {t['new_requests']:,}"
    )
    sched = doc["schedule"]
    if sched["changed"]:
        out.append(f"schedule: {_short(sched['before'])} → {_short(sched['after'])}")
    else:
        out.append("schedule: unchanged")
    sup = doc["suppression"]
    files = (
        ""
        if sup["files"]["before"] == sup["files"]["after"]
        else f"files {sup['files']['before']} → {sup['files']['after']}; "
    )
    out.append(f"suppression: {files}suppressed recipients {_arrow(sup['suppressed_recipients'])}")
    law = doc.get("law")
    if law:
        p = law["policy"]
        out.append(
            f"policy: {p['file']}, hours {p['hours']}"
            + (f", limits {', '.join(p['limits'])}" if p["limits"] else "")
        )
        for name, n in law["held_by"].items():
            out.append(f"{name} at {law['at']}: {n:,} messages")
    excluded = doc.get("excluded") or {}
    if any((excluded.get("recipients") or {}).values()):
        out.append(
            f"excluded ({excluded['by'] or 'exclude_when'}): {_arrow(excluded['recipients'])}"
        )
    return out


def render_text(doc: dict[str, Any]) -> str:
    lines = [_headline(doc)] + [f"  {f}" for f in _facts(doc)]
    for s in doc["steps"]:
        lines.append(f"  step {one_line(s['step'])}: {_step_line(s)}")
        for ex in s["examples"]:
            for name, change in ex["changes"].items():
                who, what = one_line(ex["recipient"]), one_line(name)
                lines.append(f"      e.g. {who} {what}: {one_line(_short(change['before']))}")
                lines.append(
                    f"      {' ' * len(who)}{' ' * len(what)}    → "
                    f"{one_line(_short(change['after']))}"
                )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return md_text(text)


def render_markdown(doc: dict[str, Any]) -> str:
    # Every name, id, ref and example comes from the pull request: markdown data, never markup.
    side = (
        "a new campaign"
        if doc["new"]
        else f"{md_code(doc.get('base_said') or doc['base'])} → this branch"
    )
    lines = [f"### Campaign {md_code(doc['campaign'])} ({md_code(doc['file'])}): {side}", ""]
    lines += [f"- {_cell(f)}" for f in _facts(doc)]
    lines += [
        "",
        "| step | change | added | removed | unchanged | content changed | sent again | not re-sent |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for s in doc["steps"]:
        lines.append(
            f"| {md_code(s['step'], in_table=True)} | {s['status']} | {s['recipients_added']:,} | "
            f"{s['recipients_removed']:,} | {s['recipients_unchanged']:,} | "
            f"{s['content_changed']:,} | {s['would_resend']:,} | {s['would_not_resend']:,} |"
        )
    examples = [(s["step"], ex) for s in doc["steps"] for ex in s["examples"]]
    if examples:
        lines += [
            "",
            "<details><summary>Examples of changed content (recipients masked)</summary>",
            "",
        ]
        for step, ex in examples:
            for name, change in ex["changes"].items():
                lines.append(f"- {md_code(step)} for {md_text(ex['recipient'])}, {md_code(name)}:")
                lines.append(f"  - before: {md_code(_short(change['before']))}")
                lines.append(f"  - after: {md_code(_short(change['after']))}")
        lines += ["", "</details>"]
    lines += [
        "",
        '_"sent again": the Idempotency-Key changes (revision, step id or chat id), so '
        'a recipient who already got it gets it again. "not re-sent": the content changes '
        "under the same key; whoever already got the step keeps the old message._",
        "",
    ]
    return "\n".join(lines)


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"

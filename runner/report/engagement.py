"""Replies and opt-outs per step and variant (report schema 4), from the journal alone.

A chat *replied* to a step when one of its inbound replies (stored by `campaign track`)
arrived after that step's message was sent to it and before the next step's was; it *opted
out* when one of those replies is a stop word. Rates are over the chats the step was
delivered to. Times are the API's (a message's `time_sent`, a reply's), so the runner's own
clock never mixes in; a message never polled falls back to when the API accepted it.

For a step with two or more variants each pair's difference in reply rate comes with its 95%
interval (runner.report.stats: Newcombe's method 10) and a plain verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from statistics import median
from typing import Any

from runner.report.stats import MIN_DELIVERED, compare, wilson
from runner.store.journal import ACCEPTED, Delivery, Entry, Journal, Reply


@dataclass
class _Cell:
    delivered: int = 0
    replied: int = 0
    opted_out: int = 0
    waits: list[float] = field(default_factory=list)  # seconds to the first reply


def engagement(entries: Iterable[Entry], deliveries: Iterable[Delivery],
               replies: Iterable[Reply], *,
               keep: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """The ``replies`` section of the report (pure: rows in, document out)."""
    sent_ms: dict[str, int] = {}
    delivered: set[str] = set()
    for d in deliveries:
        if d.status == "delivered":
            delivered.add(d.key)
        if d.time_sent is not None and (d.key not in sent_ms or d.time_sent < sent_ms[d.key]):
            sent_ms[d.key] = d.time_sent
    by_chat: dict[str, list[tuple[int, Entry]]] = defaultdict(list)
    order: dict[str, list[str | None]] = {}
    for e in entries:
        if e.status != ACCEPTED or (keep is not None and not keep(e.key)):
            continue
        at = sent_ms.get(e.key)
        if at is None:
            accepted = e.finished_at or e.last_attempt_at
            if accepted is None:
                continue
            at = int(accepted * 1000)
        by_chat[e.chat].append((at, e))
        seen = order.setdefault(e.step, [])
        if e.variant not in seen:
            seen.append(e.variant)
    heard: dict[str, list[Reply]] = defaultdict(list)
    for r in replies:
        if r.chat in by_chat:
            heard[r.chat].append(r)

    cells: dict[tuple[str, str | None], _Cell] = {}
    for chat, sent in by_chat.items():
        sent.sort(key=lambda x: (x[0], x[1].step_index))
        answers = sorted(heard.get(chat, ()), key=lambda r: r.received_at)
        for i, (at, e) in enumerate(sent):
            cell = cells.setdefault((e.step, e.variant), _Cell())
            if e.key not in delivered:
                continue
            cell.delivered += 1
            until = sent[i + 1][0] if i + 1 < len(sent) else None
            window = [r for r in answers
                      if r.received_at >= at and (until is None or r.received_at < until)]
            if window:
                cell.replied += 1
                cell.waits.append((window[0].received_at - at) / 1000.0)
                cell.opted_out += any(r.is_stop for r in window)

    steps: dict[str, Any] = {}
    for step, variants in order.items():
        rows = []
        for v in sorted(variants, key=lambda x: (x is not None, x or "")):
            c = cells.get((step, v), _Cell())
            low, high = wilson(c.replied, c.delivered)
            rows.append({
                "variant": v, "delivered": c.delivered, "replied": c.replied,
                "opted_out": c.opted_out,
                "reply_rate": round(c.replied / c.delivered, 4) if c.delivered else None,
                "reply_rate_ci95": [round(low, 4), round(high, 4)] if c.delivered else None,
                "opt_out_rate": round(c.opted_out / c.delivered, 4) if c.delivered else None,
                "median_time_to_reply_s": round(median(c.waits), 3) if c.waits else None,
            })
        named = [r for r in rows if r["variant"] is not None]
        comparisons = [compare(a["variant"], a["replied"], a["delivered"],
                               b["variant"], b["replied"], b["delivered"]).to_dict()
                       for a, b in combinations(named, 2)] if len(named) >= 2 else []
        steps[step] = {"variants": rows, "comparisons": comparisons}
    return {
        "replies_stored": sum(len(v) for v in heard.values()),
        "chats_replied": sum(1 for v in heard.values() if v),
        "min_delivered_to_compare": MIN_DELIVERED,
        "steps": steps,
    }


def build_engagement(journal: Journal, revision: int,
                     keep: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """``engagement`` over one revision of the journal."""
    return engagement(journal.entries(revision), journal.deliveries(revision),
                      journal.replies(), keep=keep)


# -- words -----------------------------------------------------------------------------------
VERDICT_TEXT = {
    "too_small": "too few delivered to tell (under {n} per variant)",
    "no_clear_difference": "no clear difference (the interval spans 0)",
    "a_higher": "{a} replies more",
    "b_higher": "{b} replies more",
}


def verdict_text(c: dict[str, Any], n: int = MIN_DELIVERED) -> str:
    return VERDICT_TEXT[c["verdict"]].format(a=c["a"], b=c["b"], n=n)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def comparison_line(c: dict[str, Any], n: int = MIN_DELIVERED) -> str:
    low, high = c["ci95"]
    return (f"{c['a']} − {c['b']}: {100 * c['difference']:+.1f} points "
            f"(95% CI {100 * low:+.1f} to {100 * high:+.1f}): {verdict_text(c, n)}")

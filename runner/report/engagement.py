"""Replies and opt-outs per step and variant (report schema 4), from the journal alone.

A chat *replied* to a step when one of its inbound replies (stored by `campaign track`)
arrived after that step's message was sent to it and before the next step's was; it *opted
out* when one of those replies is a stop word. Rates are over the chats the step was
delivered to. Times are the API's (a message's `time_sent`, a reply's), so the runner's own
clock never mixes in; a message never polled falls back to when the API accepted it.

For a step with two or more variants each pair's difference in reply rate comes with its 95%
interval (runner.report.stats: Newcombe's method 10) and a plain verdict.

Counts of replies mean something only once replies were read: ``reading`` says whether and when
`track` last read them (its ``reply_passes``) and how complete that pass was; ``unread`` turns
the counts of a campaign whose replies were never read into ``None`` (not zeros), and a
message delivered after the last reading began counts in ``sent_after_last_read`` (its replies
wait for the next pass).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from statistics import median
from typing import Any

from runner.report.stats import MIN_DELIVERED, compare, wilson
from runner.store.journal import ACCEPTED, Delivery, Entry, Journal, Reply, ReplyPass


@dataclass
class _Cell:
    delivered: int = 0
    replied: int = 0
    opted_out: int = 0
    waits: list[float] = field(default_factory=list)  # seconds to the first reply
    after_read: int = 0  # delivered after the last reading began: not read yet


def engagement(entries: Iterable[Entry], deliveries: Iterable[Delivery],
               replies: Iterable[Reply], *,
               keep: Callable[[str], bool] | None = None,
               last_read: float | None = None,
               optouts: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """The ``replies`` section of the report (pure: rows in, document out). ``last_read``: when
    the last reading of replies began (the runner's clock, as the journal's request times).
    ``optouts``: the consent ledger's opt-out times (API ms) by chat or group member: a step
    counts an opt-out when one falls after its message, even if no reply row says so."""
    sent_ms: dict[str, int] = {}
    delivered: set[str] = set()
    for d in deliveries:
        if d.status == "delivered":
            delivered.add(d.key)
        if d.time_sent is not None and (d.key not in sent_ms or d.time_sent < sent_ms[d.key]):
            sent_ms[d.key] = d.time_sent
    by_chat: dict[str, list[tuple[int, Entry]]] = defaultdict(list)
    order: dict[str, list[str | None]] = {}
    unread: set[str] = set()  # keys accepted after the last reading began
    replies = list(replies)
    if not delivered and not replies:
        # Nothing delivered and nothing heard (a send not tracked yet): every count is 0, and
        # only which steps and variants were sent shapes the rows.
        for e in entries:
            if e.status == ACCEPTED and (keep is None or keep(e.key)):
                seen = order.setdefault(e.step, [])
                if e.variant not in seen:
                    seen.append(e.variant)
        entries = ()
    for e in entries:
        if e.status != ACCEPTED or (keep is not None and not keep(e.key)):
            continue
        accepted = e.finished_at or e.last_attempt_at
        if last_read is not None and accepted is not None and accepted > last_read:
            unread.add(e.key)
        at = sent_ms.get(e.key)
        if at is None:
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
            cell.after_read += e.key in unread
            until = sent[i + 1][0] if i + 1 < len(sent) else None
            window = [r for r in answers
                      if r.received_at >= at and (until is None or r.received_at < until)]
            if window:
                cell.replied += 1
                cell.waits.append((window[0].received_at - at) / 1000.0)
                cell.opted_out += any(r.is_stop for r in window) or _opted_out_within(
                    chat, optouts, at, until)
            elif _opted_out_within(chat, optouts, at, until):
                # Read by a send before it messaged the chat again (the ledger has it, the
                # journal's replies not yet): a reply, and an opt-out.
                cell.replied += 1
                cell.opted_out += 1

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
                "sent_after_last_read": c.after_read,
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


# A row's counts that say something only once replies were read.
_READ_FIELDS = ("replied", "opted_out", "reply_rate", "reply_rate_ci95", "opt_out_rate",
                "median_time_to_reply_s", "sent_after_last_read")


def unread(doc: dict[str, Any]) -> dict[str, Any]:
    """``engagement``'s document for a campaign whose replies were never read: what is known
    (delivered) stays, every reply count and rate is ``None`` and nothing is compared."""
    steps = {step: {"variants": [{**v, **dict.fromkeys(_READ_FIELDS)} for v in s["variants"]],
                    "comparisons": []}
             for step, s in doc["steps"].items()}
    return {**doc, "chats_replied": None, "steps": steps}


def last_reading(passes: list[ReplyPass]) -> ReplyPass | None:
    """The latest pass that stored what it read: it ended (a pass the process never finished
    stored nothing) and read a chat, or had none to read."""
    for p in reversed(passes):
        if p.ended_at is not None and (p.chats_read or not p.chats):
            return p
    return None


def reading(passes: list[ReplyPass], legacy_read_at: float | None,
            iso: Callable[[float | None], str | None]) -> dict[str, Any]:
    """Whether, when and how completely the replies were read: the head of the ``replies``
    section. ``legacy_read_at``: the latest ``read_at`` of the stored replies, for a journal
    whose replies an older runner read without recording its passes."""
    last = last_reading(passes)
    latest = passes[-1] if passes else None
    read_at = last.ended_at if last is not None else legacy_read_at
    return {
        "read": read_at is not None,
        "last_read_at": iso(read_at),
        "passes": len(passes),
        # Passes are numbered 1.. in the order they ran; the one whose reading counts here.
        "last_read_pass": passes.index(last) + 1 if last is not None else None,
        "last_pass": None if latest is None else {
            "number": len(passes), "started_at": iso(latest.started_at), "ended_at": iso(latest.ended_at),
            "finished": latest.finished, "stop_reason": latest.stop_reason,
            "chats": latest.chats, "chats_read": latest.chats_read,
            "chats_failed": latest.chats_failed,
            "chats_not_read": max(0, latest.chats - latest.chats_read - latest.chats_failed),
            "requests": latest.requests, "replies_new": latest.replies_new,
            "complete": latest.complete,
        },
    }


def _opted_out_within(chat: str, optouts: dict[str, list[int]] | None, start: int,
                      until: int | None) -> bool:
    if not optouts:
        return False
    for who in (chat, *(chat.split(",") if "," in chat else ())):
        for at in optouts.get(who, ()):
            if at >= start and (until is None or at < until):
                return True
    return False


def build_engagement(journal: Journal, revision: int,
                     keep: Callable[[str], bool] | None = None, *,
                     iso: Callable[[float | None], str | None],
                     accepted: Iterable[Entry] | None = None,
                     optouts: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """The ``replies`` section over one revision of the journal: how the replies were read,
    then ``engagement`` (or, never read, ``unread``). ``iso`` writes the times. ``accepted``:
    the revision's accepted rows that ``keep`` keeps, when the caller has read them already
    (the report reads the journal's rows once)."""
    passes = journal.reply_passes()
    stored = list(journal.replies())
    legacy = max((r.now for r in stored), default=None)
    last = last_reading(passes)
    head = reading(passes, legacy, iso)
    if accepted is not None:
        entries, keep = accepted, None
    else:
        entries = journal.entries(revision)
    doc = engagement(entries, journal.deliveries(revision), stored, keep=keep,
                     last_read=last.started_at if last is not None else legacy, optouts=optouts)
    return {**head, **(doc if head["read"] else unread(doc))}


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


# How a reply pass that stopped early is said (a StopReason value); others read "stopped: why".
PASS_STOP_TEXT = {"interrupted": "stopped by Ctrl-C",
                  "unauthorized": "stopped: the API key was refused (401)"}


def pass_text(p: dict[str, Any]) -> str:
    """How complete one reply pass (``replies.last_pass``) was, in words."""
    if p["ended_at"] is None:
        return "did not finish (the process stopped; nothing it read was stored)"
    read = f"{p['chats_read']:,} of {p['chats']:,} chats read"
    failed = f", {p['chats_failed']:,} could not be read" if p["chats_failed"] else ""
    if p["stop_reason"]:
        why = PASS_STOP_TEXT.get(p["stop_reason"], f"stopped: {p['stop_reason']}")
        return f"{why}: {read}{failed}"
    if p["chats_failed"]:
        return f"partial: {read}{failed}"
    return "complete: " + (f"all {p['chats']:,} chats read" if p["chats"] else "no chat to read")


def reading_text(rep: dict[str, Any], track: str) -> str | None:
    """Whether, when and how completely replies were read, in one sentence (None for a report
    of schema 4, which did not say). ``track`` is the command that reads them."""
    if "read" not in rep:
        return None
    p = rep.get("last_pass")
    if not rep["read"]:
        tail = f" (its one reading, started {p['started_at']}, {pass_text(p)})" if p else ""
        return (f"never read for this campaign: no reply counts yet{tail}; run {track} to "
                "read them")
    if p is None:
        return (f"last read {rep['last_read_at']}, by an older runner that did not record how "
                "complete the reading was")
    again = ("" if p["complete"] else
             f"; the counts may miss some replies: run {track} again to read the rest")
    if p["number"] == rep["last_read_pass"]:
        return f"last read {rep['last_read_at']}, {pass_text(p)}{again}"
    return (f"last read {rep['last_read_at']}; the latest reading, started {p['started_at']}, "
            f"{pass_text(p)}{again}")


def unread_since_text(v: dict[str, Any]) -> str:
    """A row's messages delivered after the last reading began (their replies are unread)."""
    n = v.get("sent_after_last_read")
    return f", {n:,} delivered after the last reading (replies not read yet)" if n else ""

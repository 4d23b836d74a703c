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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations, groupby
from statistics import median

from runner.report.model import RepliesReport, ReplyPassInfo, StepReplies, VariantReplies
from runner.report.reporters.json import replies_steps_json
from runner.report.stats import MIN_DELIVERED, Comparison, compare, wilson
from runner.store.journal import ACCEPTED, Delivery, Entry, Journal, Reply, ReplyPass, SentFacts


@dataclass
class _Cell:
    delivered: int = 0
    replied: int = 0
    opted_out: int = 0
    waits: list[float] = field(default_factory=list)  # seconds to the first reply
    after_read: int = 0  # delivered after the last reading began: not read yet


@dataclass
class _Tally:
    """The reply figures while the chats stream by: one cell per step and variant."""

    cells: dict[tuple[str, str | None], _Cell] = field(default_factory=dict)
    order: dict[str, list[str | None]] = field(default_factory=dict)  # step -> variants seen
    replies_stored: int = 0
    chats_replied: int = 0

    def saw(self, step: str, variant: str | None) -> None:
        seen = self.order.setdefault(step, [])
        if variant not in seen:
            seen.append(variant)


def _chat(
    tally: _Tally,
    chat: str,
    sent: list[tuple[int, SentFacts]],
    answers: list[Reply],
    unread: Callable[[SentFacts], bool],
    optouts: dict[str, list[int]] | None,
) -> None:
    """One chat's messages (``(sent ms, request)``) against its replies, into ``tally``."""
    sent.sort(key=lambda x: (x[0], x[1].step_index))
    answers.sort(key=lambda r: r.received_at)
    if answers:
        tally.replies_stored += len(answers)
        tally.chats_replied += 1
    for i, (at, e) in enumerate(sent):
        cell = tally.cells.setdefault((e.step, e.variant), _Cell())
        if not e.delivered:
            continue
        cell.delivered += 1
        cell.after_read += unread(e)
        until = sent[i + 1][0] if i + 1 < len(sent) else None
        window = [
            r for r in answers if r.received_at >= at and (until is None or r.received_at < until)
        ]
        if window:
            cell.replied += 1
            cell.waits.append((window[0].received_at - at) / 1000.0)
            cell.opted_out += any(r.is_stop for r in window) or _opted_out_within(
                chat, optouts, at, until
            )
        elif _opted_out_within(chat, optouts, at, until):
            # Read by a send before it messaged the chat again (the ledger has it, the
            # journal's replies not yet): a reply, and an opt-out.
            cell.replied += 1
            cell.opted_out += 1


def tally_replies(
    sent_by_chat: Iterable[SentFacts],
    replies_by_chat: Iterable[Reply],
    *,
    last_read: float | None = None,
    optouts: dict[str, list[int]] | None = None,
) -> _Tally:
    """Replies and opt-outs per step and variant, one chat at a time. Both streams come
    ordered by chat (code point order); a reply of a chat no kept request messaged is not
    counted."""
    tally = _Tally()

    def unread(e: SentFacts) -> bool:
        return last_read is not None and e.accepted_at is not None and e.accepted_at > last_read

    replies = iter(replies_by_chat)
    reply = next(replies, None)
    for chat, group in groupby(sent_by_chat, key=lambda e: e.chat):
        sent: list[tuple[int, SentFacts]] = []
        for e in group:
            at = e.sent_ms
            if at is None:
                if e.accepted_at is None:
                    continue
                at = int(e.accepted_at * 1000)
            sent.append((at, e))
            tally.saw(e.step, e.variant)
        while reply is not None and reply.chat < chat:
            reply = next(replies, None)
        answers: list[Reply] = []
        while reply is not None and reply.chat == chat:
            answers.append(reply)
            reply = next(replies, None)
        if sent:
            _chat(tally, chat, sent, answers, unread, optouts)
    return tally


def _variants(tally: _Tally, read: bool) -> tuple[StepReplies, ...]:
    steps = []
    for step, variants in tally.order.items():
        rows = []
        for v in sorted(variants, key=lambda x: (x is not None, x or "")):
            c = tally.cells.get((step, v), _Cell())
            if not read:
                # Never read: what is known (delivered) stays, every reply figure is None.
                rows.append(
                    VariantReplies(v, c.delivered, None, None, None, None, None, None, None)
                )
                continue
            low, high = wilson(c.replied, c.delivered)
            rows.append(
                VariantReplies(
                    variant=v,
                    delivered=c.delivered,
                    replied=c.replied,
                    opted_out=c.opted_out,
                    reply_rate=round(c.replied / c.delivered, 4) if c.delivered else None,
                    reply_rate_ci95=(round(low, 4), round(high, 4)) if c.delivered else None,
                    opt_out_rate=round(c.opted_out / c.delivered, 4) if c.delivered else None,
                    median_time_to_reply_s=round(median(c.waits), 3) if c.waits else None,
                    sent_after_last_read=c.after_read,
                )
            )
        named = [r for r in rows if r.variant is not None]
        comparisons = (
            tuple(
                compare(
                    a.variant, a.replied or 0, a.delivered, b.variant, b.replied or 0, b.delivered
                )
                for a, b in combinations(named, 2)
                if a.variant is not None and b.variant is not None
            )
            if read and len(named) >= 2
            else ()
        )
        steps.append(StepReplies(step, tuple(rows), comparisons))
    return tuple(steps)


def engagement(
    entries: Iterable[Entry],
    deliveries: Iterable[Delivery],
    replies: Iterable[Reply],
    *,
    keep: Callable[[str], bool] | None = None,
    last_read: float | None = None,
    optouts: dict[str, list[int]] | None = None,
) -> dict[str, object]:
    """The reply figures over rows in memory (a test's journal), as the JSON report writes
    them (without the reading head). ``last_read``: when the last reading of replies began (the
    runner's clock, as the journal's request times). ``optouts``: the consent ledger's opt-out
    times (API ms) by chat or group member: a step counts an opt-out when one falls after its
    message, even if no reply row says so."""
    sent_ms: dict[str, int] = {}
    delivered: set[str] = set()
    for d in deliveries:
        if d.status == "delivered":
            delivered.add(d.key)
        if d.time_sent is not None and (d.key not in sent_ms or d.time_sent < sent_ms[d.key]):
            sent_ms[d.key] = d.time_sent
    sent = sorted(
        (
            SentFacts(
                e.key,
                e.chat,
                e.step,
                e.step_index,
                e.variant,
                e.finished_at or e.last_attempt_at,
                sent_ms.get(e.key),
                int(e.key in delivered),
            )
            for e in entries
            if e.status == ACCEPTED and (keep is None or keep(e.key))
        ),
        key=lambda e: e.chat,
    )
    tally = tally_replies(
        sent, sorted(replies, key=lambda r: r.chat), last_read=last_read, optouts=optouts
    )
    return {
        "replies_stored": tally.replies_stored,
        "chats_replied": tally.chats_replied,
        "min_delivered_to_compare": MIN_DELIVERED,
        "steps": replies_steps_json(_variants(tally, True)),
    }


def last_reading(passes: list[ReplyPass]) -> ReplyPass | None:
    """The latest pass that stored what it read: it ended (a pass the process never finished
    stored nothing) and read a chat, or had none to read."""
    for p in reversed(passes):
        if p.ended_at is not None and (p.chats_read or not p.chats):
            return p
    return None


def _pass_info(
    passes: list[ReplyPass], iso: Callable[[float | None], str | None]
) -> ReplyPassInfo | None:
    if not passes:
        return None
    latest = passes[-1]
    return ReplyPassInfo(
        number=len(passes),
        started_at=iso(latest.started_at),
        ended_at=iso(latest.ended_at),
        finished=latest.finished,
        stop_reason=latest.stop_reason,
        chats=latest.chats,
        chats_read=latest.chats_read,
        chats_failed=latest.chats_failed,
        chats_not_read=max(0, latest.chats - latest.chats_read - latest.chats_failed),
        requests=latest.requests,
        replies_new=latest.replies_new,
        complete=latest.complete,
    )


def _opted_out_within(
    chat: str, optouts: dict[str, list[int]] | None, start: int, until: int | None
) -> bool:
    if not optouts:
        return False
    for who in (chat, *(chat.split(",") if "," in chat else ())):
        for at in optouts.get(who, ()):
            if at >= start and (until is None or at < until):
                return True
    return False


def replies_report(
    journal: Journal,
    revision: int,
    engage: Callable[[str, str], bool] | None = None,
    *,
    iso: Callable[[float | None], str | None],
    optouts: dict[str, list[int]] | None = None,
) -> RepliesReport:
    """The ``replies`` section over one revision of the journal: whether, when and how
    completely the replies were read (``reading``), then the figures per step and variant.
    ``engage(key, chat)``: whether an accepted request counts (the current plan's, or sent to a
    chat suppressed since); ``iso`` writes the times. Replies never read give None counts, not
    zeros (a real-looking zero)."""
    passes = journal.reply_passes()
    last = last_reading(passes)
    # A journal whose replies an older runner read without recording its passes.
    legacy = None if last is not None else journal.latest_reply_read_at()
    read_at = last.ended_at if last is not None else legacy
    sent: Iterable[SentFacts] = journal.report_sent_by_chat(revision)
    if engage is not None:
        sent = (e for e in sent if engage(e.key, e.chat))
    tally = tally_replies(
        sent,
        journal.replies(),
        last_read=last.started_at if last is not None else legacy,
        optouts=optouts,
    )
    read = read_at is not None
    return RepliesReport(
        read=read,
        last_read_at=iso(read_at),
        passes=len(passes),
        # Passes are numbered 1.. in the order they ran; the one whose reading counts here.
        last_read_pass=passes.index(last) + 1 if last is not None else None,
        last_pass=_pass_info(passes, iso),
        replies_stored=tally.replies_stored,
        chats_replied=tally.chats_replied if read else None,
        min_delivered_to_compare=MIN_DELIVERED,
        steps=_variants(tally, read),
    )


# -- words -----------------------------------------------------------------------------------
VERDICT_TEXT = {
    "too_small": "too few delivered to tell (under {n} per variant)",
    "no_clear_difference": "no clear difference (the interval spans 0)",
    "a_higher": "{a} replies more",
    "b_higher": "{b} replies more",
}


def verdict_text(c: Comparison, n: int = MIN_DELIVERED) -> str:
    return VERDICT_TEXT[c.verdict].format(a=c.a, b=c.b, n=n)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def comparison_line(c: Comparison, n: int = MIN_DELIVERED) -> str:
    low, high = round(c.low, 4), round(c.high, 4)
    return (
        f"{c.a} − {c.b}: {100 * round(c.difference, 4):+.1f} points "
        f"(95% CI {100 * low:+.1f} to {100 * high:+.1f}): {verdict_text(c, n)}"
    )


# How a reply pass that stopped early is said (a StopReason value); others read "stopped: why".
PASS_STOP_TEXT = {
    "interrupted": "stopped by Ctrl-C",
    "unauthorized": "stopped: the API key was refused (401)",
}


def pass_text(p: ReplyPassInfo) -> str:
    """How complete one reply pass (``replies.last_pass``) was, in words."""
    if p.ended_at is None:
        return "did not finish (the process stopped; nothing it read was stored)"
    read = f"{p.chats_read:,} of {p.chats:,} chats read"
    failed = f", {p.chats_failed:,} could not be read" if p.chats_failed else ""
    if p.stop_reason:
        why = PASS_STOP_TEXT.get(p.stop_reason, f"stopped: {p.stop_reason}")
        return f"{why}: {read}{failed}"
    if p.chats_failed:
        return f"partial: {read}{failed}"
    return "complete: " + (f"all {p.chats:,} chats read" if p.chats else "no chat to read")


def reading_text(rep: RepliesReport, track: str) -> str:
    """Whether, when and how completely replies were read, in one sentence. ``track`` is the
    command that reads them."""
    p = rep.last_pass
    if not rep.read:
        tail = f" (its one reading, started {p.started_at}, {pass_text(p)})" if p else ""
        return f"never read for this campaign: no reply counts yet{tail}; run {track} to read them"
    if p is None:
        return (
            f"last read {rep.last_read_at}, by an older runner that did not record how "
            "complete the reading was"
        )
    again = (
        ""
        if p.complete
        else f"; the counts may miss some replies: run {track} again to read the rest"
    )
    if p.number == rep.last_read_pass:
        return f"last read {rep.last_read_at}, {pass_text(p)}{again}"
    return (
        f"last read {rep.last_read_at}; the latest reading, started {p.started_at}, "
        f"{pass_text(p)}{again}"
    )


def unread_since_text(v: VariantReplies) -> str:
    """A row's messages delivered after the last reading (their replies are unread)."""
    n = v.sent_after_last_read
    return f", {n:,} delivered after the last reading (replies not read yet)" if n else ""

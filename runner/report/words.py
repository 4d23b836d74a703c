"""Words shared by every report view (text, markdown, HTML) and the CLI's summaries: the one
table of stop-reason wording, protocol names and how a duration reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the annotation only: words stay free of the run layer
    from runner.run.answers import AnswerStats

# (command, stop reason) -> what a person reads. Reasons come from RunResult / TrackResult
# (None = finished); a reason missing here reads "stopped: <reason>".
STOP_TEXT: dict[tuple[str, str | None], str] = {
    ("send", None): "finished",
    ("send", "interrupted"): "stopped by Ctrl-C (resumable: run send again)",
    ("send", "unauthorized"): "stopped: the API key was refused (401); nothing was marked failed",
    (
        "send",
        "outbound_limit_reached",
    ): "stopped: the account's outbound limit was reached (resumable)",
    (
        "send",
        "new_conversation_limit_reached",
    ): "new conversations stopped at the plan's cap; existing ones continued (resumable)",
    ("send", "retries_exhausted"): "some requests are still unconfirmed after retries (resumable)",
    ("send", "unfinished"): "did not finish (the process stopped); run send again to resume",
    ("track", None): "",
    ("track", "timeout"): "the --timeout passed; run track again later",
    ("track", "interrupted"): "stopped by Ctrl-C; run track again to resume",
    ("track", "unauthorized"): "stopped: the API key was refused (401)",
    (
        "track",
        "retries_exhausted",
    ): "some status or reply requests kept failing; run track again later",
}


# A finished send whose report state (runner.report.build.run_state) says more than "finished".
WAITING_TEXT = "everything due was sent; the rest waits on its schedule (send again, or --wait)"


def stop_text(command: str, reason: str | None) -> str:
    """How a run of ``command`` ("send" or "track") that stopped for ``reason`` is described."""
    return STOP_TEXT.get((command, reason), f"stopped: {reason}")


def unauthorized_hint(base_url: str) -> str:
    """What to check when the API refused the key (401), printed under the stop line."""
    return (
        f"hint: check BLOOIO_API_KEY: the API at {base_url} refused it (a key of another "
        "account or environment? --base-url or BLOOIO_BASE_URL chooses the API)"
    )


def replies_line(stats: Any) -> str | None:
    """What `track`'s reply pass did, in one line (None when it did not run). ``stats`` is a
    runner.run.track.TrackStats."""
    if stats.reply_chats is None:
        return None
    failed = f"; {stats.reply_failed:,} chat(s) could not be read" if stats.reply_failed else ""
    return (
        f"replies: {stats.replies_new:,} new ({stats.reply_stops:,} stop words) from "
        f"{stats.reply_chats:,} chats, {stats.reply_requests:,} requests{failed}"
    )


PROTOCOL_NAMES = {
    "imessage": "iMessage",
    "sms": "SMS",
    "rcs": "RCS",
    "unknown": "unknown",
    "pending": "not yet known",
}


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def confirm_question(
    planned: int, already: int, earlier_revision: int = 0, same_content_other_step: int = 0
) -> str:
    """`send`'s question: how many requests leave, and how many recipients get again what they
    already got (an earlier revision; the same content under a renamed step)."""
    again = []
    if earlier_revision:
        again.append(f"{earlier_revision:,} recipient(s) already got an earlier revision")
    if same_content_other_step:
        again.append(
            f"{same_content_other_step:,} already got the same content under another step id"
        )
    tail = f" ({'; '.join(again)})" if again else ""
    return f"Send {max(0, planned - already):,} requests{tail}?"


def answers_line(a: AnswerStats | None) -> str | None:
    """The answers owed that this command sent (HELP, opt-out confirmations), in one line."""
    if a is None or not (a.help or a.confirmations or a.failed or a.pending):
        return None
    line = f"answered {a.help:,} HELP, confirmed {a.confirmations:,} opt-outs"
    if a.failed or a.pending:
        line += f" ({a.failed:,} refused, {a.pending:,} left for the next run)"
    return line

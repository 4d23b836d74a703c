"""What `send` and `track` show while they work, and the one-line tracking summary.

The library calls ``tick`` with its live counters; these classes decide how that reads: one
rewritten line on a terminal, a plain line now and then in logs (CI, files).
"""

from __future__ import annotations

import time
from collections import Counter

import click

from runner.report.words import stop_text
from runner.run.send import RunStats
from runner.run.track import TrackResult, TrackStats


class SendProgress:
    """Counts on one rewritten line on a terminal; a plain line every ``every`` requests in logs."""

    def __init__(self, total: int, *, tty: bool) -> None:
        self.total = total
        self.tty = tty
        self.every_s = 0.25 if tty else 1.0
        self.every = max(100, total // 20)
        self._last_bucket = 0
        self._started = time.monotonic()

    def line(self, stats: RunStats) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        fresh = stats.done - stats.already
        rate = fresh / elapsed
        remaining = max(self.total - stats.done, 0)
        eta = f"{remaining / rate:,.0f} s" if rate > 0 and remaining else "-"
        return (f"{stats.done:,}/{self.total:,}  accepted {stats.accepted:,}  failed "
                f"{stats.failed:,}  retrying {stats.retrying:,}  {rate:,.1f}/s  ETA {eta}")

    def tick(self, stats: RunStats) -> None:
        if self.tty:
            click.echo("\r\x1b[2K" + self.line(stats), err=True, nl=False)
        elif stats.done // self.every > self._last_bucket:
            self._last_bucket = stats.done // self.every
            click.echo(self.line(stats), err=True)

    def finish(self, stats: RunStats) -> None:
        if self.tty:
            click.echo("\r\x1b[2K" + self.line(stats), err=True)


class TrackProgress:
    """Final / in-flight counts while tracking."""

    def __init__(self, *, tty: bool) -> None:
        self.tty = tty
        self.every_s = 0.25 if tty else 2.0

    def tick(self, s: TrackStats) -> None:
        elapsed = max(time.monotonic() - s.started, 1e-9)
        line = (f"{s.total - s.open:,}/{s.total:,} final  in flight {s.open:,}  "
                f"polls {s.polls:,} ({s.polls / elapsed:,.0f}/s)  errors {s.poll_errors:,}")
        click.echo("\r\x1b[2K" + line if self.tty else line, err=True, nl=not self.tty)

    def finish(self) -> None:
        if self.tty:
            click.echo("\r\x1b[2K", err=True, nl=False)


def network_summary(errors: Counter, unit: str = "tries") -> str | None:
    """``network_error N tries (most: TEXT)``: requests that got no answer, and the commonest
    reason as the client words it (host, phase, reason; already redacted). None if none."""
    if not errors:
        return None
    text, _ = errors.most_common(1)[0]
    return f"network_error {sum(errors.values()):,} {unit} (most: {text})"


def track_summary(result: TrackResult) -> str:
    s = result.stats
    final = s.total - s.open
    by = ", ".join(f"{k} {v:,}" for k, v in sorted(s.statuses.items()))
    why = stop_text("track", result.stop_reason)
    network = network_summary(s.network_errors, "polls")
    return (f"tracked {s.total:,} messages: {final:,} final, {s.open:,} in flight; this run "
            f"{s.polls:,} status requests, {s.became_final:,} became final"
            + (f" ({by})" if by else "") + f" in {result.duration:,.1f} s"
            + (f" ({why})" if why else "") + (f"; {network}" if network else ""))

"""What `send` and `track` show while they work, and the one-line tracking summary.

The library calls ``tick`` with its live counters; these classes decide how that reads: on a
terminal a rich progress bar (as pip draws it), redrawn in place; in logs (CI, files, pipes) a
plain line now and then, so a log stays readable and short. Colour follows
``runner.cli.console`` (NO_COLOR, --color/--no-color).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from runner.cli import console as colour
from runner.cli.console import echo
from runner.report.words import stop_text
from runner.run.send import RunStats
from runner.run.track import TrackResult, TrackStats

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

WAIT_LINE_EVERY_S = 60.0  # in logs, at most one "waiting" line a minute


def terminal_console(stream: IO[str] | None = None) -> Console | None:
    """A rich console drawing on ``stream`` (stderr) when it is a terminal, else None (plain
    lines). Its colour is the command's (``console.use_color``)."""
    stream = sys.stderr if stream is None else stream
    if not (hasattr(stream, "isatty") and stream.isatty()):
        return None
    # rich (~35 ms of imports) only when a bar is drawn: in logs and CI a send starts sooner.
    from rich.console import Console

    return Console(file=stream, no_color=not colour.use_color(stream), highlight=False)


def _bar(console: Console, *, transient: bool = False) -> Progress:
    # Redrawn when the runner ticks (auto_refresh off): no extra thread, and a terminal gets
    # at most four frames a second.
    from rich.progress import BarColumn, Progress, TextColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[text]}"),
        console=console,
        auto_refresh=False,
        transient=transient,
    )


def _eta(remaining: int, rate: float) -> str:
    if not remaining:
        return "0 s"
    if rate <= 0:
        return "-"
    return f"{remaining / rate:,.0f} s"


class SendProgress:
    """done/total, accepted, failed, retrying, rate and ETA: a bar on a terminal (``console``),
    a plain line every ``every`` requests otherwise."""

    def __init__(
        self,
        total: int,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # ``clock`` must be the one RunStats.started comes from (time.monotonic).
        self.total = total
        self.console = console
        self.every_s = 0.25 if console is not None else 1.0
        self.every = max(100, total // 20)
        self._clock = clock
        self._last_bucket = 0
        self._last_wait_line: float | None = None
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def counts(self, stats: RunStats, *, final: bool = False, markup: bool = False) -> str:
        """Everything but the bar: done/total, the counters, this run's rate and the ETA (none
        once ``final``). ``markup`` colours the counters for rich."""
        elapsed = self._clock() - stats.started  # this run's own start (send --wait runs again)
        # A rate over a fraction of a second is noise (a burst of replays reads as millions/s).
        rate = (stats.done - stats.already) / elapsed if elapsed >= 0.5 else None
        accepted, failed = f"accepted {stats.accepted:,}", f"failed {stats.failed:,}"
        if markup:
            accepted = f"[green]{accepted}[/]"
            failed = f"[red]{failed}[/]" if stats.failed else failed
        text = (
            f"{stats.done:,}/{self.total:,}  {accepted}  {failed}  retrying "
            f"{stats.retrying:,}  " + (f"{rate:,.1f}/s" if rate is not None else "-/s")
        )
        if not final:
            text += f"  ETA {_eta(max(self.total - stats.done, 0), rate or 0.0)}"
        return text

    def _draw(self, stats: RunStats | None, description: str, *, final: bool = False) -> None:
        if self._bar is None:
            self._bar = _bar(self.console)
            self._task = self._bar.add_task(description, total=max(self.total, 1), text="")
            self._bar.start()
        assert self._task is not None
        if stats is None:
            self._bar.update(self._task, description=description)
        else:
            self._bar.update(
                self._task,
                description=description,
                completed=stats.done,
                text=self.counts(stats, final=final, markup=True),
            )
        self._bar.refresh()

    def tick(self, stats: RunStats) -> None:
        if self.console is not None:
            self._draw(stats, "sending")
        elif stats.done // self.every > self._last_bucket:
            self._last_bucket = stats.done // self.every
            echo(self.counts(stats), err=True)

    def waiting(self, delay: float) -> None:
        """``send --wait`` sleeps ``delay`` seconds until the next message falls due: said on the
        bar on a terminal, in at most one line a minute in logs."""
        due = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + delay))
        text = f"waiting {delay:,.0f} s (until {due}) for the next message to fall due"
        if self.console is not None:  # the bar's label says it; the counts stay in view
            self._draw(None, f"waiting {delay:,.0f} s (until {due}; Ctrl-C stops)")
            return
        now = self._clock()
        if self._last_wait_line is None or now - self._last_wait_line >= WAIT_LINE_EVERY_S:
            self._last_wait_line = now
            echo(text + " (Ctrl-C to stop)", err=True)

    def finish(self, stats: RunStats) -> None:
        if self.console is not None:
            self._draw(stats, "sent", final=True)
            self.close()

    def close(self) -> None:
        """Stop drawing (idempotent): a bar left running when an error escapes would leave
        the terminal's cursor hidden."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class TrackProgress:
    """Final / in-flight counts while tracking: a bar on a terminal (gone when tracking ends:
    the summary line says the same), a line every 2 s in logs."""

    def __init__(self, *, console: Console | None = None) -> None:
        self.console = console
        self.every_s = 0.25 if console is not None else 2.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    @staticmethod
    def counts(s: TrackStats) -> str:
        elapsed = max(time.monotonic() - s.started, 1e-9)
        return (
            f"{s.total - s.open:,}/{s.total:,} final  in flight {s.open:,}  "
            f"polls {s.polls:,} ({s.polls / elapsed:,.0f}/s)  errors {s.poll_errors:,}"
        )

    def tick(self, s: TrackStats) -> None:
        if self.console is None:
            echo(self.counts(s), err=True)
            return
        if self._bar is None:
            self._bar = _bar(self.console, transient=True)  # the summary line replaces it
            self._task = self._bar.add_task("tracking", total=max(s.total, 1), text="")
            self._bar.start()
        assert self._task is not None
        self._bar.update(
            self._task, total=max(s.total, 1), completed=s.total - s.open, text=self.counts(s)
        )
        self._bar.refresh()

    def finish(self) -> None:
        """Stop drawing (idempotent; also when an error escapes tracking)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


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
    return (
        f"tracked {s.total:,} messages: {final:,} final, {s.open:,} in flight; this run "
        f"{s.polls:,} status requests, {s.became_final:,} became final"
        + (f" ({by})" if by else "")
        + f" in {result.duration:,.1f} s"
        + (f" ({why})" if why else "")
        + (f"; {network}" if network else "")
        + (f"; {s.polls_saved:,} final by webhook, never polled" if s.polls_saved else "")
    )

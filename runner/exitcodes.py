"""Exit codes of every `campaign` command, named once; the library's result objects and the
CLI read them from here (docs/cli.md, "Exit codes", documents the same table)."""

from __future__ import annotations

OK = 0
"""Everything asked for is done (sent and accepted, final, checked, valid)."""

FAILED = 1
"""A user error (invalid campaign, bad option, a path that cannot be read or written), or some
requests failed for good (or expired) and will never be sent."""

STOPPED = 3
"""Stopped early and resumable (Ctrl-C, a refused key, a cap, retries exhausted, a tracking
timeout): running the same command again carries on where it stopped."""

WAITING = 4
"""Everything due was sent; the rest waits on its schedule (run again later, or `send --wait`)."""

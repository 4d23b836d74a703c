"""Rehearsal time: `send`/`plan --now TIME|emulator` against a non-live API, so a 2-day drip is
rehearsed in a minute (the emulator's clock advanced by hand, the runner reading it).

The clock is an offset from the wall clock, fixed once: ``TIME`` is now, or the emulator's
own clock (its control API's `GET /emulator/clock`) is. Refused against the live API, where
sending "as if it were Thursday" would text real people at the wrong hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from runner.campaign.schedule import ScheduleError, parse_at
from runner.contract import DEFAULT_BASE_URL
from runner.emulator import control
from runner.errors import CampaignError, Problem

EMULATOR = "emulator"
_LIVE_HOST = urlsplit(DEFAULT_BASE_URL).hostname


def is_live(base_url: str) -> bool:
    return urlsplit(base_url).hostname == _LIVE_HOST


def rehearsal_now(now: str, base_url: str) -> float:
    """The epoch seconds ``now`` names (ISO 8601 with an offset, or "emulator": the clock of
    the emulator at ``base_url``); CampaignError against the live API or when unreadable."""
    if is_live(base_url):
        raise CampaignError(
            Problem(
                f"--now is for rehearsals: {base_url} is the live API",
                hint="point BLOOIO_BASE_URL (or --base-url) at the emulator: campaign emulator --port 8765",
            )
        )
    if now.strip().lower() == EMULATOR:
        return _emulator_clock(base_url)
    try:
        return parse_at(now).timestamp()
    except ScheduleError as err:
        raise CampaignError(
            Problem(
                f"--now: {err}",
                hint=err.hint or "e.g. --now 2026-12-09T10:00:00Z, or --now emulator",
            )
        ) from None


def rehearsal_clock(now: str | None, base_url: str) -> Callable[[], float]:
    """time.time without ``now``; else a clock that reads ``now`` at this instant."""
    if now is None:
        return time.time
    offset = rehearsal_now(now, base_url) - time.time()
    return lambda: time.time() + offset


def rehearsal_at(now: str, base_url: str) -> str:
    """``now`` as an ISO 8601 instant (UTC) for `plan --at`."""
    at = datetime.fromtimestamp(rehearsal_now(now, base_url), UTC)
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def _emulator_clock(base_url: str) -> float:
    try:
        root = control.loopback_root(base_url)
        return float(control.call(root, "GET", "clock", timeout=5.0)["now_ms"]) / 1000
    except (OSError, ValueError, KeyError, TypeError, control.ControlError) as err:
        raise CampaignError(
            Problem(
                f"--now emulator: cannot read the emulator's clock at {base_url} ({err})",
                hint="start it (campaign emulator --port 8765) or give a time: --now 2026-12-09T10:00:00Z",
            )
        ) from None

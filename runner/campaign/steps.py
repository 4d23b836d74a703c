"""What a step is, read from its raw data: its kind, its message count and its delay.

Both the API rules (rules.py) and the compiled campaign (load.py) need these facts, so they
live here, below both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_DELAY_SECONDS = 365 * 86400

_DELAY = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class StepKind(StrEnum):
    """What a step sends (see the contract notes)."""

    TEXT = "text"
    TEXT_LIST = "text_list"  # several texts: one message each
    PARTS = "parts"
    BATCH = "batch"  # parts with a link preview: one message each
    ATTACHMENTS = "attachments"

    @property
    def several(self) -> bool:
        """Whether one request of this kind creates several messages (no reply can target it)."""
        return self in (StepKind.TEXT_LIST, StepKind.BATCH)


@dataclass(frozen=True, slots=True)
class StepShape:
    kind: StepKind
    messages: int  # how many messages one request creates


def step_kind(data: dict[str, Any]) -> StepShape:
    """What a step sends and how many messages one request creates (see contract notes)."""
    parts = data.get("parts")
    if parts:
        if any(isinstance(p, dict) and p.get("link_preview") is not None for p in parts):
            return StepShape(StepKind.BATCH, len(parts))
        return StepShape(StepKind.PARTS, 1)
    text = data.get("text")
    if isinstance(text, list):
        return StepShape(StepKind.TEXT_LIST, len(text))
    if text is not None:
        return StepShape(StepKind.TEXT, 1)
    return StepShape(StepKind.ATTACHMENTS, 1)


def parse_delay(text: object) -> float | None:
    """Seconds of a `45s` / `30m` / `2h` / `2d` delay; None when malformed or over a year."""
    m = _DELAY.match(str(text))
    if not m:
        return None
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    return seconds if seconds <= MAX_DELAY_SECONDS else None

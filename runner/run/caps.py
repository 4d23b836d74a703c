"""The frequency caps of a send or a plan: the team policy's `limits` and the statutory caps
(FL, OK, MD: three per 24 hours), counted over what every campaign of the state sent."""

from __future__ import annotations

import time
from pathlib import Path

from runner.campaign.load import Campaign
from runner.law.legal import Caps
from runner.store.sent import sent_times
from runner.store.state import State


def caps_of(
    campaign: Campaign,
    state_dir: str | Path | State,
    now: float | None = None,
    command: str = "send",
) -> Caps | None:
    """The frequency caps a campaign obeys (its policy's `limits`, and the statutory caps of
    the states its numbers are in while legal hours apply), counting what every campaign of
    the state sent; None when there are none."""
    policy = campaign.policy
    statutory = policy.hours != "off"
    if not policy.limits and not statutory:
        return None
    caps = Caps(policy.limits, {}, statutory=statutory)
    caps.sent = sent_times(
        state_dir, (now if now is not None else time.time()) - caps.longest, command
    )
    return caps

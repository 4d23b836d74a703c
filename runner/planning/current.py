"""The campaign's current plan, as the run report needs it: which keys it holds.

The journal keeps every row ever sent or scheduled; the campaign file may have changed since
(a step removed, rows removed, a chat suppressed after it opted out). The report counts the
current plan's keys and puts the journal's other rows on a line of their own, so its totals
always add up. Planning is pure, so this re-plans the campaign (no network, no key).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from runner.campaign.load import Campaign
from runner.consent.standing import Standing
from runner.planning.planner import Planner
from runner.planning.variants import Assigner, step_assigner


@dataclass
class CurrentPlan:
    """What the campaign file plans today: each key's step and message count, per-step totals,
    and a test for "this chat is suppressed now"."""

    revision: int
    # hash() of each key, sorted, 8 bytes each (``key_hashes``): a million keys in 8 MB, where
    # a set of them held 64 (a collision, about 1 in 10^7 for a million keys, would count one
    # removed row as current).
    keys: array[int] = field(default_factory=lambda: array("q"))
    steps: dict[str, dict[str, int]] = field(default_factory=dict)  # step -> requests, messages
    step_messages: dict[str, int] = field(default_factory=dict)  # messages of one request
    # Steps whose variants differ in messages per request (a text list against one text): the
    # assignment and each variant's count, so a chat's planned count is its own variant's.
    variant_messages: dict[str, tuple[Assigner, list[int]]] = field(default_factory=dict)
    suppressed: int = 0  # recipients the suppression lists leave out
    excluded: int = 0  # rows recipients.exclude_when leaves out
    excluded_by: str = ""  # the columns it reads ("Do not text")
    is_suppressed: Callable[[str], bool] = lambda chat: False

    def planned_messages(self, step: str, chat: str) -> int:
        """The messages of the current plan's request of ``step`` to ``chat``."""
        by_variant = self.variant_messages.get(step)
        if by_variant is not None:
            assigner, counts = by_variant
            return counts[assigner.choose(chat)]
        return self.step_messages.get(step, 0)

    @property
    def requests(self) -> int:
        return len(self.keys)

    def has(self, key: str) -> bool:
        """Whether the current plan holds this Idempotency-Key."""
        h = hash(key)
        i = bisect_left(self.keys, h)
        return i < len(self.keys) and self.keys[i] == h


def key_hashes(keys: Iterable[str]) -> array[int]:
    """``CurrentPlan.keys`` of these keys."""
    return array("q", sorted(map(hash, keys)))


MessagesPerRequest = tuple[dict[str, int], dict[str, tuple[Assigner, list[int]]]]


def messages_per_request(campaign: Campaign) -> MessagesPerRequest:
    """``CurrentPlan``'s ``step_messages`` and ``variant_messages`` for ``campaign``."""
    variant_messages = {
        step.id: (step_assigner(campaign.id, step), [v.messages for v in step.variants])
        for step in campaign.steps
        if len({v.messages for v in step.variants}) > 1
    }
    return {step.id: step.messages for step in campaign.steps}, variant_messages


def current_plan(campaign: Campaign, consent: Mapping[str, Standing] | None = None) -> CurrentPlan:
    """Re-plan ``campaign`` and keep only what the report needs (one entry per request);
    ``consent``: the state's ledger, whose opted-out and held chats the plan leaves out.

    Invalid recipients are left out (they are not in any plan that could be sent); the report
    never fails because of them: ``validate`` says what is wrong.
    """
    planner = Planner(campaign, previews=0, consent=consent)
    keys = key_hashes(req.key for req in planner.requests())
    s = planner.summary
    suppression = planner.suppression
    step_messages, variant_messages = messages_per_request(campaign)
    return CurrentPlan(
        revision=campaign.revision,
        keys=keys,
        steps={k: {"requests": c.requests, "messages": c.messages} for k, c in s.steps.items()},
        suppressed=s.suppressed,
        excluded=s.excluded,
        excluded_by=s.excluded_by,
        is_suppressed=lambda chat: chat in suppression,
        step_messages=step_messages,
        variant_messages=variant_messages,
    )

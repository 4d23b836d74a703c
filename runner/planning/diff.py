"""What changes for whom between two versions of a campaign: a pure diff of two plans.

Each side is a loaded campaign (or None: the campaign is new) and its planned requests. Per
step: recipients added, removed and unchanged; for how many the rendered content changes (with
a couple of masked before/after examples); and which changes would re-send. A request is
sent again only when its Idempotency-Key changes (revision, step id or chat id are in it); a
content change under the same key is not re-sent to whoever already got the step.

The base side's requests are held in memory (key and body per recipient and step): campaigns
reviewed in pull requests are of a size where that is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.audience.mask import display_chat, mask_one
from runner.campaign.load import Campaign
from runner.planning.planner import PlanSummary
from runner.planning.request import PlannedRequest

EXAMPLES = 2
DIFF_SCHEMA_VERSION = 1


@dataclass
class Side:
    """One version of the campaign: loaded, planned (requests streamed once), summarised."""

    campaign: Campaign | None
    requests: Iterable[PlannedRequest] = ()
    summary: PlanSummary | None = None  # filled once ``requests`` is exhausted (the planner's)


@dataclass
class StepDiff:
    step: str
    status: str  # "added" | "removed" | "kept"
    added: int = 0  # recipients who get this step now and did not before
    removed: int = 0
    unchanged: int = 0  # same key, same body
    content_changed: int = 0  # same recipient, other body
    resent: int = 0  # other key (revision changed): sent again even if already sent
    not_resent: int = 0  # content changed under the same key: whoever got it is not re-sent
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "recipients_added": self.added,
            "recipients_removed": self.removed,
            "recipients_unchanged": self.unchanged,
            "content_changed": self.content_changed,
            "would_resend": self.resent,
            "would_not_resend": self.not_resent,
            "examples": self.examples,
        }


def _mask(value: Any, chat: str, show: bool) -> Any:
    """Recipients' own phones and emails masked where a template printed them."""
    if show:
        return value
    people = [m for m in chat.split(",") if m and not m.startswith("grp_")]
    if isinstance(value, str):
        for person in people:
            value = value.replace(person, mask_one(person))
        return value
    if isinstance(value, list):
        return [_mask(v, chat, show) for v in value]
    if isinstance(value, dict):
        return {k: _mask(v, chat, show) for k, v in value.items()}
    return value


def _changed_fields(
    before: dict[str, Any], after: dict[str, Any], chat: str, show: bool
) -> dict[str, Any]:
    out = {}
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            out[name] = {
                "before": _mask(before.get(name), chat, show),
                "after": _mask(after.get(name), chat, show),
            }
    return out


def _schedule_of(c: Campaign | None) -> Any:
    if c is None:
        return None
    delays = {s.id: s.data.get("delay") for s in c.steps if s.data.get("delay") is not None}
    return {"schedule": c.schedule, "delays": delays}


def diff(base: Side, head: Side, *, show_recipients: bool = False) -> dict[str, Any]:
    """The diff document (JSON-ready). ``base.requests`` and ``head.requests`` are each
    consumed once, base first."""
    was: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
        (r.step, r.recipient): (r.key, r.body) for r in base.requests
    }
    base_steps = [s.id for s in base.campaign.steps] if base.campaign else []
    head_steps = [s.id for s in head.campaign.steps] if head.campaign else []
    steps: dict[str, StepDiff] = {}
    for sid in head_steps:
        steps[sid] = StepDiff(sid, "kept" if sid in base_steps else "added")
    for sid in base_steps:
        steps.setdefault(sid, StepDiff(sid, "removed"))
    for r in head.requests:
        d = steps.setdefault(r.step, StepDiff(r.step, "added"))
        old = was.pop((r.step, r.recipient), None)
        if old is None:
            d.added += 1
            continue
        key, body = old
        if body == r.body:
            if key == r.key:
                d.unchanged += 1
            else:
                d.resent += 1
            continue
        d.content_changed += 1
        if key == r.key:
            d.not_resent += 1
        else:
            d.resent += 1
        if len(d.examples) < EXAMPLES:
            d.examples.append(
                {
                    "recipient": display_chat(r.recipient, show_recipients),
                    "changes": _changed_fields(body, r.body, r.recipient, show_recipients),
                }
            )
    for step, _ in was:
        steps.setdefault(step, StepDiff(step, "removed")).removed += 1
    order = head_steps + [s for s in base_steps if s not in head_steps]
    order += [s for s in steps if s not in order]
    b, h = base.campaign, head.campaign
    bs, hs = base.summary, head.summary
    return {
        "schema_version": DIFF_SCHEMA_VERSION,
        "campaign": h.id if h else (b.id if b else None),
        "new": b is None,
        "revision": {"before": b.revision if b else None, "after": h.revision if h else None},
        "steps_added": [s for s in head_steps if s not in base_steps],
        "steps_removed": [s for s in base_steps if s not in head_steps],
        "steps": [steps[s].to_dict() for s in order],
        "totals": {
            "requests": {"before": bs.requests if bs else 0, "after": hs.requests if hs else 0},
            "recipients": {
                "before": bs.recipients if bs else 0,
                "after": hs.recipients if hs else 0,
            },
            "would_resend": sum(d.resent for d in steps.values()),
            "new_requests": sum(d.added for d in steps.values()),
        },
        "schedule": {
            "before": _schedule_of(b),
            "after": _schedule_of(h),
            "changed": _schedule_of(b) != _schedule_of(h),
        },
        "suppression": {
            "files": {
                "before": list(b.suppress) if b else [],
                "after": list(h.suppress) if h else [],
            },
            "suppressed_recipients": {
                "before": bs.suppressed if bs else 0,
                "after": hs.suppressed if hs else 0,
            },
        },
        # recipients.exclude_when: rows excluded on each side, and the columns it reads.
        "excluded": {
            "recipients": {"before": bs.excluded if bs else 0, "after": hs.excluded if hs else 0},
            "by": (hs.excluded_by if hs else "") or (bs.excluded_by if bs else ""),
        },
        "recipients_masked": not show_recipients,
    }

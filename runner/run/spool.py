"""Render once: a send validates and plans in one pass, spooling the requests to a temporary
file in its state directory, then sends from that file.

Before, a send rendered every recipient twice (a validation pass, then the sending pass). Now
the validation pass keeps what it rendered: an invalid campaign still sends nothing (the spool
is discarded when validation fails), and memory stays bounded (the spool is on disk). The file
is anonymous (``tempfile.TemporaryFile``): it disappears when closed or when the process dies.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.audience.suppress import Suppression
from runner.campaign.load import Campaign
from runner.consent.standing import Standing
from runner.planning.current import CurrentPlan, current_plan, key_hashes, messages_per_request
from runner.planning.planfile import Input, PlanFile, PlanMatcher, inputs_of
from runner.planning.planner import Planner, PlanSummary
from runner.planning.request import PlannedRequest

_CHUNK = 2048


class PlanSpool:
    """Planned requests written once and read back any number of times, in order."""

    def __init__(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        self._fh = tempfile.TemporaryFile(dir=folder, prefix=".send-plan-")
        self.count = 0
        # What the plan was made from (see current_plan_of): the inputs as hashed before
        # planning, the planner's summary and its suppression.
        self.inputs: list[Input] | None = None
        self.summary: PlanSummary | None = None
        self.suppression: Suppression | None = None

    def write(self, requests: Iterable[PlannedRequest]) -> None:
        # Tuples in PlannedRequest's field order, pickled a chunk at a time: the cheapest
        # round trip (the file is ours and anonymous, never read by anyone else).
        buf: list[tuple[Any, ...]] = []
        dump, fh = pickle.dump, self._fh
        for r in requests:
            buf.append(
                (
                    r.recipient,
                    r.step,
                    r.key,
                    r.method,
                    r.path,
                    r.body,
                    r.messages,
                    r.reply_to_step,
                    r.recipient_index,
                    r.step_index,
                    r.zone,
                    r.variant,
                )
            )
            if len(buf) >= _CHUNK:
                dump(buf, fh, pickle.HIGHEST_PROTOCOL)
                self.count += len(buf)
                buf = []
        if buf:
            dump(buf, fh, pickle.HIGHEST_PROTOCOL)
            self.count += len(buf)
        fh.flush()

    def __iter__(self) -> Iterator[PlannedRequest]:
        fh = self._fh
        fh.seek(0)
        load = pickle.load
        while True:
            try:
                chunk = load(fh)
            except EOFError:
                return
            for t in chunk:
                yield PlannedRequest(*t)

    def keys(self) -> Iterator[str]:
        """Each spooled request's key, in order (no PlannedRequest built)."""
        fh = self._fh
        fh.seek(0)
        while True:
            try:
                chunk = pickle.load(fh)
            except EOFError:
                return
            for t in chunk:
                yield t[2]

    def close(self) -> None:
        self._fh.close()


@dataclass(frozen=True)
class Spooled:
    """A campaign planned into a spool: its summary, the spool, and how many planned requests
    the plan file's check skipped (opted out since the plan)."""

    summary: PlanSummary
    spool: PlanSpool
    skipped: int = 0


def spool_plan(
    campaign: Campaign,
    folder: str | Path,
    plan: PlanFile | None = None,
    *,
    consent: Mapping[str, Standing] | None = None,
) -> Spooled:
    """Validate and plan ``campaign`` in one pass into a spool under ``folder``; with ``plan``,
    every request is checked against that plan file (see PlanMatcher); ``consent``: the state's
    ledger (chats opted out or held), suppressed like the files' entries. Raises
    CampaignError (and keeps nothing) if the campaign is invalid or differs from the plan."""
    inputs = inputs_of(campaign)  # before reading them: what the spool is a plan of
    planner = Planner(campaign, consent=consent)
    requests: Iterable[PlannedRequest] = planner.requests()
    matcher = None
    if plan is not None:
        matcher = PlanMatcher(plan, planner.suppression.__contains__)
        requests = matcher.filter(planner.requests())
    spool = PlanSpool(folder)
    try:
        spool.write(requests)
        planner.raise_if_invalid()
    except BaseException:
        spool.close()
        raise
    spool.inputs, spool.summary, spool.suppression = inputs, planner.summary, planner.suppression
    return Spooled(planner.summary, spool, matcher.suppressed_since if matcher else 0)


def current_plan_of(
    campaign: Campaign, spool: PlanSpool | None, consent: Mapping[str, Standing] | None = None
) -> CurrentPlan:
    """``current_plan(campaign, consent)`` for the report after a send, without rendering every
    recipient a second time: planning is pure, so while no input file and no standing in the
    consent ledger changed since the spool was planned, the spool holds exactly the current
    plan. Any change (a suppression list edited during a long --track, an opt-out the run
    read), and the campaign is planned again, as before."""
    if (
        spool is None
        or spool.summary is None
        or spool.suppression is None
        or spool.inputs is None
        or spool.inputs != inputs_of(campaign)
        or dict(spool.suppression.consent) != dict(consent or {})
    ):
        return current_plan(campaign, consent)
    s, suppression = spool.summary, spool.suppression
    step_messages, variant_messages = messages_per_request(campaign)
    return CurrentPlan(
        revision=campaign.revision,
        keys=key_hashes(spool.keys()),
        steps={k: {"requests": c.requests, "messages": c.messages} for k, c in s.steps.items()},
        suppressed=s.suppressed,
        excluded=s.excluded,
        excluded_by=s.excluded_by,
        is_suppressed=suppression.__contains__,
        step_messages=step_messages,
        variant_messages=variant_messages,
    )

"""`campaign status`: every campaign a state holds, where each stands.

One row per campaign: how its last run ended (finished, waiting on its schedule, stopped,
failed, running now and by whom, or died mid-run), its requests by status, the opt-outs among
its chats, and who ran it last and when. Read from the journals and the ledger alone (no API):
a run in progress is not disturbed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import exitcodes
from runner.campaign.policy import policy_for
from runner.consent.standing import Standing
from runner.store.backend import existing_ledger
from runner.store.state import State
from runner.store.summary import CampaignSummary, summarize
from runner.store.where import locate_state

_ENDED = {
    exitcodes.OK: "finished",
    exitcodes.WAITING: "waiting",
    exitcodes.STOPPED: "stopped",
    exitcodes.FAILED: "failed",
}


@dataclass
class CampaignStatus:
    campaign: str
    state: str  # finished, waiting, stopped, failed, running, died, never run
    requests: dict[str, int] = field(default_factory=dict)  # by journal status
    opted_out: int = 0  # chats of the campaign the ledger keeps from messaging (opted out)
    holder: str | None = None  # who runs it now
    next_due: float | None = None  # waiting: when the first scheduled request falls due
    last_run_at: float | None = None
    last_run_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "state": self.state,
            "requests": self.requests,
            "opted_out": self.opted_out,
            "holder": self.holder,
            "next_due": self.next_due,
            "last_run_at": self.last_run_at,
            "last_run_by": self.last_run_by,
        }


def status(state_value: str | Path | State | None = None) -> tuple[str, list[CampaignStatus]]:
    """The state's label and each campaign's status, by campaign id (``None``: the state the
    current folder's repository uses, runner.store.where)."""
    state = locate_state(state_value, None, policy=lambda: policy_for(Path.cwd()))
    with existing_ledger(state) as ledger:
        standings = ledger.standings() if ledger is not None else {}
    opted_out = {chat for chat, s in standings.items() if s is Standing.OPTED_OUT}
    return state.label, [_one(found) for found in summarize(state, opted_out)]


def _one(found: CampaignSummary) -> CampaignStatus:
    out = CampaignStatus(found.campaign, "never run", found.requests, found.opted_out)
    run = found.last_run
    if run is not None:
        out.last_run_at = run.ended_at or run.started_at
        out.last_run_by = run.os_user
        if found.holder is not None:
            out.state, out.holder = "running", found.holder
        elif run.ended_at is None:
            out.state = "died"  # started, never ended: the next send resumes it
        else:
            ended = _ENDED.get(run.exit_code) if run.exit_code is not None else None
            out.state = ended or f"exit {run.exit_code}"
            if out.state == "waiting":
                out.next_due = run.next_due
    return out

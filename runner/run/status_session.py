"""`campaign status`: every campaign a state holds, where each stands.

One row per campaign: how its last run ended (finished, waiting on its schedule, stopped,
failed, running now and by whom, or died mid-run), its requests by status, the opt-outs among
its chats, and who ran it last and when. Read from the journals and the ledger alone (no API):
a run in progress is not disturbed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import exitcodes
from runner.campaign.policy import policy_for
from runner.consent.standing import Standing
from runner.store.backend import existing_ledger, list_campaigns, lock_holder, open_journal
from runner.store.state import State
from runner.store.where import locate_state

_ENDED = {exitcodes.OK: "finished", exitcodes.WAITING: "waiting", exitcodes.STOPPED: "stopped",
          exitcodes.FAILED: "failed"}


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
        return {"campaign": self.campaign, "state": self.state, "requests": self.requests,
                "opted_out": self.opted_out, "holder": self.holder, "next_due": self.next_due,
                "last_run_at": self.last_run_at, "last_run_by": self.last_run_by}


def status(state_value: str | Path | State | None = None) -> tuple[str, list[CampaignStatus]]:
    """The state's label and each campaign's status, by campaign id (``None``: the state the
    current folder's repository uses, runner.store.where)."""
    state = locate_state(state_value, None, policy=lambda: policy_for(Path.cwd()))
    out: list[CampaignStatus] = []
    with existing_ledger(state) as ledger:
        standings = ledger.standings() if ledger is not None else {}
        for cid in list_campaigns(state):
            out.append(_one(state, cid, standings))
    return state.label, out


def _one(state: State, cid: str, standings: dict[str, Standing]) -> CampaignStatus:
    with open_journal(state, cid) as journal, journal.snapshot("status"):
        counts: Counter[str] = Counter()
        chats: set[str] = set()
        due: float | None = None
        for e in journal.entries():
            counts[e.status.value] += 1
            chats.add(e.chat)
        run = journal.last_run()
    found = CampaignStatus(cid, "never run", dict(sorted(counts.items())))
    found.opted_out = sum(1 for c in chats if standings.get(c) is Standing.OPTED_OUT)
    holder = lock_holder(state, cid)
    if run is not None:
        found.last_run_at = run["ended_at"] or run["started_at"]
        found.last_run_by = run.get("os_user")
        if holder is not None:
            found.state, found.holder = "running", holder
        elif run["ended_at"] is None:
            found.state = "died"  # started, never ended: the next send resumes it
        else:
            found.state = _ENDED.get(run["exit_code"], f"exit {run['exit_code']}")
            if found.state == "waiting":
                due = (run.get("counts") or {}).get("next_due")
    found.next_due = due
    return found

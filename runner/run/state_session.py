"""Commands about a state itself: `campaign state unlock` (the rare stuck run) and
`campaign state import` (a laptop's folder into the team's database)."""

from __future__ import annotations

from pathlib import Path

from runner.campaign.policy import policy_for
from runner.errors import CampaignError
from runner.store.pgimport import ImportResult, import_folder
from runner.store.pglock import Holder, force_unlock
from runner.store.pgschema import migrate
from runner.store.state import FolderState, State, open_state
from runner.store.where import locate_state


def unlock(state_value: str | Path | State | None, campaign_id: str, lock_id: int) -> Holder:
    """End the run holding ``campaign_id``'s lock in a database state, if ``lock_id`` is the id
    its refusal named (so a lock taken since by someone else is never broken)."""
    state = locate_state(state_value, None, policy=lambda: policy_for(Path.cwd()))
    if isinstance(state, FolderState):
        raise CampaignError(
            "a folder state's lock is released when the process holding it ends; there is "
            "nothing to unlock",
            file=state.label,
            hint="stop the process the refusal named (kill PID), then run the command again",
        )
    db = state.database("state unlock")
    try:
        migrate(db)
        return force_unlock(db, campaign_id, lock_id)
    finally:
        db.close()


def import_state(folder: str | Path, to: str | Path | State) -> ImportResult:
    """Copy a folder state's journals and ledger into a database state (idempotent); campaigns
    whose journal there is newer are left alone and listed in ``refused``."""
    source, target = open_state(folder), open_state(to)
    if not isinstance(source, FolderState) or isinstance(target, FolderState):
        raise CampaignError(
            "state import copies a folder into a database",
            hint="campaign state import .runner --to postgresql://user@host/db",
        )
    if not source.path.is_dir():
        raise CampaignError(
            f"no state folder at {source.path}",
            hint="pass the folder a laptop's runs used (by default .runner)",
        )
    return import_folder(source.path, target.url)

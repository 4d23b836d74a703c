"""Which state a command uses when it is not told: the one rule, whatever the current folder.

Precedence: ``--state`` > ``RUNNER_STATE`` > the team policy's ``state:`` > the default. The
default is ``.runner/`` at the root of the campaign's git repository (``.git`` a folder, or a
file in a worktree or submodule), or in the campaign's folder outside git. So `send`, `report`,
`track`, `plan`, `status` and `optouts` find the same journals from any folder of the clone,
and two shells in two sub-folders never start two journals for one campaign.

A ``.runner/`` left in a sub-folder (or the current folder) by a runner that resolved the state
from the current directory is never ignored: while it is not the state the rule picks, commands
refuse with the exact command that moves it (or the ``--state`` that keeps using it).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from runner.errors import CampaignError, Problem
from runner.store.paths import DEFAULT_STATE_DIR, journal_path
from runner.store.pgconn import is_url
from runner.store.state import STATE_ENV, FolderState, State, open_state


class StatePolicy(Protocol):
    """What the team policy (runner.campaign.policy.Policy) says of the state: its ``state:``
    and the file that says it (a folder is relative to that file)."""

    @property
    def state(self) -> str | None: ...

    @property
    def file(self) -> str | None: ...


def repo_root(start: Path) -> Path | None:
    """The git repository's root holding ``start`` (a file or a folder), or None outside git."""
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def anchor_of(campaign: str | Path | None) -> Path:
    """The folder a state is resolved from: the campaign file's, else the current one."""
    if campaign is None:
        return Path.cwd().resolve()
    path = Path(campaign).resolve()
    return path if path.is_dir() else path.parent


def default_state_dir(anchor: Path) -> Path:
    """``.runner`` at the git root holding ``anchor``, else beside it."""
    root = repo_root(anchor)
    return (root if root is not None else anchor) / DEFAULT_STATE_DIR


def locate_state(
    given: str | Path | State | None,
    campaign: str | Path | None = None,
    *,
    policy: StatePolicy | Callable[[], StatePolicy] | None = None,
    campaign_id: str | None = None,
) -> State:
    """The state a command uses. ``given``: ``--state`` (or ``RUNNER_STATE``, which click
    reads into the same option); None lets the policy (or a function finding it, called only
    then), then the repository, decide."""
    if given is None:
        given = os.environ.get(STATE_ENV) or None
    if given is not None:
        return open_state(given)
    if callable(policy):
        policy = policy()
    if policy is not None and policy.state and policy.file:
        if is_url(policy.state):
            return open_state(policy.state)
        return FolderState(Path(policy.file).resolve().parent / policy.state)
    anchor = anchor_of(campaign)
    folder = default_state_dir(anchor)
    _refuse_stray_states(folder, anchor, campaign_id)
    return FolderState(folder)


def _holds_journals(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(p.suffix == ".sqlite" for p in folder.iterdir())
    except OSError:
        return False


def _strays(state_dir: Path, anchor: Path) -> list[Path]:
    """``.runner`` folders with journals where a cwd-relative runner would have left them: the
    campaign's folder and those up to the root, and the current folder (unless it is a
    repository's root: that ``.runner`` is the other repository's own state)."""
    stop = state_dir.parent
    places = [anchor, *[p for p in anchor.parents if stop in p.parents]]
    cwd = Path.cwd().resolve()
    if repo_root(cwd) != cwd:
        places.append(cwd)
    found: list[Path] = []
    for place in places:
        candidate = place / DEFAULT_STATE_DIR
        if candidate != state_dir and candidate not in found and _holds_journals(candidate):
            found.append(candidate)
    return found


def _refuse_stray_states(state_dir: Path, anchor: Path, campaign_id: str | None) -> None:
    """Refused: the repository's state is empty while another holds journals (starting fresh
    would send again and forget opt-outs), or another holds this campaign's journal and the
    repository's state does not."""
    fresh = not _holds_journals(state_dir)
    for stray in _strays(state_dir, anchor):
        theirs = journal_path(stray, campaign_id) if campaign_id is not None else None
        mine = theirs is not None and theirs.is_file()
        ours = campaign_id is not None and journal_path(state_dir, campaign_id).is_file()
        if not fresh and not (mine and not ours):
            continue
        keep = f"or keep using it: --state {shlex.quote(str(stray))} (or RUNNER_STATE)"
        if fresh:
            fix = (
                f"move it to the repository's state: mv {shlex.quote(str(stray))} "
                f"{shlex.quote(str(state_dir))}; {keep}"
            )
        else:
            fix = (
                f"move the campaign's journal: mv -n "
                f"{shlex.quote(str(theirs))} "
                f"{shlex.quote(str(state_dir))}/ (its opt-outs come back with `campaign "
                f"optouts FILE`); {keep}"
            )
        here = f" with campaign {campaign_id!r}'s journal" if mine else ""
        raise CampaignError(
            Problem(
                f"a state sits in {stray}{here}, but the state is now {state_dir} (the repository's "
                "root, or the campaign's folder outside git, whatever the current folder): not "
                "starting a second one",
                file=str(stray),
                hint=fix,
            )
        )

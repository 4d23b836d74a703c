"""`campaign diff` as one library call: the campaign at a git ref against the working tree.

The files at the ref (the campaign, its recipients file, its suppression files) are read with
``git show REF:path`` into a temporary folder laid out as in the repository, loaded and planned
there; nothing touches the network and no API key is needed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.campaign.load import Campaign, load_campaign
from runner.campaign.loader import load_text
from runner.campaign.policy import DEFAULT as DEFAULT_POLICY
from runner.campaign.schedule import parse_at
from runner.errors import CampaignError, Problem
from runner.planning.diff import Side, diff
from runner.planning.planfile import named_files
from runner.planning.planner import Planner, ScheduleCounter
from runner.planning.request import PlannedRequest
from runner.store.audit import git_bytes


@dataclass(frozen=True)
class Base:
    """The ref a diff compares with, and how it was chosen (said in the output)."""

    ref: str
    said: str


def default_base(cwd: Path) -> Base:
    """The merge base with the default branch (origin/HEAD, else main, else master), else with
    the upstream branch, else HEAD: a feature branch is compared with what it branched from."""
    for name in ("origin/HEAD", "main", "master", "@{upstream}"):
        if git_bytes(cwd, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}") is None:
            continue
        out = git_bytes(cwd, "merge-base", "HEAD", name)
        if out:
            sha = out.decode().strip()
            label = "the upstream branch" if name == "@{upstream}" else name
            return Base(sha, f"the merge base with {label} ({sha[:7]})")
    return Base("HEAD", "HEAD (no main, master or upstream branch to compare with)")


def _repo_root(cwd: Path) -> Path:
    out = git_bytes(cwd, "rev-parse", "--show-toplevel")
    if out is None:
        raise CampaignError(
            Problem(
                "campaign diff needs a git repository (and git installed)",
                file=str(cwd),
                hint="run it inside the campaign's repository",
            )
        )
    return Path(out.decode().strip()).resolve()


def _in_repo(root: Path, path: Path, campaign_file: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        raise CampaignError(
            Problem(
                f"{path} is outside the git repository {root}",
                file=str(campaign_file),
                hint="campaign diff compares files tracked in one repository",
            )
        ) from None


def campaign_at(file: Path, ref: str, into: Path) -> Campaign | None:
    """The campaign as it was at ``ref``, its files written under ``into``; None when the
    campaign file did not exist there (a new campaign)."""
    root = _repo_root(file.resolve().parent)
    if git_bytes(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is None:
        raise CampaignError(
            Problem(
                f"unknown git ref {ref!r}",
                file=str(file),
                hint="pass --base with a branch, tag or commit (git fetch it first)",
            )
        )
    rel = _in_repo(root, file, file)
    text = git_bytes(root, "show", f"{ref}:{rel}")
    if text is None:
        return None
    target = into / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text)
    try:
        data = load_text(text.decode("utf-8", "replace"), str(target)).data
    except CampaignError:
        data = None  # load_campaign below reports it, located
    for _, name in named_files(data):
        data_rel = _in_repo(root, file.resolve().parent / name, file)
        content = git_bytes(root, "show", f"{ref}:{data_rel}")
        if content is not None:  # missing at the ref: loading says so, located
            (into / data_rel).parent.mkdir(parents=True, exist_ok=True)
            (into / data_rel).write_bytes(content)
    try:
        return load_campaign(target, policy=DEFAULT_POLICY)
    except CampaignError as err:
        raise at_ref(err, ref, into) from None


def at_ref(err: CampaignError, ref: str, into: Path) -> CampaignError:
    """Problems found in the temporary copy, located as git spells a file at a ref (REF:path)."""
    prefix = str(into) + os.sep

    def where(file: str | None) -> str | None:
        return f"{ref}:{file[len(prefix) :]}" if file and file.startswith(prefix) else file

    return CampaignError(
        [
            Problem(
                f"at {ref}: {p.message}",
                file=where(p.file),
                line=p.line,
                column=p.column,
                path=p.path,
                hint=p.hint,
                severity=p.severity,
                layer=p.layer,
            )
            for p in err.problems
        ]
    )


def _observed(
    requests: Iterable[PlannedRequest] | None, counter: ScheduleCounter
) -> Iterator[PlannedRequest]:
    for req in requests or ():
        counter.observe(req, None)
        yield req


def _side(campaign: Campaign | None) -> tuple[Side, Planner | None]:
    if campaign is None:
        return Side(None), None
    planner = Planner(campaign, previews=0)
    # The summary fills in as the requests stream: complete once diff() consumed them.
    return Side(campaign, planner.requests(), planner.summary), planner


def campaign_diff(
    file: str | Path,
    *,
    base: str | None = None,
    show_recipients: bool = False,
    policy: str | Path | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    """The diff document of ``file`` between ``base`` (default: see ``default_base``) and
    the working tree; raises CampaignError if either side is invalid. Both sides obey the
    working tree's campaign obeys the team policy (``policy``, else the repository's runner.yaml);
    what the law holds of it is counted at ``at`` (ISO 8601, default now)."""
    path = Path(file)
    chosen = Base(base, base) if base else default_base(path.resolve().parent)
    ref = chosen.ref
    head = load_campaign(path, policy=policy)
    with tempfile.TemporaryDirectory(prefix="campaign-diff-") as tmp:
        # The base side is loaded with the defaults: a window the new policy forbids must not
        # hide what the change does.
        old = campaign_at(path, ref, Path(tmp))
        base_side, base_planner = _side(old)
        head_side, head_planner = _side(head)
        # What the law and the team's hours hold of the head's messages now (as plan counts).
        counter = ScheduleCounter(head, parse_at(at or "now"))
        head_side = replace(head_side, requests=_observed(head_side.requests, counter))
        # Both sides stream: the base is consumed first, then the head.
        doc = diff(base_side, head_side, show_recipients=show_recipients)
        if base_planner is not None:
            try:
                base_planner.raise_if_invalid()
            except CampaignError as err:
                raise at_ref(err, ref, Path(tmp)) from None
        head_planner.raise_if_invalid()  # type: ignore[union-attr]
    doc["base"] = ref
    doc["base_said"] = chosen.said
    doc["file"] = os.fspath(file)
    doc["law"] = {
        "at": counter.to_dict()["at"],
        "held_by": dict(sorted(counter.held_by.items())),
        "policy": head.policy.describe(),
    }
    return doc

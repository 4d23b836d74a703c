"""Who sent what from which commit: the audit fields every run records.

Read from git with plain ``git`` subprocesses (no git library): the commit checked out, whether
the working tree has uncommitted changes, and which of the campaign's own files do. Without git
(not installed, not a repository) the git fields are None: the run still happens, unless
``send --require-clean`` asked for proof that the campaign is committed.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import CampaignError, Problem


def git_bytes(cwd: Path, *args: str) -> bytes | None:
    """``git ARGS`` run in ``cwd``: its stdout, or None when git is missing or it fails."""
    if shutil.which("git") is None:
        return None
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _git(cwd: Path, *args: str) -> str | None:
    out = git_bytes(cwd, *args)
    return None if out is None else out.decode("utf-8", "replace")


def os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return None


@dataclass(frozen=True)
class Audit:
    git_commit: str | None  # None: not in a git repository (or no git)
    tree_dirty: bool | None  # any uncommitted change in the working tree
    dirty_files: list[str] | None  # the campaign's own files with uncommitted changes
    plan_digest: str | None
    user: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"git_commit": self.git_commit, "tree_dirty": self.tree_dirty,
                "dirty_files": self.dirty_files, "plan_digest": self.plan_digest,
                "user": self.user}


def audit(files: list[Path], plan_digest: str | None) -> Audit:
    """The audit of a run whose inputs are ``files`` (the campaign file first)."""
    cwd = files[0].resolve().parent
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return Audit(None, None, None, plan_digest, os_user())
    tree = _git(cwd, "status", "--porcelain")
    mine = _git(cwd, "status", "--porcelain", "--", *(str(f.resolve()) for f in files))
    dirty = sorted({line[3:].strip() for line in (mine or "").splitlines() if line.strip()})
    return Audit(commit.strip(), bool(tree and tree.strip()), dirty, plan_digest, os_user())


def require_clean(files: list[Path], found: Audit) -> None:
    """`send --require-clean`: refuse uncommitted changes to the campaign or its files."""
    hint = "commit them (git add, git commit), or send without --require-clean"
    if found.git_commit is None:
        raise CampaignError(Problem("--require-clean: the campaign is not in a git repository "
                                    "(or git is not installed)", file=str(files[0]), hint=hint))
    if found.dirty_files:
        raise CampaignError([Problem("uncommitted changes (--require-clean)", file=name, hint=hint)
                             for name in found.dirty_files])

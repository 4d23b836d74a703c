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
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60, check=False)
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
    # The campaign's own files git does not track (never added, or git-ignored): not committed
    # either, so also in dirty_files (what the journal keeps).
    untracked_files: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "git_commit": self.git_commit,
            "tree_dirty": self.tree_dirty,
            "dirty_files": self.dirty_files,
            "plan_digest": self.plan_digest,
            "user": self.user,
            "untracked_files": self.untracked_files,
        }


def audit(files: list[Path], plan_digest: str | None) -> Audit:
    """The audit of a run whose inputs are ``files`` (the campaign file first)."""
    cwd = files[0].resolve().parent
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit is None:
        return Audit(None, None, None, plan_digest, os_user())
    tree = _git(cwd, "status", "--porcelain")
    mine = _git(cwd, "status", "--porcelain", "--", *(str(f.resolve()) for f in files))
    dirty = {line[3:].strip() for line in (mine or "").splitlines() if line.strip()}
    # `git status` lists an untracked file but never an ignored one: ask git which it tracks.
    top = Path((_git(cwd, "rev-parse", "--show-toplevel") or str(cwd)).strip()).resolve()
    untracked = sorted(
        _repo_name(top, f)
        for f in files
        if git_bytes(cwd, "ls-files", "--error-unmatch", "--", str(f.resolve())) is None
    )
    return Audit(
        commit.strip(),
        bool(tree and tree.strip()),
        sorted(dirty | set(untracked)),
        plan_digest,
        os_user(),
        untracked,
    )


def _repo_name(top: Path, file: Path) -> str:
    """A file as `git status` names it: relative to the repository's top, with slashes."""
    try:
        return file.resolve().relative_to(top).as_posix()
    except ValueError:
        return str(file)


def require_clean(files: list[Path], found: Audit) -> None:
    """`send --require-clean`: refuse uncommitted changes to the campaign or its files."""
    hint = "commit them (git add, git commit), or send without --require-clean"
    if found.git_commit is None:
        raise CampaignError(
            Problem(
                "--require-clean: the campaign is not in a git repository "
                "(or git is not installed)",
                file=str(files[0]),
                hint=hint,
            )
        )
    untracked = found.untracked_files or []
    problems = [
        Problem(
            "not committed: git does not track it (untracked or git-ignored) (--require-clean)",
            file=name,
            hint="git add it (git add -f if it is ignored) and commit, or send "
            "without --require-clean",
        )
        for name in untracked
    ]
    problems += [
        Problem("uncommitted changes (--require-clean)", file=name, hint=hint)
        for name in found.dirty_files or []
        if name not in untracked
    ]
    if problems:
        raise CampaignError(problems)

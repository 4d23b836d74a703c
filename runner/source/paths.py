"""Files a campaign names (recipients, suppression lists): where they may be, and how they are opened.

Campaign files come from pull requests and CI runs `validate` on them, so a campaign must not be
able to make the runner read (and echo into annotations) files from elsewhere on the machine:
`/proc/self/environ`, `~/.ssh/...`, `../../other-project/secrets.csv`. Every file a campaign
names resolves, symlinks followed, inside the folder tree of the campaign file or of the git
repository holding it; and only regular files are opened (a device or a FIFO would read forever
or block), checked on the open file itself so a swap after the check changes nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

INSIDE_HINT = (
    "a campaign may name only files inside its own folder or the git repository holding "
    "it (symlinks count where they point); copy the file there"
)


class PathError(Exception):
    """A file a campaign names is outside it, missing or not a regular file. Callers locate it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def repository_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` holding `.git` (a folder, or a file in a
    worktree or submodule), else None."""
    for candidate in (folder, *folder.parents):
        try:
            if (candidate / ".git").exists():
                return candidate
        except OSError:
            return None
    return None


def allowed_roots(campaign_file: str | Path) -> list[Path]:
    """The folders a campaign's files may resolve into: its own folder, and its repository's."""
    base = Path(os.path.abspath(campaign_file)).parent.resolve()
    roots = [base]
    repo = repository_root(base)
    if repo is not None and repo != base:
        roots.append(repo)
    return roots


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def confine(
    name: str,
    base_dir: str | Path,
    campaign_file: str | Path,
    what: str,
    *,
    must_exist: bool = True,
) -> Path:
    """``name`` as written in the campaign (relative to ``base_dir``, its folder), resolved.

    Raises PathError when it resolves outside ``allowed_roots(campaign_file)``, or (checked in
    that order, so nothing is told about files outside) is missing or not a regular file. With
    ``must_exist=False`` a missing file is fine (a suppression list `optouts` will create).
    """
    try:
        target = (Path(base_dir) / name).resolve()
    except (OSError, RuntimeError, ValueError) as err:  # a symlink loop, a NUL byte
        raise PathError(
            f"cannot use the {what} '{name}': {getattr(err, 'strerror', None) or err}",
            "fix the path",
        ) from None
    roots = allowed_roots(campaign_file)
    if not any(target.is_relative_to(root) for root in roots):
        where = "folder" if len(roots) == 1 else "folder and its git repository"
        raise PathError(f"the {what} '{name}' is outside the campaign's {where}", INSIDE_HINT)
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        if must_exist:
            raise PathError(
                f"{what} not found: {name}", "the path is relative to the campaign file"
            ) from None
        return target
    except OSError as err:
        raise PathError(
            f"cannot read the {what} '{name}': {err.strerror}", "check the path"
        ) from None
    if not stat.S_ISREG(mode):
        raise PathError(
            f"the {what} '{name}' is {_kind(mode)}, not a regular file", "name a regular file"
        )
    return target


def open_regular(path: str | Path) -> BinaryIO:
    """Open ``path`` for reading in binary mode if it is a regular file, else PathError
    (OSError when it cannot be opened at all).

    Opened without blocking (a FIFO with no writer would wait forever) and checked with fstat on
    the descriptor, so the file read is the file checked.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise PathError(f"{path} is {_kind(mode)}, not a regular file", "name a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: str | Path, limit: int) -> bytes | None:
    """The content of the regular file ``path``, or None when it holds more than ``limit`` bytes.

    Counts the bytes read, not the size `stat` reports (which /proc files and the like get
    wrong), so at most ``limit + 1`` bytes are ever read.
    """
    with open_regular(path) as fh:
        data = fh.read(limit + 1)
    return None if len(data) > limit else data

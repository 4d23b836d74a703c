"""One run per journal: an exclusive lock held for a whole `send`, `track` or `optouts`.

Two writers on one journal corrupt it (one resets the other's accepted rows to pending and
each report tells the other's run), so a second one refuses at once, naming the process that
holds the lock. The lock is ``fcntl.flock`` on ``<id>.lock`` beside the journal: the kernel
drops it when its holder exits, however it exits (SIGKILL included), so a stale lock cannot
outlive a crash. The file keeps the holder's PID for the message; it is never deleted (a
deleted lock file lets two processes lock two different files of the same name).
Readers (`report`, `plan --state`) take no lock: SQLite's WAL gives them a consistent snapshot;
``holder`` tells them whether a writer runs now (`report` says a send is running).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import StoppedEarly


class JournalBusy(StoppedEarly):
    """Another process runs on this journal (exit 3: run again once it has finished)."""


def lock_path(journal: str | Path) -> Path:
    """``<id>.lock`` beside ``<id>.sqlite``."""
    return Path(journal).with_suffix(".lock")


class JournalLock:
    """Hold with ``with JournalLock(journal_path, "send"):``, or ``acquire()`` / ``release()``."""

    def __init__(self, journal: str | Path, command: str = "send") -> None:
        self.journal = Path(journal)
        self.path = lock_path(journal)
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> JournalLock:
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise JournalBusy(
                f"{who} is running on this journal; one run at a time",
                file=str(self.journal),
                hint=f"wait for it to finish (or stop it: kill {holder or 'PID'}), then run "
                f"{self.command} again",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        except OSError:
            pass  # the lock holds without its note; only the message to a contender suffers
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor of the open file drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> JournalLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class Holder:
    """A process holding a journal's lock now (``pid`` None when its note is missing)."""

    pid: int | None


def holder(journal: str | Path) -> Holder | None:
    """Who holds the journal's lock now, without taking it (a reader's question: is a send
    running?); None when nobody does. A shared, non-blocking try: it fails exactly while a
    writer holds the exclusive lock, and never creates the lock file."""
    try:
        fd = os.open(lock_path(journal), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return Holder(_read_pid(fd))
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None

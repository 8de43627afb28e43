"""File locks on `filelock` (fcntl.flock underneath).

Rules from DESIGN §4: a lock file is never deleted (waiters must share one inode), POSIX record
locks are never used (closing any other descriptor of the file drops them), and a process never
forks while it holds a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import Timeout, UnixFileLock

__all__ = ["HeldLock", "LockTimeout", "ProcessLock", "file_lock", "try_lock"]


class LockTimeout(Exception):
    """A lock was not acquired within its deadline."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__(f"could not lock {path} within {timeout:g}s: another process holds it")
        self.path = path


def _lock(path: Path) -> UnixFileLock:
    # thread_local=False: a lock held by the process is held for all its threads, like flock.
    return UnixFileLock(path, thread_local=False, fallback_to_soft=False)


class ProcessLock:
    """An exclusive lock on one lock file, made once and taken many times (the hot paths
    reuse it: building a `UnixFileLock` costs about as much as taking one).

    It excludes other processes (flock) and other threads of this one: a `UnixFileLock` with
    thread_local=False is re-entrant across threads, so a thread lock guards it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = _lock(path)
        self._threads = threading.Lock()

    @contextmanager
    def held(self, timeout: float = -1) -> Iterator[None]:
        """Hold the lock for the `with` block; `timeout` < 0 waits forever, otherwise
        `LockTimeout` is raised after `timeout` seconds."""
        started = time.monotonic()
        if not self._threads.acquire(timeout=timeout if timeout >= 0 else -1):
            raise LockTimeout(self.path, timeout)
        try:
            left = -1.0 if timeout < 0 else max(0.0, timeout - (time.monotonic() - started))
            try:
                self._lock.acquire(timeout=left, poll_interval=0.001)
            except Timeout as exc:
                raise LockTimeout(self.path, timeout) from exc
            try:
                yield
            finally:
                self._lock.release()
        finally:
            self._threads.release()


@contextmanager
def file_lock(path: Path, timeout: float = -1) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the `with` block."""
    with ProcessLock(path).held(timeout):
        yield


class HeldLock:
    """A lock held until `release()`: for a process that owns something while it lives."""

    def __init__(self, lock: UnixFileLock) -> None:
        self._lock = lock

    def release(self) -> None:
        """Idempotent: the lock may be handed over early and released again at the end."""
        if self._lock.is_locked:
            self._lock.release(force=True)


def try_lock(path: Path) -> HeldLock | None:
    """Take the lock on `path` without waiting; None when another process holds it."""
    lock = _lock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return None
    return HeldLock(lock)

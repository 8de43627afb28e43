"""One team per workspace (DESIGN §1): the coordinator holds `.agents/coordinator.lock` for its
whole life, and whoever starts a team holds a start lock from its check until the coordinator
holds that one, so no second `team up` can slip in between.

Locks are flock locks (`protocol/locks.py`): the kernel drops them when their process dies, so
a killed coordinator never leaves a team locked. Who holds a lock is written beside it (a lock
file itself is never written: taking it may truncate it)."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from protocol.atomic import atomic_write_json
from protocol.layout import Layout
from protocol.locks import HeldLock, try_lock
from protocol.messages import utc_now


class Holder(BaseModel):
    """Who holds a lock, written beside it once it is taken."""

    model_config = ConfigDict(extra="ignore")

    pid: int
    since: datetime = Field(default_factory=utc_now)
    what: str = ""  # "team up", "team resume", "coordinator"


def holder_file(lock: Path) -> Path:
    return lock.with_name(lock.name + ".holder")


def read_holder(lock: Path) -> Holder | None:
    try:
        return Holder.model_validate_json(holder_file(lock).read_bytes())
    except (OSError, ValueError):
        return None


def take(lock: Path, what: str, *, timeout: float = 0.0) -> HeldLock | None:
    """Take `lock` (waiting up to `timeout` seconds) and say who holds it; None when another
    process holds it still."""
    deadline = time.monotonic() + timeout
    while True:
        held = try_lock(lock)
        if held is not None:
            atomic_write_json(holder_file(lock), Holder(pid=os.getpid(), what=what), fsync=False)
            return held
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def is_held(lock: Path) -> bool:
    """Whether a live process holds `lock`. Probing takes it for an instant: the coordinator
    waits a little for its lock (`take(..., timeout=...)`) so that a probe never turns it
    away."""
    if not lock.exists():
        return False
    held = try_lock(lock)
    if held is None:
        return True
    held.release()
    return False


def coordinator_lock(layout: Layout) -> Path:
    return layout.coordinator_lock

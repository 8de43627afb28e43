"""One team per workspace: the locks a coordinator and a starting command hold."""

from __future__ import annotations

import os

from protocol.runlock import coordinator_lock, is_held, read_holder, take
from tests.conftest import TeamDir
from tests.processes import REPO, kill9, start, wait_for_line

HOLDER = REPO / "tests" / "protocol" / "procs" / "holder.py"


def test_a_lock_is_held_by_one_and_says_by_whom(team_dir: TeamDir) -> None:
    path = coordinator_lock(team_dir.layout)
    assert not is_held(path)
    held = take(path, "coordinator")
    assert held is not None
    holder = read_holder(path)
    assert holder is not None and (holder.pid, holder.what) == (os.getpid(), "coordinator")
    held.release()
    held.release()  # idempotent: a lock handed over early is released again at the end
    assert not is_held(path)


def test_a_lock_held_by_another_process_refuses_and_is_free_once_it_dies(
    team_dir: TeamDir,
) -> None:
    path = coordinator_lock(team_dir.layout)
    holder = start(HOLDER, path)
    try:
        wait_for_line(holder, "locked")
        assert is_held(path)
        assert take(path, "second", timeout=0.2) is None
    finally:
        kill9(holder)
    assert not is_held(path)  # the kernel drops a dead process's flock
    again = take(path, "after")
    assert again is not None
    again.release()

"""After a retry build: what regressed, and putting back the files that broke what passed."""

from __future__ import annotations

from collections.abc import Callable

from coordinator import snapshots
from coordinator.verify import Verification
from protocol import Layout, Task, TaskStatus
from protocol.plan import Plan
from protocol.workspace_files import read_bytes_inside, write_bytes_inside


def regressed(before: dict[str, bool], result: Verification) -> bool:
    """Whether a criterion that passed before fails now."""
    now = {c.id: c.passed for c in result.criteria}
    return any(passed and not now.get(cid, False) for cid, passed in before.items())


def passing(result: Verification) -> int:
    return sum(c.passed for c in result.criteria) + all(s.passed for s in result.steps)


def files_to_keep(result: Verification, plan: Plan, tasks: list[Task]) -> list[str]:
    """What to copy before a retry build: the targets of the passing criteria and every
    finished task's files (a rollback puts back only copies that help, so more is safe)."""
    ok = {c.id for c in result.criteria if c.passed}
    files = [c.target_file for c in plan.dod if c.id in ok and c.target_file]
    files += [f for t in tasks if t.status == TaskStatus.DONE for f in t.files]
    return list(dict.fromkeys(files))


def roll_back(
    layout: Layout,
    result: Verification,
    before: dict[str, bool],
    snapshot: int,
    files: list[str],
    verify: Callable[[], Verification],
    say: Callable[[str, str], None],
) -> Verification:
    """Put back, one at a time, the snapshotted files the retry changed, keeping each
    restore that makes more criteria pass, until nothing that passed before fails."""
    for relative in snapshots.changed(layout, snapshot, files):
        if not regressed(before, result):
            break
        current = read_bytes_inside(layout.workspace, relative)
        snapshots.rollback(layout, snapshot, [relative])
        trial = verify()
        if passing(trial) > passing(result):
            say("info", f"rolled back {relative}: the retry broke what passed")
            result = trial
        elif current is not None:  # that file was not the cause: keep the new version
            write_bytes_inside(layout.workspace, relative, current)
    return result

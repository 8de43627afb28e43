"""What `team status` says about processes that should be running and are not: a plain
function of team.json, the agents' records and whether each process is there."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from coordinator.views import clock
from protocol import COORDINATOR, Task, TaskStatus, TeamInfo, TeamStatus
from protocol.agents import AgentRecord

FINISHED = frozenset({TeamStatus.DONE, TeamStatus.FAILED, TeamStatus.STOPPED})


def liveness_problems(
    info: TeamInfo | None,
    records: Sequence[AgentRecord],
    tasks: Sequence[Task],
    running: Callable[[AgentRecord], bool],
) -> list[str]:
    """One line for the coordinator of an unfinished team that is not running, and one for
    each worker not running while a task it owns is still marked in progress."""
    problems = []
    by_name = {r.name: r for r in records}
    unfinished = info is not None and info.status not in (TeamStatus.INITIALISED, *FINISHED)
    coordinator = by_name.get(COORDINATOR)
    if unfinished and (coordinator is None or not running(coordinator)):
        workers = [r.name for r in records if r.name != COORDINATOR and running(r)]
        # Its workers, orphaned, go on idle: say how to end them too.
        also = (
            f"; its workers still run ({', '.join(workers)}): `team kill` ends them"
            if workers
            else ""
        )
        if coordinator is None:
            problems.append(f"the coordinator is not running: `team resume` carries on{also}")
        else:
            problems.append(
                f"the coordinator (pid {coordinator.pid}) is not running since "
                f"{clock(coordinator.heartbeat_at)}: `team resume` carries on{also}"
            )
    for task in tasks:
        if task.status not in (TaskStatus.ASSIGNED, TaskStatus.RUNNING) or task.owner is None:
            continue
        record = by_name.get(task.owner)
        if record is not None and running(record):
            continue
        pid = f" (pid {record.pid})" if record else ""
        since = f" since {clock(record.heartbeat_at)}" if record else ""
        problems.append(
            f"{task.owner}{pid}, which has task {task.id} ({task.status.value}), is not "
            f"running{since}: `team resume` gives the task to a new one"
        )
    return problems

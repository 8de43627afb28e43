"""What `team status` says of processes that should run and do not."""

from __future__ import annotations

from datetime import timedelta

from coordinator.liveness import liveness_problems
from protocol import Task, TaskStatus, TeamInfo, TeamStatus
from protocol.agents import AgentRecord
from protocol.messages import utc_now


def record(name: str, pid: int) -> AgentRecord:
    role = "coordinator" if name == "coordinator" else "builder"
    return AgentRecord(name=name, role=role, pid=pid, heartbeat_at=utc_now() - timedelta(minutes=3))  # type: ignore[arg-type]


def test_a_dead_coordinator_of_an_unfinished_team_is_named_with_its_pid() -> None:
    info = TeamInfo(status=TeamStatus.BUILDING)
    [line] = liveness_problems(info, [record("coordinator", 4242)], [], lambda r: False)
    assert line.startswith("the coordinator (pid 4242) is not running since ")
    assert "`team resume` carries on" in line


def test_a_finished_team_or_a_live_coordinator_is_no_problem() -> None:
    done = TeamInfo(status=TeamStatus.DONE)
    assert liveness_problems(done, [record("coordinator", 1)], [], lambda r: False) == []
    building = TeamInfo(status=TeamStatus.BUILDING)
    assert liveness_problems(building, [record("coordinator", 1)], [], lambda r: True) == []


def test_a_worker_gone_while_its_task_is_marked_running_is_named() -> None:
    info = TeamInfo(status=TeamStatus.DONE)
    tasks = [
        Task(id=3, title="t", status=TaskStatus.RUNNING, owner="builder-a"),
        Task(id=4, title="u", status=TaskStatus.RUNNING, owner="builder-b"),
        Task(id=5, title="v", status=TaskStatus.DONE, owner="builder-c"),
    ]
    records = [record("builder-a", 7), record("builder-b", 8), record("builder-c", 9)]
    lines = liveness_problems(info, records, tasks, lambda r: r.name == "builder-b")
    assert len(lines) == 1
    assert lines[0].startswith("builder-a (pid 7), which has task 3 (running), is not running")

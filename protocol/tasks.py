"""Tasks and their DAG (DESIGN §5): the models, the legal status moves, and pure checks.

Nothing here touches the disk; `taskstore.py` does the I/O under `tasks/.lock`.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from protocol.messages import (
    AgentName,
    ErrorCategory,
    FileEdit,
    TaskAssignment,
    TaskId,
    TraceRef,
    utc_now,
)
from protocol.reports import ExplorationReport


class TaskStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    ASSIGNED = "assigned"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ABANDONED = "abandoned"


S = TaskStatus
# Status only moves forward; failed -> ready is the one way back, and it costs an attempt.
ALLOWED_MOVES: dict[TaskStatus, frozenset[TaskStatus]] = {
    S.PENDING: frozenset({S.READY, S.ABANDONED}),
    S.READY: frozenset({S.ASSIGNED, S.ABANDONED}),
    S.ASSIGNED: frozenset({S.RUNNING, S.FAILED}),
    S.RUNNING: frozenset({S.DONE, S.FAILED}),
    S.FAILED: frozenset({S.READY, S.ABANDONED}),
    S.DONE: frozenset(),
    S.ABANDONED: frozenset(),
}


class TaskEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime = Field(default_factory=utc_now)
    status: TaskStatus
    by: str
    attempt: int
    note: str = ""
    # A failure that is not the task's doing (the model server unreachable, a shutdown, a
    # `team kill`): it costs no attempt. Decided where the failure is known, never from `note`.
    costs_attempt: bool = True
    # What kind of failure it was (a failed move): typed, so that no reader parses `note`.
    category: ErrorCategory | None = None


class TaskResult(BaseModel):
    """What a finished task left: the worker's summary, the files it wrote, and for the
    explorer the report the planner reads."""

    model_config = ConfigDict(extra="forbid")

    summary: str = ""
    files: list[str] = Field(default_factory=list)
    report: ExplorationReport | None = None
    model: str = ""  # the model whose answers are the files written


class Task(BaseModel):
    """One numbered task file: `.agents/tasks/<id:04d>.json`."""

    model_config = ConfigDict(extra="forbid")

    id: TaskId
    title: str = Field(min_length=1)
    role: str = "builder"
    module: str = ""
    files: list[str] = Field(default_factory=list)
    depends_on: list[TaskId] = Field(default_factory=list)
    status: TaskStatus = TaskStatus.PENDING
    owner: AgentName | None = None
    attempt: int = Field(default=1, ge=1)
    instructions: str = ""
    dod: list[str] = Field(default_factory=list)
    edits: list[FileEdit] = Field(
        default_factory=list, description="an RCA's concrete edits, for a fix task"
    )
    # How many fixes of these files came before this one: which model of the role's cascade
    # builds it (0: the role's model).
    cascade_step: int = Field(default=0, ge=0)
    history: list[TaskEvent] = Field(default_factory=list)
    result: TaskResult | None = None

    def assignment(self, trace: TraceRef | None = None) -> TaskAssignment:
        """The message that hands this task, at its current attempt, to its worker."""
        return TaskAssignment(
            trace=trace,
            task_id=self.id,
            attempt=self.attempt,
            title=self.title,
            files=self.files,
            instructions=self.instructions,
            dod=self.dod,
            context=self.edits,
            cascade_step=self.cascade_step,
        )


class DagError(ValueError):
    """A task graph that cannot be built; the message names the offending ids."""


def check_dag(tasks: Iterable[Task]) -> list[int]:
    """Return the task ids in an order where every task follows its dependencies.

    Raises `DagError` for a duplicate id, a self-dependency, a dependency on a missing id,
    or a cycle, naming the ids involved.
    """
    graph: dict[int, set[int]] = {}
    for task in tasks:
        if task.id in graph:
            raise DagError(f"task id {task.id} is used twice")
        graph[task.id] = set(task.depends_on)

    selfish = sorted(tid for tid, deps in graph.items() if tid in deps)
    if selfish:
        raise DagError("tasks depend on themselves: " + ", ".join(map(str, selfish)))

    missing = {tid: sorted(dep for dep in deps if dep not in graph) for tid, deps in graph.items()}
    missing = {tid: deps for tid, deps in missing.items() if deps}
    if missing:
        parts = [
            f"task {tid} -> {', '.join(map(str, deps))}" for tid, deps in sorted(missing.items())
        ]
        raise DagError("dependencies on tasks that do not exist: " + "; ".join(parts))

    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        cycle: list[int] = list(reversed(exc.args[1]))
        raise DagError(
            "dependency cycle: " + " -> ".join(map(str, cycle)) + " (each depends on the next)"
        ) from None


def ready_ids(tasks: Iterable[Task]) -> list[int]:
    """The pending tasks whose dependencies are all done, by id."""
    by_id = {task.id: task for task in tasks}
    return sorted(
        task.id
        for task in by_id.values()
        if task.status == TaskStatus.PENDING
        and all(dep in by_id and by_id[dep].status == TaskStatus.DONE for dep in task.depends_on)
    )

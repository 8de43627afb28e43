"""What the coordinator decides while it builds, as plain functions of the task list and of
which agents are alive. No I/O and no threads: the retry policy is changed here, and tested
here (tests/coordinator/test_decisions.py), without starting a process.

One call to `decide` looks at one snapshot of the tasks and returns everything that snapshot
calls for; the coordinator applies it (compare-and-set on each task file) and asks again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from coordinator.stuck import is_stuck
from protocol.agents import AgentRecord, AgentRole
from protocol.tasks import Task, TaskStatus

S = TaskStatus
MAX_ATTEMPTS = 3
# Failures that cost no attempt still end somewhere: a model server that answers the health
# check but not the calls must not make a task retry forever.
MAX_FAILURES = 30
STALE_HEARTBEAT = 120.0  # seconds without a heartbeat before a live process counts as hung
ACTIVE = frozenset({S.ASSIGNED, S.RUNNING})
FINAL = frozenset({S.DONE, S.ABANDONED})


@dataclass(frozen=True)
class Failure:
    """An active task whose worker is gone: it fails (and so is retried or given up)."""

    task_id: int
    status: TaskStatus
    owner: str | None  # None: active with no owner, which nobody would ever finish


@dataclass(frozen=True)
class Abandon:
    task_id: int
    status: TaskStatus
    why: str


@dataclass(frozen=True)
class Step:
    """What one look at the tasks calls for, in the order to apply it."""

    promote: tuple[int, ...] = ()  # pending, every dependency done: now ready
    fail: tuple[Failure, ...] = ()
    retry: tuple[int, ...] = ()  # failed, with attempts left: back to ready
    abandon: tuple[Abandon, ...] = ()
    start: tuple[int, ...] = ()  # ready tasks to hand to workers now
    finished: bool = False  # every task in scope is done or given up
    stalled: str | None = None  # nothing can move any more: why, task by task

    @property
    def changes(self) -> bool:
        return bool(self.promote or self.fail or self.retry or self.abandon)


def attempts_used(task: Task) -> int:
    """The failed attempts that count against the task (not those a dead model server, a
    shutdown or `team kill` caused: their events say so)."""
    return sum(1 for e in task.history if e.status == S.FAILED and e.costs_attempt)


def decide(
    tasks: Sequence[Task],
    scope: Iterable[int],
    alive: Callable[[str], bool],
    *,
    workers: int,
    max_attempts: int = MAX_ATTEMPTS,
    hold_dispatch: bool = False,
) -> Step:
    """The next step of a build of the tasks in `scope`. `alive(owner)` says whether an
    agent's process is there; `hold_dispatch` (the model server is down) starts nothing."""
    in_scope = set(scope)
    by_id = {t.id: t for t in tasks}
    mine = [t for t in tasks if t.id in in_scope]
    promote = tuple(
        t.id
        for t in mine
        if t.status == S.PENDING
        and all(d in by_id and by_id[d].status == S.DONE for d in t.depends_on)
    )
    fail = tuple(
        Failure(t.id, t.status, t.owner)
        for t in mine
        if t.status in ACTIVE and (t.owner is None or not alive(t.owner))
    )
    failing = {f.task_id for f in fail}
    retry = []
    given_up: set[int] = {t.id for t in tasks if t.status == S.ABANDONED}
    abandon = []
    for task in mine:
        if task.status != S.FAILED:
            continue
        failures = sum(1 for e in task.history if e.status == S.FAILED)
        if attempts_used(task) >= max_attempts:
            abandon.append(Abandon(task.id, task.status, f"gave up after {max_attempts} attempts"))
            given_up.add(task.id)
        elif failures >= MAX_FAILURES:
            why = f"gave up after {failures} failures (none its own: the model server, stops)"
            abandon.append(Abandon(task.id, task.status, why))
            given_up.add(task.id)
        else:
            retry.append(task.id)
    # A task whose dependency was given up can never be built: give it up too, and so on.
    waiting = [t for t in mine if t.status in (S.PENDING, S.READY)]
    grew = True
    while grew:
        grew = False
        for task in waiting:
            lost = sorted(given_up & set(task.depends_on))
            if lost and task.id not in given_up:
                why = f"its dependency {', '.join(map(str, lost))} was given up"
                abandon.append(Abandon(task.id, task.status, why))
                given_up.add(task.id)
                grew = True
    abandoned_now = {a.task_id for a in abandon}
    busy = sum(1 for t in mine if t.status in ACTIVE and t.id not in failing)
    ready = sorted(t.id for t in mine if t.status == S.READY and t.id not in abandoned_now)
    start = () if hold_dispatch else tuple(ready[: max(0, workers - busy)])
    finished = all(t.status in FINAL for t in mine) and not fail
    step = Step(promote, fail, tuple(retry), tuple(abandon), start, finished)
    if finished or step.changes or busy or ready:
        return step
    return Step(stalled=stalled_reason(mine, by_id))


def stalled_reason(mine: Sequence[Task], by_id: dict[int, Task]) -> str | None:
    """Why the pending tasks can never become ready (nothing runs, nothing is ready): one
    line per task, naming what it waits for. None when nothing is pending."""
    lines = []
    for task in sorted(mine, key=lambda t: t.id):
        if task.status != S.PENDING:
            continue
        blockers = []
        for dep in task.depends_on:
            other = by_id.get(dep)
            if other is None:
                blockers.append(f"task {dep}, which does not exist")
            elif other.status != S.DONE:
                blockers.append(f"task {dep} ({other.status.value})")
        lines.append(f"task {task.id} waits for " + (", ".join(blockers) or "nothing"))
    if not lines:
        return None
    return "no task can start, and none is running: " + "; ".join(lines)


def after_verification(
    passed: bool,
    failing: Sequence[str],
    failures: str,
    fingerprints: Sequence[str],
    iteration: int,
    max_iterations: int,
) -> str | None:
    """After an iteration's verification: None to find the root cause and go on, "" when the
    Definition of Done is met, else why the team stops short (stuck on the same failure, or
    out of iterations)."""
    if passed:
        return ""
    if is_stuck(list(fingerprints)):
        return f"stuck: the same failure three times ({', '.join(failing)}):\n{failures[:1500]}"
    if iteration >= max_iterations:
        return (
            f"{max_iterations} iterations without meeting the Definition of Done; "
            f"failing: {', '.join(failing) or 'build'}"
        )
    return None


@dataclass
class HeartbeatWatch:
    """Which workers are hung: the process is there but its heartbeat (a thread of its own,
    every 2 s) has not changed for `stale_after` seconds of the coordinator's own monotonic
    clock. Not judged by the wall clock: after a laptop's suspend every heartbeat looks old,
    and no worker must die of that."""

    stale_after: float = STALE_HEARTBEAT
    _seen: dict[str, tuple[datetime, float]] = field(default_factory=dict)

    def hung(
        self, records: Iterable[AgentRecord], now: float, running: Callable[[AgentRecord], bool]
    ) -> list[AgentRecord]:
        found = []
        for record in records:
            if record.role == "coordinator" or not running(record):
                self._seen.pop(record.name, None)
                continue
            beat, since = self._seen.get(record.name, (None, now))
            if beat != record.heartbeat_at:  # it moved: watch it from now
                self._seen[record.name] = (record.heartbeat_at, now)
                continue
            if now - since > self.stale_after:
                found.append(record)
                self._seen.pop(record.name, None)  # judged once; a new process starts anew
        return found


def agent_role_of(name: str) -> AgentRole:
    """The role an agent's name says (`agent_name` made it): `tester-x`, `explorer`, ..."""
    if name == "explorer":
        return "explorer"
    return "tester" if name.startswith("tester-") else "builder"


def agent_role(task: Task) -> AgentRole:
    if task.role == "tester":
        return "tester"
    return "explorer" if task.role == "explorer" else "builder"


def agent_name(task: Task) -> str:
    """One worker per module: `builder-storage`, `tester-tests`, `explorer`."""
    if task.role == "explorer":
        return "explorer"
    module = re.sub(r"[^a-z0-9_-]+", "-", (task.module or f"task{task.id}").lower()).strip("-")
    prefix = "tester" if task.role == "tester" else "builder"
    return f"{prefix}-{module or task.id}"[:60]

"""Building a set of tasks: each handed to its module's worker when its dependencies are done,
until all are done or given up. What to do is `decisions.decide`; this module only does it
(task files, worker processes, messages) and waits between looks."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from coordinator.decisions import Abandon, HeartbeatWatch, Step, agent_name, agent_role, decide
from coordinator.given_up import given_up
from coordinator.outcomes import BuildStalled, TicksExhausted
from coordinator.runners import Runner
from protocol import (
    COORDINATOR,
    Mailbox,
    Task,
    TaskStatus,
    TaskStore,
    TransitionConflict,
    events,
    make_message,
)
from protocol.agents import AgentRole, is_running, read_agents
from protocol.events import AgentChanged
from protocol.messages import TraceRef

S = TaskStatus


@dataclass
class Build:
    store: TaskStore
    runner: Runner
    mailbox: Mailbox
    team_id: str
    workers: int
    say: Callable[[str, str], None]
    # Handle the inbox, raise `TeamStopped` on a stop, wait out a model server that is down.
    checkpoint: Callable[[], None]
    # Handle the inbox for up to this many seconds (returns early when a message comes).
    serve: Callable[[float], object]
    tick: float = 0.3
    max_ticks: int | None = None  # a bound for tests: `TicksExhausted` after that many looks
    spawned: dict[str, AgentRole] = field(default_factory=dict)
    heartbeats: HeartbeatWatch = field(default_factory=HeartbeatWatch)
    trace: TraceRef | None = None  # where the workers' task spans hang (the iteration)

    def run(self, scope: set[int]) -> None:
        ticks = 0
        while True:
            self.checkpoint()
            self._end_hung_workers()
            step = decide(self.store.all(), scope, self.runner.alive, workers=self.workers)
            self.apply(step)
            if step.finished:
                return
            if step.stalled:
                raise BuildStalled(step.stalled)
            ticks += 1
            if self.max_ticks is not None and ticks >= self.max_ticks:
                raise TicksExhausted(f"the build did not finish within {ticks} ticks")
            # After a change, look again at once; otherwise wait for a message or a tick.
            self.serve(0.0 if step.changes and not step.start else self.tick)

    def apply(self, step: Step) -> None:
        """Each change is a compare-and-set: one that another process beat us to is dropped,
        and the next look sees why."""
        if step.promote:
            self.store.promote_ready()
        for failure in step.fail:
            who = failure.owner or "nobody (the task had no owner)"
            if self._move(failure.task_id, failure.status, S.FAILED, f"{who} died", failure.owner):
                self.say("fail", f"{who} died working on task {failure.task_id}")
                if failure.owner:
                    self._died(failure.owner, failure.task_id)
        for task_id in step.retry:
            self._move(task_id, S.FAILED, S.READY, "retry")
        abandoned = [a for a in step.abandon if self._move(a.task_id, a.status, S.ABANDONED, a.why)]
        if abandoned:
            self._say_given_up(abandoned)
        tasks = [self.store.get(task_id) for task_id in step.start]
        self._start_workers(tasks)
        for task in tasks:
            self._dispatch(task)

    def _move(
        self,
        task_id: int,
        expected: TaskStatus,
        new: TaskStatus,
        note: str,
        owner: str | None = None,
    ) -> bool:
        try:
            self.store.transition(
                task_id, expected, new, by=COORDINATOR, note=note, expected_owner=owner
            )
        except TransitionConflict:
            return False
        return True

    def _say_given_up(self, abandoned: list[Abandon]) -> None:
        """Each task given up for its own failures, with why and what it takes with it; then
        each task skipped because of one."""
        lost = {g.task_id: g for g in given_up(self.store.all())}
        for abandon in abandoned:
            item = lost.get(abandon.task_id)
            if item is None:
                self.say("fail", f"task {abandon.task_id} skipped: {abandon.why}")
                continue
            text = f"task {item.task_id} abandoned: {item.why}"
            if item.skipped:
                text += f"; skipped because of it: {', '.join(map(str, item.skipped))}"
            self.say("fail", text)

    def _end_hung_workers(self) -> None:
        layout = self.store.layout
        for record in self.heartbeats.hung(read_agents(layout), time.monotonic(), is_running):
            self.say("fail", f"{record.name} stopped heartbeating: ending it")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(record.pid, signal.SIGKILL)
            self._died(record.name, record.current_task)

    def _died(self, name: str, task_id: int | None) -> None:
        events.emit(
            self.store.layout.events_jsonl,
            AgentChanged(name=name, state="dead", role=self.spawned.get(name, ""), task_id=task_id),
        )

    def _start_workers(self, tasks: list[Task]) -> None:
        """Start the missing workers of a batch all at once, then wait for each: a spawn
        counts only when the worker registered (DESIGN §2)."""
        missing: dict[str, AgentRole] = {}
        for task in tasks:
            name = agent_name(task)
            if name not in missing and not self.runner.alive(name):
                missing[name] = agent_role(task)
        for name, role in missing.items():
            self.say("info", f"starting {name}")
            self.runner.start(name, role)
            self.spawned[name] = role
        for name in missing:
            self.runner.wait_ready(name)

    def _dispatch(self, task: Task) -> None:
        name = agent_name(task)
        try:
            claimed = self.store.claim(task.id, name)
        except TransitionConflict:
            return
        assignment = claimed.assignment(self.trace)
        self.mailbox.send(
            make_message(assignment, team=self.team_id, sender=COORDINATOR, recipient=name)
        )
        self.say("task", f"task {task.id} -> {name}: {task.title}")

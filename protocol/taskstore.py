"""The task files on disk: `.agents/tasks/0001.json` ..., changed only under `tasks/.lock`.

Every status change is a compare-and-set (expected status -> new status) made while holding the
lock, so two processes can never both claim a task (DESIGN §5).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from protocol import events
from protocol.atomic import atomic_write_json
from protocol.events import TaskChanged
from protocol.layout import Layout
from protocol.locks import file_lock
from protocol.messages import ErrorCategory
from protocol.tasks import (
    ALLOWED_MOVES,
    Task,
    TaskEvent,
    TaskResult,
    TaskStatus,
    check_dag,
    ready_ids,
)

LOCK_TIMEOUT = 30.0


class TaskFileError(Exception):
    """A task file that cannot be read; the message names the file."""


class UnknownTask(KeyError):
    def __str__(self) -> str:
        return f"there is no task {self.args[0]}"


class TransitionConflict(Exception):
    """The task was not in the expected status: somebody else moved it first."""

    def __init__(
        self,
        task: Task,
        expected: TaskStatus,
        expected_owner: str | None = None,
        expected_attempt: int | None = None,
    ) -> None:
        owner = f" (owner {task.owner})" if task.owner else ""
        wanted = expected.value
        if expected_owner is not None:
            wanted += f" for {expected_owner}"
        if expected_attempt is not None:
            wanted += f" at attempt {expected_attempt}"
        super().__init__(
            f"task {task.id} is {task.status.value}{owner} at attempt {task.attempt}, not {wanted}"
        )
        self.task = task
        self.expected = expected


class IllegalTransition(ValueError):
    def __init__(self, task_id: int, old: TaskStatus, new: TaskStatus) -> None:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_MOVES[old])) or "nothing"
        super().__init__(
            f"task {task_id} cannot move from {old.value} to {new.value} (allowed: {allowed})"
        )


def _validated(task: Task, **update: Any) -> Task:
    """`task` with `update` applied and checked (model_copy would skip validation, and a bad
    owner name written to disk would make the whole store unreadable)."""
    return Task.model_validate({**task.model_dump(), **update})


class TaskStore:
    def __init__(self, layout: Layout, *, fsync: bool = True) -> None:
        self.layout = layout
        self.fsync = fsync
        layout.tasks_dir.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold `tasks/.lock`: reads inside see no change half made by another process."""
        with file_lock(self.layout.tasks_lock, timeout=LOCK_TIMEOUT):
            yield

    # --- reading -------------------------------------------------------------------------

    def get(self, task_id: int) -> Task:
        path = self.layout.task_file(task_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UnknownTask(task_id) from None
        except OSError as exc:  # permissions, a directory in its place, an I/O error
            raise TaskFileError(f"{path} cannot be read: {exc.strerror or exc}") from None
        try:
            task = Task.model_validate_json(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "file"
            raise TaskFileError(
                f"{path} is not a valid task file: {where}: {first['msg']}"
            ) from None
        if task.id != task_id:
            raise TaskFileError(f"{path} holds task {task.id}; its name says {task_id}")
        return task

    def ids(self) -> list[int]:
        ids = []
        for name in os.listdir(self.layout.tasks_dir):
            stem = name.removesuffix(".json")
            # Only the canonical name counts: "01.json" must not be a second task 1.
            if stem.isdigit() and name == self.layout.task_file(int(stem)).name:
                ids.append(int(stem))
        return sorted(ids)

    def all(self) -> list[Task]:
        """Every task, by id; raises `TaskFileError` naming the first bad file."""
        return [self.get(task_id) for task_id in self.ids()]

    # --- writing -------------------------------------------------------------------------

    def _write(self, task: Task) -> None:
        atomic_write_json(self.layout.task_file(task.id), task, fsync=self.fsync)

    def add(self, tasks: Sequence[Task], *, by: str = "coordinator") -> list[Task]:
        """Add new tasks to the DAG. The whole DAG (old and new) is checked first; nothing
        is written when it is bad. Files are written dependencies first."""
        with self.locked():
            existing = self.all()
            taken = {task.id for task in existing} & {task.id for task in tasks}
            if taken:
                raise ValueError(f"task ids already exist: {', '.join(map(str, sorted(taken)))}")
            order = check_dag([*existing, *tasks])
            new = {task.id: task for task in tasks}
            written = []
            for task_id in order:
                if task_id in new:
                    # Every task starts pending, unowned, at attempt 1: a caller cannot add a
                    # task that is already "done" and so unlock its dependants.
                    event = TaskEvent(status=TaskStatus.PENDING, by=by, attempt=1, note="created")
                    task = _validated(
                        new[task_id],
                        status=TaskStatus.PENDING,
                        owner=None,
                        attempt=1,
                        history=[event],
                        result=None,
                    )
                    self._write(task)
                    self._changed(task, event, created=True)
                    written.append(task)
            return sorted(written, key=lambda t: t.id)

    def next_id(self) -> int:
        ids = self.ids()
        return ids[-1] + 1 if ids else 1

    def transition(
        self,
        task_id: int,
        expected: TaskStatus,
        new: TaskStatus,
        *,
        by: str,
        owner: str | None = None,
        note: str = "",
        result: TaskResult | None = None,
        expected_owner: str | None = None,
        expected_attempt: int | None = None,
        costs_attempt: bool = True,
        category: ErrorCategory | None = None,
    ) -> Task:
        """Move a task from `expected` to `new` atomically, or raise `TransitionConflict`.

        With `expected_owner` / `expected_attempt`, the task must also still belong to that
        agent at that attempt: a worker acting on a stale assignment changes nothing.
        Moving `failed -> ready` starts a new attempt and clears the owner.
        """
        if new not in ALLOWED_MOVES[expected]:
            raise IllegalTransition(task_id, expected, new)
        with self.locked():
            task = self.get(task_id)
            stale_owner = expected_owner is not None and task.owner != expected_owner
            stale_attempt = expected_attempt is not None and task.attempt != expected_attempt
            if task.status != expected or stale_owner or stale_attempt:
                raise TransitionConflict(task, expected, expected_owner, expected_attempt)
            return self._move(
                task,
                new,
                by=by,
                owner=owner,
                note=note,
                result=result,
                costs_attempt=costs_attempt,
                category=category,
            )

    def _move(
        self,
        task: Task,
        new: TaskStatus,
        *,
        by: str,
        owner: str | None = None,
        note: str = "",
        result: TaskResult | None = None,
        costs_attempt: bool = True,
        category: ErrorCategory | None = None,
    ) -> Task:
        update: dict[str, Any] = {"status": new}
        if new == TaskStatus.READY and task.status == TaskStatus.FAILED:
            update.update(attempt=task.attempt + 1, owner=None)
        if owner is not None:
            update["owner"] = owner
        if result is not None:
            update["result"] = result.model_dump()
        attempt = update.get("attempt", task.attempt)
        event = TaskEvent(
            status=new,
            by=by,
            attempt=attempt,
            note=note,
            costs_attempt=costs_attempt,
            category=category,
        )
        update["history"] = [*task.history, event]
        moved = _validated(task, **update)
        self._write(moved)
        self._changed(moved, event)
        return moved

    def _changed(self, task: Task, event: TaskEvent, created: bool = False) -> None:
        # A new task's event names it, so a view of the log needs no task file.
        named: dict[str, Any] = (
            {"title": task.title, "module": task.module, "role": task.role,
             "depends_on": task.depends_on}
            if created
            else {}
        )  # fmt: skip
        events.emit(
            self.layout.events_jsonl,
            TaskChanged(
                **named,
                task_id=task.id,
                status=task.status.value,
                attempt=task.attempt,
                owner=task.owner,
                by=event.by,
                note=events.short(event.note, 300),
                costs_attempt=event.costs_attempt,
                category=event.category.value if event.category else "",
            ),
        )

    def claim(self, task_id: int, owner: str) -> Task:
        """`ready -> assigned` with `owner`; raises `TransitionConflict` when already taken."""
        return self.transition(
            task_id, TaskStatus.READY, TaskStatus.ASSIGNED, by=owner, owner=owner
        )

    def promote_ready(self, *, by: str = "coordinator") -> list[Task]:
        """Move every pending task whose dependencies are done to `ready`."""
        with self.locked():
            tasks = self.all()
            by_id = {task.id: task for task in tasks}
            return [
                self._move(by_id[task_id], TaskStatus.READY, by=by, note="dependencies done")
                for task_id in ready_ids(tasks)
            ]

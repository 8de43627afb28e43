"""Checking the task files before a team (re)starts on them: every file readable, the tasks a
DAG, every status one that can still move. A problem names the file, what is wrong and what
to do, so that `team resume` can refuse within seconds instead of waiting forever."""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from protocol import Layout, Task, TaskFileError, TaskStatus, TaskStore
from protocol.plan import load_plan

S = TaskStatus


@dataclass(frozen=True)
class TaskProblem:
    file: Path
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}; fix: {self.fix}"


def read_tasks(store: TaskStore) -> tuple[list[Task], list[TaskProblem]]:
    """Every readable task, and a problem for each task file that is not."""
    tasks, problems = [], []
    for task_id in store.ids():
        path = store.layout.task_file(task_id)
        try:
            tasks.append(store.get(task_id))
        except TaskFileError as exc:
            fix = (
                "repair it (`team status` lists what the other task files hold), or move it "
                "out of the tasks directory and remove its id from the depends_on of others"
            )
            problems.append(TaskProblem(path, str(exc).removeprefix(f"{path} "), fix))
    return tasks, problems


def dag_problems(tasks: list[Task], file_of: dict[int, Path]) -> list[TaskProblem]:
    """Each way the readable tasks cannot be built: a dependency on a missing task or on
    itself, a cycle, a task in progress with no owner (nobody would ever finish it)."""
    ids = {t.id for t in tasks}
    by_id = {t.id: t for t in tasks}
    problems = []
    for task in tasks:
        where = file_of[task.id]
        if task.id in task.depends_on:
            problems.append(
                TaskProblem(where, "depends on itself", f"remove {task.id} from its depends_on")
            )
        for missing in sorted(set(task.depends_on) - ids):
            problems.append(
                TaskProblem(
                    where,
                    f"depends on task {missing}, which does not exist",
                    f"remove {missing} from its depends_on, or add the task it meant",
                )
            )
        unfinished = [
            d for d in task.depends_on if d in by_id and d != task.id and by_id[d].status != S.DONE
        ]
        if task.status in (S.READY, S.ASSIGNED, S.RUNNING) and unfinished:
            problems.append(
                TaskProblem(
                    where,
                    f"is {task.status.value} but depends on task "
                    f"{', '.join(map(str, unfinished))}, which is not done",
                    'set its "status" to "pending" (it then waits for its dependencies)',
                )
            )
        if task.status in (S.ASSIGNED, S.RUNNING) and task.owner is None:
            problems.append(
                TaskProblem(
                    where,
                    f"is {task.status.value} but has no owner, so nobody will ever finish it",
                    'set its "status" to "failed" (it is then retried)',
                )
            )
    graph = {t.id: {d for d in t.depends_on if d in ids and d != t.id} for t in tasks}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle: list[int] = list(reversed(exc.args[1]))[:-1]
        path = " -> ".join(map(str, [*cycle, cycle[0]]))
        problems.append(
            TaskProblem(
                file_of[cycle[0]],
                f"is in a dependency cycle: {path} (each depends on the next)",
                "remove one of these dependencies from the depends_on of its task file",
            )
        )
    return problems


def plan_problems(layout: Layout) -> list[TaskProblem]:
    """plan.json, when there is one, must be a plan: the coordinator builds from it."""
    path = layout.plan_json
    try:
        load_plan(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        detail = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
        fix = (
            "repair it, or move it away (with the tasks directory) so that the team plans "
            "anew: `team up` again in a finished workspace does that for you"
        )
        return [TaskProblem(path, f"is not a valid plan: {detail}", fix)]
    return []


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def task_problems(store: TaskStore) -> list[TaskProblem]:
    tasks, problems = read_tasks(store)
    file_of = {t.id: store.layout.task_file(t.id) for t in tasks}
    return plan_problems(store.layout) + problems + dag_problems(tasks, file_of)


def report(problems: list[TaskProblem]) -> str:
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    lines = [f"the task files cannot be built ({count}):"]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines)

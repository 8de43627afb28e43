"""What a build gave up, and what it took with it: each task abandoned for its own failures,
why (its last failure), and the tasks never built because they depended on it. Pure functions
of the task list, for the pane, team.json and the team's final reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from protocol.tasks import Task, TaskStatus

S = TaskStatus


@dataclass(frozen=True)
class GivenUp:
    task_id: int
    title: str
    why: str  # its last failure, "no_progress: no progress in 2 rounds ...", or the abandon note
    skipped: tuple[int, ...]  # never built because they depend on it, directly or not


def given_up(tasks: Sequence[Task], scope: Iterable[int] | None = None) -> list[GivenUp]:
    """The tasks (of `scope`, all when None) abandoned for their own failures, each with the
    abandoned tasks that never ran because of it."""
    in_scope = {t.id for t in tasks} if scope is None else set(scope)
    abandoned = {t.id: t for t in tasks if t.status == S.ABANDONED and t.id in in_scope}
    roots = {i: t for i, t in abandoned.items() if not _skipped(t, abandoned)}
    skipped: dict[int, set[int]] = {i: set() for i in roots}
    for task in abandoned.values():
        if task.id not in roots:
            for root in _roots_of(task, abandoned, roots):
                skipped[root].add(task.id)
    return [
        GivenUp(i, roots[i].title, _why(roots[i]), tuple(sorted(skipped[i]))) for i in sorted(roots)
    ]


def describe(lost: Sequence[GivenUp], limit: int = 300) -> str:
    """One line per given-up task: `task 1 (title) was given up: why; skipped because of it:
    tasks 2, 3`."""
    parts = []
    for item in lost:
        text = f"task {item.task_id} ({item.title}) was given up: {item.why[:limit]}"
        if item.skipped:
            text += f"; skipped because of it: {_tasks(item.skipped)}"
        parts.append(text)
    return "; ".join(parts)


def nothing_built(lost: Sequence[GivenUp]) -> str:
    """Why a workspace with none of its planned files is empty, for the team's final reason."""
    first = lost[0].task_id if lost else 1
    return (
        f"nothing was built: {describe(lost)}; `team trace --task {first}` shows what the model did"
    )


def _tasks(ids: Sequence[int]) -> str:
    return ("task " if len(ids) == 1 else "tasks ") + ", ".join(map(str, ids))


def _skipped(task: Task, abandoned: dict[int, Task]) -> bool:
    """Abandoned without ever failing, because a dependency was given up: it never ran."""
    failed = any(e.status == S.FAILED for e in task.history)
    return not failed and any(d in abandoned for d in task.depends_on)


def _roots_of(task: Task, abandoned: dict[int, Task], roots: dict[int, Task]) -> set[int]:
    found: set[int] = set()
    seen: set[int] = set()
    todo = [d for d in task.depends_on if d in abandoned]
    while todo:
        dep = todo.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in roots:
            found.add(dep)
        else:
            todo += [d for d in abandoned[dep].depends_on if d in abandoned]
    return found


def _why(task: Task) -> str:
    failures = [e for e in task.history if e.status == S.FAILED]
    abandon = next((e for e in reversed(task.history) if e.status == S.ABANDONED), None)
    gave_up = abandon.note if abandon and abandon.note else "abandoned"
    if not failures:
        return gave_up
    return f"{gave_up}; its last failure: {failures[-1].note}"

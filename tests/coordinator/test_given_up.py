"""What a build gave up and what it took with it: pure functions of task lists."""

from __future__ import annotations

from coordinator.given_up import GivenUp, describe, given_up, nothing_built
from protocol.tasks import Task, TaskEvent, TaskStatus

S = TaskStatus


def failed_then_abandoned(
    task_id: int, title: str, note: str, depends_on: tuple[int, ...] = ()
) -> Task:
    history = [TaskEvent(status=S.FAILED, by="builder-x", attempt=a, note=note) for a in (1, 2, 3)]
    gave_up = "gave up after 3 attempts"
    history.append(TaskEvent(status=S.ABANDONED, by="coordinator", attempt=3, note=gave_up))
    return Task(
        id=task_id, title=title, status=S.ABANDONED, depends_on=list(depends_on), history=history
    )


def skipped(task_id: int, depends_on: list[int]) -> Task:
    note = f"its dependency {depends_on[0]} was given up"
    history = [TaskEvent(status=S.ABANDONED, by="coordinator", attempt=1, note=note)]
    return Task(
        id=task_id, title=f"t{task_id}", status=S.ABANDONED, depends_on=depends_on, history=history
    )


def test_a_task_given_up_carries_its_last_failure_and_every_task_skipped_after_it() -> None:
    tasks = [
        failed_then_abandoned(1, "models", "no_progress: no progress in 2 rounds"),
        skipped(2, [1]),
        skipped(3, [2]),  # skipped because 2 was, which was because of 1
        Task(id=4, title="docs", status=S.DONE),
    ]
    assert given_up(tasks) == [
        GivenUp(
            1,
            "models",
            "gave up after 3 attempts; its last failure: no_progress: no progress in 2 rounds",
            (2, 3),
        ),
    ]


def test_a_task_that_failed_on_its_own_is_given_up_even_with_a_dependency_given_up() -> None:
    tasks = [
        failed_then_abandoned(1, "models", "lint: x"),
        failed_then_abandoned(2, "store", "timeout: y", depends_on=(1,)),
    ]
    assert [g.task_id for g in given_up(tasks)] == [1, 2]
    assert given_up(tasks, scope={2})[0].skipped == ()


def test_the_reason_names_each_task_given_up_and_those_skipped() -> None:
    lost = [GivenUp(1, "models", "gave up after 3 attempts", (2, 3)), GivenUp(4, "tests", "x", ())]
    assert describe(lost) == (
        "task 1 (models) was given up: gave up after 3 attempts; skipped because of it: "
        "tasks 2, 3; task 4 (tests) was given up: x"
    )
    assert nothing_built(lost).startswith("nothing was built: task 1 (models) was given up")
    assert "team trace --task 1" in nothing_built(lost)

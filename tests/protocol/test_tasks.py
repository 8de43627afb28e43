from __future__ import annotations

import pytest

from protocol import DagError, Task, TaskStatus, check_dag, ready_ids


def task(task_id: int, *deps: int, status: TaskStatus = TaskStatus.PENDING) -> Task:
    return Task(id=task_id, title=f"task {task_id}", depends_on=list(deps), status=status)


def test_dependencies_come_first_in_the_order() -> None:
    order = check_dag([task(3, 1, 2), task(2, 1), task(1)])
    assert order.index(1) < order.index(2) < order.index(3)


def test_a_cycle_is_rejected_with_its_ids_in_order() -> None:
    with pytest.raises(DagError, match=r"dependency cycle: 1 -> 2 -> 3 -> 1"):
        check_dag([task(1, 2), task(2, 3), task(3, 1), task(4)])


def test_a_self_dependency_is_rejected_naming_the_task() -> None:
    with pytest.raises(DagError, match=r"tasks depend on themselves: 2$"):
        check_dag([task(1), task(2, 2)])


def test_a_missing_dependency_is_rejected_naming_both_ids() -> None:
    with pytest.raises(DagError, match=r"do not exist: task 2 -> 7, 9"):
        check_dag([task(1), task(2, 1, 9, 7)])


def test_a_duplicate_id_is_rejected() -> None:
    with pytest.raises(DagError, match="task id 1 is used twice"):
        check_dag([task(1), task(1)])


def test_ready_means_pending_with_every_dependency_done() -> None:
    tasks = [
        task(1, status=TaskStatus.DONE),
        task(2, status=TaskStatus.RUNNING),
        task(3, 1),
        task(4, 1, 2),
        task(5),
        task(6, status=TaskStatus.READY),
    ]
    assert ready_ids(tasks) == [3, 5]

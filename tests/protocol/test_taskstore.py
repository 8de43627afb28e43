from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from protocol import (
    DagError,
    IllegalTransition,
    Task,
    TaskFileError,
    TaskStatus,
    TaskStore,
    TransitionConflict,
    UnknownTask,
)
from protocol.tasks import TaskResult
from tests.conftest import TeamDir
from tests.processes import finish, start, wait_for_line

S = TaskStatus
PROCS = Path(__file__).parent / "procs"


@pytest.fixture
def store(team_dir: TeamDir) -> TaskStore:
    return TaskStore(team_dir.layout)


def tasks(*specs: tuple[int, list[int]]) -> list[Task]:
    return [Task(id=i, title=f"t{i}", depends_on=deps) for i, deps in specs]


def test_tasks_are_numbered_files_in_the_tasks_directory(store: TaskStore) -> None:
    store.add(tasks((1, []), (2, [1])))
    assert sorted(os.listdir(store.layout.tasks_dir)) == [".lock", "0001.json", "0002.json"]
    saved = json.loads(store.layout.task_file(2).read_text())
    assert saved["depends_on"] == [1]
    assert saved["status"] == "pending"
    assert saved["history"][0]["note"] == "created"


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (tasks((1, [2]), (2, [1])), "1 -> 2 -> 1"),
        (tasks((1, [1])), "themselves: 1"),
        (tasks((1, []), (2, [5])), "task 2 -> 5"),
    ],
    ids=["cycle", "self", "missing"],
)
def test_a_bad_dag_writes_nothing(store: TaskStore, bad: list[Task], named: str) -> None:
    with pytest.raises(DagError, match=named):
        store.add(bad)
    assert store.ids() == []


def test_new_tasks_are_checked_against_the_existing_dag(store: TaskStore) -> None:
    store.add(tasks((1, []), (2, [1])))
    store.add(tasks((3, [2])))
    with pytest.raises(DagError, match="task 4 -> 9"):
        store.add(tasks((4, [9])))
    with pytest.raises(ValueError, match="already exist: 2"):
        store.add(tasks((2, [])))
    assert store.ids() == [1, 2, 3]
    assert store.next_id() == 4


def test_the_life_of_a_task_with_one_retry(store: TaskStore) -> None:
    store.add(tasks((1, [])))
    [promoted] = store.promote_ready()
    assert promoted.status == S.READY
    store.claim(1, "builder-a")
    store.transition(1, S.ASSIGNED, S.RUNNING, by="builder-a")
    store.transition(1, S.RUNNING, S.FAILED, by="coordinator", note="tests fail")
    retried = store.transition(1, S.FAILED, S.READY, by="coordinator")
    assert (retried.attempt, retried.owner) == (2, None)
    store.claim(1, "builder-b")
    store.transition(1, S.ASSIGNED, S.RUNNING, by="builder-b")
    done = store.transition(1, S.RUNNING, S.DONE, by="builder-b", result=TaskResult(files=["a.py"]))
    assert done.owner == "builder-b"
    assert done.result == TaskResult(files=["a.py"])
    assert [(e.status, e.attempt) for e in done.history] == [
        (S.PENDING, 1), (S.READY, 1), (S.ASSIGNED, 1), (S.RUNNING, 1), (S.FAILED, 1),
        (S.READY, 2), (S.ASSIGNED, 2), (S.RUNNING, 2), (S.DONE, 2),
    ]  # fmt: skip
    assert store.get(1) == done


def test_a_task_becomes_ready_only_when_its_dependencies_are_done(store: TaskStore) -> None:
    store.add(tasks((1, []), (2, [1]), (3, [1, 2])))
    assert [t.id for t in store.promote_ready()] == [1]
    assert store.promote_ready() == []
    store.claim(1, "w")
    store.transition(1, S.ASSIGNED, S.RUNNING, by="w")
    store.transition(1, S.RUNNING, S.DONE, by="w")
    assert [t.id for t in store.promote_ready()] == [2]


def test_a_compare_and_set_on_a_stale_status_is_a_conflict(store: TaskStore) -> None:
    store.add(tasks((1, [])))
    store.promote_ready()
    store.claim(1, "builder-a")
    with pytest.raises(
        TransitionConflict, match=r"task 1 is assigned \(owner builder-a\) at attempt 1, not ready"
    ):
        store.claim(1, "builder-b")
    assert store.get(1).owner == "builder-a"


def test_status_never_moves_backwards(store: TaskStore) -> None:
    store.add(tasks((1, [])))
    with pytest.raises(IllegalTransition, match="cannot move from done to running"):
        store.transition(1, S.DONE, S.RUNNING, by="x")
    with pytest.raises(IllegalTransition, match="from pending to done"):
        store.transition(1, S.PENDING, S.DONE, by="x")


def test_an_unknown_task_is_named(store: TaskStore) -> None:
    with pytest.raises(UnknownTask, match="there is no task 42"):
        store.claim(42, "w")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{broken", "not a valid task file"),
        (b'{"id": 1, "title": "x", "status": "sleeping"}', "status"),
        (b'{"id": 2, "title": "x"}', "holds task 2; its name says 1"),
    ],
    ids=["not-json", "bad-status", "wrong-id"],
)
def test_a_damaged_task_file_is_an_error_naming_the_file(
    store: TaskStore, content: bytes, message: str
) -> None:
    store.layout.task_file(1).write_bytes(content)
    with pytest.raises(TaskFileError, match=message) as caught:
        store.all()
    assert "0001.json" in str(caught.value)


def test_eight_processes_racing_claim_each_of_100_tasks_exactly_once(
    store: TaskStore, tmp_path: Path
) -> None:
    store.add([Task(id=i, title=f"t{i}") for i in range(1, 101)])
    store.promote_ready()
    go = tmp_path / "go"
    claimers = [start(PROCS / "claimer.py", store.layout.workspace, f"c{n}", go) for n in range(8)]
    for claimer in claimers:
        wait_for_line(claimer, "started")
    go.touch()
    won = {f"c{n}": json.loads(finish(claimer)) for n, claimer in enumerate(claimers)}

    every_claim = [task_id for ids in won.values() for task_id in ids]
    assert sorted(every_claim) == list(range(1, 101)), "each task claimed exactly once"
    for name, ids in won.items():
        for task_id in ids:
            assert store.get(task_id).owner == name
    assert sum(1 for ids in won.values() if ids) > 1, "the claimers did not actually race"


def test_an_invalid_owner_is_refused_and_the_store_stays_readable(store: TaskStore) -> None:
    store.add(tasks((1, [])))
    store.promote_ready()
    with pytest.raises(ValueError, match="owner"):
        store.claim(1, "Builder A!")
    assert store.get(1).status == S.READY
    assert len(store.all()) == 1


def test_added_tasks_always_start_pending_and_unowned(store: TaskStore) -> None:
    store.add(
        [
            Task(id=1, title="t1"),
            Task(id=2, title="t2", status=S.DONE, owner="w", attempt=3),
            Task(id=3, title="t3", depends_on=[2]),
        ]
    )
    second = store.get(2)
    assert (second.status, second.owner, second.attempt) == (S.PENDING, None, 1)
    assert [t.id for t in store.promote_ready()] == [1, 2]


def test_only_canonical_file_names_are_tasks(store: TaskStore) -> None:
    store.add(tasks((1, [])))
    (store.layout.tasks_dir / "01.json").write_text(store.layout.task_file(1).read_text())
    (store.layout.tasks_dir / "0002.json.bak").write_text("{}")
    assert store.ids() == [1]


def test_a_move_for_a_stale_owner_or_attempt_changes_nothing(store: TaskStore) -> None:
    store.add(tasks((1, [])))
    store.promote_ready()
    store.claim(1, "builder-b")
    with pytest.raises(TransitionConflict, match="not assigned for builder-a"):
        store.transition(1, S.ASSIGNED, S.RUNNING, by="builder-a", expected_owner="builder-a")
    with pytest.raises(TransitionConflict, match="at attempt 2"):
        store.transition(
            1, S.ASSIGNED, S.RUNNING, by="builder-b", expected_owner="builder-b", expected_attempt=2
        )
    assert store.get(1).status == S.ASSIGNED
    assert store.get(1).owner == "builder-b"

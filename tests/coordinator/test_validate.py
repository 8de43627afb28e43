"""The task files checked before a team (re)starts: each problem names the file and the fix."""

from __future__ import annotations

import json

from coordinator.validate import report, task_problems
from protocol import Task, TaskStatus, TaskStore
from tests.conftest import TeamDir


def write(store: TaskStore, tasks: list[Task]) -> None:
    for task in tasks:  # as a user's editor would: straight to the file, no checks
        store.layout.task_file(task.id).write_text(task.model_dump_json())


def test_good_tasks_have_no_problems(team_dir: TeamDir) -> None:
    store = TaskStore(team_dir.layout)
    store.add([Task(id=1, title="a"), Task(id=2, title="b", depends_on=[1])])
    assert task_problems(store) == []


def test_a_dependency_on_a_missing_task_names_the_file_and_the_fix(team_dir: TeamDir) -> None:
    store = TaskStore(team_dir.layout)
    write(store, [Task(id=1, title="a"), Task(id=2, title="b", depends_on=[1, 99])])
    [problem] = task_problems(store)
    assert problem.file == team_dir.layout.task_file(2)
    assert "task 99, which does not exist" in problem.problem
    assert "remove 99 from its depends_on" in problem.fix


def test_a_cycle_is_named_with_its_tasks(team_dir: TeamDir) -> None:
    store = TaskStore(team_dir.layout)
    write(
        store,
        [
            Task(id=1, title="a", depends_on=[3]),
            Task(id=2, title="b", depends_on=[1]),
            Task(id=3, title="c", depends_on=[2]),
        ],
    )
    [problem] = task_problems(store)
    assert "dependency cycle" in problem.problem
    assert all(str(i) in problem.problem for i in (1, 2, 3))


def test_unreadable_files_and_stuck_statuses_are_each_reported(team_dir: TeamDir) -> None:
    store = TaskStore(team_dir.layout)
    write(store, [Task(id=1, title="a", status=TaskStatus.RUNNING), Task(id=3, title="c")])
    team_dir.layout.task_file(2).write_text("{not json")
    team_dir.layout.task_file(4).write_text(json.dumps({"id": 5, "title": "x"}))
    team_dir.layout.task_file(5).mkdir()  # a directory where a file should be
    problems = task_problems(store)
    text = report(problems)
    assert len(problems) == 4, text
    assert "0001.json: is running but has no owner" in text
    assert "0002.json: is not a valid task file" in text
    assert "0004.json holds task 5" in text or "0004.json: holds task 5" in text
    assert "0005.json: cannot be read" in text
    assert text.count("fix:") == 4


def test_a_damaged_plan_and_a_ready_task_with_unfinished_dependencies_are_reported(
    team_dir: TeamDir,
) -> None:
    store = TaskStore(team_dir.layout)
    write(store, [Task(id=1, title="a"), Task(id=2, title="b", depends_on=[1], status="ready")])
    team_dir.layout.plan_json.write_text('{"modules": "no"')
    text = report(task_problems(store))
    assert "plan.json: is not a valid plan" in text
    assert "0002.json: is ready but depends on task 1, which is not done" in text

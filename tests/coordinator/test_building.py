"""The build loop on real task files: it stops with a report when nothing can move, and a
bound on its looks (`max_ticks`) keeps a test from waiting on it forever."""

from __future__ import annotations

import os

import pytest

from coordinator.building import Build
from coordinator.outcomes import BuildStalled, TicksExhausted
from coordinator.runners import SubprocessRunner
from protocol import Task, TaskStatus, TaskStore
from protocol.agents import AgentRecord
from tests.conftest import TeamDir


def build(team_dir: TeamDir, said: list[str], max_ticks: int | None = None) -> Build:
    layout = team_dir.layout
    return Build(
        TaskStore(layout),
        SubprocessRunner(layout),
        team_dir.mailbox(),
        team_dir.team_id,
        workers=2,
        say=lambda kind, text: said.append(f"{kind} {text}"),
        checkpoint=lambda: None,
        serve=lambda seconds: None,
        tick=0.0,
        max_ticks=max_ticks,
    )


def test_a_dependency_that_can_never_be_done_stops_the_build_with_a_report(
    team_dir: TeamDir,
) -> None:
    store = TaskStore(team_dir.layout)
    store.add([Task(id=1, title="a")])
    store.promote_ready()
    store.claim(1, "builder-a")
    store.transition(1, TaskStatus.ASSIGNED, TaskStatus.RUNNING, by="builder-a")
    store.transition(1, TaskStatus.RUNNING, TaskStatus.FAILED, by="builder-a")
    store.add([Task(id=2, title="b", depends_on=[1])])
    said: list[str] = []
    with pytest.raises(BuildStalled, match=r"task 2 waits for task 1 \(failed\)"):
        build(team_dir, said).run({2})  # task 1 is out of scope: nobody will retry it


def test_a_dead_owner_on_the_last_attempt_gives_the_task_up_and_its_dependant_with_it(
    team_dir: TeamDir,
) -> None:
    store = TaskStore(team_dir.layout)
    store.add([Task(id=1, title="a"), Task(id=2, title="b", depends_on=[1])])
    store.promote_ready()
    for _ in range(2):  # two attempts failed already
        store.claim(1, "builder-a")
        store.transition(1, TaskStatus.ASSIGNED, TaskStatus.RUNNING, by="builder-a")
        store.transition(1, TaskStatus.RUNNING, TaskStatus.FAILED, by="builder-a")
        store.transition(1, TaskStatus.FAILED, TaskStatus.READY, by="coordinator")
    store.claim(1, "builder-gone")  # the third attempt's worker is not running
    said: list[str] = []
    build(team_dir, said, max_ticks=10).run({1, 2})
    assert [store.get(i).status for i in (1, 2)] == [TaskStatus.ABANDONED] * 2
    assert "fail builder-gone died working on task 1" in said
    # The task given up says why and what it takes with it; the one skipped says because of what.
    assert (
        "fail task 1 abandoned: gave up after 3 attempts; its last failure: builder-gone died; "
        "skipped because of it: 2"
    ) in said
    assert "fail task 2 skipped: its dependency 1 was given up" in said


def test_a_task_whose_worker_lives_is_waited_on_within_the_bound(team_dir: TeamDir) -> None:
    store = TaskStore(team_dir.layout)
    store.add([Task(id=1, title="a")])
    store.promote_ready()
    store.claim(1, "builder-a")
    # builder-a is this very process: alive, so its task is never failed.
    AgentRecord(name="builder-a", role="builder", pid=os.getpid(), state="working").write(
        team_dir.layout
    )
    with pytest.raises(TicksExhausted):
        build(team_dir, [], max_ticks=5).run({1})
    assert store.get(1).status == TaskStatus.ASSIGNED

"""The coordinator's build decisions as plain functions: examples, then property-style runs
over random task graphs, random worker deaths and random outcomes (seeded, so a failure
names the seed that reproduces it)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from coordinator.decisions import (
    MAX_ATTEMPTS,
    HeartbeatWatch,
    Step,
    attempts_used,
    decide,
)
from protocol import Task, TaskStatus
from protocol.agents import AgentRecord
from protocol.messages import utc_now
from protocol.tasks import TaskEvent

S = TaskStatus


def task(tid: int, status: S = S.PENDING, deps: tuple[int, ...] = (), **kw: object) -> Task:
    return Task(id=tid, title=f"t{tid}", status=status, depends_on=list(deps), **kw)  # type: ignore[arg-type]


def failed_event(costs: bool = True) -> TaskEvent:
    return TaskEvent(status=S.FAILED, by="x", attempt=1, costs_attempt=costs)


def everyone_alive(_name: str) -> bool:
    return True


def test_ready_tasks_start_up_to_the_free_workers_in_id_order() -> None:
    tasks = [task(i, S.READY) for i in (3, 1, 2)] + [task(4, S.RUNNING, owner="builder-a")]
    step = decide(tasks, {1, 2, 3, 4}, everyone_alive, workers=3)
    assert step.start == (1, 2)
    assert not step.finished and step.stalled is None


def test_a_pending_task_whose_dependencies_are_done_is_promoted() -> None:
    tasks = [task(1, S.DONE), task(2, S.PENDING, (1,))]
    assert decide(tasks, {1, 2}, everyone_alive, workers=1).promote == (2,)


def test_a_dead_workers_task_fails_and_a_failed_task_is_retried_until_its_attempts_run_out() -> (
    None
):
    tasks = [
        task(1, S.RUNNING, owner="builder-a"),
        task(2, S.FAILED, history=[failed_event()]),
        task(3, S.FAILED, history=[failed_event()] * MAX_ATTEMPTS),
    ]
    step = decide(tasks, {1, 2, 3}, lambda name: name != "builder-a", workers=4)
    assert [f.task_id for f in step.fail] == [1]
    assert step.retry == (2,)
    assert [a.task_id for a in step.abandon] == [3]


def test_failures_that_were_not_the_tasks_fault_cost_no_attempt() -> None:
    unlucky = task(1, S.FAILED, history=[failed_event(costs=False)] * 10)
    assert attempts_used(unlucky) == 0
    assert decide([unlucky], {1}, everyone_alive, workers=1).retry == (1,)


def test_giving_up_a_task_gives_up_its_dependants_transitively() -> None:
    tasks = [
        task(1, S.FAILED, history=[failed_event()] * MAX_ATTEMPTS),
        task(2, S.PENDING, (1,)),
        task(3, S.PENDING, (2,)),
        task(4, S.READY),
    ]
    step = decide(tasks, {1, 2, 3, 4}, everyone_alive, workers=4)
    assert sorted(a.task_id for a in step.abandon) == [1, 2, 3]
    assert step.start == (4,)


def test_an_active_task_without_an_owner_is_failed_rather_than_waited_on_forever() -> None:
    step = decide([task(1, S.RUNNING)], {1}, everyone_alive, workers=1)
    assert [(f.task_id, f.owner) for f in step.fail] == [(1, None)]


def test_a_dependency_on_a_missing_task_is_a_stall_that_names_it() -> None:
    step = decide([task(1, S.DONE), task(2, S.PENDING, (1, 99))], {2}, everyone_alive, workers=2)
    assert step.stalled is not None
    assert "task 2 waits for task 99, which does not exist" in step.stalled


def test_a_dependency_outside_the_scope_that_is_not_done_is_a_stall() -> None:
    tasks = [task(1, S.FAILED), task(2, S.PENDING, (1,))]
    step = decide(tasks, {2}, everyone_alive, workers=2)
    assert step.stalled is not None and "task 1 (failed)" in step.stalled


def test_work_in_progress_or_ready_is_never_a_stall() -> None:
    running = [task(1, S.RUNNING, owner="builder-a"), task(2, S.PENDING, (1,))]
    assert decide(running, {1, 2}, everyone_alive, workers=1).stalled is None
    held = [task(1, S.READY)]
    step = decide(held, {1}, everyone_alive, workers=1, hold_dispatch=True)
    assert step.start == () and step.stalled is None


def test_everything_done_or_given_up_is_finished() -> None:
    tasks = [task(1, S.DONE), task(2, S.ABANDONED), task(9, S.PENDING)]
    assert decide(tasks, {1, 2}, everyone_alive, workers=1).finished


def test_a_worker_whose_heartbeat_stopped_is_hung_and_the_coordinator_never_is() -> None:
    beat = utc_now() - timedelta(seconds=500)  # old by the wall clock: that alone is no sign
    stuck = AgentRecord(name="builder-a", role="builder", pid=1, heartbeat_at=beat)
    boss = AgentRecord(name="coordinator", role="coordinator", pid=3, heartbeat_at=beat)
    watch = HeartbeatWatch(stale_after=120)
    assert watch.hung([stuck, boss], 0.0, lambda r: True) == []  # first seen now
    assert watch.hung([stuck, boss], 100.0, lambda r: True) == []
    moving = stuck.model_copy(update={"heartbeat_at": utc_now()})
    assert watch.hung([moving], 110.0, lambda r: True) == []  # it beat: watched from 110
    assert watch.hung([moving], 200.0, lambda r: True) == []
    assert [r.name for r in watch.hung([moving, boss], 231.0, lambda r: True)] == ["builder-a"]
    assert watch.hung([moving], 400.0, lambda r: False) == []  # gone is dead, not hung


# --- property-style runs -------------------------------------------------------------------


def random_dag(rng: random.Random, size: int) -> list[Task]:
    """Tasks 1..size, each depending on a few earlier ones (so a DAG), sometimes on a missing
    task (so a stall is possible), some already in odd states as after a crash."""
    tasks = []
    for tid in range(1, size + 1):
        deps = tuple(sorted(rng.sample(range(1, tid), k=min(tid - 1, rng.randint(0, 2)))))
        if rng.random() < 0.05:
            deps = (*deps, size + 50)
        status = rng.choice([S.PENDING] * 6 + [S.READY, S.FAILED, S.RUNNING, S.DONE])
        owner = f"builder-{tid % 3}" if status == S.RUNNING else None
        history = [failed_event()] * rng.randint(0, 3) if status == S.FAILED else []
        tasks.append(task(tid, status, deps, owner=owner, history=history))
    return tasks


def apply(tasks: dict[int, Task], step: Step, rng: random.Random, agents: list[str]) -> None:
    """What the coordinator and the workers would do with a step, in memory."""

    def move(tid: int, status: S, **kw: object) -> None:
        tasks[tid] = tasks[tid].model_copy(update={"status": status, **kw})

    for tid in step.promote:
        move(tid, S.READY)
    for failure in step.fail:
        move(failure.task_id, S.FAILED, history=[*tasks[failure.task_id].history, failed_event()])
    for tid in step.retry:
        move(tid, S.READY, owner=None)
    for abandon in step.abandon:
        move(abandon.task_id, S.ABANDONED)
    for tid in step.start:
        move(tid, S.RUNNING, owner=rng.choice(agents))
    for tid, t in list(tasks.items()):  # workers finish or fail some of what runs
        if t.status == S.RUNNING and tid not in step.start:
            roll = rng.random()
            if roll < 0.4:
                move(tid, S.DONE)
            elif roll < 0.55:
                move(tid, S.FAILED, history=[*t.history, failed_event(costs=rng.random() < 0.8)])


@pytest.mark.parametrize("seed", range(300))
def test_random_builds_keep_the_invariants_and_always_end(seed: int) -> None:
    rng = random.Random(seed)
    tasks = {t.id: t for t in random_dag(rng, rng.randint(1, 12))}
    scope = (
        set(tasks) if rng.random() < 0.8 else set(rng.sample(sorted(tasks), k=len(tasks) // 2 + 1))
    )
    agents = ["builder-0", "builder-1", "builder-2"]
    workers = rng.randint(1, 4)
    for _ in range(500):
        dead = {a for a in agents if rng.random() < 0.1}
        snapshot = [tasks[tid] for tid in sorted(tasks)]
        step = decide(snapshot, scope, lambda name, dead=dead: name not in dead, workers=workers)
        active = {t.id for t in snapshot if t.status in (S.ASSIGNED, S.RUNNING)}
        failing = {f.task_id for f in step.fail}
        # Never assigned twice: only ready tasks start, each once, within the free workers.
        assert len(set(step.start)) == len(step.start)
        assert all(tasks[tid].status == S.READY and tid in scope for tid in step.start)
        assert len(step.start) <= max(0, workers - len((active & scope) - failing))
        # A dead worker's task in scope is failed (and so retried or given up next).
        for t in snapshot:
            if t.id in scope and t.id in active and (t.owner is None or t.owner in dead):
                assert t.id in failing
        # A failed task is retried or given up, by its attempts.
        for t in snapshot:
            if t.id in scope and t.status == S.FAILED:
                assert (t.id in step.retry) == (attempts_used(t) < MAX_ATTEMPTS)
                assert (t.id in step.retry) != any(a.task_id == t.id for a in step.abandon)
        # Nothing moving and nothing running means a stop, never a wait.
        moving = step.changes or step.start or (active & scope)
        if not step.finished and not moving:
            assert step.stalled is not None
        if step.finished or step.stalled:
            return
        apply(tasks, step, rng, agents)
    pytest.fail(f"seed {seed}: the build neither finished nor stalled in 500 steps")


def test_failures_that_cost_nothing_still_end_after_many() -> None:
    from coordinator.decisions import MAX_FAILURES

    unlucky = task(1, S.FAILED, history=[failed_event(costs=False)] * MAX_FAILURES)
    [abandon] = decide([unlucky], {1}, everyone_alive, workers=1).abandon
    assert f"{MAX_FAILURES} failures" in abandon.why


def test_after_verification_goes_on_until_done_stuck_or_out_of_iterations() -> None:
    from coordinator.decisions import after_verification

    assert after_verification(True, [], "", ["a"], 1, 5) == ""
    assert after_verification(False, ["D1"], "boom", ["a", "b"], 2, 5) is None
    stuck = after_verification(False, ["D1"], "AssertionError: 1 != 2", ["a", "a", "a"], 3, 5)
    assert stuck is not None and stuck.startswith("stuck: the same failure three times (D1)")
    last = after_verification(False, [], "", ["a", "b"], 5, 5)
    assert last == "5 iterations without meeting the Definition of Done; failing: build"

"""The fold of the event log into what the team does and spent, from events written with the
real writer and read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coordinator.activity import Activity, Check, fold
from protocol.events import (
    AgentChanged,
    BudgetReached,
    CriterionChecked,
    EventLog,
    EventTail,
    ModelCallEnded,
    ModelCallStarted,
    TaskChanged,
    TeamChanged,
    ToolCalled,
    VerifyStepRan,
    read_events,
)


def call(agent: str, task: int, prompt: int, completion: int, **extra: Any) -> ModelCallEnded:
    fields = {"call_id": f"{agent}-{task}-{prompt}", **extra}
    return ModelCallEnded(
        agent=agent,
        role="build",
        model="m",
        provider="ollama",
        task_id=task,
        duration_s=1.5,
        prompt_tokens=prompt,
        completion_tokens=completion,
        **fields,
    )


def folded(tmp_path: Path, *events: Any) -> Activity:
    """The events written to a log with the real writer, read back and folded."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "test")
    for event in events:
        log.emit(event)
    return Activity.from_events(read_events(path).events)


def test_a_call_in_progress_then_ended_and_its_tokens_per_agent_and_task(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log, tail, activity = EventLog(path, "builder-s"), EventTail(path), Activity()

    def emit(*events: Any) -> None:
        for event in events:
            log.emit(event)
        for event in tail.read():  # as the watch does: only what was appended
            fold(activity, event)

    emit(
        TaskChanged(task_id=3, status="pending", title="storage", module="storage"),
        AgentChanged(name="builder-s", state="working", role="builder", task_id=3),
        ModelCallStarted(call_id="c1", role="build", model="m", provider="x", task_id=3),
    )
    agent = activity.agents["builder-s"]
    assert agent.model_call is not None and agent.task_id == 3
    assert (agent.model_call.role, agent.model_call.model) == ("build", "m")
    assert activity.tasks[3].title == "storage" and activity.spend.model_calls == 0
    emit(
        call("builder-s", 3, 100, 20, cached_tokens=60, call_id="c1"),
        ToolCalled(tool="write_file", task_id=3),
        call("builder-s", 3, 150, 10),
        call("builder-t", 4, 7, 3),
    )
    assert agent.model_call is None
    assert agent.last_tool is not None and agent.last_tool.tool == "write_file"
    assert (agent.spend.model_calls, agent.spend.tool_calls) == (2, 1)
    assert (agent.spend.prompt_tokens, agent.spend.completion_tokens) == (250, 30)
    assert agent.spend.cached_tokens == 60 and agent.spend.model_seconds == 3.0
    assert activity.tasks[3].spend.tokens == 280 and activity.tasks[4].spend.tokens == 10
    assert activity.tasks[3].spend.tool_calls == 1
    assert (activity.spend.tokens, activity.spend.model_calls, activity.spend.tool_calls) == (
        290, 3, 1,
    )  # fmt: skip


def test_a_retried_task_keeps_the_tokens_of_both_attempts(tmp_path: Path) -> None:
    activity = folded(
        tmp_path,
        call("builder-s", 3, 10, 5),
        TaskChanged(task_id=3, status="failed", attempt=1),
        TaskChanged(task_id=3, status="ready", attempt=2),
        call("builder-s", 3, 20, 5),
    )
    task = activity.tasks[3]
    assert (task.attempt, task.status, task.spend.tokens, task.spend.model_calls) == (
        2,
        "ready",
        40,
        2,
    )


def test_a_new_verification_replaces_the_last_results(tmp_path: Path) -> None:
    activity = folded(
        tmp_path,
        TeamChanged(status="verifying", iteration=1),
        VerifyStepRan(name="tests", passed=False, detail="E assert 2 == 1", iteration=1),
        CriterionChecked(id="D1", passed=False, detail="assert 2 == 1", iteration=1),
        CriterionChecked(id="D2", passed=True, iteration=1),
        TeamChanged(status="verifying", iteration=2),
        VerifyStepRan(name="tests", passed=True, iteration=2),
        CriterionChecked(id="D1", passed=True, iteration=2),
    )
    assert activity.dod_iteration == 2
    assert activity.dod == {"D1": Check(passed=True, detail="")}
    assert activity.steps == {"tests": Check(passed=True, detail="")}
    assert (activity.team_status, activity.iteration) == ("verifying", 2)


def test_a_torn_line_is_skipped_and_the_rest_is_folded(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "test")
    log.emit(call("a", 1, 1, 1))
    with path.open("ab") as handle:
        handle.write(b'{"kind": "model_call", "agent": "a", "prom')
    log.emit(call("a", 1, 2, 2))
    read = read_events(path)
    assert read.bad_lines == 1
    assert Activity.from_events(read.events).spend.tokens == 6


def test_an_agent_that_stops_in_a_call_is_no_longer_in_it(tmp_path: Path) -> None:
    activity = folded(
        tmp_path,
        ModelCallStarted(agent="builder-s", call_id="c1", role="build", model="m", provider="x"),
        AgentChanged(name="builder-s", state="dead", role="builder"),
    )
    assert activity.agents["builder-s"].model_call is None
    assert activity.agents["builder-s"].state == "dead"


def test_the_dag_progress_and_the_budgets_reached(tmp_path: Path) -> None:
    activity = folded(
        tmp_path,
        TaskChanged(task_id=1, status="done", title="a"),
        TaskChanged(task_id=2, status="running", title="b"),
        TaskChanged(task_id=3, status="pending", title="c"),
        TaskChanged(task_id=3, status="ready"),
        BudgetReached(scope="task", limit=100, used=120, task_id=2),
    )
    assert activity.progress() == {"done": 1, "running": 1, "ready": 1}
    assert activity.tasks[3].title == "c", "a later move keeps the title of the creation"
    [budget] = activity.budget_json()
    assert (budget["scope"], budget["limit"], budget["used"], budget["task_id"]) == (
        "task", 100, 120, 2,
    )  # fmt: skip

"""The fold of the event log into what the team does and spent, from events written with the
real writer and read back; and `team status --watch` in real tmux as the log grows."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import libtmux
from libtmux.test.retry import retry_until

from coordinator.activity import Activity
from protocol.events import (
    AgentChanged,
    CriterionChecked,
    EventLog,
    ModelCallEnded,
    ModelCallStarted,
    TaskChanged,
    TeamChanged,
    ToolCalled,
    read_events,
)
from tests.conftest import TeamDir
from tests.processes import REPO


def call(agent: str, task: int, prompt: int, completion: int, **extra: object) -> ModelCallEnded:
    return ModelCallEnded(
        agent=agent,
        call_id=f"{agent}-{task}-{prompt}",
        role="build",
        model="m",
        provider="ollama",
        task_id=task,
        duration_s=1.5,
        prompt_tokens=prompt,
        completion_tokens=completion,
        **extra,  # type: ignore[arg-type]
    )


def fold(tmp_path: Path, *events: object) -> Activity:
    path = tmp_path / "events.jsonl"
    log = EventLog(path, "test")
    for event in events:
        log.emit(event)  # type: ignore[arg-type]
    return Activity.of(read_events(path).events)


def test_a_call_in_progress_then_ended_and_its_tokens_per_agent_and_task(tmp_path: Path) -> None:
    running = fold(
        tmp_path,
        TaskChanged(task_id=3, status="pending", title="storage", module="storage"),
        AgentChanged(name="builder-s", state="working", role="builder", task_id=3),
        ModelCallStarted(agent="builder-s", call_id="c1", role="build", model="m", provider="x"),
    )
    agent = running.agents["builder-s"]
    assert (agent.in_call, agent.doing, agent.task_id) == (True, "model build (m)", 3)
    assert running.tasks[3].title == "storage"
    ended = fold(
        tmp_path / "..",
        call("builder-s", 3, 100, 20, cached_tokens=60),
        ToolCalled(agent="builder-s", tool="write_file", task_id=3),
        call("builder-s", 3, 150, 10),
        call("builder-t", 4, 7, 3),
    )
    agent = ended.agents["builder-s"]
    assert (agent.in_call, agent.spend.model_calls, agent.tool_calls) == (False, 2, 1)
    assert (agent.spend.prompt_tokens, agent.spend.completion_tokens) == (250, 30)
    assert agent.spend.cached_tokens == 60 and agent.spend.model_seconds == 3.0
    assert ended.tasks[3].spend.tokens == 280 and ended.tasks[4].spend.tokens == 10
    assert (ended.spend.tokens, ended.spend.model_calls, ended.tool_calls) == (290, 3, 1)


def test_a_retried_task_keeps_the_tokens_of_both_attempts(tmp_path: Path) -> None:
    activity = fold(
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
    activity = fold(
        tmp_path,
        TeamChanged(status="verifying", iteration=1),
        CriterionChecked(id="D1", passed=False, detail="assert 2 == 1", iteration=1),
        CriterionChecked(id="D2", passed=True, iteration=1),
        TeamChanged(status="verifying", iteration=2),
        CriterionChecked(id="D1", passed=True, iteration=2),
    )
    assert activity.dod_iteration == 2
    assert activity.dod == {"D1": (True, "")}
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
    assert Activity.of(read.events).spend.tokens == 6


def test_status_watch_shows_the_log_as_it_grows(
    server: libtmux.Server, team_dir: TeamDir, tmp_path: Path
) -> None:
    log = EventLog(team_dir.layout.events_jsonl, "builder-s")
    log.emit(TaskChanged(task_id=1, status="running", title="the data model", owner="builder-s"))
    command = [sys.executable, "-m", "coordinator.cli", "-w", str(team_dir.workspace), "status",
               "--watch", "--interval", "0.2"]  # fmt: skip
    session = server.new_session(
        "watch",
        window_command=f"cd {shlex.quote(str(REPO))} && {shlex.join(command)}; sleep 60",
        environment={
            "PYTHONPATH": str(REPO),
            "TEAM_CONFIG": "/nonexistent",
            "PATH": os.environ["PATH"],
        },
        x=200,
        y=50,
    )
    pane = session.active_window.active_pane
    assert pane is not None

    def screen() -> str:
        return "\n".join(pane.capture_pane())

    def shows(text: str) -> bool:
        return text in screen()

    assert retry_until(lambda: shows("the data model"), 20, raises=False), screen()
    assert shows("0 of 1 tasks done")
    log.emit(ModelCallStarted(call_id="c1", role="build", model="coder:7b", provider="ollama"))
    assert retry_until(lambda: shows("model build (coder:7b)"), 10, raises=False), screen()
    log.emit(call("builder-s", 1, 1234, 56))
    log.emit(TaskChanged(task_id=2, status="pending", title="the store"))
    assert retry_until(lambda: shows("1234+56"), 10, raises=False), screen()
    assert retry_until(lambda: shows("the store"), 10, raises=False)
    assert shows("1234 prompt + 56 completion tokens")

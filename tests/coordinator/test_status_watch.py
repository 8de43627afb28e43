"""`team status --watch` as the event log grows (real tmux; a pipe), and the numbers of the log
in `team status` and `team status --json`."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import libtmux
from click.testing import CliRunner, Result
from libtmux.test.retry import retry_until

from coordinator.cli import cli
from protocol import Task, TaskStore, TeamStatus
from protocol.agents import AgentRecord
from protocol.events import (
    CriterionChecked,
    EventLog,
    ModelCallEnded,
    ModelCallStarted,
    TaskChanged,
    ToolCalled,
)
from protocol.messages import utc_now
from protocol.team import update_team
from tests.conftest import TeamDir
from tests.processes import REPO

ENV = {"PYTHONPATH": str(REPO), "TEAM_CONFIG": "/nonexistent", "PATH": os.environ["PATH"]}


def ended_call(prompt: int, completion: int, task_id: int = 1) -> ModelCallEnded:
    return ModelCallEnded(call_id="c1", role="build", model="coder:7b", provider="ollama",
                          task_id=task_id, duration_s=2.5, prompt_tokens=prompt,
                          completion_tokens=completion)  # fmt: skip


def status(team_dir: TeamDir, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-w", str(team_dir.workspace), "status", *args])


def watch_command(team_dir: TeamDir) -> list[str]:
    return [sys.executable, "-m", "coordinator.cli", "-w", str(team_dir.workspace), "status",
            "--watch", "--interval", "0.2"]  # fmt: skip


def test_status_watch_shows_the_log_as_it_grows_and_leaves_when_the_team_ends(
    server: libtmux.Server, team_dir: TeamDir
) -> None:
    log = EventLog(team_dir.layout.events_jsonl, "builder-s")
    log.emit(TaskChanged(task_id=1, status="running", title="the data model", owner="builder-s"))
    command = shlex.join(watch_command(team_dir))
    session = server.new_session(
        "watch",
        # Under pytest the pane inherits COLUMNS=80, which rich would believe over the pane.
        window_command=f"unset COLUMNS LINES; cd {shlex.quote(str(REPO))} && {command}; "
        "echo watch ended $?; sleep 60",
        environment=ENV,
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
    log.emit(ended_call(1234, 56))
    log.emit(TaskChanged(task_id=2, status="pending", title="the store"))
    assert retry_until(lambda: shows("1234+56"), 10, raises=False), screen()
    assert retry_until(lambda: shows("the store"), 10, raises=False), screen()
    assert shows("1234 prompt + 56 completion tokens")
    update_team(team_dir.layout.team_json, status=TeamStatus.DONE)
    assert retry_until(lambda: shows("watch ended 0"), 10, raises=False), screen()
    assert "Traceback" not in screen()


def test_status_watch_on_a_pipe_waits_for_the_log_and_prints_a_frame_per_change(
    team_dir: TeamDir,
) -> None:
    assert not team_dir.layout.events_jsonl.exists()
    output = team_dir.workspace / "watch.out"  # a file: not a terminal, and read as it grows
    with output.open("w") as handle:
        watch = subprocess.Popen(watch_command(team_dir), env=ENV, cwd=REPO, stdout=handle,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert retry_until(lambda: "waiting for .agents/events.jsonl" in output.read_text(), 20,
                           raises=False), output.read_text()  # fmt: skip
        log = EventLog(team_dir.layout.events_jsonl, "builder-s")
        log.emit(TaskChanged(task_id=1, status="running", title="the data model"))
        log.emit(ended_call(40, 2))
        log.emit(ToolCalled(tool="write_file", task_id=1))
        log.emit(CriterionChecked(id="D1", passed=False, detail="assert 1 == 2", iteration=1))
        update_team(team_dir.layout.team_json, status=TeamStatus.FAILED)
        _, err = watch.communicate(timeout=20)
    finally:
        watch.kill()
    assert watch.returncode == 0, err
    out = output.read_text()
    first, *later = out.split("\n\n")
    assert first.startswith(f"team {team_dir.team_id}  status initialised")
    assert "waiting for .agents/events.jsonl" not in "".join(later)
    assert "the data model" in out and "40+2" in out and "tool write_file" in out
    assert "D1 FAILED" in out and "assert 1 == 2" in out
    assert "\x1b[" not in out, "no terminal: no colours, no cursor moves"


def test_status_json_carries_the_numbers_of_the_log(team_dir: TeamDir) -> None:
    log = EventLog(team_dir.layout.events_jsonl, "builder-s")
    log.emit(TaskChanged(task_id=1, status="running", title="the data model"))
    log.emit(ended_call(100, 20))
    log.emit(ToolCalled(tool="write_file", task_id=1))
    log.emit(ModelCallStarted(call_id="c2", role="build", model="coder:7b", provider="ollama"))
    data = json.loads(status(team_dir, "--json").output)
    assert {"team", "agents", "tasks", "problems", "not_running"} <= data.keys()
    usage = data["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["model_calls"]) == (
        100, 20, 1,
    )  # fmt: skip
    assert (usage["model_seconds"], usage["tool_calls"]) == (2.5, 1)
    assert usage["per_agent"]["builder-s"]["prompt_tokens"] == 100
    assert usage["per_task"]["1"]["completion_tokens"] == 20
    now = data["activity"]["builder-s"]
    assert now["model_call"]["model"] == "coder:7b" and now["last_tool"]["tool"] == "write_file"
    assert data["progress"] == {"running": 1}
    assert data["dod"] == {"iteration": 0, "criteria": [], "steps": []}
    assert data["budget"] == []


def test_status_shows_the_totals_and_tokens_per_task(team_dir: TeamDir) -> None:
    TaskStore(team_dir.layout).add([Task(id=1, title="the data model")])
    EventLog(team_dir.layout.events_jsonl, "builder-s").emit(ended_call(1000, 234))
    result = status(team_dir)
    assert result.exit_code == 0, result.output
    assert "1 model call, 1000 prompt + 234 completion tokens, 2.5s in models" in result.output
    assert "1234" in result.output.split("tokens")[-1], result.output


def test_status_watch_and_json_do_not_go_together(team_dir: TeamDir) -> None:
    result = status(team_dir, "--watch", "--json")
    assert result.exit_code == 2
    assert "--watch and --json do not go together" in result.output


def test_status_watch_leaves_when_the_coordinator_of_a_team_at_work_is_dead(
    team_dir: TeamDir,
) -> None:
    # A coordinator killed with kill -9: its record says working, its pid is gone, and the
    # team's status stays "building" for ever. The watch must not wait for ever.
    update_team(team_dir.layout.team_json, status=TeamStatus.BUILDING)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    AgentRecord(name="coordinator", role="coordinator", pid=int(dead.stdout), state="working",
                started_at=utc_now()).write(team_dir.layout)  # fmt: skip
    watch = subprocess.run(watch_command(team_dir), env=ENV, cwd=REPO, capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert watch.returncode == 1, watch.stdout + watch.stderr
    assert "coordinator is not running, and the team did not finish" in watch.stderr
    assert "team resume" in watch.stderr and "Traceback" not in watch.stderr

"""Faults the team survives (DESIGN §8), each with real processes and the scripted model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from coordinator.demo_scenario import scenario
from protocol import Layout, TaskStatus, TaskStore, TeamInfo
from protocol.agents import read_agent
from protocol.llm.scripted import Scenario, ScriptedServer
from tests.e2e.test_team_up import MODEL, env_for, team
from tests.processes import REPO

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def slow_model() -> Iterator[ScriptedServer]:
    """Each first write takes the model 1.5 s: time to hit the team mid-build."""
    with ScriptedServer(Scenario.model_validate(scenario(MODEL, delay=1.5))) as server:
        yield server


def start_up(
    workspace: Path, server: ScriptedServer, *args: str, runner: str = "subprocess"
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coordinator.cli",
            "-w",
            str(workspace),
            "up",
            "a todo list that counts open items",
            "--runner",
            runner,
            "--wait",
            *args,
        ],
        env=env_for(server),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running_task(layout: Layout, module: str) -> bool:
    store = TaskStore(layout)
    return (
        any(t.module == module and t.status == TaskStatus.RUNNING for t in store.all())
        if layout.tasks_dir.is_dir()
        else False
    )


def test_a_worker_killed_mid_task_is_replaced_and_the_team_finishes(
    slow_model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "todo"
    up = start_up(workspace, slow_model)
    layout = Layout.of(workspace)
    wait_for(lambda: running_task(layout, "storage"))
    victim = read_agent(layout, "builder-storage")
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    out, _ = up.communicate(timeout=240)
    assert up.returncode == 0, out
    storage = next(t for t in TaskStore(layout).all() if t.module == "storage")
    assert storage.attempt >= 2
    assert any("builder-storage died" in e.note for e in storage.history)
    assert TeamInfo.read(layout.team_json).status.value == "done"


def test_the_coordinator_killed_mid_build_resumes_without_building_twice(
    slow_model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "todo"
    up = start_up(workspace, slow_model)
    layout = Layout.of(workspace)
    wait_for(lambda: running_task(layout, "models"))
    coordinator = read_agent(layout, "coordinator")
    assert coordinator is not None
    os.kill(coordinator.pid, signal.SIGKILL)
    out, _ = up.communicate(timeout=60)
    assert up.returncode == 1
    assert "the coordinator stopped before the team finished" in out

    resumed = team(workspace, slow_model, "resume", "--runner", "subprocess", "--wait")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    tasks = TaskStore(layout).all()
    assert all(t.status == TaskStatus.DONE for t in tasks)
    models = next(t for t in tasks if t.module == "models")
    assert models.attempt == 1, "the task in hand was not given to anyone else"
    builds = [r for r in slow_model.log if r.seen.files == "models.py" and r.seen.turn == 0]
    assert len(builds) == 1, "models.py was built once"


def test_team_kill_during_a_build_leaves_a_readable_consistent_state(
    slow_model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "todo"
    up = start_up(workspace, slow_model)
    layout = Layout.of(workspace)
    wait_for(lambda: running_task(layout, "models"))
    killed = team(workspace, slow_model, "kill", "--grace", "20")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    up.communicate(timeout=60)
    info = TeamInfo.read(layout.team_json)
    assert info.status.value == "stopped"
    status = team(workspace, slow_model, "status")
    assert status.returncode == 0, status.stdout
    assert "stopped" in status.stdout
    for task in TaskStore(layout).all():  # every task file is whole and in a known state
        assert task.status in set(TaskStatus)
    # The shutdown requests left in the inboxes do not stop the workers of the resumed team.
    resumed = team(workspace, slow_model, "resume", "--runner", "subprocess", "--wait")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert TeamInfo.read(layout.team_json).status.value == "done"
    again = team(
        workspace, slow_model, "resume", "--runner", "subprocess", "--wait", "--max-iterations", "1"
    )
    # Resumed below the iteration it reached, it cannot claim success: it says why.
    assert again.returncode == 1
    assert "past --max-iterations 1" in TeamInfo.read(layout.team_json).detail
    assert all(
        r.state == "stopped"
        for r in map(lambda n: read_agent(layout, n), ["coordinator", "builder-models"])
        if r
    )


def test_the_same_failure_three_times_stops_with_a_report(tmp_path: Path) -> None:
    rules = scenario(MODEL)["rules"]
    # The fix never lands: the model "edits" a line that is not there, then finishes.
    broken = [r for r in rules if "Mandatory" not in str(r.get("match", {}))]
    with ScriptedServer(
        Scenario.model_validate({"models": [{"name": MODEL}], "rules": broken})
    ) as server:
        workspace = tmp_path / "todo"
        done = team(
            workspace,
            server,
            "up",
            "a todo list",
            "--runner",
            "subprocess",
            "--wait",
            "--max-iterations",
            "6",
        )
    assert done.returncode == 1
    info = TeamInfo.read(Layout.of(workspace).team_json)
    assert info.status.value == "failed"
    assert "stuck: the same failure three times (D1)" in info.detail
    assert info.iteration == 3


def test_a_model_server_that_goes_away_is_waited_for_and_the_team_finishes(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "todo"
    (workspace / ".agents").mkdir(parents=True)
    # Fail fast while the server is away, so that the test does not wait out long backoffs.
    (workspace / ".agents" / "config.toml").write_text(
        "[limits]\nmax_retries = 1\nbackoff_base = 0.1\nbackoff_max = 0.2\n"
    )
    spec = Scenario.model_validate(scenario(MODEL, delay=1.5))
    server = ScriptedServer(spec).start()
    port = server.port
    up = start_up(workspace, server)
    layout = Layout.of(workspace)
    try:
        wait_for(lambda: running_task(layout, "models"))
        server.stop()  # the model server dies while a worker waits for its answer
        wait_for(lambda: "waiting for the model server" in TeamInfo.read(layout.team_json).detail)
        status = team(workspace, server, "status")
        assert "cannot reach the ollama server" in status.stdout
        server = ScriptedServer(spec, port=port).start()  # it is back
        out, _ = up.communicate(timeout=240)
        assert up.returncode == 0, out
        assert TeamInfo.read(layout.team_json).status.value == "done"
    finally:
        server.stop()
        if up.poll() is None:
            up.kill()


def test_a_retry_that_breaks_a_passing_file_is_rolled_back(tmp_path: Path) -> None:
    from coordinator.demo_scenario import RCA, call, rules

    breaking = {
        **RCA,
        "concrete_edits": [
            *RCA["concrete_edits"],
            {"file": "models.py", "action": "edit", "details": "rewrite the dataclass"},
        ],
    }
    script = [
        {"match": {"schema": "RcaReport"}, "reply": {"json": breaking}},
        # The fix of models.py breaks it, and the model never repairs it.
        {
            "match": {"files": "models.py", "contains": "Mandatory", "turn": 0},
            "reply": call("write_file", path="models.py", content="class Item(:\n    pass\n"),
        },
        *rules(),
    ]
    with ScriptedServer(
        Scenario.model_validate({"models": [{"name": MODEL}], "rules": script})
    ) as server:
        workspace = tmp_path / "todo"
        done = team(workspace, server, "up", "a todo list", "--runner", "subprocess", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "@dataclass" in (workspace / "models.py").read_text(), "models.py was restored"
    assert "if not item.done" in (workspace / "store.py").read_text(), "the good fix was kept"
    coordinator_log = (workspace / ".agents" / "logs" / "coordinator.log").read_text()
    assert "rolled back models.py" in coordinator_log


def test_a_worker_pane_closed_in_tmux_is_replaced_and_the_team_finishes(
    slow_model: ScriptedServer, tmp_path: Path
) -> None:
    import libtmux

    from coordinator.tmux import socket_name

    workspace = tmp_path / "todo"
    up = start_up(workspace, slow_model, runner="tmux")
    layout = Layout.of(workspace)
    server = None
    try:
        wait_for(lambda: running_task(layout, "storage"))
        victim = read_agent(layout, "builder-storage")
        assert victim is not None and victim.pane
        server = libtmux.Server(socket_name=socket_name(TeamInfo.read(layout.team_json).id))
        server.cmd("kill-pane", "-t", victim.pane)  # the user closes the pane
        out, _ = up.communicate(timeout=240)
        assert up.returncode == 0, out
        storage = next(t for t in TaskStore(layout).all() if t.module == "storage")
        assert storage.attempt >= 2
        assert TeamInfo.read(layout.team_json).status.value == "done"
    finally:
        if up.poll() is None:
            up.kill()
        if server is not None:
            server.kill()

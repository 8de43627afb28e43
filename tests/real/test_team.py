"""`team up --wait` on a tiny task with SmolLM2 as every role: it cannot code, so the verdict
may be either; what a user is owed is a verdict with a reason, in a stated time, no traceback,
a plan on disk, nothing touched outside the workspace and no process left behind. Half way,
the server is killed and started again: the team waits for it and carries on."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from protocol import Layout, TeamInfo, TeamStatus
from protocol.plan import load_plan
from tests.processes import REPO, Output, team_processes
from tests.real.server import LlamaServer

RUN_SECONDS = 480  # the verdict comes within this, or the test fails
pytestmark = pytest.mark.timeout(RUN_SECONDS + 120)

TASK = "Write hello.py with greet(name) and a pytest test"


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` with a digest of its content."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def team_status(workspace: Path) -> TeamStatus | None:
    try:
        return TeamInfo.read(Layout.of(workspace).team_json).status
    except Exception:  # not written yet, or being written
        return None


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


class TeamRun:
    def __init__(self, folder: Path, server: LlamaServer) -> None:
        self.folder = folder
        self.workspace = folder / "ws"
        self.home = folder / "home"
        self.home.mkdir()
        self.outside = folder / "outside"
        self.outside.mkdir()
        (self.outside / "keep.txt").write_text("the user's file next to the workspace\n")
        env = {k: v for k, v in os.environ.items() if k != "TEAM_WORKSPACE"}
        self.env = {**env, **server.env(), "HOME": str(self.home), "PYTHONPATH": str(REPO)}
        self.before = {"outside": tree(self.outside), "home": tree(self.home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coordinator.cli", "-w", str(self.workspace), "up", TASK,
             "--wait", "--runner", "subprocess", "--max-iterations", "2",
             "--max-tokens", "150000"],
            env=self.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.output = Output(self.proc)
        self.started = time.monotonic()
        self.server_killed = False
        self.code: int | None = None
        self.seconds = 0.0

    @property
    def layout(self) -> Layout:
        return Layout.of(self.workspace)


@pytest.fixture(scope="module")
def run(llama: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamRun]:
    if llama.proc is None or llama.proc.poll() is not None:
        llama.start()
    team = TeamRun(tmp_path_factory.mktemp("team"), llama)
    try:
        # The server goes away once the team is building (a worker's request cut), and
        # comes back a little later on the same port.
        wait_until(
            lambda: (
                team.proc.poll() is not None or team_status(team.workspace) == TeamStatus.BUILDING
            ),
            240,
        )
        if team_status(team.workspace) == TeamStatus.BUILDING:
            llama.kill()
            team.server_killed = True
            wait_until(lambda: "waiting for the model server" in team.output.text, 60)
            llama.start()
        team.code = team.output.wait(timeout=RUN_SECONDS)
        team.seconds = time.monotonic() - team.started
        yield team
    finally:
        if team.proc.poll() is None:
            team.proc.kill()
        subprocess.run(
            [sys.executable, "-m", "coordinator.cli", "-w", str(team.workspace), "kill"],
            env=team.env, cwd=REPO, capture_output=True, timeout=60,
        )  # fmt: skip


def test_a_verdict_with_a_reason_in_the_stated_time_and_no_traceback(run: TeamRun) -> None:
    out = run.output.text
    assert "Traceback" not in out, out
    assert run.code in (0, 1), out
    info = TeamInfo.read(run.layout.team_json)
    assert info.status in (TeamStatus.DONE, TeamStatus.FAILED), out
    if info.status == TeamStatus.FAILED:
        assert info.detail, "a failed team says why"
    print(f"verdict {info.status.value} in {run.seconds:.0f} s: {info.detail}")


def test_the_plan_on_disk_has_modules_and_criteria(run: TeamRun) -> None:
    plan = load_plan(run.layout.plan_json.read_bytes())
    assert plan.modules and plan.dod
    print(json.dumps(plan.model_dump(), indent=1))


def test_the_team_waited_for_the_server_and_carried_on(run: TeamRun) -> None:
    if not run.server_killed:
        pytest.fail(f"the team never started building:\n{run.output.text}")
    out = run.output.text
    assert "waiting for the model server" in out, out
    assert "the model server is back" in out, out


def test_nothing_outside_the_workspace_was_touched(run: TeamRun) -> None:
    assert tree(run.outside) == run.before["outside"]
    assert tree(run.home) == run.before["home"]
    assert sorted(p.name for p in run.folder.iterdir()) == ["home", "outside", "ws"]


def test_no_process_of_the_team_is_left(run: TeamRun) -> None:
    assert wait_until(lambda: not team_processes(run.workspace), 30), team_processes(run.workspace)

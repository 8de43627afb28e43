"""No sandbox, no model code: `team up`, `resume` and `demo` refuse where bubblewrap is missing
or cannot start, and say how to fix it; with an explicit --no-sandbox the team runs, and every
pane, `team status` and the logs say it runs unconfined."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol import Layout, TeamInfo
from protocol.llm.scripted import ScriptedServer
from tests.conftest import broken_bwrap_on_path
from tests.e2e.test_team_up import model, team

__all__ = ["model"]  # the fixture, used by name


@pytest.fixture
def broken_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    broken_bwrap_on_path(monkeypatch, tmp_path)
    yield


@pytest.mark.usefixtures("broken_bwrap")
def test_team_up_refuses_without_a_working_sandbox_and_says_how_to_fix_it(
    model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "todo"
    done = team(workspace, model, "up", "a todo list", "--runner", "subprocess", "--wait")
    assert done.returncode == 1
    said = done.stdout + done.stderr
    assert "runs the models' code only in a sandbox" in said
    assert "bwrap: setting up uid map: Permission denied" in said, "the exact error"
    assert "user namespaces" in said and "--no-sandbox" in said
    assert "Traceback" not in said
    assert not workspace.exists(), "refused before anything was set up"


@pytest.mark.usefixtures("broken_bwrap")
def test_team_resume_and_demo_refuse_too(model: ScriptedServer, tmp_path: Path) -> None:
    workspace = tmp_path / "todo"
    assert team(workspace, model, "init", "--task", "x").returncode == 0
    resumed = team(workspace, model, "resume", "--runner", "subprocess", "--wait")
    assert resumed.returncode == 1
    assert "team resume runs the models' code only in a sandbox" in resumed.stderr
    demo = team(
        tmp_path / "demo", model, "demo", "--runner", "subprocess", "-w", str(tmp_path / "d")
    )
    assert demo.returncode == 1
    assert "team demo runs the models' code only in a sandbox" in demo.stderr


def test_a_missing_bwrap_is_named_with_the_package_to_install(
    model: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    done = team(tmp_path / "todo", model, "up", "a todo list", "--runner", "subprocess")
    assert done.returncode == 1
    assert "bwrap (bubblewrap) is not installed" in done.stderr
    assert "apt-get install bubblewrap" in done.stderr


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("broken_bwrap")
def test_with_no_sandbox_the_team_runs_and_every_view_says_it_is_unconfined(
    model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "todo"
    done = team(
        workspace,
        model,
        "up",
        "a todo list that counts open items",
        "--runner",
        "subprocess",
        "--wait",
        "--no-sandbox",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "UNCONFINED" in done.stdout
    layout = Layout.of(workspace)
    assert TeamInfo.read(layout.team_json).unconfined
    assert "UNCONFINED (--no-sandbox)" in team(workspace, model, "status").stdout
    assert "UNCONFINED" in layout.log_file("coordinator").read_text()
    worker_logs = [p for p in layout.logs_dir.glob("builder-*.log")]
    assert worker_logs and all("UNCONFINED" in p.read_text() for p in worker_logs)

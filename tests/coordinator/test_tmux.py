"""Real tmux (libtmux's isolated `server` fixture), real worker processes in its panes."""

from __future__ import annotations

import os
import sys

import libtmux
import pytest

from coordinator.registration import SpawnFailed
from coordinator.tmux import TeamSession, wait_until_registered
from protocol.agents import read_agent
from tests.conftest import TeamDir
from tests.processes import REPO


def worker_command(team_dir: TeamDir, name: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "agent_worker",
        "--workspace",
        str(team_dir.workspace),
        "--name",
        name,
        "--role",
        "builder",
        *extra,
    ]


@pytest.fixture
def env() -> dict[str, str]:
    return {"PYTHONPATH": str(REPO), "TEAM_CONFIG": "/nonexistent", "PATH": os.environ["PATH"]}


def test_workers_start_in_titled_tiled_panes_and_register(
    server: libtmux.Server, team_dir: TeamDir, env: dict[str, str]
) -> None:
    team = TeamSession.create(
        server, "team-test", team_dir.workspace, ["sleep", "300"], environment=env
    )
    panes = [
        team.spawn(name, worker_command(team_dir, name), team_dir.workspace, env)
        for name in ("builder-a", "builder-b", "builder-c")
    ]
    records = [wait_until_registered(team, team_dir.layout, pane) for pane in panes]
    assert sorted(team.titles()) == ["builder-a", "builder-b", "builder-c", "coordinator"]
    assert [r.pane for r in records] == [p.pane_id for p in panes]
    assert all(not team.pane_dead(p.pane_id) for p in panes)
    team.kill()
    assert TeamSession.find(server, "team-test") is None


def test_a_worker_that_dies_at_start_is_reported_with_its_output(
    server: libtmux.Server, team_dir: TeamDir, env: dict[str, str]
) -> None:
    team = TeamSession.create(
        server, "team-test", team_dir.workspace, ["sleep", "300"], environment=env
    )
    broken = [
        sys.executable,
        "-m",
        "agent_worker",
        "--workspace",
        "/nonexistent",
        "--name",
        "builder-x",
    ]
    pane = team.spawn("builder-x", broken, team_dir.workspace, env)
    with pytest.raises(SpawnFailed) as caught:
        wait_until_registered(team, team_dir.layout, pane, timeout=20)
    assert "builder-x died at start" in str(caught.value)
    assert "no team in /nonexistent" in str(caught.value)
    assert team.pane_dead(pane.pane_id), "remain-on-exit keeps the dead pane readable"
    assert read_agent(team_dir.layout, "builder-x") is None

"""`team status` on a team with a pool of model servers: each endpoint's calls in flight
against its capacity, its health and who calls it, from the team's board of slots."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result

from coordinator.cli import cli
from protocol.llm.pool import Place
from protocol.llm.pool_board import FileBoard
from tests.conftest import TeamDir
from tests.processes import REPO, kill9

GPU1, GPU2 = "http://127.0.0.1:9/v1", "http://127.0.0.1:7/v1"


def status(team_dir: TeamDir, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["-w", str(team_dir.workspace), "status", *args], env={"TEAM_CONFIG": "/nonexistent"}
    )


@pytest.fixture
def pooled(team_dir: TeamDir) -> TeamDir:
    team_dir.layout.config_toml.write_text(
        '[models.build]\nprovider = "openai"\nmodel = "coder:7b"\n'
        f'[[endpoints]]\nurl = "{GPU1}"\nprovider = "openai"\ncapacity = 2\n'
        f'[[endpoints]]\nurl = "{GPU2}"\nprovider = "openai"\nroles = ["build"]\n'
    )
    return team_dir


def test_status_shows_each_endpoints_load_health_and_callers(pooled: TeamDir) -> None:
    holder = subprocess.Popen(
        [sys.executable, str(REPO / "tests/protocol/procs/pool_caller.py"),
         str(pooled.layout.pool_dir), "hold", GPU1],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        FileBoard(pooled.layout.pool_dir).failed(Place(GPU2, 1))
        shown = status(pooled)
        data = json.loads(status(pooled, "--json").output)
    finally:
        kill9(holder)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    [gpu1] = [line for line in lines if "127.0.0.1:9" in line]
    assert "1/2" in gpu1 and "up" in gpu1 and f"pid {holder.pid}" in gpu1
    [gpu2] = [line for line in lines if "127.0.0.1:7" in line]
    assert "0/1" in gpu2 and "down" in gpu2 and "build" in gpu2
    by_url = {e["url"]: e for e in data["endpoints"]}
    assert by_url[GPU1]["in_flight"] == 1 and by_url[GPU1]["capacity"] == 2
    assert by_url[GPU1]["roles"] == ["build"]  # the other roles' models are not on it
    assert by_url[GPU2]["failures"] == 1 and by_url[GPU2]["state"].startswith("down")
    assert by_url[GPU1]["holders"] == [f"pid {holder.pid}"]

    after = json.loads(status(pooled, "--json").output)  # the killed holder's slot is back
    assert {e["url"]: e["in_flight"] for e in after["endpoints"]}[GPU1] == 0


def test_status_without_a_pool_shows_no_endpoint_table(team_dir: TeamDir) -> None:
    shown = status(team_dir)
    assert shown.exit_code == 0 and "endpoint" not in shown.output
    data = json.loads(status(team_dir, "--json").output)
    assert [e["listed"] for e in data["endpoints"]] == [False]  # the provider's URL alone

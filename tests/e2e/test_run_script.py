"""scripts/run.sh, the README's first command, run for real: set-up included."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO


@pytest.mark.timeout(300)
def test_run_sh_with_a_task_and_no_model_server_exits_1_and_runs_nothing(tmp_path: Path) -> None:
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip("scripts/run.sh sets up and runs the repository's .venv: test from it")
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workspace = tmp_path / "project"
    workspace.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEAM_", "OPENAI_"))},
        "TEAM_WORKSPACE": str(workspace),
        "TEAM_CONFIG": str(tmp_path / "none.toml"),
        "OLLAMA_HOST": f"http://127.0.0.1:{port}",
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "run.sh"), "a todo CLI with tests"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot reach the ollama server at http://127.0.0.1:{port}" in done.stdout
    assert "The task did not run: `team doctor` failed" in done.stderr
    assert "OLLAMA_HOST=" in done.stderr
    assert "team demo" in done.stderr
    assert not (workspace / ".agents").exists(), "neither team up nor the demo may have run"

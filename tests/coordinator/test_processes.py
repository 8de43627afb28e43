"""Finding a team's processes by their command lines."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from coordinator.processes import is_team_command, team_pids
from tests.processes import kill9


def test_only_the_teams_modules_for_this_workspace_match(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    python = sys.executable
    assert is_team_command([python, "-P", "-m", "agent_worker", "--workspace", str(ws)], ws)
    assert is_team_command([python, "-m", "coordinator", "--workspace", f"{ws}/"], ws)
    assert not is_team_command([python, "-m", "coordinator", "--workspace", str(tmp_path)], ws)
    assert not is_team_command([python, "-m", "http.server", "--workspace", str(ws)], ws)
    assert not is_team_command(["vim", str(ws)], ws)
    assert not is_team_command([python, "-m"], ws)


def test_a_running_process_is_found_from_the_process_table(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    # A stand-in with the same command line shape, that only sleeps.
    fake = tmp_path / "agent_worker"
    fake.mkdir()
    (fake / "__main__.py").write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_worker", "--workspace", str(ws)],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10  # until the child has exec'd its command line
        while proc.pid not in team_pids(ws) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.pid in team_pids(ws)
        assert proc.pid not in team_pids(tmp_path)
    finally:
        kill9(proc)
    assert proc.pid not in team_pids(ws)

"""The sandbox really confines commands; two agents editing one file keep both their edits."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from agent_worker.commands import run_command
from agent_worker.sandbox import sandbox_available
from tests.conftest import TeamDir
from tests.processes import finish, start, wait_for_line

needs_sandbox = pytest.mark.skipif(
    not sandbox_available(), reason="bubblewrap cannot start a sandbox here (see team doctor)"
)


@needs_sandbox
def test_inside_the_sandbox_nothing_outside_the_workspace_can_be_written(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    result = run_command(
        f"echo in > inside.txt; echo out > {outside}/x.txt; touch /usr/local/escape; echo end",
        workspace,
        use_sandbox=True,
    )
    assert result.sandboxed
    assert (workspace / "inside.txt").read_text() == "in\n"
    assert not (outside / "x.txt").exists()
    assert not Path("/usr/local/escape").exists()
    assert "Read-only file system" in result.output


@needs_sandbox
def test_inside_the_sandbox_the_network_cannot_be_reached(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted: list[object] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    probe = (
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2); "
        "print('connected')\""
    )
    try:
        outside = run_command(probe, tmp_path, use_sandbox=False)
        assert "connected" in outside.output, "the control run must reach the listener"
        inside = run_command(probe, tmp_path, use_sandbox=True)
        assert "connected" not in inside.output
        assert inside.exit_code != 0
    finally:
        listener.close()


def test_two_agents_editing_different_parts_of_one_file_keep_both_edits(
    team_dir: TeamDir,
) -> None:
    lines = [f"A_{i} = 0\n" for i in range(150)] + [f"B_{i} = 0\n" for i in range(150)]
    shared = team_dir.workspace / "shared.py"
    shared.write_text("".join(lines))
    editor = Path(__file__).parent / "procs_editor.py"
    first = start(editor, team_dir.workspace, "builder-a", "A", 150)
    second = start(editor, team_dir.workspace, "builder-b", "B", 150)
    wait_for_line(first, "started")
    wait_for_line(second, "started")
    finish(first)
    finish(second)
    text = shared.read_text()
    for i in range(150):
        assert f"A_{i} = 1  # edited by builder-a\n" in text
        assert f"B_{i} = 1  # edited by builder-b\n" in text


@needs_sandbox
def test_root_in_the_sandbox_cannot_remount_or_touch_the_teams_files(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    for name in (".agents", ".git"):
        (workspace / name).mkdir(parents=True)
    (workspace / ".gitignore").write_text("venv/\n")
    result = run_command(
        "mount -o remount,rw / ; touch /usr/remounted ; echo x > .agents/forged ; "
        "rm -rf .git ; sed -i /venv/d .gitignore ; echo done",
        workspace,
        use_sandbox=True,
    )
    assert "done" in result.output
    assert not Path("/usr/remounted").exists()
    assert not (workspace / ".agents" / "forged").exists()
    assert (workspace / ".git").is_dir()
    assert (workspace / ".gitignore").read_text() == "venv/\n"


def test_a_running_command_is_stopped_when_the_agent_must_stop(tmp_path: Path) -> None:
    import time

    asked = time.monotonic() + 0.5
    started = time.monotonic()
    result = run_command(
        "sleep 30", tmp_path, use_sandbox=False, should_stop=lambda: time.monotonic() > asked
    )
    assert result.timed_out
    assert "shutting down" in result.output
    assert time.monotonic() - started < 20, "stopped long before the 30 s command would end"

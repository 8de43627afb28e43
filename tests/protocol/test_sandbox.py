"""The wall: what a model wrote runs in bubblewrap (real bwrap, real processes) and cannot
write outside the workspace, reach the network, see the home directory or secrets, or
outlive its timeout. Without a working bwrap nothing runs, unless the user said
--no-sandbox."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from protocol.sandbox import Sandbox, SandboxUnavailable, probe_sandbox
from tests.conftest import broken_bwrap_on_path, listening


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def sandbox(workspace: Path) -> Sandbox:
    probe_sandbox().require()  # CI installs bubblewrap: a missing one fails, loudly
    return Sandbox(workspace)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the workspace, with a file that must survive."""
    root = tmp_path / "outside"
    root.mkdir()
    (root / "precious.txt").write_text("keep me")
    return root


def sh(sandbox: Sandbox, command: str, timeout: float = 30) -> str:
    """Run a command line in the sandbox directly (no rails: this is the wall's test)."""
    return sandbox.run(["sh", "-c", command], timeout=timeout).output


def test_writes_land_in_the_workspace_and_nowhere_else(
    sandbox: Sandbox, workspace: Path, outside: Path
) -> None:
    out = sh(
        sandbox,
        f"echo in > inside.txt; echo out > {outside}/x.txt; echo up > ../up.txt; "
        "touch /usr/local/escape; echo t > /tmp/agent-team-escape; echo end",
    )
    assert (workspace / "inside.txt").read_text() == "in\n"
    assert not (outside / "x.txt").exists()
    assert not (workspace.parent / "up.txt").exists()
    assert not Path("/usr/local/escape").exists()
    assert not Path("/tmp/agent-team-escape").exists(), "/tmp in the sandbox is private"
    assert "Read-only file system" in out
    assert out.rstrip().endswith("end")


@pytest.mark.parametrize(
    "command",
    [
        "x=rm; $x -rf {outside}",
        "python3 -c \"import shutil; shutil.rmtree('{outside}')\"",
        "perl -e 'system(\"rm -rf {outside}\")'",
        "cd / && rm -rf --no-preserve-root {outside}",
    ],
    ids=["variable", "python", "perl", "cd"],
)
def test_what_slips_past_the_rails_is_stopped_by_the_sandbox(
    sandbox: Sandbox, outside: Path, command: str
) -> None:
    sh(sandbox, command.format(outside=outside))
    assert (outside / "precious.txt").read_text() == "keep me"


def test_the_network_cannot_be_reached_even_on_loopback(sandbox: Sandbox) -> None:
    with listening() as (port, accepted):
        probe = (
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2); "
            "print('connected')\""
        )
        control = Sandbox(sandbox.workspace, confined=False).run(["sh", "-c", probe], timeout=30)
        assert "connected" in control.output, "the control run must reach the listener"
        inside = sandbox.run(["sh", "-c", probe], timeout=30)
        assert "connected" not in inside.output
        assert inside.exit_code != 0
        assert len(accepted) == 1, "only the control run connected"


def test_the_install_step_may_reach_the_network(sandbox: Sandbox) -> None:
    with listening() as (port, accepted):
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"
        done = sandbox.run(["python3", "-c", probe], timeout=30, network=True)
        assert done.exit_code == 0, done.output
        assert done.network and done.confined
        deadline = time.monotonic() + 5
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accepted


def test_root_cannot_remount_nor_touch_git_and_cannot_see_the_teams_state(
    sandbox: Sandbox, workspace: Path
) -> None:
    (workspace / ".git").mkdir()
    (workspace / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (workspace / ".agents").mkdir()
    (workspace / ".agents" / "config.toml").write_text('openai_api_key = "sk-secret"\n')
    out = sh(
        sandbox,
        "mount -o remount,rw / ; touch /usr/remounted ; cat .agents/config.toml ; "
        "echo x > .agents/forged ; rm -rf .git ; echo done",
    )
    assert "done" in out
    assert "sk-secret" not in out
    assert not Path("/usr/remounted").exists()
    assert not (workspace / ".agents" / "forged").exists()
    assert (workspace / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"


def test_the_home_directory_and_its_keys_are_out_of_sight(sandbox: Sandbox) -> None:
    secret_file = Path.home() / f".agent-team-test-{secrets.token_hex(4)}"
    secret_file.write_text("the-private-key")
    try:
        out = sh(sandbox, f"cat {secret_file}; ls -a ~/.ssh; echo listing; ls -a ~; echo done")
        assert "the-private-key" not in out
        listing = out.split("listing", 1)[1]
        assert secret_file.name not in listing
        assert ".ssh" not in listing and "id_rsa" not in out
        assert "done" in out
    finally:
        secret_file.unlink()


def test_the_python_that_runs_the_team_stays_usable_inside(sandbox: Sandbox) -> None:
    import sys

    done = sandbox.run([sys.executable, "-c", "import pytest, pydantic; print('ok')"], timeout=60)
    assert done.exit_code == 0, done.output
    assert "ok" in done.output


@pytest.mark.parametrize("confined", [True, False])
def test_the_environment_is_an_allow_list(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, confined: bool
) -> None:
    if confined:
        probe_sandbox().require()
    for name, value in {
        "MY_TOKEN": "tok-123",
        "OPENAI_API_KEY": "sk-x",
        "DB_PASSWORD": "pw-1",
        "OLLAMA_HOST": "http://gpu:11434",
        "PIP_INDEX_URL": "https://user:pw-2@example.invalid/simple",
    }.items():
        monkeypatch.setenv(name, value)
    done = Sandbox(workspace, confined=confined).run(["env"], timeout=30, env={"EXTRA": "1"})
    assert "PATH=" in done.output and "HOME=" in done.output and "EXTRA=1" in done.output
    for leaked in ("tok-123", "sk-x", "pw-1", "gpu:11434", "pw-2"):
        assert leaked not in done.output


def test_the_install_step_sees_the_registry_settings_but_no_secret(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.invalid/simple")
    monkeypatch.setenv("PIP_PASSWORD", "pw-3")
    done = sandbox.run(["env"], timeout=30, network=True)
    assert "PIP_INDEX_URL=https://mirror.invalid/simple" in done.output
    assert "pw-3" not in done.output


@pytest.mark.parametrize("confined", [True, False])
def test_a_timeout_ends_the_command_and_every_child(
    workspace: Path, tmp_path: Path, confined: bool
) -> None:
    if confined:
        probe_sandbox().require()
    marker = workspace / "survivor"
    started = time.monotonic()
    done = Sandbox(workspace, confined=confined).run(
        ["sh", "-c", f"(sleep 2; touch {marker}) & sleep 600"], timeout=1.0
    )
    assert done.timed_out and done.exit_code is None
    assert "stopped after 1s" in done.output
    assert time.monotonic() - started < 20
    time.sleep(2.5)  # the child would have written the marker by now
    assert not marker.exists()


def test_a_running_command_stops_when_the_agent_must(sandbox: Sandbox) -> None:
    asked = time.monotonic() + 0.5
    done = sandbox.run(["sleep", "30"], timeout=60, should_stop=lambda: time.monotonic() > asked)
    assert done.stopped and not done.timed_out
    assert "shutting down" in done.output


def test_a_flood_of_output_is_capped_while_it_is_read(sandbox: Sandbox) -> None:
    done = sandbox.run(["sh", "-c", "seq 1 3000000; echo last"], timeout=60, output_limit=2000)
    assert len(done.output) < 2200
    assert "bytes of output cut" in done.output
    assert done.output.startswith("1\n2\n")
    assert done.output.rstrip().endswith("last")


def test_a_shell_command_the_rails_refuse_never_runs(sandbox: Sandbox, workspace: Path) -> None:
    (workspace / "keep.txt").write_text("precious")
    done = sandbox.shell("rm -rf . ; echo ran > ran.txt", timeout=10)
    assert done.refused and "recursive delete" in done.refused
    assert done.for_model().startswith("REFUSED:")
    assert (workspace / "keep.txt").read_text() == "precious"
    assert not (workspace / "ran.txt").exists()


def test_without_bwrap_nothing_runs_and_the_error_says_how_to_fix_it(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for tool in ("sh", "env"):
        (empty / tool).symlink_to(f"/bin/{tool}")
    monkeypatch.setenv("PATH", str(empty))
    probe = probe_sandbox()
    assert not probe.ok
    assert "not installed" in probe.problem and "apt-get install bubblewrap" in probe.fix
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        Sandbox(workspace).run(["sh", "-c", "echo ran > ran.txt"], timeout=10)
    assert not (workspace / "ran.txt").exists()


def test_a_bwrap_that_cannot_start_is_reported_with_its_exact_error(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken_bwrap_on_path(monkeypatch, tmp_path)
    probe = probe_sandbox()
    assert not probe.ok
    assert "setting up uid map: Permission denied" in probe.problem
    assert "user namespaces" in probe.fix
    with pytest.raises(SandboxUnavailable):
        Sandbox(workspace).run(["true"], timeout=10)
    unconfined = Sandbox(workspace, confined=False).run(["sh", "-c", "echo ran"], timeout=10)
    assert unconfined.output.strip() == "ran" and not unconfined.confined


def test_secret_looking_files_in_the_workspace_read_as_empty(
    sandbox: Sandbox, workspace: Path
) -> None:
    (workspace / ".env").write_text("API_TOKEN=ws-secret\n")
    (workspace / "config").mkdir()
    (workspace / "config" / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (workspace / "app.py").write_text("APP = 1\n")
    out = sh(sandbox, "cat .env config/server.pem app.py")
    assert "ws-secret" not in out and "PRIVATE KEY" not in out
    assert "APP = 1" in out


def test_the_users_repository_around_a_worktree_is_hidden(unhidden_dir: Path) -> None:
    probe_sandbox().require()
    top = unhidden_dir / "project"
    worktree = top / ".git" / "agent-team" / "worktrees" / "t1"
    worktree.mkdir(parents=True)
    (top / ".env").write_text("API_TOKEN=user-secret\n")
    (worktree / "app.py").write_text("APP = 1\n")
    command = ["sh", "-c", f"cat {top}/.env; cat app.py"]
    control = Sandbox(worktree).run(command, timeout=30).output
    assert "user-secret" in control, "the control run must see what is not hidden"
    out = Sandbox(worktree, hidden=(str(top),)).run(command, timeout=30).output
    assert "user-secret" not in out and "APP = 1" in out


def test_nothing_of_the_import_path_but_the_interpreter_is_visible(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    folder = Path.home() / f".agent-team-test-path-{secrets.token_hex(4)}"
    folder.mkdir()
    (folder / "private.txt").write_text("on-the-import-path")
    monkeypatch.syspath_prepend(str(folder))
    try:
        out = sh(sandbox, f"cat {folder}/private.txt; {sys.executable} -c 'print(42)'")
        assert "on-the-import-path" not in out and "42" in out
    finally:
        (folder / "private.txt").unlink()
        folder.rmdir()

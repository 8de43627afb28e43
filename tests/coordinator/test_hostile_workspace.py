"""The team's own, unconfined processes facing a workspace that model code shaped: a module
that shadows the standard library, a `.git` planted with an fsmonitor command, a nested
repository, links out of the workspace, a FIFO, `/dev/zero` behind a name, a sitecustomize.py
and a fake venv Python waiting for the install step. None of it runs outside the sandbox,
nothing outside the workspace is read or written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coordinator import git as team_git
from coordinator import snapshots
from coordinator.rca import evidence
from coordinator.runners import worker_command
from coordinator.up import coordinator_command, prepare
from coordinator.verify import Step, Verification, verify
from coordinator.workspace import Team
from protocol import TeamInfo
from tests.conftest import TeamDir, listening
from tests.processes import REPO, git

MARKER_CODE = "import pathlib; pathlib.Path({marker!r}).write_text('ran'); raise SystemExit(3)\n"


@pytest.mark.parametrize("module", ["json", "agent_worker/__main__", "coordinator/__main__"])
def test_a_module_in_the_workspace_never_shadows_the_teams_own(
    team_dir: TeamDir, tmp_path: Path, module: str
) -> None:
    marker = tmp_path / "shadowed"
    planted = team_dir.workspace / f"{module}.py"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(MARKER_CODE.format(marker=str(marker)))
    for command in (
        worker_command(team_dir.layout, "builder-x", "builder", ["--max-idle", "0.5"]),
        # No team there: it stops at once, after its imports, which is what this is about.
        coordinator_command(tmp_path / "no-team", 1, 1, "subprocess"),
    ):
        subprocess.run(
            command,
            cwd=team_dir.workspace,  # as the panes and the subprocess runner start them
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            timeout=60,
        )
        assert not marker.exists(), f"{planted.name} ran in {command[:4]}"


def hook_script(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "fsmonitor-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    return hook, marker


def test_a_nested_repository_with_an_fsmonitor_runs_nothing_and_is_not_committed(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    team_git.init_own(workspace)
    (workspace / "app.py").write_text("x = 1\n")
    hook, marker = hook_script(tmp_path)
    sub = workspace / "sub"
    sub.mkdir()
    (sub / "f").write_text("1\n")
    git(sub, "init", "-q")
    git(sub, "add", ".")
    git(sub, "commit", "-qm", "x")
    git(sub, "config", "core.fsmonitor", str(hook))
    (sub / "f").write_text("changed\n")
    assert team_git.commit_work(workspace, "one") is not None
    (workspace / "app.py").write_text("x = 2\n")
    (sub / "f").write_text("changed again\n")
    team_git.commit_work(workspace, "two")
    team_git.diff_since_commit(workspace)
    assert not marker.exists()
    assert git(workspace, "ls-files") == "app.py", "no gitlink, nothing of sub"


def worktree_team(tmp_path: Path) -> tuple[Path, Team]:
    """A team set up for `app/` of a user's repository: it works in a worktree."""
    top = tmp_path / "project"
    (top / "app").mkdir(parents=True)
    git(top, "init", "-q", "-b", "main")
    (top / "app" / "keep.py").write_text("KEEP = 1\n")
    git(top, "add", ".")
    git(top, "commit", "-qm", "first")
    return top, prepare(top / "app", "a task")


def test_a_git_directory_planted_in_a_worktree_subdirectory_is_never_used(
    tmp_path: Path,
) -> None:
    top, team = worktree_team(tmp_path)
    info = TeamInfo.read(team.layout.team_json)
    assert info.repository is not None and info.repository.branch
    workspace = team.layout.workspace
    # What model code could do in its sandbox: a repository of its own where the team commits.
    hook, marker = hook_script(tmp_path)
    git(workspace, "init", "-q")
    (workspace / ".git" / "HEAD").write_text(f"ref: refs/heads/{info.repository.branch}\n")
    git(workspace, "config", "core.fsmonitor", str(hook))
    (workspace / "new.py").write_text("NEW = 1\n")
    commit = team_git.commit_work(workspace, "the team's work", info.repository)
    assert commit is not None
    assert not marker.exists()
    assert git(top, "rev-parse", info.repository.branch) == commit
    assert "app/new.py" in git(top, "show", "--name-only", "--format=", commit)


def outside_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("TOP-SECRET-OUTSIDE")
    return secret


def test_the_rca_evidence_does_not_follow_a_link_out_of_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "leak.py").symlink_to(outside_secret(tmp_path))
    (workspace / "good.py").write_text("GOOD = 1\n")
    failed = Verification([Step("tests", False, "error in leak.py and good.py")])
    text = evidence(workspace, failed, [], 4000)
    assert "TOP-SECRET-OUTSIDE" not in text
    assert "GOOD = 1" in text


@pytest.mark.timeout(60)
def test_a_fifo_or_a_device_behind_a_python_name_fails_verification_at_once(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "block.py")
    (workspace / "zero.py").symlink_to("/dev/zero")
    (workspace / "out.py").symlink_to(outside_secret(tmp_path))
    result = verify(workspace, [])
    assert not result.passed
    output = result.steps[0].output
    for name in ("block.py", "zero.py", "out.py"):
        assert f"{name}: not read" in output
    assert "TOP-SECRET" not in output


def test_a_rollback_replaces_a_link_instead_of_writing_through_it(team_dir: TeamDir) -> None:
    outside = outside_secret(team_dir.workspace.parent)
    models = team_dir.workspace / "models.py"
    models.write_text("GOOD = 1\n")
    assert snapshots.take(team_dir.layout, 1, ["models.py"]) == ["models.py"]
    models.unlink()
    models.symlink_to(outside)
    assert snapshots.rollback(team_dir.layout, 1, ["models.py"]) == ["models.py"]
    assert outside.read_text() == "TOP-SECRET-OUTSIDE"
    assert not models.is_symlink() and models.read_text() == "GOOD = 1\n"


def test_a_link_out_is_not_snapshotted(team_dir: TeamDir) -> None:
    (team_dir.workspace / "leak.py").symlink_to(outside_secret(team_dir.workspace.parent))
    assert snapshots.take(team_dir.layout, 1, ["leak.py"]) == []


@pytest.mark.timeout(300)
def test_nothing_the_workspace_holds_runs_while_the_install_step_has_the_network(
    tmp_path: Path,
) -> None:
    from protocol.sandbox import probe_sandbox

    probe_sandbox().require()
    workspace = tmp_path / "ws"
    (workspace / ".venv" / "bin").mkdir(parents=True)
    with listening() as (port, accepted):
        connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\n"
        (workspace / "sitecustomize.py").write_text(connect)
        (workspace / "pip").mkdir()
        (workspace / "pip" / "__main__.py").write_text(connect)
        fake = workspace / ".venv" / "bin" / "python"
        fake.write_text(f"#!{sys.executable}\n{connect}")
        fake.chmod(0o755)
        (workspace / ".venv" / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:9\n")
        (workspace / "requirements.txt").write_text("sdemo.zip\n")
        (workspace / "sdemo.zip").write_bytes(b"not really")
        result = verify(workspace, [])
        install = next(s for s in result.steps if s.name == "install")
        assert "with network" in install.output
        assert accepted == [], "something of the workspace's connected out"


def plant(path: Path, marker: Path) -> None:
    """An executable that leaves a marker: what model code could put on a PATH."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 0\n')
    path.chmod(0o755)


def test_a_bwrap_planted_in_the_workspace_venv_is_never_what_runs(tmp_path: Path) -> None:
    from protocol.sandbox import Sandbox, probe_sandbox

    probe_sandbox().require()
    workspace = tmp_path / "ws"
    marker = tmp_path / "planted-ran"
    plant(workspace / ".venv" / "bin" / "bwrap", marker)
    done = Sandbox(workspace).run(["sh", "-c", "echo inside"], timeout=30)
    assert "inside" in done.output and done.confined
    assert not marker.exists()


@pytest.mark.parametrize("tool", ["npm", "node", "git", "rustc", "curl"])
def test_the_network_steps_never_run_a_program_planted_in_the_workspace(
    tmp_path: Path, tool: str
) -> None:
    from protocol.sandbox import search_path

    workspace = tmp_path / "ws"
    plant(workspace / ".venv" / "bin" / tool, tmp_path / "m")
    path = search_path(
        workspace,
        f"{workspace}/.venv/bin:.:{workspace}/bin::/usr/bin:/bin",
        confined=True,
        network=True,
    )
    assert str(workspace) not in path and "." not in path.split(":")
    assert "/usr/bin" in path.split(":")
    offline = search_path(workspace, "/usr/bin", confined=True)
    assert offline.split(":")[0] == str(workspace / ".venv" / "bin")


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed on this machine")
def test_npm_is_the_teams_even_with_a_planted_one_and_a_linked_npmrc(tmp_path: Path) -> None:
    from protocol.sandbox import probe_sandbox

    probe_sandbox().require()
    workspace = tmp_path / "ws"
    marker = tmp_path / "planted-ran"
    for tool in ("npm", "node", "git"):
        plant(workspace / ".venv" / "bin" / tool, marker)
    plant(workspace / "evil.sh", marker)
    (workspace / "npmrc.conf").write_text(
        f"git={workspace}/evil.sh\nscript-shell={workspace}/evil.sh\n"
    )
    (workspace / ".npmrc").symlink_to("npmrc.conf")
    (workspace / "package.json").write_text('{"name": "x", "version": "1.0.0"}')
    result = verify(workspace, [])
    assert any(s.name == "npm install" for s in result.steps)
    assert not marker.exists(), marker.read_text() if marker.exists() else ""


def test_a_linked_secret_reads_as_empty_in_the_sandbox(tmp_path: Path) -> None:
    from protocol.sandbox import Sandbox, probe_sandbox

    probe_sandbox().require()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".env").symlink_to(outside_secret(tmp_path))
    (workspace / "helper.py").symlink_to(".env")
    out = Sandbox(workspace).run(["sh", "-c", "cat .env helper.py; echo end"], timeout=30).output
    assert "TOP-SECRET" not in out and "end" in out


def test_a_link_to_a_secret_stays_out_of_the_rca_evidence(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".env").write_text("OPENAI_API_KEY=sk-SECRET-RCA\n")
    (workspace / "helper.py").symlink_to(".env")
    failed = Verification([Step("tests", False, "error in helper.py")])
    assert "sk-SECRET-RCA" not in evidence(workspace, failed, [], 4000)


@pytest.mark.timeout(30)
def test_writing_over_a_fifo_is_refused_at_once(team_dir: TeamDir) -> None:
    from agent_worker.tools import ALL_TOOLS, Toolbox
    from protocol.llm import ToolCall

    os.mkfifo(team_dir.workspace / "out.py")
    toolbox = Toolbox(team_dir.layout, "builder-a", None, ALL_TOOLS)
    call = ToolCall(id="c", name="write_file", arguments={"path": "out.py", "content": "x = 1\n"})
    assert toolbox.call(call).startswith("REFUSED:")


def test_team_up_inside_a_teams_worktree_is_refused_before_git_is_asked(tmp_path: Path) -> None:
    from coordinator.up import UpError

    top, team = worktree_team(tmp_path)
    workspace = team.layout.workspace
    # What model code could leave there: a repository whose checkout runs a filter.
    hook, marker = hook_script(tmp_path)
    git(workspace, "init", "-q")
    git(workspace, "config", "filter.x.smudge", str(hook))
    (workspace / ".gitattributes").write_text("*.py filter=x\n")
    git(workspace, "add", ".gitattributes")
    git(workspace, "commit", "-qm", "planted")
    for inside in (workspace, workspace / "sub"):
        with pytest.raises(UpError, match=f"run `team up` in {top / 'app'}"):
            prepare(inside, "second task")
    assert not marker.exists()


def test_the_users_other_working_trees_are_hidden_from_the_worktree_team(
    unhidden_dir: Path,
) -> None:
    from protocol.sandbox import Sandbox, probe_sandbox

    probe_sandbox().require()
    main = unhidden_dir / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "app.py").write_text("APP = 1\n")
    git(main, "add", ".")
    git(main, "commit", "-qm", "first")
    (main / ".env").write_text("API_TOKEN=main-secret\n")
    git(main, "worktree", "add", "-q", str(unhidden_dir / "linked"), "-b", "other")
    team = prepare(unhidden_dir / "linked", "a task")
    sandbox = Sandbox.for_team(team.layout.workspace, TeamInfo.read(team.layout.team_json))
    command = f"cat {main}/.env {main}/.git/config; ls {unhidden_dir}/linked; cat app.py"
    out = sandbox.run(["sh", "-c", command], timeout=30).output
    assert "main-secret" not in out and "[core]" not in out
    assert "APP = 1" in out


def test_the_teams_processes_get_only_absolute_pythonpath_entries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from coordinator.runners import pane_environment, team_environment

    monkeypatch.setenv("PYTHONPATH", f":.:relative:{REPO}:")
    assert team_environment()["PYTHONPATH"] == str(REPO)
    assert pane_environment()["PYTHONPATH"] == str(REPO)

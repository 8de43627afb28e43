"""The user's repository is never harmed (real git, real `team up --wait`, the scripted model):
in a repository with a checked-out branch, a dirty tree, untracked files and a `.env`, in a
detached HEAD, in a repository with no commits, and in a subdirectory of a repository, the
user's branch, HEAD, index, working tree and `.gitignore` stay byte-identical, no commit
anywhere holds the `.env` or the untracked files, and the team's result is on its branch."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from protocol import Layout, TeamInfo
from protocol.llm.scripted import ScriptedServer
from tests.e2e.test_team_up import model, team
from tests.processes import git

__all__ = ["model"]  # the fixture, used by name
pytestmark = pytest.mark.timeout(300)
TASK = "a todo list that counts open items"


@dataclass
class UserRepo:
    top: Path  # the repository
    directory: Path  # where the user runs `team up`
    branch: str | None  # the checked-out branch (None: detached or unborn)


def snapshot(repo: UserRepo) -> dict[str, object]:
    """Everything of the user's that must not change: files, HEAD, refs, index."""
    files = {
        str(p.relative_to(repo.top)): p.read_bytes()
        for p in sorted(repo.top.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(repo.top).parts
    }
    dot_git = repo.top / ".git"
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"],
        cwd=repo.top,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return {
        "files": files,
        "HEAD": (dot_git / "HEAD").read_bytes(),
        "index": (dot_git / "index").read_bytes() if (dot_git / "index").exists() else None,
        "refs": sorted(r for r in refs if " refs/heads/team/" not in f" {r}"),
        "status": git(repo.top, "status", "--porcelain=v1", "--untracked-files=all"),
    }


def feature_branch_with_a_dirty_tree(root: Path) -> UserRepo:
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("*.log\n")
    (root / "store.py").write_text("# the user's store\n")
    (root / "README.md").write_text("user readme\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "user's first commit")
    git(root, "checkout", "-qb", "feature")
    (root / "README.md").write_text("user readme, edited and not committed\n")
    (root / "store.py").write_text("# the user's store, edited and not committed\n")
    (root / "notes.txt").write_text("untracked notes\n")
    (root / ".env").write_text("API_TOKEN=user-secret\n")
    (root / "debug.log").write_text("ignored\n")
    return UserRepo(root, root, "feature")


def detached_head(root: Path) -> UserRepo:
    feature_branch_with_a_dirty_tree(root)
    git(root, "checkout", "-q", "--detach")
    return UserRepo(root, root, None)


def no_commits_yet(root: Path) -> UserRepo:
    git(root, "init", "-q", "-b", "main")
    (root / "staged.py").write_text("x = 1\n")
    git(root, "add", "staged.py")
    (root / "untracked.txt").write_text("mine\n")
    (root / ".env").write_text("API_TOKEN=user-secret\n")
    return UserRepo(root, root, None)


def subdirectory(root: Path) -> UserRepo:
    git(root, "init", "-q", "-b", "main")
    (root / "app").mkdir()
    (root / "app" / "keep.py").write_text("KEEP = 1\n")
    (root / "top.txt").write_text("top\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "user's first commit")
    (root / "app" / ".env.local").write_text("API_TOKEN=user-secret\n")
    (root / "app" / "scratch.txt").write_text("untracked\n")
    return UserRepo(root, root / "app", "main")


SCENARIOS: dict[str, Callable[[Path], UserRepo]] = {
    "feature-branch-dirty": feature_branch_with_a_dirty_tree,
    "detached-head": detached_head,
    "no-commits": no_commits_yet,
    "subdirectory": subdirectory,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_team_up_leaves_the_users_repository_as_it_was_and_puts_the_result_on_its_branch(
    model: ScriptedServer, tmp_path: Path, scenario: str
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    repo = SCENARIOS[scenario](root)
    before = snapshot(repo)
    done = team(repo.directory, model, "up", TASK, "--runner", "subprocess", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert snapshot(repo) == before

    status = json.loads(team(repo.directory, model, "status", "--json").stdout)
    info = status["team"]
    branch = f"team/{info['id']}"
    assert info["status"] == "done"
    assert info["repository"]["branch"] == branch
    assert branch in done.stdout and "git merge" in done.stdout

    # The result is on the team's branch, under the same directory as the user's.
    prefix = str(repo.directory.relative_to(repo.top))
    prefix = "" if prefix == "." else prefix + "/"
    assert "if not item.done" in git(repo.top, "show", f"{branch}:{prefix}store.py")
    everything = git(repo.top, "log", "--all", "--name-only", "--format=")
    for never in (".env", ".env.local", "notes.txt", "untracked.txt", "scratch.txt", "debug.log"):
        assert never not in everything.split(), f"{never} was committed"
    assert ".agents" not in everything
    if repo.branch:
        assert git(repo.top, "diff", "--stat", f"{repo.branch}...{branch}")


def test_the_user_is_told_what_the_team_does_not_see_and_where_plans_overlap(
    model: ScriptedServer, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    repo = feature_branch_with_a_dirty_tree(root)
    done = team(repo.directory, model, "up", TASK, "--runner", "subprocess", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "branch feature and your working tree are left as they are" in done.stdout
    assert "uncommitted or untracked files of yours stay where they are" in done.stdout
    assert "notes.txt" in done.stdout
    team_id = json.loads(team(root, model, "status", "--json").stdout)["team"]["id"]
    layout = Layout.of(root / ".git" / "agent-team" / "worktrees" / team_id)
    log = layout.log_file("coordinator").read_text()
    assert "the plan changes files you have uncommitted changes in: store.py" in log
    assert "commit or stash your changes to store.py" in done.stdout
    assert "commit or stash your changes to store.py" in team(root, model, "status").stdout
    assert (root / "store.py").read_text() == "# the user's store, edited and not committed\n"
    assert TeamInfo.read(layout.team_json).repository is not None


def test_a_second_team_up_gets_a_branch_of_its_own(model: ScriptedServer, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    subdirectory(root)
    first = team(root, model, "up", TASK, "--runner", "subprocess", "--wait")
    second = team(root, model, "up", TASK, "--runner", "subprocess", "--wait")
    assert first.returncode == 0 and second.returncode == 0, second.stdout + second.stderr
    branches = git(root, "branch", "--list", "--format=%(refname:short)", "team/*").split()
    assert len(branches) == 2
    latest = json.loads(team(root, model, "status", "--json").stdout)["team"]["id"]
    assert f"team/{latest}" in branches


def test_a_new_empty_directory_is_git_inited_and_worked_in_place(
    model: ScriptedServer, tmp_path: Path
) -> None:
    workspace = tmp_path / "fresh"
    done = team(workspace, model, "up", TASK, "--runner", "subprocess", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "if not item.done" in (workspace / "store.py").read_text()
    assert not (workspace / ".gitignore").exists(), "the team's ignores are git's own"
    assert ".agents/" in (workspace / ".git" / "info" / "exclude").read_text()
    assert "agent-team iteration" in git(workspace, "log", "--oneline")

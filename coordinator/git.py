"""The workspace's git repository: created when missing, a commit around each iteration."""

from __future__ import annotations

import subprocess
from pathlib import Path

IGNORED = (".agents/", ".venv/", "venv/", "__pycache__/")
_IDENTITY = ["-c", "user.name=agent-team", "-c", "user.email=agent-team@localhost"]


def _git(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *_IDENTITY, *args], cwd=workspace, capture_output=True, text=True, timeout=60
    )


def ensure_repository(workspace: Path) -> bool:
    """`git init` when the workspace is not in a repository, and a .gitignore that keeps the
    team's state and the venvs out of git. Returns whether a repository was created."""
    created = False
    if _git(workspace, "rev-parse", "--is-inside-work-tree").returncode != 0:
        done = _git(workspace, "init", "-q")
        if done.returncode != 0:
            raise RuntimeError(f"git init failed in {workspace}: {done.stderr.strip()}")
        created = True
    ignore = workspace / ".gitignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    missing = [entry for entry in IGNORED if entry not in lines]
    if missing:
        ignore.write_text("\n".join([*lines, *missing]) + "\n")
    return created


def commit_all(workspace: Path, message: str) -> str | None:
    """Commit everything (what .gitignore allows); the new commit's id, or None when nothing
    changed."""
    _git(workspace, "add", "-A", ".")
    done = _git(workspace, "commit", "-q", "-m", message)
    if done.returncode != 0:
        return None
    return _git(workspace, "rev-parse", "HEAD").stdout.strip()

"""Keeping every file tool inside the workspace, and away from what the team must not touch."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

# Never written by a tool, whatever the model asks: git's data, the team's own state, and the
# virtual environments the workspace's .gitignore protects.
PROTECTED_DIRS = frozenset({".git", ".agents", ".venv", "venv"})
VENV_IGNORE_LINES = frozenset(
    {"venv", "venv/", ".venv", ".venv/", "/venv", "/.venv", "/venv/", "/.venv/"}
)


class PathRefused(Exception):
    """A path the tools will not touch; the message tells the model what to do instead."""


def resolve(workspace: Path, path: str) -> tuple[Path, str]:
    """The real path of `path` (relative to the workspace, or absolute inside it) and its
    workspace-relative POSIX form. Raises `PathRefused` for anything outside, including a
    symbolic link inside the workspace that points out."""
    if not path or not path.strip():
        raise PathRefused("the path is empty: give a path relative to the workspace")
    if "\x00" in path:
        raise PathRefused("the path contains a NUL byte")
    if path.startswith("~"):
        raise PathRefused(f"{path!r}: '~' is not expanded; paths are relative to the workspace")
    root = workspace.resolve()
    candidate = Path(path) if os.path.isabs(path) else root / path
    real = candidate.resolve()  # follows every symlink, so a link pointing out is caught
    try:
        relative = real.relative_to(root)
    except ValueError:
        raise PathRefused(
            f"{path!r} is outside the workspace: use a path relative to the workspace root"
        ) from None
    return real, PurePosixPath(relative).as_posix()


def check_writable(relative: str) -> None:
    """Refuse writes to protected places (checked on the resolved relative path)."""
    parts = PurePosixPath(relative).parts
    if not parts or relative == ".":
        raise PathRefused("that is the workspace itself, not a file")
    if parts[0] in PROTECTED_DIRS:
        raise PathRefused(
            f"{relative!r} is inside {parts[0]}/, which the team never writes: "
            "write your files elsewhere in the workspace"
        )


def check_gitignore_edit(relative: str, old: str, new: str) -> None:
    """A .gitignore may change, but never lose a line that keeps a venv out of git."""
    if PurePosixPath(relative).name != ".gitignore":
        return
    kept = {line.strip() for line in new.splitlines()}
    lost = sorted(
        line.strip()
        for line in old.splitlines()
        if line.strip() in VENV_IGNORE_LINES and line.strip() not in kept
    )
    if lost:
        raise PathRefused(
            f".gitignore must keep {', '.join(lost)}: it keeps the virtual environment out "
            "of git. Add lines, but do not remove that one."
        )

"""Running a command inside bubblewrap: the workspace writable, the rest of the filesystem
read-only, no network, a private /tmp. Where bwrap cannot start a sandbox the command runs
without one (the safety rails still apply) and `team doctor` says so."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path


@functools.cache
def sandbox_available() -> bool:
    """Whether bwrap is installed and can really create its namespaces here."""
    if shutil.which("bwrap") is None:
        return False
    try:
        done = subprocess.run(
            ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _python_under_tmp() -> list[str]:
    """This Python's prefix and import path where they live under /tmp, which the sandbox's
    private /tmp would hide (a checkout or venv in /tmp, as CI uses)."""
    candidates = {sys.prefix, sys.base_prefix, *sys.path}
    return sorted(
        str(Path(p).resolve())
        for p in candidates
        if p and Path(p).is_dir() and Path(p).resolve().is_relative_to("/tmp")
    )


def _protected(workspace: Path) -> list[Path]:
    names = (".agents", ".git", ".venv", "venv", ".gitignore")
    return [workspace.resolve() / n for n in names if (workspace / n).exists()]


def sandboxed(argv: list[str], workspace: Path) -> list[str]:
    """`argv` wrapped in bwrap for `workspace`: the whole filesystem read-only, a private
    /tmp (with this Python kept visible), the workspace writable except its protected parts,
    no capabilities, no network."""
    root = str(workspace.resolve())
    options = [
        ("--ro-bind", "/", "/"),
        ("--dev", "/dev"),
        ("--proc", "/proc"),
        ("--tmpfs", "/tmp"),
        *(("--ro-bind", path, path) for path in _python_under_tmp()),
        ("--bind", root, root),
        # The team's state, git's data and the venvs stay read-only even inside the workspace.
        *(("--ro-bind", str(p), str(p)) for p in _protected(workspace)),
        # No capabilities: root in the sandbox cannot remount the read-only filesystem.
        ("--cap-drop", "ALL"),
        ("--unshare-net",),
        ("--unshare-pid",),
        ("--die-with-parent",),
        ("--new-session",),
        ("--chdir", root),
    ]
    return ["bwrap", *(word for option in options for word in option), *argv]

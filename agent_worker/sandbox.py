"""Running a command inside bubblewrap: the workspace writable, the rest of the filesystem
read-only, no network, a private /tmp. Where bwrap cannot start a sandbox the command runs
without one (the safety rails still apply) and `team doctor` says so."""

from __future__ import annotations

import functools
import shutil
import subprocess
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


def sandboxed(argv: list[str], workspace: Path) -> list[str]:
    """`argv` wrapped in bwrap for `workspace`."""
    root = str(workspace.resolve())
    return [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--bind",
        root,
        root,
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "--new-session",
        "--chdir",
        root,
        *argv,
    ]

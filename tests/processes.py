"""Starting real helper processes from tests, and waiting on them without sleeping blindly."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent


def start(script: Path, *args: object) -> subprocess.Popen[str]:
    """Run `script` (a file under tests/) as its own Python process, stdout piped."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def wait_for_line(proc: subprocess.Popen[str], expected: str, timeout: float = 30.0) -> None:
    """Block until `proc` prints a line equal to `expected`; fail with its stderr otherwise."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == expected:
                return
            if line == "":
                break
    proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"process never printed {expected!r} (rc={proc.returncode}): {err}")


def finish(proc: subprocess.Popen[str], timeout: float = 120.0) -> str:
    """Wait for `proc` to exit 0 and return its remaining stdout."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}: {err}"
    return out


def kill9(proc: subprocess.Popen[str]) -> None:
    """SIGKILL, then reap, so no zombie or open pipe is left behind."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def git(cwd: Path, *args: str) -> str:
    """Run git as a user would (an identity of its own), fail on error, return its output."""
    done = subprocess.run(
        ["git", "-c", "user.name=u", "-c", "user.email=u@x", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


TEAM_MODULES = ("coordinator", "agent_worker")


def team_processes(workspace: Path) -> dict[int, str]:
    """The live coordinator and worker processes working in `workspace` (pid: module), read
    from /proc on their own, apart from what `team kill` uses to find them."""
    found = {}
    wanted = str(workspace.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone meanwhile
            continue
        # A zombie's command line is empty: it runs nothing any more.
        if "-m" in argv[:-1] and "--workspace" in argv[:-1]:
            module = argv[argv.index("-m") + 1]
            given = argv[argv.index("--workspace") + 1]
            if module in TEAM_MODULES and str(Path(given).resolve()) == wanted:
                found[int(entry.name)] = module
    return found


class Output:
    """Everything a process prints (stdout, stderr folded into it), collected by a thread so
    that a test can wait for a line while the process runs."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self._lines)

    def wait(self, timeout: float) -> int:
        """The exit code, once the process ended and everything it printed is read."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def in_threads(work: Callable[[], None], count: int, timeout: float = 60) -> None:
    """`work` in `count` threads at once (agents of a team, say); the first error any of them
    raised is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # raised by the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]

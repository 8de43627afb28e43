"""The one way to run what a model wrote (DESIGN §9): tests, DoD criteria, import checks,
installs of declared dependencies, worker commands. One policy, in bubblewrap:

- the workspace (and its venv) writable; its `.git` read-only and the team's `.agents/` hidden;
- the rest of the filesystem read-only; `/tmp`, `/var/tmp`, `/run` and the home directories
  replaced by empty private ones (this Python and the tools on PATH that live there stay
  visible, read-only), so keys, tokens and other users' sockets are out of sight;
- no network (the install step alone may reach the package registry), no capabilities, its own
  process, IPC and host namespaces, a new terminal session;
- an allow-listed environment, a timeout that kills every process of the command, and an
  output cap that holds memory to the cap however much the command prints.

Where bubblewrap cannot start, nothing runs: `SandboxUnavailable` says why and what to do,
unless the user chose `--no-sandbox`, and then every view says so (`Sandbox.confined`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from protocol.environment import is_secret_path, model_environment
from protocol.rails import Rails
from protocol.team import TeamInfo

OUTPUT_LIMIT = 20_000
HIDDEN_DIRS = ("/tmp", "/var/tmp", "/run", "/root", "/home")
_NOT_SEARCHED = frozenset({".git", ".agents", ".venv", "venv", "node_modules", "__pycache__"})
INSTALL_FIX = "install it: apt-get install bubblewrap (or your system's package)"
NAMESPACE_FIX = (
    "bubblewrap needs user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1` "
    "(Debian), `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04+), "
    "or, in a container, run it with the permission to create namespaces"
)
NO_SANDBOX_HINT = "or pass --no-sandbox to run the models' code unconfined, at your own risk"
UNCONFINED_NOTICE = "UNCONFINED (--no-sandbox): the models' code runs without a sandbox"


class SandboxUnavailable(Exception):
    """bubblewrap cannot confine model code here; the message says why and what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"no sandbox: {problem}; {fix}")
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class SandboxProbe:
    """Whether the sandbox really starts here, and if not the exact error and the fix."""

    ok: bool
    problem: str = ""
    fix: str = ""

    def require(self) -> None:
        if not self.ok:
            raise SandboxUnavailable(self.problem, self.fix)


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    output: str
    timed_out: bool = False
    stopped: bool = False  # ended because the caller asked (a shutdown), not by a timeout
    refused: str | None = None  # the rails' reason, when the command never ran
    confined: bool = True
    network: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def code(self) -> int:
        """The exit code as a shell reports it: 124 after a timeout."""
        return 124 if self.timed_out else (self.exit_code or 0)

    def for_model(self) -> str:
        if self.refused:
            return f"REFUSED: {self.refused}"
        head = "TIMED OUT" if self.timed_out else f"exit code {self.exit_code}"
        return f"{head}\n{self.output}" if self.output else head


def probe_sandbox() -> SandboxProbe:
    """Start the real policy once (per bwrap binary) on `true` and report what happened."""
    return _probe(bwrap_path())


def bwrap_path(workspace: Path | None = None) -> str | None:
    """bwrap, by its absolute path, from the absolute PATH entries outside the workspace only:
    anything else could find a `bwrap` that model code planted."""
    root = workspace.resolve() if workspace is not None else None
    entries = [
        entry
        for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)
        if os.path.isabs(entry)
        and not (root is not None and Path(entry).resolve().is_relative_to(root))
    ]
    return shutil.which("bwrap", path=os.pathsep.join(entries))


@functools.cache
def _probe(bwrap: str | None) -> SandboxProbe:
    if bwrap is None:
        return SandboxProbe(False, "bwrap (bubblewrap) is not installed", INSTALL_FIX)
    with tempfile.TemporaryDirectory(prefix="agent-team-probe-") as scratch:
        argv = Sandbox(Path(scratch)).command(["true"], network=False)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return SandboxProbe(False, f"bwrap did not run: {exc}", NAMESPACE_FIX)
    if done.returncode != 0:
        error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        problem = f"bwrap cannot start a sandbox here: {error or f'exit {done.returncode}'}"
        return SandboxProbe(False, problem, NAMESPACE_FIX)
    return SandboxProbe(True)


def _under_hidden(path: Path) -> bool:
    return any(path.is_relative_to(hidden) for hidden in HIDDEN_DIRS)


def _visible_python() -> list[str]:
    """What must stay visible inside the hidden directories: this Python (its prefixes and the
    real interpreter), read-only. Nothing else of its import path: a directory on it may be a
    user's tree, and model code needs only the interpreter and its installed packages."""
    candidates = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        str(Path(sys.executable).parent),
        str(Path(sys.executable).resolve().parent),
    }
    found = set()
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            real = Path(candidate).resolve()
            if _under_hidden(real):
                found.add(str(real))
    # Parents before children, so that a nested bind is not hidden by its parent's.
    return sorted(found, key=lambda p: (p.count("/"), p))


def search_path(workspace: Path, path: str, *, confined: bool, network: bool = False) -> str:
    """PATH for model code: the workspace's venv, then this Python's (so `python` and
    `pytest` are the team's), then the absolute PATH entries visible in the sandbox. With the
    network, nothing of the workspace: a program a model planted there (`.venv/bin/git`,
    `node`, `rustc`) must never be what a fetch runs."""
    root = workspace.resolve()
    first = [] if network else [str(workspace / ".venv" / "bin")]
    first.append(str(Path(sys.executable).parent))
    kept = []
    for entry in [*first, *path.split(os.pathsep)]:
        if not entry or not os.path.isabs(entry):  # "" and "." mean the working directory
            continue
        real = Path(entry).resolve()
        if confined and _under_hidden(real) and entry not in first:
            continue
        if network and (real == root or real.is_relative_to(root)):
            continue
        kept.append(entry)
    return os.pathsep.join(dict.fromkeys(kept))


@dataclass(frozen=True)
class Sandbox:
    """The sandbox policy for one workspace. `confined=False` only when the user passed
    `--no-sandbox`: then commands run as they are, with the same environment, timeout and cap."""

    workspace: Path
    confined: bool = True
    # Directories hidden whole besides HIDDEN_DIRS: the user's repository, when the team works
    # in a worktree inside it (its `.env`, its `.agents/config.toml`).
    hidden: tuple[str, ...] = ()
    # Directories read (never written) although they lie in a hidden one: the workspace's
    # .venv, for a candidate test run in a scratch copy while the workspace is hidden.
    readable: tuple[str, ...] = ()

    @classmethod
    def for_team(cls, workspace: Path, team: TeamInfo) -> Sandbox:
        """The policy for a team: confined unless it was started with --no-sandbox."""
        hidden = tuple(team.repository.private) if team.repository is not None else ()
        return cls(workspace, confined=not team.unconfined, hidden=hidden)

    def program(self, name: str) -> str | None:
        """The absolute path of a tool, from a PATH that holds nothing of the workspace."""
        path = search_path(
            self.workspace, os.environ.get("PATH", os.defpath), confined=False, network=True
        )
        return shutil.which(name, path=path)

    def command(self, argv: Sequence[str], *, network: bool, cwd: Path | None = None) -> list[str]:
        """`argv` wrapped in bwrap under this policy."""
        root = str(self.workspace.resolve())
        options: list[tuple[str, ...]] = [("--ro-bind", "/", "/"), ("--dev", "/dev")]
        options += [("--proc", "/proc")]
        options += [("--tmpfs", d) for d in HIDDEN_DIRS if Path(d).is_dir()]
        options += [("--tmpfs", d) for d in self.hidden if Path(d).is_dir()]
        if network and Path("/run/systemd/resolve").is_dir():  # resolv.conf may point there
            options.append(("--ro-bind", "/run/systemd/resolve", "/run/systemd/resolve"))
        options += [("--ro-bind", path, path) for path in _visible_python()]
        options += [("--ro-bind", path, path) for path in self.readable if Path(path).is_dir()]
        options.append(("--bind", root, root))
        # Secret-looking files in the workspace (.env, keys, .npmrc) read as empty.
        options += [("--ro-bind", "/dev/null", path) for path in secret_files(self.workspace)]
        git = Path(root, ".git")
        if git.exists():  # the team's history: read, never rewritten by model code
            options.append(("--ro-bind", str(git), str(git)))
        agents = Path(root, ".agents")
        if agents.is_dir():  # the team's state and settings (API keys): not even read
            options += [("--tmpfs", str(agents)), ("--remount-ro", str(agents))]
        options += [
            ("--unshare-all",),  # user (where possible), pid, ipc, uts, cgroup, net
            *([("--share-net",)] if network else []),
            # No capabilities: root in the sandbox cannot remount the read-only filesystem.
            ("--cap-drop", "ALL"),
            ("--die-with-parent",),
            ("--new-session",),  # no TIOCSTI into the user's terminal
            ("--chdir", str(cwd or root)),
        ]
        bwrap = bwrap_path(self.workspace) or "bwrap"  # never from the sandbox's own PATH
        return [bwrap, *(word for option in options for word in option), "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        network: bool = False,
        env: Mapping[str, str] | None = None,
        output_limit: int = OUTPUT_LIMIT,
        should_stop: Callable[[], bool] = lambda: False,
        cwd: Path | None = None,
    ) -> RunResult:
        """Run `argv` in the workspace (or in `cwd`, a directory inside it) under the policy;
        `env` adds to the allow-listed environment. Raises `SandboxUnavailable` when confined
        and bwrap cannot start."""
        if self.confined:
            _probe(bwrap_path(self.workspace)).require()
            full = self.command(argv, network=network, cwd=cwd)
        else:
            full = list(argv)
        environment = model_environment(os.environ, registry=network)
        environment["PATH"] = search_path(
            self.workspace,
            environment.get("PATH", os.defpath),
            confined=self.confined,
            network=network,
        )
        # No bytecode in the workspace: a stale .pyc of a file put back within the same
        # second at the same size would hide the file that is really there (a rollback).
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment.update(env or {})
        try:
            process = subprocess.Popen(
                full,
                cwd=cwd or self.workspace,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so a timeout ends all of it
            )
        except OSError as exc:
            return RunResult(127, f"{argv[0]}: {exc}", confined=self.confined, network=network)
        capture = _Capture(output_limit)
        assert process.stdout is not None
        reader = threading.Thread(target=capture.drain, args=(process.stdout,), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        timed_out = stopped = False
        while True:
            try:  # returns as soon as the command ends; else checks the limits every 50 ms
                process.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            timed_out = time.monotonic() > deadline
            stopped = not timed_out and should_stop()  # a shutdown, even mid-command
            if timed_out or stopped:
                _kill_group(process.pid)
                process.wait()
                break
        reader.join(5)
        text = capture.text()
        if timed_out or stopped:
            why = f" after {timeout:g}s" if timed_out else ": the agent is shutting down"
            ended = f"[the command was stopped{why}]"
            text = f"{text}\n{ended}" if text else ended
        return RunResult(
            None if timed_out or stopped else process.returncode,
            text,
            timed_out=timed_out,
            stopped=stopped,
            confined=self.confined,
            network=network,
        )

    def shell(
        self,
        command: str,
        *,
        timeout: float,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> RunResult:
        """A model's command line: refused with a reason when the rails see harm (advice for
        the model), else `sh -c` under the policy (the wall)."""
        reason = Rails(self.workspace).refusal(command)
        if reason:
            return RunResult(None, "", refused=reason, confined=self.confined)
        return self.run(["sh", "-c", command], timeout=timeout, should_stop=should_stop)


def secret_files(workspace: Path) -> list[str]:
    """The files that secret-looking names of the workspace lead to (through a link too):
    each is read as empty in the sandbox."""
    found = []
    for root, dirs, files in os.walk(workspace):
        dirs[:] = [d for d in dirs if d not in _NOT_SEARCHED]
        for name in files:
            if not is_secret_path(name):
                continue
            real = os.path.realpath(os.path.join(root, name))
            if os.path.isfile(real):  # a dangling link has nothing to read
                found.append(real)
    return sorted(set(found))


def _kill_group(pid: int) -> None:
    # bwrap's child is in a session of its own; --die-with-parent ends it with bwrap.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class _Capture:
    """A command's output, holding at most `limit` characters: the first half and a rolling
    last half, with the size of what was cut between them."""

    def __init__(self, limit: int) -> None:
        self.half = max(1, limit // 2)
        self.head = bytearray()
        self.tail = bytearray()
        self.cut = 0

    def drain(self, stream: IO[bytes]) -> None:
        while chunk := os.read(stream.fileno(), 65536):
            room = self.half - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > self.half:
                self.cut += len(self.tail) - self.half
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if self.cut:
            return f"{head}\n[... {self.cut} bytes of output cut ...]\n{tail}"
        return head + tail

"""`run_command`: a shell command in the workspace, with a timeout, capped output, a scrubbed
environment, the safety rails, and the sandbox where there is one."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent_worker.safety import Rails
from agent_worker.sandbox import sandbox_available, sandboxed
from protocol.environment import scrubbed_environment

OUTPUT_LIMIT = 20_000


@dataclass(frozen=True)
class CommandResult:
    exit_code: int | None
    output: str
    timed_out: bool = False
    refused: str | None = None
    sandboxed: bool = False

    def for_model(self) -> str:
        if self.refused:
            return f"REFUSED: {self.refused}"
        head = "TIMED OUT" if self.timed_out else f"exit code {self.exit_code}"
        return f"{head}\n{self.output}" if self.output else head


def cap_output(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters of output cut ...]\n{text[-half:]}"


def run_command(
    command: str,
    workspace: Path,
    *,
    timeout: float = 120.0,
    use_sandbox: bool | None = None,
    env: Mapping[str, str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> CommandResult:
    """Run `command` with `sh -c` in `workspace`, unless the rails refuse it."""
    reason = Rails(workspace).refusal(command)
    if reason:
        return CommandResult(None, "", refused=reason)
    in_sandbox = sandbox_available() if use_sandbox is None else use_sandbox
    argv = ["sh", "-c", command]
    if in_sandbox:
        argv = sandboxed(argv, workspace)
    process = subprocess.Popen(
        argv,
        cwd=workspace,
        env=scrubbed_environment(os.environ if env is None else env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so a timeout kills all of it
    )
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    stopped = None
    while process.poll() is None:
        if time.monotonic() > deadline:
            stopped = f"\n[the command was stopped after {timeout:g}s]"
        elif should_stop():  # a shutdown is honoured even in the middle of a long command
            stopped = "\n[the command was stopped: the agent is shutting down]"
        if stopped:
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait()
    reader.join(5)
    text = cap_output(b"".join(chunks).decode("utf-8", "replace"))
    if stopped:
        return CommandResult(None, text + stopped, timed_out=True, sandboxed=in_sandbox)
    return CommandResult(process.returncode, text, sandboxed=in_sandbox)


def main(argv: list[str] | None = None) -> int:
    """`python -m agent_worker.commands --workspace DIR [--timeout S] -- COMMAND`: one command
    under the rails and in the sandbox, for processes that must not import this package
    (the coordinator's DoD checks). Prints the output; exits with the command's code, 124 on
    a timeout, 126 when refused."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m agent_worker.commands")
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    words = options.command[1:] if options.command[:1] == ["--"] else options.command
    result = run_command(" ".join(words), options.workspace, timeout=options.timeout)
    if result.refused:
        print(f"refused: {result.refused}", file=sys.stderr)
        return 126
    sys.stdout.write(result.output)
    return 124 if result.timed_out else (result.exit_code or 0)


if __name__ == "__main__":
    raise SystemExit(main())

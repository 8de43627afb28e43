"""The tools of DESIGN §7, confined to the workspace. A tool never raises at the model: every
refusal and failure comes back as text the model can act on."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from agent_worker.assertions import assertion_check, is_test_file
from agent_worker.lint import compile_check
from agent_worker.paths import PathRefused, check_gitignore_edit, check_writable, resolve
from protocol import Layout, TaskStatus, TaskStore, atomic_write_text, file_lock
from protocol.agents import pid_alive
from protocol.environment import is_secret_path
from protocol.llm import ToolCall, ToolSpec
from protocol.sandbox import Sandbox
from protocol.workspace_files import read_text_inside

MAX_FILE_BYTES = 1_000_000
MAX_READ_CHARS = 60_000
LOCK_TIMEOUT = 30.0
READ_ONLY_TOOLS = ("list_files", "read_file")
ALL_TOOLS = ("list_files", "read_file", "write_file", "edit_file", "run_command", "finish")
UNLISTED_DIRS = frozenset({".git", ".agents", ".venv", "venv", "__pycache__", "node_modules"})


def _spec(name: str, description: str, **properties: str) -> ToolSpec:
    return ToolSpec(
        name=name,
        description=description,
        parameters={
            "type": "object",
            "properties": {
                key: {"type": "string", "description": d} for key, d in properties.items()
            },
            "required": list(properties),
        },
    )


SPECS = {
    "list_files": _spec(
        "list_files",
        "List the files under a directory of the workspace.",
        path="directory, relative to the workspace ('.' for its root)",
    ),
    "read_file": ToolSpec(
        name="read_file",
        description="Read a text file, whole or from line `start` to line `end`.",
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "file path"},
                "start": {"type": "integer", "description": "first line (from 1), optional"},
                "end": {"type": "integer", "description": "last line, optional"},
            },
            "required": ["path"],
        },
    ),
    "write_file": _spec(
        "write_file",
        "Create or replace a whole file.",
        path="file path",
        content="the complete new content",
    ),
    "edit_file": _spec(
        "edit_file",
        "Replace one exact, unique piece of text in a file.",
        path="file path",
        old="text to replace, exactly as in the file",
        new="replacement text",
    ),
    "run_command": _spec(
        "run_command",
        "Run a shell command in the workspace, with a timeout and without network access.",
        command="the command line",
    ),
    "finish": _spec("finish", "Say the task is done.", summary="what you did, in a sentence"),
}


@dataclass(frozen=True)
class ToolRun:
    output: str
    outcome: Literal["ok", "error", "refused"] = "ok"


class Finished(Exception):
    """The model called `finish`."""

    def __init__(self, summary: str) -> None:
        super().__init__(summary)
        self.summary = summary


@dataclass
class Toolbox:
    """The tools one task may use."""

    layout: Layout
    agent: str
    task_id: int | None
    tools: tuple[str, ...]
    may_write: Callable[[str], str | None] = lambda relative: None
    command_timeout: float = 120.0
    on_event: Callable[[str, str], None] = lambda kind, detail: None
    should_stop: Callable[[], bool] = lambda: False
    written: list[str] = field(default_factory=list)
    sandbox: Sandbox | None = None  # the team's policy; confined unless the user said not

    @property
    def workspace(self) -> Path:
        return self.layout.workspace

    @property
    def policy(self) -> Sandbox:
        return self.sandbox or Sandbox(self.workspace)

    def specs(self) -> list[ToolSpec]:
        return [SPECS[name] for name in self.tools]

    def call(self, call: ToolCall) -> str:
        """Run one tool call; the result (or the reason it was refused) as text."""
        return self.run(call).output

    def run(self, call: ToolCall) -> ToolRun:
        """Run one tool call: its output for the model, and how it went (for the trace)."""
        if call.name not in self.tools:
            listed = ", ".join(self.tools)
            return ToolRun(
                f"ERROR: there is no tool {call.name!r}; the tools are: {listed}", "error"
            )
        if call.arguments_error is not None:
            return ToolRun(
                f"ERROR: your arguments to {call.name} are not valid JSON "
                f"({call.arguments_error}): nothing was run; call {call.name} again with its "
                "arguments as one complete JSON object",
                "error",
            )
        handler: Callable[..., str] = getattr(self, f"_{call.name}")
        try:
            return ToolRun(handler(**call.arguments))
        except Finished:
            raise
        except PathRefused as exc:
            self.on_event("refused", str(exc))
            return ToolRun(f"REFUSED: {exc}", "refused")
        except TypeError as exc:
            return ToolRun(f"ERROR: bad arguments for {call.name}: {exc}", "error")
        except Exception as exc:  # a tool never takes the worker down: the model is told
            self.on_event("fail", f"{call.name}: {type(exc).__name__}: {exc}")
            return ToolRun(f"ERROR: {call.name} failed: {type(exc).__name__}: {exc}", "error")

    # --- read-only ---------------------------------------------------------------------

    def _list_files(self, path: str = ".") -> str:
        real, relative = resolve(self.workspace, path)
        if not real.is_dir():
            return f"ERROR: {relative} is not a directory"
        found = []
        for root, dirs, files in os.walk(real):
            dirs[:] = sorted(d for d in dirs if d not in UNLISTED_DIRS)
            for name in sorted(files):
                found.append(PurePosixPath(Path(root, name).relative_to(self.workspace)).as_posix())
            if len(found) > 2000:
                break
        return "\n".join(found[:2000]) or "(no files)"

    def _read_file(self, path: str, start: int | str = 1, end: int | str | None = None) -> str:
        real, relative = resolve(self.workspace, path)
        if relative.split("/", 1)[0] == ".agents":
            raise PathRefused(".agents/ holds the team's state and settings, not project files")
        if not real.is_file():
            return f"ERROR: {relative} does not exist (list_files shows what does)"
        if is_secret_path(relative):
            self.on_event("refused", f"{relative}: a secret-looking file, withheld")
            return (
                f"WITHHELD: {relative} exists, but it looks like it holds secrets (keys, "
                "tokens, passwords), so its content is not shown. Do not write secrets into "
                "code; read them from the environment at run time."
            )
        whole = read_text_inside(self.workspace, relative, limit=10 * MAX_FILE_BYTES)
        if whole is None:
            return f"ERROR: {relative} is not a regular file under 10 MB: it is not read"
        lines = whole.splitlines(keepends=True)
        first = max(1, int(start))
        last = len(lines) if end in (None, "") else min(len(lines), int(str(end)))
        text = "".join(lines[first - 1 : last])
        self.on_event("read", relative)
        if len(text) > MAX_READ_CHARS:
            shown = text[:MAX_READ_CHARS]
            upto = first + shown.count("\n") - 1
            return (
                shown + f"\n[... cut: lines {first}-{upto} of {len(lines)} shown; read the "
                f"rest with start={upto + 1} ...]"
            )
        if first > 1 or last < len(lines):
            return f"[lines {first}-{last} of {len(lines)}]\n{text}"
        return text

    # --- writing -----------------------------------------------------------------------

    def _writable(self, path: str) -> tuple[Path, str]:
        real, relative = resolve(self.workspace, path)
        check_writable(relative)
        reason = self.may_write(relative)
        if reason:
            raise PathRefused(reason)
        return real, relative

    def _write_file(self, path: str, content: str) -> str:
        real, relative = self._writable(path)
        size = len(content.encode("utf-8", "surrogatepass"))
        if size > MAX_FILE_BYTES:
            raise PathRefused(
                f"{relative} would be {size} bytes; the limit is {MAX_FILE_BYTES}: "
                "split it into smaller modules"
            )
        with file_lock(self.layout.file_lock(relative), timeout=LOCK_TIMEOUT):
            if real.exists() and not real.is_file():  # a FIFO or a device a command made
                raise PathRefused(f"{relative} exists and is not a regular file: not written")
            old = read_text_inside(self.workspace, relative) or ""
            check_gitignore_edit(relative, old, content)
            real.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(real, content)
        return self._written(
            relative, content, f"wrote {relative} ({len(content.splitlines())} lines)"
        )

    def _edit_file(self, path: str, old: str, new: str) -> str:
        real, relative = self._writable(path)
        if not old:
            return "ERROR: `old` is empty: give the exact text to replace (read_file first)"
        # Under the file's lock, re-read: another worker may have edited another part of it.
        with file_lock(self.layout.file_lock(relative), timeout=LOCK_TIMEOUT):
            if not real.is_file():
                return f"ERROR: {relative} does not exist: use write_file to create it"
            if real.stat().st_size > MAX_FILE_BYTES:
                return f"ERROR: {relative} is over {MAX_FILE_BYTES} bytes: it is not edited"
            current = real.read_text(encoding="utf-8")
            count = current.count(old)
            if count != 1:
                where = "is not in" if count == 0 else f"appears {count} times in"
                return (
                    f"ERROR: the `old` text {where} {relative}: read the file and give "
                    "a piece that appears exactly once"
                )
            updated = current.replace(old, new, 1)
            check_gitignore_edit(relative, current, updated)
            atomic_write_text(real, updated)
        return self._written(relative, updated, f"edited {relative}")

    def _written(self, relative: str, content: str, done: str) -> str:
        if relative not in self.written:
            self.written.append(relative)
        self.on_event("write", done)
        failure = compile_check(relative, content) or assertion_check(relative, content)
        if failure:
            self.on_event("lint", failure.message)
            return failure.for_model(content)
        return done + (" - it compiles" if relative.endswith(".py") else "")

    # --- running -------------------------------------------------------------------------

    def _run_command(self, command: str) -> str:
        self.on_event("run", command)
        result = self.policy.shell(
            command, timeout=self.command_timeout, should_stop=self.should_stop
        )
        if result.refused:
            self.on_event("refused", result.refused)
        return result.for_model()

    def _finish(self, summary: str = "") -> str:
        raise Finished(summary or "done")


def ownership_guard(
    layout: Layout, task_id: int | None, own_files: list[str]
) -> Callable[[str], str | None]:
    """Refuse a write to a file that is not one of this task's `own_files`, saying which
    running task owns it when one does. Two tasks may share a file: the file lock keeps both
    their edits."""
    store = TaskStore(layout)
    own = {_normal(path) for path in own_files}
    listed = ", ".join(own_files) or "none"

    def may_write(relative: str) -> str | None:
        if _normal(relative) in own:
            return None
        for task in store.all():
            busy = task.status in (TaskStatus.ASSIGNED, TaskStatus.RUNNING)
            if busy and task.id != task_id and relative in map(_normal, task.files):
                owner = task.owner or "another agent"
                return (
                    f"{relative} belongs to task {task.id} ({owner}), which is running: "
                    f"do not write it; write only the files of your task (FILES: {listed})"
                )
        return (
            f"{relative} is not one of your task's files: nothing was written; write only "
            f"FILES: {listed}"
        )

    return may_write


def _normal(path: str) -> str:
    return PurePosixPath(os.path.normpath(path)).as_posix()


def tester_guard(relative: str) -> str | None:
    """Testers write tests only."""
    if is_test_file(relative):
        return None
    return f"{relative} is not a test file: testers write only tests (tests/..., test_*.py)"


def remove_stale_temp_files(workspace: Path) -> list[str]:
    """Delete the temp files of atomic writes whose process died mid-write (kill -9): they are
    named `.tmp-<pid>-...part`, and a dead pid's file will never be renamed into place."""
    removed = []
    for root, dirs, files in os.walk(workspace):
        dirs[:] = [d for d in dirs if d not in UNLISTED_DIRS]
        for name in files:
            pid = name.removeprefix(".tmp-").split("-", 1)[0]
            ours = name.startswith(".tmp-") and name.endswith(".part") and pid.isdigit()
            if ours and not pid_alive(int(pid)):
                Path(root, name).unlink(missing_ok=True)
                removed.append(name)
    return removed


def describe_arguments(arguments: dict[str, Any], limit: int = 80) -> str:
    """A short, one-line view of a call's arguments, for the pane and the log."""
    parts = []
    for key, value in arguments.items():
        text = str(value).replace("\n", "\\n")
        parts.append(f"{key}={text[:limit]}{'...' if len(text) > limit else ''}")
    return ", ".join(parts)

"""The lint guard: a Python file that does not compile is reported in the same turn, with the
line, the lines around it (the bad one marked `>>>`) and a hint; before `completion`, every
file written must also import."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import PurePosixPath

from protocol.sandbox import Sandbox

_HINTS = (
    ("unterminated string", "close the string with the same quote it opened with"),
    ("was never closed", "a bracket or parenthesis is missing its closing partner"),
    ("unmatched", "a closing bracket has no opening partner; check the lines above"),
    ("indent", "indentation must be consistent: 4 spaces per level, no tabs"),
    ("expected ':'", "a def, class, if, for, while, with or try line must end with ':'"),
    ("invalid syntax", "look for a missing comma, colon, bracket or quote near the marked line"),
)


@dataclass(frozen=True)
class LintFailure:
    path: str
    line: int | None
    message: str
    title: str = "LINT ERROR"
    hint: str | None = None  # None: the hint for a syntax error's message, if there is one

    def for_model(self, source: str) -> str:
        where = f"{self.path}, line {self.line}" if self.line else self.path
        text = f"{self.title} in {where}: {self.message}\n"
        if self.line:
            text += _context(source, self.line) + "\n"
        hint = self.hint or next((h for key, h in _HINTS if key in self.message.lower()), None)
        if hint:
            text += f"hint: {hint}\n"
        return text + "The file is on disk as written: fix it (read it, then edit_file)."


def _context(source: str, line: int, around: int = 3) -> str:
    lines = source.splitlines()
    start, end = max(1, line - around), min(len(lines), line + around)
    return "\n".join(
        f"{'>>>' if n == line else '   '} {n:4d} | {lines[n - 1]}" for n in range(start, end + 1)
    )


def compile_check(relative: str, source: str) -> LintFailure | None:
    """A syntax error in `source` (a .py file's text), or None. Other files pass."""
    if PurePosixPath(relative).suffix != ".py":
        return None
    try:
        compile(source, relative, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return LintFailure(relative, exc.lineno, exc.msg)
    except ValueError as exc:  # NUL bytes
        return LintFailure(relative, None, str(exc))
    return None


def module_name(relative: str) -> str | None:
    """`pkg/mod.py` -> `pkg.mod`; None for files that are not importable modules."""
    path = PurePosixPath(relative)
    if path.suffix != ".py" or not all(part.isidentifier() for part in path.with_suffix("").parts):
        return None
    parts = path.with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or None


def import_check(sandbox: Sandbox, relative: str, timeout: float = 60.0) -> LintFailure | None:
    """Import the module in a fresh interpreter with the workspace on the path, in the
    sandbox: importing runs the model's module code."""
    name = module_name(relative)
    if name is None:
        return None
    # The workspace's own venv when it has one: its dependencies are installed there.
    venv_python = sandbox.workspace / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    done = sandbox.run(
        [python, "-c", f"import {name}"],
        timeout=timeout,
        env={"PYTHONPATH": str(sandbox.workspace), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if done.timed_out:
        return LintFailure(relative, None, f"importing {name} did not finish in {timeout:g}s")
    if done.ok:
        return None
    last = (done.output.strip().splitlines() or ["failed"])[-1]
    return LintFailure(relative, None, f"import {name} failed: {last}")

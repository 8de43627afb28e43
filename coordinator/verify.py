"""Integration verification, from what is on disk (not from the plan): compile every Python
file (a syntax error fails fast with file and line), install what the workspace declares, run
its tests, and check each Definition-of-Done criterion by its type."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from protocol.environment import scrubbed_environment
from protocol.plan import DodCriterion, VerificationType

SKIPPED_DIRS = frozenset({".git", ".agents", ".venv", "venv", "node_modules", "__pycache__"})
OUTPUT_LIMIT = 6_000


@dataclass(frozen=True)
class Step:
    name: str
    passed: bool
    output: str = ""


@dataclass(frozen=True)
class CriterionResult:
    id: str
    passed: bool
    detail: str


@dataclass
class Verification:
    steps: list[Step] = field(default_factory=list)
    criteria: list[CriterionResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.steps) and all(c.passed for c in self.criteria)

    def failures(self) -> str:
        """The evidence of what failed, for the RCA and for people."""
        parts = [f"{s.name} failed:\n{s.output}" for s in self.steps if not s.passed]
        parts += [f"{c.id} failed: {c.detail}" for c in self.criteria if not c.passed]
        return "\n\n".join(parts)


def _tail(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else "[... cut ...]\n" + text[-OUTPUT_LIMIT:]


def python_files(workspace: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        found += [
            PurePosixPath(Path(root, f).relative_to(workspace)).as_posix()
            for f in sorted(files)
            if f.endswith(".py")
        ]
    return found


def compile_all(workspace: Path) -> Step:
    errors = []
    for relative in python_files(workspace):
        source = (workspace / relative).read_text(encoding="utf-8", errors="replace")
        try:
            compile(source, relative, "exec", dont_inherit=True)
        except SyntaxError as exc:
            errors.append(f"{relative}:{exc.lineno}: {exc.msg}")
        except ValueError as exc:
            errors.append(f"{relative}: {exc}")
    return Step("compile", not errors, "\n".join(errors))


class Runner:
    """Runs commands for one verification: the workspace's venv when it declares
    dependencies, else this interpreter; the workspace on the import path."""

    def __init__(self, workspace: Path, timeout: float = 300.0) -> None:
        self.workspace = workspace
        self.timeout = timeout
        self.python = sys.executable

    def sandboxed(self, argv: list[str], timeout: float | None = None) -> tuple[int, str]:
        """Model-written code (tests, imports, DoD commands) runs under the workers' rails and
        sandbox, through their own entry point: this package never imports theirs."""
        limit = timeout or self.timeout
        return self.run(
            [
                sys.executable,
                "-m",
                "agent_worker.commands",
                "--workspace",
                str(self.workspace),
                "--timeout",
                str(limit),
                "--",
                shlex.join(argv),
            ],
            timeout=limit + 30,
        )

    def run(self, argv: list[str], timeout: float | None = None) -> tuple[int, str]:
        env = {
            **scrubbed_environment(os.environ),
            "PYTHONPATH": str(self.workspace),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        try:
            done = subprocess.run(
                argv,
                cwd=self.workspace,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout
            return 124, f"{out or ''}\n[stopped after {timeout or self.timeout:g}s]"
        except OSError as exc:
            return 127, str(exc)
        return done.returncode, _tail(done.stdout + done.stderr)

    def install(self) -> Step | None:
        """Install what the workspace declares into its .venv (made once, kept)."""
        ws = self.workspace
        declared = [
            n for n in ("requirements.txt", "pyproject.toml", "setup.py") if (ws / n).is_file()
        ]
        if not declared:
            return None
        venv = ws / ".venv"
        python = venv / "bin" / "python"
        output = []
        if not python.exists():
            code, out = self.run([sys.executable, "-m", "venv", str(venv)])
            if code:
                return Step("install", False, f"could not create {venv}:\n{out}")
            code, out = self.run([str(python), "-m", "pip", "install", "-q", "pytest"])
            output.append(out)
            if code:
                return Step("install", False, f"could not install pytest into {venv}:\n{out}")
        self.python = str(python)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if "requirements.txt" in declared:
            code, out = self.run([*pip, "-r", "requirements.txt"])
        else:
            code, out = self.run([*pip, "-e", "."])
        output.append(out)
        return Step("install", code == 0, "\n".join(o for o in output if o.strip()))

    def npm_install(self) -> Step | None:
        """A workspace with a package.json gets its packages installed with npm."""
        if not (self.workspace / "package.json").is_file():
            return None
        if shutil.which("npm") is None:
            return Step("npm install", False, "package.json needs npm, which is not installed")
        code, out = self.run(["npm", "install", "--no-audit", "--no-fund"], timeout=600)
        return Step("npm install", code == 0, out)

    def tests(self) -> Step | None:
        has_tests = any(
            PurePosixPath(p).name.startswith("test_") or p.endswith("_test.py")
            for p in python_files(self.workspace)
        )
        if not has_tests:
            return None
        code, out = self.run(
            [self.python, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider"]
        )
        if code == 5:  # pytest found no tests it could collect: try unittest
            code, out = self.sandboxed([self.python, "-m", "unittest", "discover", "-v"])
        return Step("tests", code == 0, out)

    def criterion(self, criterion: DodCriterion) -> CriterionResult:
        target = criterion.target_file.strip()
        kind = criterion.verification_type
        if kind == VerificationType.FILE_EXISTS:
            ok = bool(target) and (self.workspace / target).exists()
            return CriterionResult(criterion.id, ok, f"{target} {'exists' if ok else 'is missing'}")
        if kind == VerificationType.IMPORT:
            module = target.removesuffix(".py").replace("/", ".")
            if not all(part.isidentifier() for part in module.split(".")):
                return CriterionResult(criterion.id, False, f"{target!r} is not a module name")
            code, out = self.sandboxed([self.python, "-c", f"import {module}"], timeout=60)
            return CriterionResult(criterion.id, code == 0, out.strip() or f"import {module} ok")
        if kind == VerificationType.TEST:
            argv = [self.python, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider"]
            if target:
                if target.startswith("-") or not self._inside(target):
                    return CriterionResult(
                        criterion.id, False, f"{target!r} is not a test file in the workspace"
                    )
                argv.append(target)
            code, out = self.sandboxed(argv)
            summary = out.strip().splitlines()[-1] if out.strip() else f"exit {code}"
            return CriterionResult(
                criterion.id, code == 0, summary if code == 0 else f"{summary}\n{out}"
            )
        # A command from the plan is a model's text: it runs under the workers' rails and
        # sandbox, through their own entry point (this package never imports theirs).
        code, out = self.run(
            [
                sys.executable,
                "-m",
                "agent_worker.commands",
                "--workspace",
                str(self.workspace),
                "--",
                target,
            ]
        )
        return CriterionResult(criterion.id, code == 0, out.strip() or f"exit {code}")

    def _inside(self, target: str) -> bool:
        real = (self.workspace / target).resolve()
        return real.is_relative_to(self.workspace.resolve()) and real.exists()


def verify(workspace: Path, dod: list[DodCriterion], *, timeout: float = 300.0) -> Verification:
    result = Verification()
    compiled = compile_all(workspace)
    result.steps.append(compiled)
    if not compiled.passed:  # fail fast: nothing else means anything
        return result
    runner = Runner(workspace, timeout)
    for step in (runner.install(), runner.npm_install(), runner.tests()):
        if step is not None:
            result.steps.append(step)
    result.criteria = [runner.criterion(c) for c in dod]
    return result

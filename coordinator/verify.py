"""Integration verification, from what is on disk (not from the plan): compile every Python
file (a syntax error fails fast with file and line), install what the workspace declares, run
its tests, and check each Definition-of-Done criterion by its type."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from coordinator.install import PythonInstall, python_install
from protocol.plan import DodCriterion, VerificationType
from protocol.sandbox import Sandbox, SandboxUnavailable
from protocol.workspace_files import inside, read_text_inside

SKIPPED_DIRS = frozenset({".git", ".agents", ".venv", "venv", "node_modules", "__pycache__"})
OUTPUT_LIMIT = 12_000
PYTEST = ("-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider")
PIP_QUIET = ("-q", "--disable-pip-version-check")
FETCH_NOTE = "[fetch from the package registry: confined to the workspace, with network]"
BUILD_NOTE = "[the workspace's own packaging: confined to the workspace, offline]"


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
    nothing_built: bool = False  # no planned file exists: nothing else was checked

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.steps) and all(c.passed for c in self.criteria)

    def failures(self) -> str:
        """The evidence of what failed, for the RCA and for people."""
        parts = [f"{s.name} failed:\n{s.output}" for s in self.steps if not s.passed]
        parts += [f"{c.id} failed: {c.detail}" for c in self.criteria if not c.passed]
        return "\n\n".join(parts)


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
        source = read_text_inside(workspace, relative)
        if source is None:
            errors.append(
                f"{relative}: not read: not a regular file in the workspace (a link out?)"
            )
            continue
        try:
            compile(source, relative, "exec", dont_inherit=True)
        except SyntaxError as exc:
            errors.append(f"{relative}:{exc.lineno}: {exc.msg}")
        except ValueError as exc:
            errors.append(f"{relative}: {exc}")
    return Step("compile", not errors, "\n".join(errors))


class Runner:
    """Runs one verification's steps, every one that executes the models' code through the
    sandbox (`protocol.sandbox`): the workspace's venv when it declares dependencies, else
    this interpreter; the workspace on the import path."""

    def __init__(self, sandbox: Sandbox, timeout: float = 300.0) -> None:
        self.sandbox = sandbox
        self.workspace = sandbox.workspace
        self.timeout = timeout
        self.python = sys.executable

    def run(
        self, argv: list[str], timeout: float | None = None, *, network: bool = False
    ) -> tuple[int, str]:
        """Model-written code (tests, imports, installs, DoD commands) runs in the sandbox,
        without secrets in its environment."""
        done = self.sandbox.run(
            argv,
            timeout=timeout or self.timeout,
            network=network,
            env={"PYTHONPATH": str(self.workspace), "PYTHONDONTWRITEBYTECODE": "1"},
            output_limit=OUTPUT_LIMIT,
        )
        return done.code, done.output

    def install(self, plan: PythonInstall) -> Step:
        """Install what the workspace declares (`plan`) into its .venv (made once, kept):
        first the team's own pip, isolated from the workspace, downloads what the package
        registry provides (with the network); then the venv installs it and runs the
        workspace's own packaging, where its setup.py runs (offline). See
        coordinator/install.py."""
        venv = inside(self.workspace, ".venv")
        if venv is None or venv == self.workspace.resolve():
            return Step("install", False, ".venv is not a directory inside the workspace")
        python = venv / "bin" / "python"
        output = [*plan.problems]
        if not python.exists():
            code, out = self.run([sys.executable, "-m", "venv", str(venv)])
            if code:
                return Step("install", False, f"could not create {venv}:\n{out}")
        self.python = str(python)
        downloads = Path(tempfile.mkdtemp(prefix=".downloads-", dir=venv))
        try:
            # -I: no PYTHON* variables, no user site, no working directory on the path: the
            # workspace's files cannot reach into the one step that has the network.
            fetch = [sys.executable, "-I", "-m", "pip", "download", *PIP_QUIET, "-d", "."]
            done = self.sandbox.run(
                [*fetch, *plan.fetch], timeout=self.timeout, network=True, cwd=downloads
            )
            output.append(f"{FETCH_NOTE}\n{done.output}".strip())
            if not done.ok:
                return Step("install", False, "\n".join(output))
            offline = [str(python), "-m", "pip", "install", *PIP_QUIET, "--no-index"]
            offline += ["--find-links", str(downloads), "--no-build-isolation"]
            # What was fetched first (the build backend among it), then the workspace's own.
            code, out = self.run([*offline, *plan.fetch])
            if code == 0 and plan.build:
                code, built = self.run([*offline, *plan.build])
                out = f"{out}\n{built}".strip()
            output.append(f"{BUILD_NOTE}\n{out}".strip())
        finally:
            shutil.rmtree(downloads, ignore_errors=True)
        return Step("install", code == 0, "\n".join(output))

    def npm(self) -> list[Step]:
        """A workspace with a package.json gets its packages fetched with npm (with the
        registry, no scripts run), then its and their install scripts run (offline), and its
        `npm test` when it has a test script (offline)."""
        manifest = self.workspace / "package.json"
        if not manifest.is_file():
            return []
        npm = self.sandbox.program("npm")  # on the team's PATH, never in the workspace
        if npm is None:
            return [Step("npm install", False, "package.json needs npm, which is not installed")]
        fetch = [npm, "install", "--ignore-scripts", "--no-audit", "--no-fund"]
        code, out = self.run(fetch, 600, network=True)
        output = f"{FETCH_NOTE}\n{out}"
        if code == 0:
            code, out = self.run([npm, "rebuild", "--no-audit", "--no-fund"], 600)
            output += f"\n{BUILD_NOTE}\n{out}"
        steps = [Step("npm install", code == 0, output)]
        if code == 0 and _has_npm_test(manifest):
            code, out = self.run([npm, "test"])
            steps.append(Step("npm test", code == 0, out))
        return steps

    def tests(self) -> Step | None:
        has_tests = any(
            PurePosixPath(p).name.startswith("test_") or p.endswith("_test.py")
            for p in python_files(self.workspace)
        )
        if not has_tests:
            return None
        code, out = self.run([self.python, *PYTEST])
        if code == 5:  # pytest found no tests it could collect: try unittest
            code, out = self.run([self.python, "-m", "unittest", "discover", "-v"])
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
            code, out = self.run([self.python, "-c", f"import {module}"], timeout=60)
            return CriterionResult(criterion.id, code == 0, out.strip() or f"import {module} ok")
        if kind == VerificationType.TEST:
            argv = [self.python, *PYTEST]
            if target:
                real = inside(self.workspace, target)
                if target.startswith("-") or real is None or not real.exists():
                    return CriterionResult(
                        criterion.id, False, f"{target!r} is not a test file in the workspace"
                    )
                argv.append(target)
            code, out = self.run(argv)
            summary = out.strip().splitlines()[-1] if out.strip() else f"exit {code}"
            return CriterionResult(
                criterion.id, code == 0, summary if code == 0 else f"{summary}\n{out}"
            )
        # A command from the plan is a model's text: the rails' advice, then the sandbox.
        done = self.sandbox.shell(target, timeout=self.timeout)
        if done.refused:
            return CriterionResult(criterion.id, False, f"refused: {done.refused}")
        return CriterionResult(criterion.id, done.ok, done.output.strip() or f"exit {done.code}")


def _has_npm_test(manifest: Path) -> bool:
    """Whether package.json has a test script other than npm's placeholder."""
    try:
        scripts = json.loads(read_text_inside(manifest.parent, manifest.name) or "{}")
        scripts = scripts.get("scripts") or {}
    except (OSError, ValueError, AttributeError):
        return False
    script = scripts.get("test", "") if isinstance(scripts, dict) else ""
    return isinstance(script, str) and bool(script.strip()) and "no test specified" not in script


def verify(
    workspace: Path,
    dod: list[DodCriterion],
    *,
    sandbox: Sandbox | None = None,
    timeout: float = 300.0,
    on_step: Callable[[str], None] = lambda name: None,
    planned: Sequence[str] = (),
) -> Verification:
    """Verify `workspace` against `dod`; the models' code runs under `sandbox` (confined in
    the workspace unless the user chose --no-sandbox). `on_step` hears each step's name as
    it starts: verification can take minutes, and a pane must show which part runs. When
    none of the `planned` files exists, nothing was built: that is the one result, and no
    criterion is run on an empty workspace."""
    result = Verification()
    if planned and not any(_exists(workspace, path) for path in planned):
        more = f" and {len(planned) - 10} more" if len(planned) > 10 else ""
        shown = ", ".join(planned[:10]) + more
        why = f"nothing was built: none of the planned files exists ({shown})"
        return Verification([Step("build", False, why)], nothing_built=True)
    on_step("compile")
    compiled = compile_all(workspace)
    result.steps.append(compiled)
    if not compiled.passed:  # fail fast: nothing else means anything
        return result
    runner = Runner(sandbox or Sandbox(workspace), timeout)
    # Only the steps this workspace has, each said as it starts.
    steps: list[tuple[str, Callable[[], list[Step | None]]]] = []
    install = python_install(workspace)
    if install is not None:
        steps.append(("install", lambda: [runner.install(install)]))
    if (workspace / "package.json").is_file():
        steps.append(("npm", lambda: list(runner.npm())))
    steps.append(("tests", lambda: [runner.tests()]))
    try:
        for name, run in steps:
            on_step(name)
            result.steps += [step for step in run() if step is not None]
        for criterion in dod:
            on_step(f"criterion {criterion.id}")
            result.criteria.append(runner.criterion(criterion))
    except SandboxUnavailable as exc:  # nothing of the models' runs unconfined by accident
        result.steps.append(Step("sandbox", False, str(exc)))
    return result


def _exists(workspace: Path, relative: str) -> bool:
    real = inside(workspace, relative)
    return real is not None and real.exists()


def failure_lines(output: str, limit: int = 6) -> list[str]:
    """What a failed step says went wrong: its assertions, else its first lines."""
    return assertion_lines(output, limit) or output.strip().splitlines()[:3]


def assertion_lines(output: str, limit: int = 6) -> list[str]:
    """What a failing pytest run says went wrong: its `E ` lines and the failing test ids,
    so a pane shows the assertion, not just `F [100%]`."""
    picked = [
        line.rstrip()
        for line in output.splitlines()
        if line.startswith(("E ", "FAILED ", "ERROR ")) or line.lstrip().startswith("Error:")
    ]
    return picked[:limit]

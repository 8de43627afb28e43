"""What the coordinator knows about a workspace without asking a model: its files, languages,
package files, test framework and test files, entry points. Pure functions over a file listing
and the text of the few files that say these things; `survey_workspace` is the I/O edge.

An empty workspace needs no explorer at all, and a non-empty one gets this as the start of its
exploration: the explorer model adds only judgement (a summary, the conventions), and where it
and the code disagree on a fact, the code wins (`merged`)."""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from protocol.reports import ExplorationReport
from protocol.workspace_files import read_text_inside

FILE_LIMIT = 2000  # files walked; a bigger workspace is marked truncated
REPORT_FILES = 60  # files named in the report the planner reads
READ_PY_LIMIT = 300  # Python files read for entry points and imports
SUMMARY_LIMIT = 1000  # the report's maxLength for its summary
SETUP_LIMIT = 500  # and for its test setup
SKIPPED_DIRS = frozenset({
    ".git", ".agents", ".venv", "venv", "node_modules", "__pycache__",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis", ".cache",
    ".idea", ".vscode", "dist", "build", "site-packages",
})  # fmt: skip
SKIPPED_FILES = frozenset({".git", ".DS_Store"})
LANGUAGES = {
    ".py": "Python", ".pyi": "Python", ".js": "JavaScript", ".mjs": "JavaScript",
    ".cjs": "JavaScript", ".jsx": "JavaScript", ".ts": "TypeScript", ".tsx": "TypeScript",
    ".go": "Go", ".rs": "Rust", ".java": "Java", ".kt": "Kotlin", ".c": "C", ".h": "C",
    ".cc": "C++", ".cpp": "C++", ".hpp": "C++", ".cs": "C#", ".rb": "Ruby", ".php": "PHP",
    ".swift": "Swift", ".scala": "Scala", ".lua": "Lua", ".sh": "Shell", ".bash": "Shell",
    ".sql": "SQL", ".html": "HTML", ".css": "CSS",
}  # fmt: skip
PACKAGE_FILES = frozenset({
    "pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "poetry.lock", "uv.lock",
    "package.json", "Cargo.toml", "go.mod", "Gemfile", "pom.xml", "build.gradle",
    "build.gradle.kts", "composer.json", "Makefile", "CMakeLists.txt",
})  # fmt: skip
TEST_CONFIGS = ("pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini")
ENTRY_NAMES = frozenset({"main.py", "cli.py", "app.py", "manage.py", "__main__.py"})
_MAIN_GUARD = re.compile(r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:", re.MULTILINE)
_PYTEST_SECTIONS = {
    "pytest.ini": "[pytest]",
    "pyproject.toml": "[tool.pytest",
    "setup.cfg": "[tool:pytest]",
    "tox.ini": "[pytest]",
}


@dataclass(frozen=True)
class Survey:
    files: tuple[str, ...]  # every file found (up to FILE_LIMIT), in walk order
    truncated: bool  # more files than FILE_LIMIT: `files` is not all there is
    languages: tuple[str, ...]  # most files first
    package_files: tuple[str, ...]
    test_framework: str  # "pytest", "unittest", or "" when there are no tests
    test_config: str  # the file that configures the test framework, or ""
    test_files: tuple[str, ...]
    entry_points: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.files

    def test_setup(self) -> str:
        if not self.test_files:
            configured = f" ({self.test_framework} is configured)" if self.test_config else ""
            return f"no tests yet{configured}"
        configured = f", configured in {self.test_config}" if self.test_config else ""
        count = f"{len(self.test_files)} test file" + ("s" if len(self.test_files) != 1 else "")
        return f"{self.test_framework}{configured}; {count}: {_bounded(self.test_files, 8)}"

    def summary(self) -> str:
        if self.empty:
            return "an empty workspace: nothing but the team's own files"
        count = f"{len(self.files)}{'+' if self.truncated else ''} files"
        parts = [count + (f" ({', '.join(self.languages)})" if self.languages else "")]
        if self.package_files:
            parts.append(f"package files: {_bounded(self.package_files, 8)}")
        parts.append(f"tests: {self.test_setup()}")
        if self.entry_points:
            parts.append(f"entry points: {_bounded(self.entry_points, 8)}")
        return "; ".join(parts)

    def report(self, summary: str = "", conventions: Sequence[str] = ()) -> ExplorationReport:
        """The report the planner reads: these facts, with a model's summary and conventions
        when there are some."""
        return ExplorationReport(
            summary=(summary.strip() or self.summary())[:SUMMARY_LIMIT],
            files=self._files_that_matter(),
            languages=list(self.languages),
            entry_points=list(self.entry_points),
            test_setup=self.test_setup()[:SETUP_LIMIT],
            conventions=[c for c in conventions if c.strip()],
        )

    def render(self) -> str:
        """The facts as lines for the explorer's prompt (the file list it gets anyway)."""
        return "\n".join([
            f"- {self.summary()}",
            f"- languages: {', '.join(self.languages) or 'none'}",
            f"- package files: {_bounded(self.package_files, 20) or 'none'}",
            f"- tests: {self.test_setup()}",
            f"- entry points: {_bounded(self.entry_points, 20) or 'none found'}",
        ])  # fmt: skip

    def _files_that_matter(self) -> list[str]:
        first = [*self.package_files, *self.entry_points_files(), *self.test_files]
        ordered = list(dict.fromkeys([*first, *self.files]))
        shown = ordered[:REPORT_FILES]
        more = len(ordered) - len(shown)
        if more or self.truncated:
            shown.append(f"[... {more}{'+' if self.truncated else ''} more files not listed]")
        return shown

    def entry_points_files(self) -> list[str]:
        return [e.split(" ", 1)[0] for e in self.entry_points if e.split(" ", 1)[0] in self.files]


def merged(survey: Survey, answer: ExplorationReport | None) -> ExplorationReport:
    """The explorer's judgement (summary, conventions) on the facts code found: for files,
    languages, entry points and tests the code's word is kept, whatever the model said."""
    if answer is None:
        return survey.report()
    return survey.report(answer.summary, answer.conventions)


# --- the pure part -----------------------------------------------------------------------------


def wanted_texts(files: Sequence[str]) -> list[str]:
    """The files whose text the survey reads: test configs, package.json and pyproject, and
    (a bounded number of) Python files."""
    configs = [f for f in files if f in TEST_CONFIGS or f in ("package.json", "conftest.py")]
    python = [f for f in files if f.endswith(".py")][:READ_PY_LIMIT]
    return list(dict.fromkeys([*configs, *python]))


def survey(files: Sequence[str], texts: Mapping[str, str], truncated: bool = False) -> Survey:
    """The facts in a listing (paths relative to the workspace, `/`-separated) and the texts
    of the files `wanted_texts` names (a file missing from `texts` could not be read)."""
    counts = Counter(LANGUAGES[s] for f in files if (s := PurePosixPath(f).suffix) in LANGUAGES)
    tests = [f for f in files if is_test_file(f)]
    framework, config = _test_framework(files, texts, tests)
    return Survey(
        files=tuple(files),
        truncated=truncated,
        languages=tuple(name for name, _ in counts.most_common()),
        package_files=tuple(f for f in files if _is_package_file(f)),
        test_framework=framework,
        test_config=config,
        test_files=tuple(tests),
        entry_points=tuple(_entry_points(files, texts)),
    )


def is_test_file(path: str) -> bool:
    """A file a test runner collects by its name: pytest's test_*.py and *_test.py, Go's
    *_test.go, JavaScript's *.test.js and *.spec.ts."""
    name = PurePosixPath(path).name
    if name.endswith(".py"):
        return name.startswith("test_") or name.endswith("_test.py")
    if name.endswith("_test.go"):
        return True
    return bool(re.search(r"\.(test|spec)\.(js|jsx|ts|tsx|mjs|cjs)$", name))


def _is_package_file(path: str) -> bool:
    name = PurePosixPath(path).name
    return name in PACKAGE_FILES or bool(re.fullmatch(r"requirements.*\.(txt|in)", name))


def _test_framework(
    files: Sequence[str], texts: Mapping[str, str], tests: Sequence[str]
) -> tuple[str, str]:
    """The Python test framework and the file that configures it. pytest when something
    configures or uses it (a plain test function runs under pytest too); unittest when the
    test files use only that."""
    config = next((f for f in TEST_CONFIGS if f in texts and _PYTEST_SECTIONS[f] in texts[f]), "")
    if config or "conftest.py" in files or any(f.endswith("/conftest.py") for f in files):
        return "pytest", config or next(f for f in files if PurePosixPath(f).name == "conftest.py")
    python_tests = [t for t in tests if t.endswith(".py")]
    used = " ".join(texts.get(t, "") for t in python_tests)
    if "pytest" in used:
        return "pytest", ""
    if re.search(r"^\s*(import unittest|from unittest)", used, re.MULTILINE):
        return "unittest", ""
    if python_tests:
        return "pytest", ""
    if any(t.endswith("_test.go") for t in tests):
        return "go test", ""
    if tests:
        return "npm test" if "package.json" in files else "an unknown test runner", ""
    return "", ""


def _entry_points(files: Sequence[str], texts: Mapping[str, str]) -> list[str]:
    found: list[str] = []
    for path in files:
        name = PurePosixPath(path).name
        text = texts.get(path, "")
        if name == "__main__.py":
            package = str(PurePosixPath(path).parent).replace("/", ".")
            found.append(f"{path} (python -m {package})" if package != "." else path)
        elif path.endswith(".py") and _MAIN_GUARD.search(text):
            found.append(f"{path} (if __name__ == '__main__')")
        elif name in ENTRY_NAMES:
            found.append(path)
    found += _project_scripts(texts.get("pyproject.toml", ""))
    return found


def _project_scripts(pyproject: str) -> list[str]:
    try:
        scripts = tomllib.loads(pyproject).get("project", {}).get("scripts", {})
    except (tomllib.TOMLDecodeError, AttributeError):
        return []
    if not isinstance(scripts, dict):
        return []
    return [f"{name} = {target} ([project.scripts])" for name, target in scripts.items()]


def _bounded(items: Sequence[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# --- the I/O edge ------------------------------------------------------------------------------


def listing(workspace: Path, limit: int = FILE_LIMIT) -> tuple[list[str], bool]:
    """The workspace's files, relative and sorted by directory, without the team's own, VCS
    and virtualenv directories or caches; and whether there were more than `limit`."""
    found: list[str] = []
    for root, dirs, names in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(Path(root, d)))
        for name in sorted(names):
            if name in SKIPPED_FILES:
                continue
            if len(found) >= limit:
                return found, True
            found.append(PurePosixPath(Path(root, name).relative_to(workspace)).as_posix())
    return found, False


def _skipped_dir(path: Path) -> bool:
    name = path.name
    return (
        name in SKIPPED_DIRS
        or name.endswith(".egg-info")
        or (path / "pyvenv.cfg").exists()  # a virtualenv by any name
    )


def survey_workspace(workspace: Path) -> Survey:
    files, truncated = listing(workspace)
    texts = {}
    for path in wanted_texts(files):
        text = read_text_inside(workspace, path)  # never through a link out, never a FIFO
        if text is not None:
            texts[path] = text
    return survey(files, texts, truncated)

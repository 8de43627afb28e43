"""The survey: what code finds in a workspace without a model, from a listing and a few texts
(pure), and from a real directory (the edge)."""

from __future__ import annotations

import os
from pathlib import Path

from coordinator.survey import merged, survey, survey_workspace
from protocol.reports import ExplorationReport

PYPROJECT = """[project]
name = "todo"
[project.scripts]
todo = "todo.cli:main"
[tool.pytest.ini_options]
testpaths = ["tests"]
"""
CLI = """import sys


def main() -> None:
    print(sys.argv)


if __name__ == "__main__":
    main()
"""


def test_a_python_project_its_packages_tests_and_entry_points() -> None:
    files = ["README.md", "pyproject.toml", "requirements-dev.txt", "todo/__init__.py",
             "todo/__main__.py", "todo/cli.py", "todo/store.py", "tests/test_store.py",
             "web/app.js", "web/app.test.js"]  # fmt: skip
    texts = {"pyproject.toml": PYPROJECT, "todo/cli.py": CLI, "tests/test_store.py": "x = 1\n"}
    found = survey(files, texts)
    assert found.languages == ("Python", "JavaScript")  # most files first
    assert found.package_files == ("pyproject.toml", "requirements-dev.txt")
    assert (found.test_framework, found.test_config) == ("pytest", "pyproject.toml")
    assert found.test_files == ("tests/test_store.py", "web/app.test.js")
    assert found.entry_points == (
        "todo/__main__.py (python -m todo)",
        "todo/cli.py (if __name__ == '__main__')",
        "todo = todo.cli:main ([project.scripts])",
    )
    assert not found.empty
    report = found.report()
    assert report.files[:2] == ["pyproject.toml", "requirements-dev.txt"]
    assert set(report.files) == set(files)
    assert report.test_setup.startswith("pytest, configured in pyproject.toml; 2 test files")
    assert "10 files (Python, JavaScript)" in report.summary


def test_the_test_framework_is_told_by_what_configures_or_uses_it() -> None:
    unit = "import unittest\n\nclass T(unittest.TestCase):\n    pass\n"
    assert survey(["test_a.py"], {"test_a.py": unit}).test_framework == "unittest"
    assert survey(["test_a.py"], {"test_a.py": "import pytest\n"}).test_framework == "pytest"
    assert survey(["test_a.py"], {"test_a.py": "def test_x(): pass\n"}).test_framework == "pytest"
    configured = survey(["pytest.ini", "a.py"], {"pytest.ini": "[pytest]\n"})
    assert (configured.test_framework, configured.test_files) == ("pytest", ())
    assert configured.test_setup() == "no tests yet (pytest is configured)"
    assert survey(["a_test.go", "go.mod"], {}).test_framework == "go test"
    assert survey(["a.py"], {}).test_setup() == "no tests yet"


def test_a_big_workspace_is_reported_bounded_and_says_so() -> None:
    files = [f"pkg/m{i:04d}.py" for i in range(500)]
    report = survey(files, {}, truncated=True).report()
    assert len(report.files) == 61
    assert report.files[-1] == "[... 440+ more files not listed]"
    assert "500+ files" in report.summary


def test_facts_from_code_win_over_what_the_explorer_said() -> None:
    found = survey(["hello.py", "test_hello.py"], {"hello.py": 'if __name__ == "__main__":\n'})
    said = ExplorationReport(
        summary="a greeting script with its test",
        files=["ghost.py"],
        languages=["Rust"],
        entry_points=["ghost.py"],
        test_setup="none",
        conventions=["functions have docstrings", " "],
    )
    report = merged(found, said)
    assert report.summary == "a greeting script with its test"
    assert report.conventions == ["functions have docstrings"]
    assert report.files == ["hello.py", "test_hello.py"]
    assert report.languages == ["Python"]
    assert report.entry_points == ["hello.py (if __name__ == '__main__')"]
    assert report.test_setup.startswith("pytest; 1 test file: test_hello.py")
    assert merged(found, None) == found.report()


def test_a_workspace_with_only_the_teams_own_files_is_empty(tmp_path: Path) -> None:
    (tmp_path / ".agents" / "tasks").mkdir(parents=True)
    (tmp_path / ".agents" / "team.json").write_text("{}")
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    found = survey_workspace(tmp_path)
    assert found.empty and found.files == ()
    assert found.report().summary == "an empty workspace: nothing but the team's own files"
    # A worktree's .git is a file: it is the team's too.
    (tmp_path / ".git").rename(tmp_path / "gitdir")
    (tmp_path / ".git").write_text("gitdir: elsewhere\n")
    assert survey_workspace(tmp_path).files == ("gitdir/HEAD",)


def test_the_edge_skips_venvs_caches_and_links_out(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(CLI)
    for skipped in ("node_modules/x", ".venv/lib", "__pycache__", ".pytest_cache", "pkg.egg-info"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "f.py").write_text("x = 1\n")
    (tmp_path / "myenv").mkdir()  # a virtualenv by another name
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "myenv" / "site.py").write_text("x = 1\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.py"
    outside.write_text('if __name__ == "__main__":\n    pass\n')
    os.symlink(outside, tmp_path / "linked.py")
    found = survey_workspace(tmp_path)
    assert found.files == ("app.py", "linked.py")
    # The link's target is not read: it is outside the workspace.
    assert found.entry_points == ("app.py (if __name__ == '__main__')",)

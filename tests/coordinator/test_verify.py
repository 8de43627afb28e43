"""Verification against real files, real pytest and real subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.verify import verify
from protocol.plan import DodCriterion

MODELS = "class Item:\n    def __init__(self, name):\n        self.name = name\n"
TEST_OK = "from models import Item\n\n\ndef test_name():\n    assert Item('a').name == 'a'\n"
TEST_BAD = "from models import Item\n\n\ndef test_name():\n    assert Item('a').name == 'b'\n"


def workspace(tmp_path: Path, **files: str) -> Path:
    root = tmp_path / "ws"
    for name, text in files.items():
        path = root / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def dod(id: str, kind: str, target: str) -> DodCriterion:
    return DodCriterion(id=id, description=id, verification_type=kind, target_file=target)  # type: ignore[arg-type]


def test_everything_passes_on_a_good_workspace(tmp_path: Path) -> None:
    ws = workspace(tmp_path, **{"models.py": MODELS, "tests__test_models.py": TEST_OK})
    result = verify(
        ws,
        [
            dod("D1", "test", "tests/test_models.py"),
            dod("D2", "import", "models.py"),
            dod("D3", "file_exists", "models.py"),
            dod("D4", "command", "python -c 'import models'"),
        ],
    )
    assert [s.name for s in result.steps] == ["compile", "tests"]
    assert result.passed, result.failures()
    assert "1 passed" in result.criteria[0].detail


def test_a_workspace_without_any_planned_file_says_nothing_was_built(tmp_path: Path) -> None:
    ws = workspace(tmp_path, **{"README.md": "notes\n"})
    marker = ws / "criterion-ran"
    criteria = [dod("D1", "command", f"touch {marker}"), dod("D2", "file_exists", "hello.py")]
    result = verify(ws, criteria, planned=["hello.py", "tests/test_hello.py"])
    assert result.nothing_built and not result.passed
    [step] = result.steps
    assert step.output == (
        "nothing was built: none of the planned files exists (hello.py, tests/test_hello.py)"
    )
    assert result.criteria == [] and not marker.exists()  # no criterion run on nothing
    # One planned file there: verification runs as ever.
    (ws / "hello.py").write_text("x = 1\n")
    built = verify(ws, criteria, planned=["hello.py", "tests/test_hello.py"])
    assert not built.nothing_built and marker.exists()


def test_a_syntax_error_fails_fast_with_file_and_line(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path, **{"models.py": "def broken(:\n    pass\n", "tests__test_models.py": TEST_OK}
    )
    result = verify(ws, [dod("D1", "test", "tests/test_models.py")])
    assert not result.passed
    assert [s.name for s in result.steps] == ["compile"]
    assert "models.py:1:" in result.steps[0].output
    assert result.criteria == []  # nothing else ran: no tests step, no criteria


def test_a_failing_test_is_evidence(tmp_path: Path) -> None:
    ws = workspace(tmp_path, **{"models.py": MODELS, "tests__test_models.py": TEST_BAD})
    result = verify(ws, [dod("D1", "test", "tests/test_models.py"), dod("D2", "import", "models")])
    assert not result.passed
    evidence = result.failures()
    assert "tests failed" in evidence
    assert "assert 'a' == 'b'" in evidence
    assert [c.passed for c in result.criteria] == [False, True]


def test_each_criterion_type_can_fail(tmp_path: Path) -> None:
    ws = workspace(tmp_path, **{"models.py": MODELS})
    result = verify(
        ws,
        [
            dod("D1", "file_exists", "cli.py"),
            dod("D2", "import", "cli"),
            dod("D3", "command", "python -c 'raise SystemExit(3)'"),
            dod("D4", "test", "tests/test_missing.py"),
        ],
    )
    assert [c.passed for c in result.criteria] == [False, False, False, False]
    assert "cli.py is missing" in result.criteria[0].detail
    assert "No module named 'cli'" in result.criteria[1].detail


def test_a_dangerous_dod_command_is_refused_by_the_rails(tmp_path: Path) -> None:
    ws = workspace(tmp_path, **{"models.py": MODELS})
    (tmp_path / "precious").write_text("keep")
    result = verify(ws, [dod("D1", "command", f"rm -rf {tmp_path}")])
    assert not result.criteria[0].passed
    assert (tmp_path / "precious").exists()


@pytest.mark.timeout(600)
def test_declared_requirements_are_installed_into_the_workspace_venv(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        **{
            "models.py": MODELS,
            "tests__test_models.py": TEST_OK,
            "requirements.txt": "# nothing needed beyond pytest\n",
        },
    )
    result = verify(ws, [dod("D1", "test", "tests/test_models.py")])
    assert [s.name for s in result.steps] == ["compile", "install", "tests"]
    assert result.passed, result.failures()
    assert (ws / ".venv" / "bin" / "python").exists()


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("import", "os; open('../pwned', 'w').write('x')"),
        ("test", "--version"),
        ("test", "../outside_test.py"),
    ],
    ids=["import-injection", "pytest-option", "test-outside"],
)
def test_a_hostile_dod_target_fails_and_escapes_nothing(
    tmp_path: Path, kind: str, target: str
) -> None:
    ws = workspace(tmp_path, **{"models.py": MODELS})
    (tmp_path / "outside_test.py").write_text("def test_x():\n    pass\n")
    result = verify(ws, [dod("D1", kind, target)])
    assert not result.criteria[0].passed
    assert not (tmp_path / "pwned").exists()


def test_a_package_json_is_installed_with_npm(tmp_path: Path) -> None:
    import shutil

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    ws = workspace(
        tmp_path, **{"models.py": MODELS, "package.json": '{"name": "ws", "version": "1.0.0"}'}
    )
    result = verify(ws, [dod("D1", "file_exists", "package.json")])
    assert [s.name for s in result.steps] == ["compile", "npm install"]
    assert result.passed, result.failures()

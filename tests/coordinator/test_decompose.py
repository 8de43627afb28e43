from __future__ import annotations

from typing import Any

import pytest

from coordinator.decompose import plan_to_tasks
from protocol import DagError, TaskStore, check_dag
from protocol.plan import Plan
from tests.conftest import TeamDir

DOD = [{"id": "D1", "description": "x", "verification_type": "file_exists", "target_file": "a.py"}]


def plan(*modules: dict[str, Any], dod: list[dict[str, Any]] | None = None) -> Plan:
    return Plan.model_validate(
        {"summary": "s", "modules": list(modules), "dod": DOD if dod is None else dod}
    )


def module(name: str, *files: str, deps: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "files": [{"path": f, "purpose": ""} for f in files],
        "depends_on": list(deps),
        "role": "builder",
        **extra,
    }


TODO = plan(
    module(
        "tests", "tests/test_cli.py", role="tester", description="tests for cli.py and store.py"
    ),
    module("cli", "cli.py", deps=("storage",)),
    module("storage", "store.py", deps=("models",)),
    module("models", "models.py"),
    dod=[
        {
            "id": "D1",
            "description": "tests pass",
            "verification_type": "test",
            "target_file": "tests/test_cli.py",
        }
    ],
)


def test_models_come_before_storage_before_cli_before_tests() -> None:
    tasks = plan_to_tasks(TODO)
    assert [t.module for t in tasks] == ["models", "storage", "cli", "tests"]
    assert [t.id for t in tasks] == [1, 2, 3, 4]
    by_module = {t.module: t for t in tasks}
    assert by_module["storage"].depends_on == [1]
    assert by_module["cli"].depends_on == [2]
    # The tests depend on what they test, even though the plan did not say so.
    assert by_module["tests"].depends_on == [2, 3]
    assert by_module["tests"].role == "tester"
    assert by_module["tests"].dod == ["D1"]
    assert "It uses" not in by_module["models"].instructions
    assert "It uses: store.py" in by_module["cli"].instructions


def test_the_tasks_form_a_valid_dag_that_the_store_accepts(team_dir: TeamDir) -> None:
    tasks = plan_to_tasks(TODO, first_id=5)
    assert check_dag(tasks)
    TaskStore(team_dir.layout).add(tasks)
    assert TaskStore(team_dir.layout).ids() == [5, 6, 7, 8]


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (
            plan(module("a", "a.py", deps=("b",)), module("b", "b.py", deps=("a",))),
            "module dependency cycle",
        ),
        (plan(module("a", "a.py", deps=("a",))), "module a depends on itself"),
        (plan(module("a", "a.py", deps=("ghost",))), "not in the plan: ghost"),
        (plan(module("a", "a.py"), module("a", "b.py")), "used twice: a"),
        (plan(module("a", "x.py"), module("b", "x.py")), "x.py is in two modules"),
        (plan(module("explore", "a.py")), "reserved"),
        (plan(module("Models", "a.py"), module("models", "b.py")), "too alike"),
        (plan(module("a", "a.py"), dod=[*DOD, *DOD]), "criterion ids used twice: D1"),
    ],
    ids=[
        "cycle",
        "self",
        "missing",
        "duplicate",
        "shared-file",
        "reserved",
        "clash",
        "twice",
    ],
)
def test_a_bad_plan_is_rejected_naming_the_problem(bad: Plan, named: str) -> None:
    with pytest.raises(DagError, match=named):
        plan_to_tasks(bad)


def test_a_criterion_on_a_directory_belongs_to_the_modules_with_files_in_it() -> None:
    suite = {"id": "T", "description": "tests pass", "verification_type": "test",
             "target_file": "tests/"}  # fmt: skip
    tasks = plan_to_tasks(
        plan(
            module("hello", "hello.py"),
            module("tests", "tests/test_a.py", "tests/test_b.py", role="tester"),
            dod=[suite],
        )
    )
    assert {t.module: t.dod for t in tasks} == {"hello": [], "tests": ["T"]}

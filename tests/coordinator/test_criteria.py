"""The Definition-of-Done criteria a plan is built to: its own where they can be checked; where
it gave unusable ones, those the plan and the workspace imply, added by code and said."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.criteria import complete
from coordinator.survey import Survey, survey
from protocol.plan import DodCriterion, Plan

EMPTY = survey([], {})


def module(name: str, *paths: str, role: str = "builder") -> dict[str, Any]:
    return {"name": name, "description": "", "role": role, "depends_on": [],
            "files": [{"path": p, "purpose": ""} for p in paths]}  # fmt: skip


def criterion(id: str, kind: str, target: str) -> dict[str, str]:
    return {"id": id, "description": f"{kind} {target}", "verification_type": kind,
            "target_file": target}  # fmt: skip


def plan(*criteria: dict[str, str]) -> Plan:
    """hello.py and a README, with tests/test_hello.py by a tester."""
    return Plan.model_validate({
        "summary": "hello",
        "modules": [module("hello", "hello.py", "README.md"),
                    module("tests", "tests/test_hello.py", role="tester")],
        "dod": list(criteria),
    })  # fmt: skip


def kinds(dod: list[DodCriterion]) -> list[tuple[str, str, str]]:
    return [(c.id, c.verification_type.value, c.target_file) for c in dod]


IMPLIED = [
    ("A1", "test", "tests/test_hello.py"),
    ("A2", "import", "hello.py"),
    ("A3", "file_exists", "README.md"),
]


def test_a_plan_whose_criteria_can_all_be_checked_is_kept_as_it_is() -> None:
    given = plan(
        criterion("D1", "test", "tests/test_hello.py"),
        criterion("D2", "import", "hello"),
        criterion("D3", "file_exists", "./README.md"),
        criterion("D4", "command", "python hello.py"),
        criterion("D5", "test", "tests"),
    )
    done = complete(given, EMPTY)
    assert done.plan is given and not done.added and not done.dropped and not done.notes()


# Criteria a weak planner gives that no verification could pass, and why each is dropped.
UNUSABLE = {
    "a file nobody writes": (criterion("D1", "file_exists", "hello.txt"), "neither a planned"),
    "a test of a source file": (criterion("D1", "test", "hello.py"), "not a Python test file"),
    "a test of nothing": (criterion("D1", "test", "tests/test_other.py"), "not a Python test"),
    "an import of a module nobody writes":
        (criterion("D1", "import", "greeter"), "neither a planned nor an existing Python"),
    "an import of no module name":
        (criterion("D1", "import", "hello world"), "not a Python module"),
    "a blank command": (criterion("D1", "command", "  "), "its target is empty"),
}  # fmt: skip


@pytest.mark.parametrize("bad", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_an_unusable_criterion_is_dropped_and_the_implied_ones_added(
    bad: tuple[dict[str, str], str],
) -> None:
    given, why = bad
    done = complete(plan(given), EMPTY)
    assert [c.id for c, _ in done.dropped] == ["D1"] and why in done.dropped[0][1]
    assert kinds(done.plan.dod) == IMPLIED
    assert done.added == done.plan.dod
    notes = done.notes()
    assert notes[0].startswith("criterion D1 dropped: ")
    assert notes[1] == (
        "added the criteria the plan implies (the plan's criteria could not be checked): "
        "A1 (test tests/test_hello.py), A2 (import hello.py), A3 (file_exists README.md)"
    )


def test_a_rambling_target_is_shown_cut_short() -> None:
    # SmolLM2 gave a test target of 500 characters: "src/Lem_l_l_l_test.pyx0.pyx20.pyx1..."
    rambling = "src/Lem_test.pyx0" + ".pyx1" * 30
    done = complete(plan({**criterion("D1", "test", rambling), "description": "tests"}), EMPTY)
    [note, _] = done.notes()
    assert note.startswith("criterion D1 dropped: src/Lem_test.pyx0.pyx1") and "…" in note
    assert len(note) < 200


def test_what_the_usable_criteria_check_is_not_checked_twice() -> None:
    done = complete(
        plan(
            criterion("A1", "import", "hello.py"),  # kept, and its id not given again
            criterion("D2", "file_exists", "nowhere.md"),
        ),
        EMPTY,
    )
    assert kinds(done.plan.dod) == [
        ("A1", "import", "hello.py"),
        ("A2", "test", "tests/test_hello.py"),
        ("A3", "file_exists", "README.md"),
    ]
    assert "(some of the plan's criteria could not be checked): A2" in done.notes()[1]


def test_files_the_workspace_has_are_usable_targets() -> None:
    workspace = survey(["lib/util.py", "tests/test_util.py"], {})
    given = plan(
        criterion("D1", "import", "lib.util"),
        criterion("D2", "test", "tests/test_util.py"),
        criterion("D3", "file_exists", "lib"),
    )
    assert complete(given, workspace).plan is given
    # In a workspace too big to list whole, a file not in the listing may exist all the same.
    partial = Survey(**{**workspace.__dict__, "truncated": True})
    assert complete(plan(criterion("D1", "file_exists", "deep/x.cfg")), partial).added == []


def test_several_test_files_are_one_criterion_on_their_directory() -> None:
    many = Plan.model_validate({
        "summary": "s",
        "modules": [module("a", "src/a.py"),
                    module("tests", "tests/test_a.py", "tests/unit/test_b.py", role="tester"),
                    module("cli", "setup.py", "scripts/run-me.py")],
        "dod": [criterion("D1", "test", ".")],  # the whole suite, which the plan has tests in
    })  # fmt: skip
    done = complete(many, EMPTY)
    assert done.plan is many, "a test run of the workspace that has planned tests is usable"
    done = complete(many.model_copy(update={"dod": [criterion_model("D1", "import", "b")]}), EMPTY)
    assert kinds(done.plan.dod) == [
        ("A1", "test", "tests"),
        ("A2", "import", "src/a.py"),
        ("A3", "file_exists", "setup.py"),  # not imported: it would run the packaging
        ("A4", "file_exists", "scripts/run-me.py"),  # not a module name
    ]


def criterion_model(id: str, kind: str, target: str) -> DodCriterion:
    return DodCriterion.model_validate(criterion(id, kind, target))

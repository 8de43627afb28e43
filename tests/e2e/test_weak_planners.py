"""Weak planners and analysts through whole team runs. A planner whose first plan runs to the
token limit and whose second has the slips SmolLM2's plans had (a self-dependency, a cycle, a
criterion id used twice): the team asks again after the cut, mends the slips, says so, and
builds the plan to done. An analyst whose every answer is cut: the team fixes from the failing
output alone, and is done."""

from __future__ import annotations

import pytest

from protocol import TaskStatus, TaskStore
from protocol.llm import weak_models as weak
from protocol.llm.weak_models import Mode
from protocol.plan import load_plan
from tests.e2e.weak_team import (
    DOUBLE_BUGGY,
    DOUBLER_PLAN,
    WeakRun,
    criterion,
    module,
    run_weak_team,
)

pytestmark = pytest.mark.timeout(300)

GREET = "def greet(name: str) -> str:\n    return f'hello {name}'\n"
HELLO = "from greet import greet\n\nprint(greet('world'))\n"
PLAN = {
    "summary": "a greeting and a script that prints it",
    "modules": [module("greet", "greet.py"), module("hello", "hello.py", depends_on=("greet",))],
    "dod": [criterion("D1", "import", "greet.py"), criterion("D2", "file_exists", "hello.py")],
}


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> WeakRun:
    rules = [
        {
            "name": f"{Mode.SCHEMA_CUT}, then {Mode.PLAN_SLIPS}",
            "match": {"schema": "Plan"},
            "replies": [weak.cut_at_limit(), {"json": weak.slipped_plan(PLAN)}],
        },
        weak.builder(Mode.WELL, "greet.py", GREET),
        weak.builder(Mode.WELL, "hello.py", HELLO),
    ]
    return run_weak_team(tmp_path_factory.mktemp("plans"), rules)


def test_the_slipped_plan_is_mended_and_built_to_done(planned: WeakRun) -> None:
    assert planned.done.returncode == 0, planned.output
    assert planned.info().status.value == "done", planned.output
    tasks = TaskStore(planned.layout).all()
    assert [(t.module, t.status) for t in tasks] == [
        ("greet", TaskStatus.DONE),
        ("hello", TaskStatus.DONE),
    ], "the cycle broke where greet waited for hello, listed after it"
    plan = load_plan(planned.layout.plan_json.read_bytes())
    assert {m.name: m.depends_on for m in plan.modules} == {"greet": [], "hello": ["greet"]}
    ids = [c.id for c in plan.dod]
    assert len(ids) == len(set(ids)) and ids[:2] == ["D1", "D2"]


def test_the_pane_says_each_mend(planned: WeakRun) -> None:
    log = planned.coordinator_log()
    assert "plan mended: module greet no longer depends on itself" in log
    assert "plan mended: dependency cycle" in log and "greet no longer waits for hello" in log
    assert "plan mended: the second criterion D1 is called D2" in log


def test_the_cut_plan_is_asked_for_again_shorter(planned: WeakRun) -> None:
    plans = [r for r in planned.server.log if r.seen.schema_title == "Plan"]
    assert len(plans) == 2
    assert "cut off at its token limit" in str(plans[1].body["messages"][-1]["content"])
    assert "the plan was cut off" in planned.coordinator_log()


# --- an RCA answer cut at its token limit ------------------------------------------------------

DOUBLE = "def double(n: int) -> int:\n    return n + n\n"


@pytest.fixture(scope="module")
def unanalysed(tmp_path_factory: pytest.TempPathFactory) -> WeakRun:
    rules = [
        weak.schema_answer("Plan", DOUBLER_PLAN),
        {
            "name": f"{Mode.SCHEMA_CUT} RcaReport",
            "match": {"schema": "RcaReport"},
            "replies": [weak.cut_at_limit()],
        },
        weak.fixer("double.py", weak.write("double.py", DOUBLE)),
        weak.builder(Mode.WELL, "double.py", DOUBLE_BUGGY),
    ]
    return run_weak_team(tmp_path_factory.mktemp("rca"), rules)


def test_a_cut_analysis_is_replaced_by_a_fix_from_the_failing_output(unanalysed: WeakRun) -> None:
    assert unanalysed.done.returncode == 0, unanalysed.output
    info = unanalysed.info()
    assert (info.status.value, info.iteration) == ("done", 2)
    assert (unanalysed.workspace / "double.py").read_text() == DOUBLE
    assert "the root-cause model gave no usable analysis" in unanalysed.coordinator_log()
    fix = unanalysed.task("double.py")
    assert [e.file for e in fix.edits] == ["double.py"]
    assert "AssertionError" in fix.edits[0].details, "the failure the fix is to mend"

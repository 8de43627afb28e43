"""Plans mended by code before they are refused, and the planner asked again only for what
code cannot mend. The slips are those SmolLM2's plans made (a module depending on itself, a
cycle of two modules, two criteria called D1) and their near kin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from coordinator.decompose import check_plan, plan_to_tasks
from coordinator.outcomes import TeamFailed
from coordinator.plan_repair import repair_plan
from coordinator.planning import CUT_PLAN, PLAN_TEMPERATURES, buildable_plan
from protocol import DagError
from protocol.llm import BadAnswer, ChatMessage, TruncatedAnswer
from protocol.plan import Plan
from tests.coordinator.test_decompose import module


def criterion(id: str, target: str = "hello.py", kind: str = "file_exists") -> dict[str, str]:
    return {"id": id, "description": f"{kind} {target}", "verification_type": kind,
            "target_file": target}  # fmt: skip


def plan(*modules: dict[str, Any], dod: list[dict[str, str]] | None = None) -> Plan:
    return Plan.model_validate(
        {"summary": "s", "modules": list(modules), "dod": dod or [criterion("D1")]}
    )


def deps(mended: Plan) -> dict[str, list[str]]:
    return {m.name: m.depends_on for m in mended.modules}


def test_a_plan_without_slips_is_left_as_it_is() -> None:
    given = plan(module("greet", "greet.py"), module("hello", "hello.py", deps=("greet",)))
    repaired = repair_plan(given)
    assert repaired.plan is given and repaired.mends == []


def test_a_module_depending_on_itself_no_longer_does_and_that_is_said_once() -> None:
    given = plan(module("greet.py", "greet.py", deps=("greet.py", "greet.py", "greet")))
    with pytest.raises(DagError, match="depends on itself"):
        check_plan(given)
    repaired = repair_plan(given)
    assert deps(repaired.plan) == {"greet.py": []}
    assert repaired.mends == ["module greet.py no longer depends on itself"]
    check_plan(repaired.plan)


def test_a_cycle_of_two_is_broken_where_a_module_waits_for_one_listed_after_it() -> None:
    # SmolLM2: "module dependency cycle: hello.py -> greet.py -> hello.py"
    given = plan(
        module("hello.py", "hello.py", deps=("greet.py",)),
        module("greet.py", "greet.py", deps=("hello.py",)),
    )
    repaired = repair_plan(given)
    assert deps(repaired.plan) == {"hello.py": [], "greet.py": ["hello.py"]}
    assert repaired.mends == [
        "dependency cycle hello.py -> greet.py -> hello.py broken: "
        "hello.py no longer waits for greet.py"
    ]
    assert [t.module for t in plan_to_tasks(repaired.plan)] == ["hello.py", "greet.py"]


def test_a_longer_cycle_loses_one_edge_only() -> None:
    given = plan(
        module("a", "a.py", deps=("c",)),
        module("b", "b.py", deps=("a",)),
        module("c", "c.py", deps=("b",)),
        module("d", "d.py", deps=("a", "c")),
    )
    repaired = repair_plan(given)
    assert deps(repaired.plan) == {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"]}
    assert len(repaired.mends) == 1


def test_two_criteria_with_one_id_get_ids_of_their_own() -> None:
    given = plan(
        module("hello", "hello.py"),
        module("tests", "test_hello.py", role="tester"),
        dod=[criterion("D1"), criterion("D1", "test_hello.py", "test"), criterion("D2", "x.py")],
    )
    repaired = repair_plan(given)
    assert [c.id for c in repaired.plan.dod] == ["D1", "D3", "D2"]
    assert repaired.mends == ["the second criterion D1 is called D3"]
    check_plan(repaired.plan)
    long = "criterion" + "9" * 7
    twice = plan(module("hello", "hello.py"), dod=[criterion(long), criterion(long, "x.py")])
    ids = [c.id for c in repair_plan(twice).plan.dod]
    assert ids[0] == long and len(ids[1]) <= 16 and ids[1] != long


def test_a_criterion_given_twice_is_kept_once() -> None:
    given = plan(module("hello", "hello.py"), dod=[criterion("D1"), criterion("D1")])
    repaired = repair_plan(given)
    assert [c.id for c in repaired.plan.dod] == ["D1"]


def test_a_dependency_named_by_a_file_means_the_module_that_writes_it() -> None:
    given = plan(
        module("greeting", "greet.py"),
        module("main", "hello.py", deps=("greet.py", "greet", "nowhere")),
    )
    repaired = repair_plan(given)
    assert deps(repaired.plan)["main"] == ["greeting"]
    assert "module main depended on 'nowhere', which is not in the plan" in repaired.mends


def test_a_builder_does_not_wait_for_the_tests_of_what_it_builds() -> None:
    given = plan(
        module("hello", "hello.py", deps=("tests",)),
        module("tests", "test_hello.py", role="tester", description="tests of hello.py"),
    )
    with pytest.raises(DagError, match="cycle"):
        plan_to_tasks(given)  # the tester waits for hello.py, whose files it names
    repaired = repair_plan(given)
    assert deps(repaired.plan) == {"hello": [], "tests": []}
    assert [t.module for t in plan_to_tasks(repaired.plan)] == ["hello", "tests"]


def test_a_file_in_two_modules_stays_with_the_first() -> None:
    given = plan(
        module("hello", "hello.py", "util.py"),
        module("util", "util.py", "more.py"),
        module("again", "hello.py"),
        module("main", "main.py", deps=("again",)),
    )
    repaired = repair_plan(given)
    files = {m.name: [f.path for f in m.files] for m in repaired.plan.modules}
    assert files == {"hello": ["hello.py", "util.py"], "util": ["more.py"], "main": ["main.py"]}
    assert deps(repaired.plan)["main"] == ["hello"], "the dropped module's dependents follow it"
    check_plan(repaired.plan)


def test_names_its_agent_cannot_be_told_apart_by_are_made_distinct() -> None:
    long = "n" * 40
    given = plan(
        module("explore", "survey.py"),
        module("Hello", "hello.py"),
        module("hello", "hello2.py"),
        module(long, "a.py"),
        module(long, "b.py"),
        module("explore", f"{'s' * 60}.py"),
    )
    repaired = repair_plan(given)
    names = [m.name for m in repaired.plan.modules]
    assert names == ["survey", "Hello", "hello-2", long, f"{long[:38]}-2", "s" * 40]
    check_plan(Plan.model_validate(repaired.plan.model_dump()))  # within the schema's bounds


# --- asking again ------------------------------------------------------------------------------

Ask = Callable[[list[ChatMessage], float], Plan]


def scripted(*answers: Plan | Exception) -> tuple[Ask, list[list[ChatMessage]]]:
    """A planner that gives `answers` in turn, and the messages it was asked with; the
    temperatures it was asked at are in `temperatures`."""
    asked: list[list[ChatMessage]] = []

    def ask(messages: list[ChatMessage], temperature: float) -> Plan:
        asked.append(messages)
        temperatures.append(temperature)
        answer = answers[len(asked) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return ask, asked


def ask_for_plan(ask: Ask) -> tuple[Plan, list[tuple[str, str]]]:
    said: list[tuple[str, str]] = []
    got, _ = buildable_plan([ChatMessage.user("plan it")], ask, 1, lambda k, t: said.append((k, t)))
    return got, said


GOOD = plan(module("hello", "hello.py"))
temperatures: list[float] = []


def test_a_mended_plan_is_taken_without_asking_again_and_the_pane_says_what_was_mended() -> None:
    ask, asked = scripted(plan(module("hello", "hello.py", deps=("hello",))))
    got, said = ask_for_plan(ask)
    assert deps(got) == {"hello": []} and len(asked) == 1
    assert said == [("warn", "plan mended: module hello no longer depends on itself")]


def test_a_cut_plan_is_asked_for_again_shorter_and_not_shown_back() -> None:
    ask, asked = scripted(TruncatedAnswer("cut at 2048 tokens"), GOOD)
    got, said = ask_for_plan(ask)
    assert got == GOOD
    assert asked[1][-1].content == CUT_PLAN and len(asked[1]) == 2
    assert said[0][0] == "fail" and "cut at 2048 tokens" in said[0][1]


def test_a_plan_that_will_not_fit_the_schema_is_asked_for_again() -> None:
    ask, asked = scripted(BadAnswer("not JSON"), GOOD)
    assert ask_for_plan(ask)[0] == GOOD and len(asked) == 2


def test_three_unusable_answers_fail_the_team_naming_each_and_what_to_do() -> None:
    ask, asked = scripted(TruncatedAnswer("cut"), TruncatedAnswer("cut"), BadAnswer("bad"))
    temperatures.clear()
    with pytest.raises(TeamFailed) as failed:
        ask_for_plan(ask)
    assert len(asked) == 3
    assert temperatures == list(PLAN_TEMPERATURES) == [0.2, 0.6, 0.9], "a different answer each"
    assert asked[2][-1].content == CUT_PLAN and len(asked[2]) == 2, "said once"
    assert "cut off at its token limit; cut off at its token limit; not a plan" in str(failed.value)
    assert "TEAM_MODEL_PLAN" in str(failed.value)

"""The weak-model catalogue gives scenarios the scripted server loads, and its malformed
arguments reach the client as a server would send them."""

from __future__ import annotations

import json

import httpx
import pytest

from protocol.llm import weak_models as weak
from protocol.llm.scripted import Rule, Scenario, ScriptedServer
from protocol.llm.weak_models import Mode

TESTER_MODES = (Mode.TEST_NOW_EQUALITY, Mode.TEST_CANNOT_FAIL, Mode.TEST_OF_CONSTANTS)
SCHEMA_MODES = (Mode.SCHEMA_MISSING_FIELD, Mode.SCHEMA_WRONG_TYPE, Mode.SCHEMA_CUT, Mode.PLAN_SLIPS)
BUILDER_MODES = [m for m in Mode if m not in (*TESTER_MODES, *SCHEMA_MODES, Mode.BREAKING_EDIT)]


@pytest.mark.parametrize("mode", BUILDER_MODES)
def test_each_builder_mode_is_a_rule_that_ends_with_a_write_and_finish(mode: Mode) -> None:
    rule = Rule.model_validate(weak.builder(mode, "hello.py", "x = 1\n"))
    assert rule.match.files == "hello.py"
    last = rule.answers()[-1]
    assert [c.name for c in last.tool_calls] == ["finish"]


@pytest.mark.parametrize("mode", [*TESTER_MODES, *SCHEMA_MODES, Mode.BREAKING_EDIT])
def test_a_mode_that_is_not_a_builders_is_refused_by_builder(mode: Mode) -> None:
    with pytest.raises(ValueError, match="is not a builder's mode"):
        weak.builder(mode, "hello.py", "x = 1\n")


def test_a_spoiled_schema_answer_comes_before_the_good_one() -> None:
    good = {"whys": ["a", "b"], "root_cause": "c"}
    missing = Rule.model_validate(weak.schema_answer("RcaReport", good, Mode.SCHEMA_MISSING_FIELD,
                                                     "whys")).answers()  # fmt: skip
    wrong = Rule.model_validate(weak.schema_answer("RcaReport", good, Mode.SCHEMA_WRONG_TYPE,
                                                   "whys")).answers()  # fmt: skip
    assert [a.json_value for a in missing] == [{"root_cause": "c"}, good]
    assert [a.json_value for a in wrong] == [{"whys": "a; b", "root_cause": "c"}, good]
    cut = Rule.model_validate(weak.schema_answer("RcaReport", good, Mode.SCHEMA_CUT)).answers()
    assert [a.finish_reason for a in cut] == ["length", None] and cut[1].json_value == good


def test_a_slipped_plan_has_the_slips_smollm2_made() -> None:
    good = {
        "summary": "s",
        "modules": [
            {"name": n, "description": "", "role": "builder", "depends_on": [],
             "files": [{"path": f"{n}.py", "purpose": ""}]}
            for n in ("a", "b")
        ],
        "dod": [{"id": i, "description": "", "verification_type": "import", "target_file": t}
                for i, t in (("D1", "a.py"), ("D2", "b.py"))],
    }  # fmt: skip
    slipped = weak.slipped_plan(good)
    assert [m["depends_on"] for m in slipped["modules"]] == [["a", "b.py"], ["a"]]
    assert [c["id"] for c in slipped["dod"]] == ["D1", "D1"]
    assert [m["depends_on"] for m in good["modules"]] == [[], []], "the good plan is kept"


def test_malformed_arguments_are_sent_unparsed_in_the_openai_answer() -> None:
    rule = weak.builder(Mode.MALFORMED_ARGUMENTS, "hello.py", "x = 1\n")
    scenario = Scenario.model_validate({"rules": [rule]})
    with ScriptedServer(scenario) as server:
        body = {
            "model": "m",
            "messages": [{"role": "user", "content": "TASK 1: t\nFILES: hello.py"}],
        }
        answer = httpx.post(f"{server.url}/v1/chat/completions", json=body).json()
    raw = answer["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert raw.startswith('{"path": "hello.py"')
    with pytest.raises(ValueError):
        json.loads(raw)

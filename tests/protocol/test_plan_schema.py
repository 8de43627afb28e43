"""The schemas the models are asked for constrain (servers enforce them by grammar): every
field required, lists that must hold something say so, enums for roles and verification
types, no other keys, no empty strings that matter; and they stay within what llama.cpp's
json-schema-to-grammar takes. A plan that breaks a constraint is refused, naming it."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from protocol.plan import Plan, PlanAnswer, load_plan
from protocol.reports import ExplorationReport, RcaReport

# What llama.cpp's json-schema-to-grammar (common/json-schema.cpp) reads, and the annotations
# it ignores; `pattern` is among what it reads but is kept out (its regex subset is small).
GRAMMAR_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "enum", "const", "$ref", "$defs", "anyOf",
    "title", "description",
}  # fmt: skip
SCHEMAS = [Plan, PlanAnswer, ExplorationReport, RcaReport]

VALID: dict[str, Any] = {
    "summary": "hello.py with greet(name), and its test",
    "modules": [
        {
            "name": "hello",
            "description": "the greeting",
            "files": [{"path": "hello.py", "purpose": "greet(name)"}],
            "depends_on": [],
            "role": "builder",
        },
        {
            "name": "tests",
            "description": "tests of hello.py",
            "files": [{"path": "test_hello.py", "purpose": "pytest tests"}],
            "depends_on": ["hello"],
            "role": "tester",
        },
    ],
    "dod": [
        {
            "id": "D1",
            "description": "the tests pass",
            "verification_type": "test",
            "target_file": "test_hello.py",
        }
    ],
}


def objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every object schema in a generated schema, nested ones and $defs included."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from objects(value)


def keywords(node: Any) -> Iterator[str]:
    """The schema keywords used (property names under `properties` and $defs are not)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from keywords(sub)
            else:
                yield from keywords(value)
    elif isinstance(node, list):
        for value in node:
            yield from keywords(value)


@pytest.mark.parametrize("model", SCHEMAS, ids=lambda m: m.__name__)
def test_every_object_requires_all_its_fields_and_takes_no_others(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    found = list(objects(schema))
    assert found
    for node in found:
        assert node["additionalProperties"] is False, node["title"]
        assert sorted(node["required"]) == sorted(node["properties"]), node["title"]
    assert "default" not in set(keywords(schema)), "a default lets a model leave it out"


@pytest.mark.parametrize("model", SCHEMAS, ids=lambda m: m.__name__)
def test_the_schemas_stay_within_what_llama_cpp_turns_into_a_grammar(
    model: type[BaseModel],
) -> None:
    schema = model.model_json_schema()
    assert set(keywords(schema)) <= GRAMMAR_KEYWORDS
    # Local references only, and no cycle among them.
    defs = schema.get("$defs", {})

    def refs(node: Any) -> set[str]:
        text = json.dumps(node)
        return {name for name in defs if f'"#/$defs/{name}"' in text}

    def visit(name: str, seen: tuple[str, ...]) -> None:
        assert name not in seen, f"a $ref cycle: {' -> '.join([*seen, name])}"
        for target in refs(defs[name]):
            visit(target, (*seen, name))

    for name in refs(schema.get("properties", {})):
        visit(name, ())


def test_the_plan_schema_holds_each_constraint() -> None:
    schema = Plan.model_json_schema()
    defs = schema["$defs"]
    assert schema["properties"]["modules"]["minItems"] == 1
    assert schema["properties"]["dod"]["minItems"] == 1
    assert schema["properties"]["summary"]["minLength"] == 1
    module = defs["Module"]["properties"]
    assert module["files"]["minItems"] == 1
    assert module["role"]["enum"] == ["builder", "tester"]
    assert module["name"]["minLength"] == 1
    assert defs["PlannedFile"]["properties"]["path"]["minLength"] == 1
    assert defs["VerificationType"]["enum"] == ["test", "command", "file_exists", "import"]
    criterion = defs["DodCriterion"]["properties"]
    assert criterion["verification_type"] == {"$ref": "#/$defs/VerificationType"}
    assert all(criterion[f]["minLength"] == 1 for f in ("id", "description", "target_file"))
    # Bounded, so that a weak model cannot write one field until its token limit.
    assert module["description"]["maxLength"] == 160 and module["name"]["maxLength"] == 40
    assert module["depends_on"]["items"]["maxLength"] == 40
    # And no list without end: SmolLM2 at temperature 0.2 repeated one file to its token limit.
    assert (schema["properties"]["modules"]["maxItems"], module["files"]["maxItems"]) == (8, 6)
    assert module["depends_on"]["maxItems"] == 8
    # A planner gives at most 8 criteria; the plan kept may have more (code adds those implied).
    asked = PlanAnswer.model_json_schema()
    assert asked["title"] == "Plan" and asked["properties"]["dod"]["maxItems"] == 8
    assert "maxItems" not in schema["properties"]["dod"]


def test_the_report_schemas_hold_theirs() -> None:
    rca = RcaReport.model_json_schema()
    assert rca["properties"]["concrete_edits"]["minItems"] == 1
    assert rca["properties"]["whys"]["minItems"] == 1
    assert rca["$defs"]["RcaEdit"]["properties"]["action"]["enum"] == ["create", "edit", "delete"]
    explored = ExplorationReport.model_json_schema()["properties"]
    assert explored["summary"]["minLength"] == 1
    assert explored["files"]["items"] == {"minLength": 1, "type": "string"}
    assert explored["summary"]["maxLength"] == 1000
    assert rca["properties"]["whys"]["maxItems"] == 5


def change(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    plan = copy.deepcopy(VALID)
    edit(plan)
    return plan


# Each way to break the plan, and what the refusal names: where, and what is wrong.
BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    "no modules": (lambda p: p.update(modules=[]), "modules", "at least 1 item"),
    "a module with no files":
        (lambda p: p["modules"][0].update(files=[]), "modules.0.files", "at least 1 item"),
    "no criteria": (lambda p: p.update(dod=[]), "dod", "at least 1 item"),
    "no criteria at all": (lambda p: p.pop("dod"), "dod", "Field required"),
    "a role that is not builder or tester":
        (lambda p: p["modules"][0].update(role="explorer"), "modules.0.role", "'builder' or"),
    "a module without a role":
        (lambda p: p["modules"][0].pop("role"), "modules.0.role", "Field required"),
    "a module without depends_on":
        (lambda p: p["modules"][1].pop("depends_on"), "modules.1.depends_on", "Field required"),
    "an unknown verification type": (
        lambda p: p["dod"][0].update(verification_type="manual"),
        "dod.0.verification_type",
        "'test', 'command', 'file_exists' or 'import'",
    ),
    "an empty target":
        (lambda p: p["dod"][0].update(target_file=""), "dod.0.target_file", "at least 1 char"),
    "an empty module name":
        (lambda p: p["modules"][0].update(name=""), "modules.0.name", "at least 1 char"),
    "an empty path": (
        lambda p: p["modules"][0]["files"][0].update(path=""),
        "modules.0.files.0.path",
        "at least 1 char",
    ),
    "an empty summary": (lambda p: p.update(summary=""), "summary", "at least 1 char"),
    "a description that rambles on":
        (lambda p: p["modules"][0].update(description="and " * 200), "modules.0.description",
         "at most 160 characters"),
    "a file repeated to the token limit": (
        lambda p: p["modules"][0].update(files=p["modules"][0]["files"] * 7), "modules.0.files",
        "at most 6 items"),
    "a key the schema does not have":
        (lambda p: p["modules"][0].update(owner="me"), "modules.0.owner", "Extra inputs"),
}  # fmt: skip


@pytest.mark.parametrize("broken", BROKEN.values(), ids=BROKEN.keys())
def test_a_plan_breaking_a_constraint_is_refused_naming_where_and_why(
    broken: tuple[Callable[[dict[str, Any]], None], str, str],
) -> None:
    edit, where, why = broken
    Plan.model_validate(VALID)  # the valid one is accepted
    with pytest.raises(ValidationError) as refused:
        Plan.model_validate(change(edit))
    errors = {".".join(map(str, e["loc"])): e["msg"] for e in refused.value.errors()}
    assert where in errors, errors
    assert why in errors[where]


def test_an_rca_report_without_edits_or_with_an_unknown_action_is_refused() -> None:
    good = {
        "whys": ["it fails"],
        "root_cause": "a typo",
        "concrete_edits": [{"file": "a.py", "action": "edit", "details": "fix the typo"}],
    }
    RcaReport.model_validate(good)
    with pytest.raises(ValidationError, match="concrete_edits"):
        RcaReport.model_validate({**good, "concrete_edits": []})
    with pytest.raises(ValidationError, match="action"):
        RcaReport.model_validate(
            {**good, "concrete_edits": [{"file": "a.py", "action": "rewrite", "details": "x"}]}
        )


def test_an_exploration_report_must_say_something() -> None:
    with pytest.raises(ValidationError, match="test_setup"):
        ExplorationReport.model_validate({"summary": "an empty workspace"})


def test_a_plan_json_of_an_earlier_version_loads_with_the_defaults_it_had() -> None:
    old = {
        "modules": [
            {"name": "hello", "files": [{"path": "hello.py"}]},
            {"name": "tests", "role": "tester", "files": [{"path": "test_hello.py"}]},
        ],
        "dod": [VALID["dod"][0]],
    }
    plan = load_plan(json.dumps(old))
    assert [m.role for m in plan.modules] == ["builder", "tester"]
    assert plan.modules[0].depends_on == [] and plan.modules[0].files[0].purpose == ""
    assert plan.summary == "(no summary)"
    # What no default can fill is refused, naming it (`team resume` says so, with the fix).
    with pytest.raises(ValidationError, match="dod"):
        load_plan(json.dumps({**old, "dod": []}))
    # A plan written by this version reads back as it was.
    assert load_plan(Plan.model_validate(VALID).model_dump_json()) == Plan.model_validate(VALID)


def test_a_plan_json_with_longer_prose_than_today_allows_loads_with_it_cut() -> None:
    # The bounds were tightened after plans were written with up to 500 characters of prose.
    wordy = change(lambda p: p["modules"][0].update(description="and " * 100))
    wordy["summary"] = "so " * 200
    wordy["dod"][0]["description"] = "it " * 100
    plan = load_plan(json.dumps(wordy))
    assert len(plan.modules[0].description) == 160 and plan.modules[0].description.endswith("…")
    assert len(plan.summary) == 300 and len(plan.dod[0].description) == 160

"""The plan a planner model gives (DESIGN §7): modules with their files and dependencies, and
the Definition-of-Done criteria. The JSON schema the model is asked for is generated from here.

Servers enforce that schema by grammar (llama.cpp, Ollama's `format`, vLLM), so it is the
strongest lever on a weak model: every field is required, the lists that must hold something
say so (`minItems`), roles and verification types are enums, no object takes other keys
(`additionalProperties: false`), no string that matters may be empty, and none may ramble on
(`maxLength`: a weak model writes one sentence into a field until its token limit otherwise).
It stays within what llama.cpp's json-schema-to-grammar takes: local `$ref`s without cycles,
no `pattern`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The bounds, measured against SmolLM2-135M on llama-server (the hello task, 2048-token cap):
# with strings of up to 500 characters and lists without end, 2 plans in 3 at temperature 0.8
# and 4 in 4 at 0.2 ran to the cap, a file or a ".test.test..." path repeated; with these,
# 5 in 5 ended at 0.2 to 0.9, in 10 to 27 s (and 6 in 6 with paths of 80 and 5 files). They
# leave a strong model room for a team's plan.
NAME_MAX, ID_MAX, PATH_MAX, SENTENCE_MAX, SUMMARY_MAX, TARGET_MAX = 40, 16, 100, 160, 300, 200
MODULES_MAX, FILES_MAX, CRITERIA_MAX = 8, 6, 8
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
PathText = Annotated[str, Field(min_length=1, max_length=PATH_MAX)]
Sentence = Annotated[str, Field(max_length=SENTENCE_MAX)]
ModuleRole = Literal["builder", "tester"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VerificationType(StrEnum):
    TEST = "test"
    COMMAND = "command"
    FILE_EXISTS = "file_exists"
    IMPORT = "import"


class PlannedFile(_Strict):
    path: PathText = Field(description="path relative to the workspace root")
    purpose: Sentence = Field(description="what the file holds")


class Module(_Strict):
    name: Name = Field(description="a short identifier, e.g. models, storage, cli, tests")
    description: Sentence = Field(description="what the module does")
    files: list[PlannedFile] = Field(
        min_length=1, max_length=FILES_MAX, description="every file the module writes"
    )
    depends_on: list[Name] = Field(
        max_length=MODULES_MAX, description="names of other modules it uses"
    )
    role: ModuleRole = Field(description="builder, or tester for a module of tests")


class DodCriterion(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=ID_MAX)] = Field(
        description="a short id, e.g. D1"
    )
    description: Annotated[str, Field(min_length=1, max_length=SENTENCE_MAX)]
    verification_type: VerificationType
    target_file: Annotated[str, Field(min_length=1, max_length=TARGET_MAX)] = Field(
        description="the test file, the module path, the file, or the command"
    )


class Plan(_Strict):
    summary: Annotated[str, Field(min_length=1, max_length=SUMMARY_MAX)] = Field(
        description="one or two sentences on what will be built"
    )
    modules: list[Module] = Field(min_length=1, max_length=MODULES_MAX)
    dod: list[DodCriterion] = Field(
        min_length=1, description="Definition-of-Done criteria that can be checked mechanically"
    )


class PlanAnswer(Plan):
    """The plan as a planner model is asked for it: at most `CRITERIA_MAX` criteria. The plan
    kept (plan.json) may hold more: code adds the criteria a plan implies, one per file."""

    model_config = ConfigDict(extra="forbid", title="Plan")

    dod: list[DodCriterion] = Field(
        min_length=1,
        max_length=CRITERIA_MAX,
        description="Definition-of-Done criteria that can be checked mechanically",
    )


# What earlier versions let a plan leave out, with the value they gave it then.
_OLD_DEFAULTS: dict[str, dict[str, Any]] = {
    "plan": {"summary": "(no summary)"},
    "module": {"description": "", "depends_on": [], "role": "builder"},
    "file": {"purpose": ""},
}


def load_plan(data: bytes | str) -> Plan:
    """A plan.json as written by this or an earlier version: keys earlier versions defaulted
    are filled with those defaults, and prose longer than today's bounds (summary,
    descriptions, purposes) is cut to them; then the plan is checked as strictly as a model's.
    What cannot be filled (no criteria, an empty target) is a `ValidationError` naming it."""
    value = json.loads(data)
    if isinstance(value, dict):
        value = _with_old_defaults(value)
    return Plan.model_validate(value)


def _with_old_defaults(plan: dict[str, Any]) -> dict[str, Any]:
    filled = {**_OLD_DEFAULTS["plan"], **plan}
    if not filled["summary"]:
        filled["summary"] = _OLD_DEFAULTS["plan"]["summary"]
    filled["summary"] = _clipped(filled["summary"], SUMMARY_MAX)
    modules = filled.get("modules")
    if isinstance(modules, list):
        filled["modules"] = [_module_with_old_defaults(m) for m in modules]
    dod = filled.get("dod")
    if isinstance(dod, list):
        filled["dod"] = [_clipped_in(c, "description", SENTENCE_MAX) for c in dod]
    return filled


def _module_with_old_defaults(module: Any) -> Any:
    if not isinstance(module, dict):
        return module
    filled = _clipped_in({**_OLD_DEFAULTS["module"], **module}, "description", SENTENCE_MAX)
    files = filled.get("files")
    if isinstance(files, list):
        filled["files"] = [
            _clipped_in({**_OLD_DEFAULTS["file"], **f}, "purpose", SENTENCE_MAX)
            if isinstance(f, dict)
            else f
            for f in files
        ]
    return filled


def _clipped_in(value: Any, key: str, limit: int) -> Any:
    if isinstance(value, dict) and key in value:
        return {**value, key: _clipped(value[key], limit)}
    return value


def _clipped(text: Any, limit: int) -> Any:
    return text[: limit - 1] + "…" if isinstance(text, str) and len(text) > limit else text

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

Name = Annotated[str, Field(min_length=1, max_length=64)]
PathText = Annotated[str, Field(min_length=1, max_length=200)]
Sentence = Annotated[str, Field(max_length=500)]
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
    files: list[PlannedFile] = Field(min_length=1, description="every file the module writes")
    depends_on: list[Name] = Field(description="names of other modules it uses")
    role: ModuleRole = Field(description="builder, or tester for a module of tests")


class DodCriterion(_Strict):
    id: Name = Field(description="a short id, e.g. D1")
    description: Annotated[str, Field(min_length=1, max_length=500)]
    verification_type: VerificationType
    target_file: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="the test file, the module path, the file, or the command"
    )


class Plan(_Strict):
    summary: Annotated[str, Field(min_length=1, max_length=1000)] = Field(
        description="one or two sentences on what will be built"
    )
    modules: list[Module] = Field(min_length=1)
    dod: list[DodCriterion] = Field(
        min_length=1, description="Definition-of-Done criteria that can be checked mechanically"
    )


# What earlier versions let a plan leave out, with the value they gave it then.
_OLD_DEFAULTS: dict[str, dict[str, Any]] = {
    "plan": {"summary": "(no summary)"},
    "module": {"description": "", "depends_on": [], "role": "builder"},
    "file": {"purpose": ""},
}


def load_plan(data: bytes | str) -> Plan:
    """A plan.json as written by this or an earlier version: keys earlier versions defaulted
    are filled with those defaults, then the plan is checked as strictly as a model's. What
    cannot be filled (no criteria, an empty target) is a `ValidationError` naming it."""
    value = json.loads(data)
    if isinstance(value, dict):
        value = _with_old_defaults(value)
    return Plan.model_validate(value)


def _with_old_defaults(plan: dict[str, Any]) -> dict[str, Any]:
    filled = {**_OLD_DEFAULTS["plan"], **plan}
    if not filled["summary"]:
        filled["summary"] = _OLD_DEFAULTS["plan"]["summary"]
    modules = filled.get("modules")
    if isinstance(modules, list):
        filled["modules"] = [_module_with_old_defaults(m) for m in modules]
    return filled


def _module_with_old_defaults(module: Any) -> Any:
    if not isinstance(module, dict):
        return module
    filled = {**_OLD_DEFAULTS["module"], **module}
    files = filled.get("files")
    if isinstance(files, list):
        filled["files"] = [
            {**_OLD_DEFAULTS["file"], **f} if isinstance(f, dict) else f for f in files
        ]
    return filled

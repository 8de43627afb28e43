"""The weak-model catalogue: what real local models do wrong, as scripted-server rules.

Each `Mode` is one habit seen in small local models (SmolLM2, 7B coders on llama.cpp), and
`builder(mode, path, content)` is the rule of a scenario (`protocol.llm.scripted`) whose model
builds `path` in that mode: the answers it gives, in order, to every build request whose
`FILES:` line names `path`, across attempts (the last one repeats). A scenario says "the builder
of hello.py behaves as mode X" by listing that rule before its other rules:

    rules = [schema_answer("Plan", PLAN), builder(Mode.PROSE, "hello.py", SOURCE), ...]

The answers are a script, not a reaction: the model does the wrong thing first and then the
right thing, whatever the team said in between; a test checks what the team did about it.
`tester` does the same for a tester's classic test bugs, `schema_answer` for schema answers
(`Mode.SCHEMA_MISSING_FIELD`, `Mode.SCHEMA_WRONG_TYPE`), `breaking_fix` for a fix task that
breaks what passed. docs/weak-models.md lists the behaviour the team gives each mode.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

Reply = dict[str, Any]
Rule = dict[str, Any]


class Mode(StrEnum):
    WELL = "well"  # the contract followed: write the file, then finish
    PROSE = "prose"  # describes what it would do, calls no tool
    CODE_FENCE = "code_fence"  # writes the call as a ```json block instead of calling
    MALFORMED_ARGUMENTS = "malformed_arguments"  # the arguments' JSON is cut mid-string
    UNKNOWN_TOOL = "unknown_tool"  # calls a tool it was not offered (create_file)
    WRONG_ARGUMENT_NAMES = "wrong_argument_names"  # `file` for `path`
    OUTSIDE_FILES = "outside_files"  # writes a file its task does not own
    NEVER_FINISH = "never_finish"  # writes, then keeps looking around, never calls finish
    SAME_CALL = "same_call"  # makes the same call over and over
    CUT_AT_LIMIT = "cut_at_limit"  # rambles until the token limit (finish_reason length)
    SCHEMA_MISSING_FIELD = "schema_missing_field"  # a schema answer without a required field
    SCHEMA_WRONG_TYPE = "schema_wrong_type"  # a schema answer with a field of the wrong type
    TEST_NOW_EQUALITY = "test_now_equality"  # a test comparing datetime.now() for equality
    TEST_CANNOT_FAIL = "test_cannot_fail"  # a test whose assertion holds whatever the code
    # SmolLM2's test (issue 13): `assert 100 + 200 == 210`, constants only, no code imported
    TEST_OF_CONSTANTS = "test_of_constants"
    BREAKING_EDIT = "breaking_edit"  # a fix that breaks a file that passed
    SCHEMA_CUT = "schema_cut"  # a plan or RCA answer that runs to the token limit
    PLAN_SLIPS = "plan_slips"  # a plan in the schema that cannot be built as it stands


def call(name: str, **arguments: Any) -> Reply:
    """A reply making one native tool call."""
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def write(path: str, content: str) -> Reply:
    return call("write_file", path=path, content=content)


FINISH = call("finish", summary="done")
RAMBLE_TOKENS = 4096  # what the cut answer reports spending: a whole answer cap


def prose(path: str) -> Reply:
    return {"content": f"Sure! To build {path} I would define the function, add a docstring "
            "and handle the edge cases. Let me know if you want me to write it."}  # fmt: skip


def code_fence(path: str, content: str) -> Reply:
    """The call written as text in a fenced JSON block, as models without tool training do."""
    block = json.dumps({"name": "write_file", "arguments": {"path": path, "content": content}})
    return {"content": f"I will write the file now.\n```json\n{block}\n```"}


def malformed_arguments(path: str, content: str) -> Reply:
    """A write_file call whose arguments are JSON cut off inside the content string."""
    whole = json.dumps({"path": path, "content": content})
    return {"tool_calls": [{"name": "write_file", "raw_arguments": whole[: len(whole) // 2]}]}


def cut_at_limit() -> Reply:
    """Rambling until the server stops it at the answer cap."""
    return {
        "content": "Let me think about this step by step. " * 40,
        "finish_reason": "length",
        "usage": {"prompt_tokens": 200, "completion_tokens": RAMBLE_TOKENS},
    }


def answers(mode: Mode, path: str, content: str) -> list[Reply]:
    """What a builder of `path` in `mode` answers, request after request (the last repeats).
    Modes that spoil one attempt spoil the first only: the same call three times (a nudge
    comes between the second and the third), or the file written and then four different
    looks at the workspace without `finish` (the second look after the write is nudged to
    finish, the third ends the attempt as finished)."""
    good = [write(path, content), FINISH]
    looks = [call("list_files", path="."), call("read_file", path=path),
             call("read_file", path=path, start=1), call("list_files", path="./")]  # fmt: skip
    spoiled: dict[Mode, list[Reply]] = {
        Mode.WELL: [],
        Mode.PROSE: [prose(path)],
        Mode.MALFORMED_ARGUMENTS: [malformed_arguments(path, content)],
        Mode.UNKNOWN_TOOL: [call("create_file", path=path, content=content)],
        Mode.WRONG_ARGUMENT_NAMES: [call("write_file", file=path, content=content)],
        Mode.OUTSIDE_FILES: [write(f"helpers_for_{path}", content)],
        Mode.NEVER_FINISH: [write(path, content), *looks],
        Mode.SAME_CALL: [call("list_files", path=".")] * 3,
        Mode.CUT_AT_LIMIT: [cut_at_limit()],
    }
    if mode == Mode.CODE_FENCE:  # the fenced call, once recovered, writes the file
        return [code_fence(path, content), FINISH]
    if mode not in spoiled:
        raise ValueError(f"{mode} is not a builder's mode")
    return [*spoiled[mode], *good]


def builder(mode: Mode, path: str, content: str) -> Rule:
    """The rule for the builder (or tester) of `path` in `mode`."""
    return {"name": f"{mode} builder of {path}", "match": {"files": path},
            "replies": answers(mode, path, content)}  # fmt: skip


def tester(mode: Mode, path: str, buggy: str, content: str) -> Rule:
    """The tester of `path` writing `buggy` first (a test with a classic bug of `mode`), then
    `content` whatever it was told, then finishing."""
    if mode not in (Mode.TEST_NOW_EQUALITY, Mode.TEST_CANNOT_FAIL, Mode.TEST_OF_CONSTANTS):
        raise ValueError(f"{mode} is not a tester's mode")
    return {"name": f"{mode} tester of {path}", "match": {"files": path},
            "replies": [write(path, buggy), write(path, content), FINISH]}  # fmt: skip


# What SmolLM2-135M answered for a test file of shop.total: no import of the code under test,
# and arithmetic on constants (which fails: 300 is not 210).
CONSTANTS_TEST = "import pytest\n\n\ndef test_shop():\n    assert 100 + 200 == 210\n"


def fixer(path: str, *replies: Reply) -> Rule:
    """The rule for a fix task of `path` (its request carries the RCA's edits, "Mandatory"):
    `replies`, then finish. List it before the builder of `path`."""
    return {"name": f"fixer of {path}", "match": {"files": path, "contains": "Mandatory"},
            "replies": [*replies, FINISH]}  # fmt: skip


def breaking_fix(path: str, broken: str) -> Rule:
    """A fix task of `path`, a file that passed, that rewrites it as `broken`."""
    return {**fixer(path, write(path, broken)), "name": f"{Mode.BREAKING_EDIT} of {path}"}


def spoiled_schema(mode: Mode, good: dict[str, Any], field: str) -> dict[str, Any]:
    """`good` with `field` (a top-level key) left out or given the wrong type."""
    if mode == Mode.SCHEMA_MISSING_FIELD:
        return {key: value for key, value in good.items() if key != field}
    if mode == Mode.SCHEMA_WRONG_TYPE:
        value = good[field]
        return {**good, field: "; ".join(map(str, value)) if isinstance(value, list) else [value]}
    raise ValueError(f"{mode} is not a schema mode")


def slipped_plan(good: dict[str, Any]) -> dict[str, Any]:
    """`good` (a plan of at least two builder modules and two criteria) with the slips
    SmolLM2's plans made: the first module depends on itself and, by its file's path, on the
    last builder, which depends on the first (a cycle); the second criterion has the first's
    id. Each has one obvious mend (coordinator/plan_repair.py)."""
    modules = [dict(m) for m in good["modules"]]
    builders = [m for m in modules if m["role"] == "builder"]
    first, last = builders[0], builders[-1]
    first["depends_on"] = [*first["depends_on"], first["name"], last["files"][0]["path"]]
    last["depends_on"] = [*last["depends_on"], first["name"]]
    dod = [dict(c) for c in good["dod"]]
    dod[1]["id"] = dod[0]["id"]
    return {**good, "modules": modules, "dod": dod}


def schema_answer(schema: str, good: dict[str, Any], mode: Mode = Mode.WELL,
                  field: str = "") -> Rule:  # fmt: skip
    """The rule answering requests for `schema` (a title: Plan, RcaReport, ...) with `good`,
    after one answer spoiled in `mode` (`field` left out or mistyped, or the answer cut at
    its token limit); in `Mode.PLAN_SLIPS`, with `slipped_plan(good)` only."""
    replies: list[Reply] = [{"json": good}]
    if mode == Mode.PLAN_SLIPS:
        replies = [{"json": slipped_plan(good)}]
    elif mode == Mode.SCHEMA_CUT:
        replies.insert(0, cut_at_limit())
    elif mode != Mode.WELL:
        replies.insert(0, {"json": spoiled_schema(mode, good, field)})
    return {"name": f"{mode} {schema}", "match": {"schema": schema}, "replies": replies}

"""The scripted model of `team demo` (and of the end-to-end tests): a three-module task
(models, storage, tests) whose first build has a planted bug. The first verification fails,
the RCA names the bug, a fix task repairs it, the second verification passes."""

from __future__ import annotations

from typing import Any

MODELS_PY = """from dataclasses import dataclass


@dataclass
class Item:
    name: str
    done: bool = False
"""
STORE_BUGGY = """from models import Item


def count_open(items: list[Item]) -> int:
    return sum(1 for item in items if item.done)
"""
TEST_STORE = """from models import Item
from store import count_open


def test_count_open_counts_the_items_not_done() -> None:
    items = [Item("a"), Item("b", done=True), Item("c")]
    assert count_open(items) == 2
"""
PLAN = {
    "summary": "a todo list: models, storage, tests",
    "modules": [
        {
            "name": "models",
            "description": "the data model",
            "files": [{"path": "models.py", "purpose": "the Item dataclass"}],
            "depends_on": [],
            "role": "builder",
        },
        {
            "name": "storage",
            "description": "counting items",
            "files": [{"path": "store.py", "purpose": "count_open(items)"}],
            "depends_on": ["models"],
            "role": "builder",
        },
        {
            "name": "tests",
            "description": "tests of store.py",
            "files": [{"path": "tests/test_store.py", "purpose": "pytest tests of count_open"}],
            "depends_on": [],
            "role": "tester",
        },
    ],
    "dod": [
        {
            "id": "D1",
            "description": "the tests pass",
            "verification_type": "test",
            "target_file": "tests/test_store.py",
        },
        {
            "id": "D2",
            "description": "store imports",
            "verification_type": "import",
            "target_file": "store.py",
        },
        {
            "id": "D3",
            "description": "models exist",
            "verification_type": "file_exists",
            "target_file": "models.py",
        },
    ],
}
# The explorer's answer, in a workspace that is not empty (an empty one needs no explorer).
EXPLORED = {
    "summary": "a small Python project",
    "files": [],
    "languages": ["Python"],
    "entry_points": [],
    "test_setup": "pytest",
    "conventions": ["type hints"],
}
RCA = {
    "whys": [
        "test_count_open fails",
        "count_open returns 1, not 2",
        "it counts the items that are done",
        "the condition is inverted",
        "item.done was used where not item.done was meant",
    ],
    "root_cause": "count_open counts done items instead of open ones",
    "concrete_edits": [
        {"file": "store.py", "action": "edit", "details": "use `if not item.done` in count_open"}
    ],
}


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def rules(delay: float = 0.0) -> list[dict[str, Any]]:
    finish = call("finish", summary="done")
    return [
        {
            "match": {"schema": "ExplorationReport"},
            "reply": {"json": EXPLORED},
        },
        {"match": {"schema": "Plan"}, "reply": {"json": PLAN}},
        {"match": {"schema": "RcaReport"}, "reply": {"json": RCA}},
        {"match": {"role": "explore"}, "reply": finish},
        # The fix task (it carries the RCA's edits) comes before the first build of store.py.
        {
            "match": {"files": "store.py", "contains": "Mandatory", "turn": 0},
            "reply": call("edit_file", path="store.py", old="if item.done", new="if not item.done"),
        },
        {
            "match": {"files": "models.py", "turn": 0},
            "reply": {**call("write_file", path="models.py", content=MODELS_PY), "delay": delay},
        },
        {
            "match": {"files": "store.py", "turn": 0},
            "reply": {**call("write_file", path="store.py", content=STORE_BUGGY), "delay": delay},
        },
        {
            "match": {"files": "tests/test_store.py", "turn": 0},
            "reply": {
                **call("write_file", path="tests/test_store.py", content=TEST_STORE),
                "delay": delay,
            },
        },
        {"reply": finish},
    ]


DEMO_TASK = "a todo list: an Item model, a function that counts the open items, and its tests"


def scenario(model: str, delay: float = 0.0) -> dict[str, Any]:
    return {"models": [{"name": model}], "rules": rules(delay)}

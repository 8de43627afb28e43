"""A real worker process, driven by the scripted model over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol import Completion, ProgressUpdate, Task, TaskStatus, TaskStore
from tests.agent_worker.conftest import StartTeam, call, finish_worker

MODELS_PY = "from dataclasses import dataclass\n\n\n@dataclass\nclass Item:\n    name: str\n"
STORE_BROKEN = "from models import Item\n\n\ndef save(item: Item) -> None\n    print(item)\n"
STORE_FIXED = "from models import Item\n\n\ndef save(item: Item) -> None:\n    print(item)\n"


def native(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": list(calls)}


def as_text(*calls: dict[str, Any]) -> dict[str, Any]:
    """The same calls written as text, one `<tool_call>` block each."""
    return {"content": "\n".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)}


@pytest.mark.parametrize("form", [native, as_text], ids=["native", "text"])
def test_a_worker_builds_two_files_repairs_a_lint_error_and_completes(
    team: StartTeam, form: Any
) -> None:
    t = team(
        [
            {
                "match": {"files": "models.py", "turn": 0},
                "reply": form(call("write_file", path="models.py", content=MODELS_PY)),
            },
            {
                "match": {"files": "models.py", "turn": 1},
                "reply": form(call("write_file", path="store.py", content=STORE_BROKEN)),
            },
            {
                "match": {"files": "models.py", "turn": 2, "contains": ""},
                "reply": form(
                    call("edit_file", path="store.py", old="-> None\n", new="-> None:\n")
                ),
            },
            {
                "match": {"files": "models.py", "turn": 3},
                "reply": form(call("finish", summary="wrote the models and the store")),
            },
        ]
    )
    t.assign(Task(id=1, title="models and store", files=["models.py", "store.py"]), "builder-a")
    out, _ = finish_worker(t.start_worker("builder-a", "--max-tasks", "1"))

    workspace = t.layout.workspace
    assert (workspace / "models.py").read_text() == MODELS_PY
    assert (workspace / "store.py").read_text() == STORE_FIXED
    # The lint error reached the model in the same turn, with the line marked.
    lint_turn = json.dumps(t.server.log[2].body)
    assert "LINT ERROR in store.py, line 4" in lint_turn
    assert ">>>" in lint_turn
    messages = t.coordinator_messages()
    phases = [m.payload.phase for m in messages if isinstance(m.payload, ProgressUpdate)]
    assert phases[:2] == ["started", "building"]
    [done] = [m for m in messages if isinstance(m.payload, Completion)]
    assert done.payload.files_changed == ["models.py", "store.py"]
    assert done.payload.summary == "wrote the models and the store"
    assert [(c.path, c.ok) for c in done.payload.checks] == [
        ("models.py", True),
        ("store.py", True),
    ]
    task = TaskStore(t.layout).get(1)
    assert (task.status, task.owner) == (TaskStatus.DONE, "builder-a")
    assert "lint" in out and "store.py" in out  # the pane showed it
    assert (t.layout.log_file("builder-a")).read_text().count("write") >= 2

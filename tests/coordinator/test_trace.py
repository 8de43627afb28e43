"""`team trace` on real runs: the scripted demo (run once for the module; its first iteration
fails verification on a planted bug, its second passes), and a team whose log and trace store
hold a failed attempt, written with protocol's own writers. Through the real CLI entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from coordinator.cli import cli
from coordinator.demo import stop_scripted_model
from coordinator.trace_export import TRAINING_FIELDS
from coordinator.trajectories import Call, unstored_reason
from coordinator.workspace import init_workspace
from protocol import Layout
from protocol.callstore import CallStore
from protocol.events import (
    EventLog,
    ModelCallEnded,
    TaskChanged,
    TeamChanged,
    ToolCalled,
    read_events,
)
from tests.processes import REPO


def trace(workspace: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-w", str(workspace), "trace", *args])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished `team demo --wait --runner subprocess`: its workspace."""
    workspace = tmp_path_factory.mktemp("demo") / "todo"
    env = {**os.environ, "TEAM_CONFIG": "/nonexistent", "PYTHONPATH": str(REPO)}
    env.pop("TEAM_WORKSPACE", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "coordinator.cli", "demo", "--wait", "--runner",
             "subprocess", "--delay", "0", "-w", str(workspace)],
            env=env, capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        yield workspace
    finally:
        stop_scripted_model(workspace)


def model_calls(workspace: Path) -> list[ModelCallEnded]:
    found = read_events(Layout.of(workspace).events_jsonl).events
    return [e for e in found if isinstance(e, ModelCallEnded)]


def listed(workspace: Path) -> dict[str, Any]:
    result = trace(workspace, "--json")
    assert result.exit_code == 0, result.output
    record: dict[str, Any] = json.loads(result.stdout)
    return record


# --- the demo run ------------------------------------------------------------------------------


def test_team_trace_lists_every_model_call_of_the_log_with_its_tokens(demo: Path) -> None:
    calls = model_calls(demo)
    record = listed(demo)
    assert [c["number"] for c in record["calls"]] == list(range(1, len(calls) + 1))
    assert [c["call_id"] for c in record["calls"]] == [c.call_id for c in calls]
    summary = record["summary"]
    assert summary["calls"] == len(calls) >= 10
    assert summary["prompt_tokens"] == sum(c.prompt_tokens for c in calls)
    assert summary["completion_tokens"] == sum(c.completion_tokens for c in calls)
    table = trace(demo)
    assert table.exit_code == 0, table.output
    assert f"{len(calls)} model calls" in table.output
    assert f"{sum(c.prompt_tokens for c in calls)} prompt" in table.output
    assert {"builder-storage", "tester-tests", "coordinator", "rca"} <= set(table.output.split())


def test_trace_task_shows_what_the_model_was_asked_and_answered(demo: Path) -> None:
    result = trace(demo, "--task", "1")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "task 1, attempt 1: models: the data model" in out
    assert "asked (2 messages)" in out and "TASK 1: models: the data model" in out
    assert 'call write_file(path="models.py")' in out and "class Item:" in out
    # The second call shows only what is new: the tool's result, not the prompt again.
    assert "asked (1 new message)" in out and out.count("TASK 1: models") == 1
    assert "tool result (write_file): wrote models.py" in out
    assert "ended done" in out


def test_trace_task_json_gives_each_call_its_new_messages(demo: Path) -> None:
    result = trace(demo, "--task", "1", "--json")
    assert result.exit_code == 0, result.output
    [conversation] = json.loads(result.stdout)["conversations"]
    first, second = conversation["calls"]
    assert [m["role"] for m in first["new_messages"]] == ["system", "user"]
    assert [m["role"] for m in second["new_messages"]] == ["assistant", "tool"]
    assert first["answer"]["tool_calls"][0]["function"]["name"] == "write_file"
    assert conversation["status"] == "done"


def test_trace_call_shows_one_exchange_in_full(demo: Path) -> None:
    number = next(c["number"] for c in listed(demo)["calls"] if c["task_id"] == 1)
    result = trace(demo, "--call", str(number))
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"call {number}: builder-models-" in out
    assert "temperature 0.2" in out
    assert "tools offered: list_files, read_file, write_file, edit_file, run_command, finish" in out
    assert "messages (2):" in out and "You are builder-models" in out
    assert "answer:" in out and "class Item:" in out
    assert "finish_reason stop; tokens: " in out
    as_json = json.loads(trace(demo, "--call", str(number), "--json").stdout)
    assert as_json["exchange"]["request"]["options"]["temperature"] == 0.2


def test_the_markdown_export_names_the_failing_verification_and_its_assertion(
    demo: Path, tmp_path: Path
) -> None:
    target = tmp_path / "failures.md"
    result = trace(demo, "export", "--format", "markdown", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert "wrote 1 failure to" in result.output
    text = target.read_text()
    assert "## 1. Verification of iteration 1 failed: assertion" in text
    assert "- **error category:** assertion" in text
    assert "step `tests`, criterion D1" in text
    assert "E   AssertionError: assert 1 == 2" in text
    assert "count_open counts done items instead of open ones" in text  # the RCA's root cause
    for task in (1, 2, 3):  # the build it verified, each with its task, code and prompt
        assert f"### Task {task}, attempt 1" in text
    assert "def count_open" in text and "class Item:" in text
    assert "**system**" in text and "**answer**" in text
    assert "**model:** scripted-demo (ollama), role build; **temperature:** 0.2" in text
    assert "Verification of iteration 2" not in text  # it passed


def test_the_jsonl_export_gives_training_pairs_with_the_documented_fields(demo: Path) -> None:
    result = trace(demo, "export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    pairs = [json.loads(line) for line in result.stdout.splitlines()]
    assert pairs
    for pair in pairs:
        assert set(pair) == set(TRAINING_FIELDS)
        assert pair["messages"][-1]["role"] == "assistant"
        assert pair["outcome"] in ("accepted", "rejected")
        assert all(t["type"] == "function" and t["function"]["name"] for t in pair["tools"])
    built = {p["task_id"]: p for p in pairs if p["role"] == "build"}
    # Accepted by the worker both times; the verification after the first build failed.
    assert (built[1]["outcome"], built[1]["verified"]) == ("accepted", False)
    assert (built[4]["outcome"], built[4]["verified"]) == ("accepted", True)
    assert built[1]["messages"][0]["role"] == "system"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--call", "9999"), "there is no call 9999"),
        (("--task", "999"), "no task 999 was worked on"),
        (("--agent", "nobody"), "'nobody' made no model call"),
        (("--task", "2", "--call", "1"), "one of --task, --agent and --call at a time"),
        (("--task", "2", "export"), "--task is for `team trace` alone"),
    ],
)
def test_bad_input_is_a_usage_error_that_says_what_exists(
    demo: Path, args: tuple[str, ...], complaint: str
) -> None:
    result = trace(demo, *args)
    assert result.exit_code == 2, result.output
    assert complaint in result.output
    assert "Traceback" not in result.output


def test_no_team_and_no_events_are_errors_a_user_can_act_on(tmp_path: Path) -> None:
    nowhere = trace(tmp_path / "none")
    assert nowhere.exit_code == 1 and "no team in" in nowhere.output
    init_workspace(tmp_path / "fresh")
    empty = trace(tmp_path / "fresh")
    assert empty.exit_code == 1
    assert "events.jsonl does not exist yet" in empty.output
    assert trace(tmp_path / "fresh", "export").exit_code == 1


# --- a failed attempt --------------------------------------------------------------------------

SYSTEM = {"role": "system", "content": "You are builder-storage."}
USER = {"role": "user", "content": "TASK 7: storage: counting items\nFILES: store.py"}
WRITE = {"name": "write_file", "arguments": {"path": "store.py", "content": "def count_open(\n"}}
TOOLS = [{"type": "function", "function": {"name": "write_file", "parameters": {}}}]


def request(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "coder:7b", "messages": list(messages), "tools": TOOLS,
            "options": {"temperature": 0.2}}  # fmt: skip


@pytest.fixture
def failed(tmp_path: Path) -> Path:
    """A team whose task 7 failed: its second call's answer was cut at the token limit."""
    team, _ = init_workspace(tmp_path / "ws")
    layout = team.layout
    store = CallStore(layout.traces_dir)
    log = EventLog(layout.events_jsonl, "builder-storage")
    call = {"role": "build", "model": "coder:7b", "provider": "ollama", "task_id": 7,
            "attempt": 1, "temperature": 0.2}  # fmt: skip
    answer = {"text": "I write it \x1b]0;owned\x07now", "tool_calls": [{"id": "c1", **WRITE}]}
    assert store.save("b-1", request(SYSTEM, USER), answer)
    echo = {"role": "assistant", "content": "", "tool_calls": [{"function": WRITE}]}
    result = {"role": "tool", "content": "store.py: SyntaxError", "tool_name": "write_file"}
    cut = {"text": "def count_open(items", "error": "TruncatedAnswer: cut at 4096 tokens"}
    assert store.save("b-2", request(SYSTEM, USER, echo, result), cut)
    for event in [
        TaskChanged(task_id=7, status="pending", note="created", title="storage: counting"),
        TeamChanged(status="building", iteration=1),
        TaskChanged(task_id=7, status="running", owner="builder-storage"),
        ModelCallEnded(call_id="b-1", duration_s=2, prompt_tokens=90, completion_tokens=40,
                       stored=True, **call),
        ToolCalled(tool="write_file", arguments="path=store.py", outcome="ok", task_id=7),
        ModelCallEnded(call_id="b-2", duration_s=9, prompt_tokens=120, completion_tokens=4096,
                       outcome="TruncatedAnswer", error="cut at 4096 tokens", stored=True,
                       **call),
        TaskChanged(task_id=7, status="failed", owner="builder-storage",
                    note="model: the answer was cut at 4096 tokens"),
    ]:  # fmt: skip
        log.emit(event)
    EventLog(layout.events_jsonl, "coordinator").emit(
        ModelCallEnded(call_id="c-1", role="plan", model="llama3.3:70b", provider="ollama",
                       duration_s=0, outcome="ContextOverflow", error="the prompt is too long")
    )  # fmt: skip
    return layout.workspace


def test_a_failed_attempt_shows_its_calls_and_its_error_class(failed: Path) -> None:
    result = trace(failed, "--task", "7")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "asked (1 new message)" in out and "tool result (write_file): store.py" in out
    assert "error: TruncatedAnswer: cut at 4096 tokens" in out
    assert "ended failed: model: the answer was cut at 4096 tokens  [truncated]" in out


def test_a_models_control_characters_never_reach_the_terminal(failed: Path) -> None:
    result = trace(failed, "--call", "1")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "I write it \\x1b]0;owned\\x07now" in result.output


def test_a_call_whose_exchange_was_not_stored_says_why(failed: Path) -> None:
    result = trace(failed, "--call", "3")
    assert result.exit_code == 1
    assert "is not in the trace store: the call failed (ContextOverflow) before a request" in (
        result.output
    )


def test_both_exports_carry_the_failed_attempt(failed: Path) -> None:
    text = trace(failed, "export").stdout
    assert "## 1. Task 7, attempt 1 failed: truncated" in text
    assert "`store.py`, written whole (call 1)" in text and "def count_open(" in text
    assert "**temperature:** 0.2" in text and "TruncatedAnswer: cut at 4096 tokens" in text
    lines = trace(failed, "export", "--format", "jsonl").stdout.splitlines()
    pairs = [json.loads(line) for line in lines]
    assert [(p["call"], p["outcome"], p["error_category"]) for p in pairs] == [
        (1, "rejected", "truncated"),
        (2, "rejected", "truncated"),
    ]


def test_an_unstored_call_is_explained_by_the_state_of_the_store() -> None:
    call = Call(4, ModelCallEnded(call_id="x", role="build", model="m", provider="ollama",
                                  duration_s=1))  # fmt: skip
    assert "trace store is off ([team] trace_store_mb = 0" in unstored_reason(call, 0, 0)
    assert "trace store was full (256 MB" in unstored_reason(call, 256 << 20, 256 << 20)
    call.overwritten_by = 9
    assert "call 9 was given the same call id (x)" in unstored_reason(call, 256 << 20, 0)

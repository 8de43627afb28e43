"""A real worker process, driven by the scripted model over HTTP."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest

from protocol import (
    Completion,
    ErrorReport,
    FileEdit,
    ProgressUpdate,
    ShutdownRequest,
    ShutdownResponse,
    Task,
    TaskAssignment,
    TaskStatus,
    TaskStore,
    make_message,
)
from protocol.agents import read_agent
from protocol.events import read_events
from protocol.mailbox import create_inbox
from protocol.reports import ExplorationReport
from protocol.tasks import TaskResult
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
    completions = [m for m in messages if isinstance(m.payload, Completion)]
    assert len(completions) == 1, [m.payload for m in messages]
    done = completions[0]
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


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_kill_9_mid_task_leaves_no_half_file_and_no_second_completion(team: StartTeam) -> None:
    big = "DATA = [\n" + "".join(f"    {i},\n" for i in range(60_000)) + "]\n"
    t = team(
        [
            {
                "match": {"turn": 0},
                "reply": native(call("write_file", path="data.py", content=big)),
            },
            {"match": {"turn": 1}, "reply": {**native(call("finish", summary="x")), "delay": 30}},
        ]
    )
    t.assign(Task(id=1, title="data", files=["data.py"]), "builder-a")
    worker = t.start_worker("builder-a")
    # Killed while the model "thinks" about its second turn, after the file was written.
    _wait_for(lambda: len(t.server.log) >= 2)
    worker.kill()
    worker.communicate()
    target = t.layout.workspace / "data.py"
    assert target.read_text() == big, "the file is whole"
    assert TaskStore(t.layout).get(1).status == TaskStatus.RUNNING

    # The same agent restarted: the assignment comes back, flagged, and is not worked again.
    again = t.start_worker("builder-a", "--max-idle", "1.5")
    finish_worker(again)
    completions = [m for m in t.coordinator_messages() if isinstance(m.payload, Completion)]
    assert completions == []
    assert len(t.server.log) == 2, "no new model call for a task it no longer holds"
    leftovers = [p.name for p in t.layout.workspace.iterdir() if p.name.endswith(".part")]
    assert leftovers == []


def test_a_shutdown_request_stops_the_worker_mid_task_at_a_safe_point(team: StartTeam) -> None:
    t = team(
        [
            {
                "match": {"turn": 0},
                "reply": {**native(call("run_command", command="sleep 0.2")), "delay": 1.0},
            },
            {"reply": native(call("run_command", command="sleep 0.2"))},
        ]
    )
    t.assign(Task(id=1, title="endless", files=["a.py"]), "builder-a")
    worker = t.start_worker("builder-a")
    _wait_for(lambda: len(t.server.log) >= 1)
    t.dir.mailbox().send(
        make_message(
            ShutdownRequest(reason="user ran team kill"),
            team=t.dir.team_id,
            sender="coordinator",
            recipient="builder-a",
        )
    )
    finish_worker(worker, timeout=60)
    messages = t.coordinator_messages()
    [response] = [m for m in messages if isinstance(m.payload, ShutdownResponse)]
    assert response.payload.accepted
    assert response.payload.unfinished == ["task 1"]
    [report] = [m for m in messages if isinstance(m.payload, ErrorReport)]
    assert "shutdown" in report.payload.message
    assert TaskStore(t.layout).get(1).status == TaskStatus.FAILED
    assert read_agent(t.layout, "builder-a").state == "stopped"  # type: ignore[union-attr]


def test_sigterm_stops_an_idle_worker_cleanly(team: StartTeam) -> None:
    t = team([])
    worker = t.start_worker("builder-a")
    _wait_for(lambda: (r := read_agent(t.layout, "builder-a")) is not None and r.state == "idle")
    worker.send_signal(signal.SIGTERM)
    finish_worker(worker)
    record = read_agent(t.layout, "builder-a")
    assert record is not None and record.state == "stopped"
    assert record.pid == worker.pid


def test_an_explorer_reads_and_reports_without_writing(team: StartTeam) -> None:
    report = {
        "summary": "a tiny CLI",
        "files": ["app.py"],
        "languages": ["python"],
        "entry_points": ["app.py"],
        "test_setup": "none",
        "conventions": ["snake_case"],
    }
    t = team(
        [
            {"match": {"schema": "ExplorationReport"}, "reply": {"json": report}},
            {
                "match": {"turn": 0},
                "reply": native(
                    call("read_file", path="app.py"), call("write_file", path="x.py", content="x")
                ),
            },
            {"reply": native(call("finish", summary="explored"))},
        ]
    )
    (t.layout.workspace / "app.py").write_text("print('hi')\n")
    t.assign(Task(id=1, title="explore", role="explorer", files=[]), "explorer")
    finish_worker(t.start_worker("explorer", "--max-tasks", "1", role="explorer"))
    assert not (t.layout.workspace / "x.py").exists()
    assert "there is no tool 'write_file'" in json.dumps(t.server.log[1].body)
    task = TaskStore(t.layout).get(1)
    assert task.status == TaskStatus.DONE
    assert task.result is not None and task.result.report == ExplorationReport(**report)


# A tester that writes its tests through the agent loop, not as sampled candidates.
LOOP_TESTER = "[sampling]\ntest_candidates = 0\n"


def test_a_tester_may_write_only_tests(team: StartTeam) -> None:
    t = team(
        [
            {
                "match": {"turn": 0},
                "reply": native(
                    call("write_file", path="app.py", content="x = 2\n"),
                    call(
                        "write_file", path="tests/test_app.py", content="def test_x():\n    pass\n"
                    ),
                ),
            },
            {"reply": native(call("finish", summary="tests written"))},
        ]
    )
    (t.layout.workspace / "app.py").write_text("x = 1\n")
    t.layout.config_toml.write_text(LOOP_TESTER)
    t.assign(Task(id=1, title="tests", role="tester", files=["tests/test_app.py"]), "tester")
    finish_worker(t.start_worker("tester", "--max-tasks", "1", role="tester"))
    assert (t.layout.workspace / "app.py").read_text() == "x = 1\n"
    assert (t.layout.workspace / "tests/test_app.py").exists()
    assert "not a test file" in json.dumps(t.server.log[1].body)


def test_a_write_outside_the_tasks_files_is_refused_but_a_fix_may_write_its_edits(
    team: StartTeam,
) -> None:
    t = team(
        [
            {
                "match": {"turn": 0},
                "reply": native(
                    call("write_file", path="extra.py", content="x = 1\n"),
                    call("write_file", path="util.py", content="y = 1\n"),
                    call("write_file", path="app.py", content="z = 1\n"),
                ),
            },
            {"reply": native(call("finish", summary="fixed"))},
        ]
    )
    edit = FileEdit(file="util.py", action="edit", details="set y")
    t.assign(Task(id=1, title="fix app", files=["app.py"], edits=[edit]), "builder-a")
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1"))
    assert not (t.layout.workspace / "extra.py").exists()
    assert (t.layout.workspace / "util.py").read_text() == "y = 1\n"
    assert (t.layout.workspace / "app.py").read_text() == "z = 1\n"
    told = json.dumps(t.server.log[1].body)
    assert "extra.py is not one of your task's files" in told and "FILES: app.py" in told
    assert TaskStore(t.layout).get(1).status == TaskStatus.DONE


def test_a_test_that_cannot_fail_is_sent_back_at_finish_too(team: StartTeam) -> None:
    weak = "def test_x() -> None:\n    assert True\n"
    good = "def test_x() -> None:\n    assert len('ab') == 2\n"
    t = team(
        [
            {
                "replies": [
                    native(call("write_file", path="tests/test_x.py", content=weak)),
                    native(call("finish", summary="tests written")),
                    native(call("write_file", path="tests/test_x.py", content=good)),
                    native(call("finish", summary="tests written")),
                ]
            }
        ]
    )
    t.layout.config_toml.write_text(LOOP_TESTER)
    t.assign(Task(id=1, title="tests", role="tester", files=["tests/test_x.py"]), "tester")
    finish_worker(t.start_worker("tester", "--max-tasks", "1", role="tester"))
    assert "WEAK TEST in tests/test_x.py, line 2" in json.dumps(t.server.log[1].body)
    repair = t.server.log[2].body["messages"][-1]["content"]
    assert "tests/test_x.py: `assert True` cannot fail" in repair
    assert (t.layout.workspace / "tests/test_x.py").read_text() == good
    assert TaskStore(t.layout).get(1).status == TaskStatus.DONE


def reads(count: int) -> list[dict[str, Any]]:
    """A model that never finishes but does something new each round: it reads file after
    file (none of them there)."""
    return [native(call("read_file", path=f"notes{i}.txt")) for i in range(count)]


def test_a_model_that_never_finishes_is_stopped_by_the_round_limit(team: StartTeam) -> None:
    t = team([{"replies": reads(10)}])
    t.assign(Task(id=1, title="x", files=["a.py"]), "builder-a")
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1", "--max-rounds", "3"))
    [report] = [m for m in t.coordinator_messages() if isinstance(m.payload, ErrorReport)]
    assert "no finish after 3 rounds" in report.payload.message
    assert len(t.server.log) == 3
    assert TaskStore(t.layout).get(1).status == TaskStatus.FAILED


def test_a_model_that_answers_only_prose_is_stopped_as_no_progress(team: StartTeam) -> None:
    t = team([{"reply": {"content": "Let me think about it some more."}}])
    t.assign(Task(id=1, title="x", files=["a.py"]), "builder-a")
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1"))
    [report] = [m for m in t.coordinator_messages() if isinstance(m.payload, ErrorReport)]
    assert report.payload.category == "no_progress"
    assert "no progress in 2 rounds in a row, after a nudge" in report.payload.message
    assert len(t.server.log) == 2  # not 25 rounds of nothing
    [failed] = [e for e in TaskStore(t.layout).get(1).history if e.status == TaskStatus.FAILED]
    assert failed.category == "no_progress" and failed.costs_attempt


def test_an_explorer_whose_report_is_cut_still_finishes_without_one(team: StartTeam) -> None:
    t = team(
        [
            {
                "match": {"schema": "ExplorationReport"},
                "reply": {"content": '{"summary": "an empty', "finish_reason": "length"},
            },
            {"match": {"turn": 0}, "reply": native(call("list_files", path="."))},
            {"reply": native(call("finish", summary="the workspace is empty"))},
        ]
    )
    t.assign(Task(id=1, title="explore", role="explorer", files=[]), "explorer")
    finish_worker(t.start_worker("explorer", "--max-tasks", "1", role="explorer"))
    task = TaskStore(t.layout).get(1)
    assert task.status == TaskStatus.DONE
    assert task.result is not None and task.result.report is None
    assert task.result.summary == "the workspace is empty"


def test_a_task_attempt_stops_at_its_token_cap(team: StartTeam) -> None:
    # Each answer costs 10 prompt + 8 completion tokens (the scripted server's count).
    t = team([{"replies": [{**r, "usage": {"completion_tokens": 8}} for r in reads(10)]}])
    t.layout.config_toml.write_text("[team]\ntask_max_tokens = 30\n")
    t.assign(Task(id=1, title="x", files=["a.py"]), "builder-a")
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1"))
    [report] = [m for m in t.coordinator_messages() if isinstance(m.payload, ErrorReport)]
    assert report.payload.category == "budget"
    assert "token cap of 30 is spent (36 tokens used)" in report.payload.message
    assert len(t.server.log) == 2
    [budget] = [e for e in read_events(t.layout.events_jsonl).events if e.kind == "budget"]
    assert (budget.scope, budget.limit, budget.used, budget.task_id) == ("task", 30, 36, 1)
    # The failure's kind is a field of the task's history and of its event, not only words.
    [failed] = [e for e in TaskStore(t.layout).get(1).history if e.status == TaskStatus.FAILED]
    assert failed.category == "budget"
    moves = [e for e in read_events(t.layout.events_jsonl).events if e.kind == "task"]
    assert moves[-1].category == "budget"


def test_an_unreachable_model_is_reported_not_crashed(team: StartTeam) -> None:
    t = team([])
    t.server.stop()
    t.assign(Task(id=1, title="x", files=["a.py"]), "builder-a")
    worker = t.start_worker("builder-a", "--max-tasks", "1")
    finish_worker(worker, timeout=120)
    [report] = [m for m in t.coordinator_messages() if isinstance(m.payload, ErrorReport)]
    assert report.payload.category == "model_unreachable"
    assert "cannot reach the ollama server" in report.payload.message
    # Not the task's fault: the failure is marked as costing no attempt.
    [failed] = [e for e in TaskStore(t.layout).get(1).history if e.status == TaskStatus.FAILED]
    assert failed.costs_attempt is False


def test_a_stale_assignment_for_a_task_owned_by_another_changes_nothing(team: StartTeam) -> None:
    t = team([{"reply": native(call("finish", summary="never"))}])
    t.assign(Task(id=1, title="x", files=["a.py"]), "builder-b")
    create_inbox(t.layout, "builder-a")
    stale = TaskAssignment(task_id=1, attempt=1, title="x", files=["a.py"])
    t.dir.mailbox().send(
        make_message(stale, team=t.dir.team_id, sender="coordinator", recipient="builder-a")
    )
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1"))
    task = TaskStore(t.layout).get(1)
    assert (task.status, task.owner) == (TaskStatus.ASSIGNED, "builder-b")
    assert t.server.log == []


def test_an_old_attempt_redelivered_after_a_retry_is_not_worked(team: StartTeam) -> None:
    t = team([{"reply": native(call("finish", summary="never"))}])
    t.assign(Task(id=1, title="x", files=["a.py"]), "builder-a")
    store = TaskStore(t.layout)
    # The coordinator already failed attempt 1 and handed attempt 2 to the same agent.
    store.transition(1, TaskStatus.ASSIGNED, TaskStatus.FAILED, by="coordinator")
    store.transition(1, TaskStatus.FAILED, TaskStatus.READY, by="coordinator")
    store.claim(1, "builder-a")
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1"))
    task = store.get(1)
    assert (task.status, task.attempt) == (TaskStatus.ASSIGNED, 2)
    assert t.server.log == []


def test_a_completion_lost_in_a_crash_is_sent_again_once(team: StartTeam) -> None:
    t = team([])
    assignment = t.assign(Task(id=1, title="x", files=["a.py"]), "builder-a")
    store = TaskStore(t.layout)
    store.transition(1, TaskStatus.ASSIGNED, TaskStatus.RUNNING, by="builder-a")
    store.transition(
        1,
        TaskStatus.RUNNING,
        TaskStatus.DONE,
        by="builder-a",
        result=TaskResult(files=["a.py"], summary="built a"),
    )
    # As a worker killed after marking the task done leaves it: the handler had started.
    inbox = t.layout.inbox("builder-a")
    [name] = os.listdir(inbox.new)
    inbox.handling.write_text(name)
    finish_worker(t.start_worker("builder-a", "--max-idle", "1"))
    finish_worker(t.start_worker("builder-a", "--max-idle", "1"))
    done = [m for m in t.coordinator_messages() if isinstance(m.payload, Completion)]
    assert len(done) == 1
    assert done[0].payload.summary == "built a"
    assert done[0].id == f"done-1-{assignment.attempt}"


def test_an_assignment_queued_behind_a_stop_is_left_for_later(team: StartTeam) -> None:
    t = team(
        [
            {
                "match": {"turn": 0},
                "reply": native(call("write_file", path="a.py", content="A = 1\n")),
            },
            {"reply": native(call("finish", summary="ok"))},
        ]
    )
    t.assign(Task(id=1, title="one", files=["a.py"]), "builder-a")
    t.assign(Task(id=2, title="two", files=["b.py"]), "builder-a")
    finish_worker(t.start_worker("builder-a", "--max-tasks", "1"))
    store = TaskStore(t.layout)
    assert store.get(1).status == TaskStatus.DONE
    assert store.get(2).status == TaskStatus.ASSIGNED
    assert len(os.listdir(t.layout.inbox("builder-a").new)) == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_a_random_instant_never_leaves_a_torn_file(team: StartTeam, seed: int) -> None:
    import random

    contents = {
        f"part{i}.py": f"PART = {i}\nDATA = {list(range(40_000 + i))!r}\n" for i in range(6)
    }
    rules = [
        {"match": {"turn": turn}, "reply": native(call("write_file", path=path, content=text))}
        for turn, (path, text) in enumerate(contents.items())
    ]
    t = team([*rules, {"reply": native(call("finish", summary="all parts"))}])
    t.assign(Task(id=1, title="parts", files=list(contents)), "builder-a")
    worker = t.start_worker("builder-a")
    _wait_for(lambda: len(t.server.log) >= 1)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    worker.kill()
    worker.communicate()
    for path, text in contents.items():
        target = t.layout.workspace / path
        assert not target.exists() or target.read_text() == text, f"{path} is torn"
    # A restart cleans the temp file a write killed mid-way left behind.
    finish_worker(t.start_worker("builder-a", "--max-idle", "1"))
    assert [p.name for p in t.layout.workspace.iterdir() if p.name.endswith(".part")] == []

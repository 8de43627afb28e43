"""A human steering a team, end to end in tmux (issue 14): a plan approved before anything is
built; one sent back with feedback, planned again and then approved; a coordinator killed
while it waits, resumed, and still waiting for the same plan; guidance told to a builder in
the middle of its task. Real `team` commands, tmux, processes and the scripted model."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.demo_scenario import MODELS_PY, PLAN, call, rules
from coordinator.tmux import TeamSession
from protocol import Layout, Task, TaskStore, TeamInfo, TeamStatus, list_inbox
from protocol.agents import read_agent
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.team import read_team_or_backup
from tests.e2e.test_accidents import (
    assert_no_process_left,
    building,
    end_what_is_left,
    eventually,
    flat,
    run,
    tmux_server,
)
from tests.e2e.test_team_up import MODEL

pytestmark = pytest.mark.timeout(180)

TASK = "a todo list that counts open items"
FEEDBACK = "keep the counting in its own module"
# The plan the planner makes once told the feedback: the same modules, said differently.
PLAN_TOLD = {**copy.deepcopy(PLAN), "summary": "a todo list, counting in a module of its own"}
GUIDANCE = "give Item a docstring"
COORDINATOR_GUIDANCE = "the CLI must stay compatible with Python 3.9"
MODELS_TOLD = MODELS_PY.replace("class Item:\n", 'class Item:\n    """A todo item."""\n\n')


def steering_rules() -> list[dict[str, Any]]:
    """The demo's model, with a planner that hears feedback, and a builder of models.py
    whose first write takes 4 s (time to tell it something) and who follows guidance."""
    demo = rules()
    return [
        {"match": {"schema": "Plan", "contains": FEEDBACK}, "reply": {"json": PLAN_TOLD}},
        {
            "match": {"files": "models.py", "contains": GUIDANCE},
            "reply": call("write_file", path="models.py", content=MODELS_TOLD),
        },
        {
            "match": {"files": "models.py", "turn": 0},
            "reply": {**call("write_file", path="models.py", content=MODELS_PY), "delay": 4.0},
        },
        *demo,
    ]


@pytest.fixture
def model() -> Iterator[ScriptedServer]:
    scenario = {"models": [{"name": MODEL}], "rules": steering_rules()}
    with ScriptedServer(Scenario.model_validate(scenario)) as server:
        yield server


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "todo"
    yield folder
    end_what_is_left(folder)


def status(workspace: Path, server: ScriptedServer) -> dict[str, Any]:
    done = run(workspace, server, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def team_status(workspace: Path) -> TeamStatus | None:
    info, _ = read_team_or_backup(Layout.of(workspace).team_json)
    if info is not None and info.status == TeamStatus.FAILED:
        pytest.fail(f"the team failed: {info.detail}")
    return info.status if info is not None else None


def awaiting(workspace: Path, round_: int = 1) -> None:
    """Until plan `round_` waits for the user."""

    def waits() -> bool:
        if team_status(workspace) != TeamStatus.AWAITING_APPROVAL:
            return False
        proposal = Layout.of(workspace).plan_proposal_json
        return proposal.exists() and json.loads(proposal.read_text())["round"] == round_

    eventually(waits, f"plan {round_} waiting for approval", 60)


def finished(workspace: Path) -> None:
    eventually(lambda: team_status(workspace) == TeamStatus.DONE, "team done", 120)


def pane_text(workspace: Path, agent: str) -> str:
    """What `agent`'s tmux pane shows (its history too)."""
    info = TeamInfo.read(Layout.of(workspace).team_json)
    record = read_agent(Layout.of(workspace), agent)
    assert record is not None and record.pane, f"{agent} has no pane"
    session = TeamSession.find(tmux_server(info), f"team-{info.id}")
    assert session is not None
    return session.last_lines(record.pane, 400)


def plan_requests(server: ScriptedServer) -> list[str]:
    return [r.seen.last_user for r in server.log if r.seen.schema_title == "Plan"]


def approval_requests(workspace: Path) -> list[dict[str, Any]]:
    layout = Layout.of(workspace)
    team = TeamInfo.read(layout.team_json).id
    entries = list_inbox(layout, "user", states=("new", "cur"), team=team)
    return [
        e.message.payload.model_dump()
        for e in entries
        if e.message is not None and e.message.type == "plan_approval"
    ]


def up(workspace: Path, server: ScriptedServer) -> None:
    started = run(workspace, server, "up", TASK, "--approve-plan", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr


def test_a_plan_waits_for_approval_shown_everywhere_and_approved_it_is_built(
    model: ScriptedServer, workspace: Path
) -> None:
    up(workspace, model)
    awaiting(workspace)
    layout = Layout.of(workspace)
    assert not layout.plan_json.exists()
    assert [t.module for t in _tasks(layout)] == []  # nothing to build before the approval
    assert {r.seen.role for r in model.log} == {"plan"}
    [request] = approval_requests(workspace)
    assert request["stage"] == "request"
    assert "storage [builder] (after models)" in request["plan_summary"]
    assert "D1 [test tests/test_store.py]" in request["plan_summary"]
    shown = status(workspace, model)
    assert shown["team"]["status"] == "awaiting_approval"
    assert shown["approval"]["plan"]["summary"] == PLAN["summary"]
    readable = run(workspace, model, "status").stdout
    assert "plan 1 waits for your approval" in readable
    assert "tests/test_store.py" in readable and "team approve" in readable
    eventually(lambda: "waiting for your approval" in flat(pane_text(workspace, "coordinator")),
               "the plan in the coordinator's pane", 10)  # fmt: skip
    assert "store.py - count_open(items)" in pane_text(workspace, "coordinator")

    approved = run(workspace, model, "approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "delivered plan_approval" in approved.stdout and ": approved" in approved.stdout
    finished(workspace)
    assert "if not item.done" in (workspace / "store.py").read_text()
    assert not layout.plan_proposal_json.exists()
    assert "plan 1 approved: building" in pane_text(workspace, "coordinator")
    again = run(workspace, model, "approve")
    assert again.returncode == 1 and "approved already" in again.stderr


def _tasks(layout: Layout) -> list[Task]:
    return [t for t in TaskStore(layout).all() if t.module != "explore"]


def test_a_plan_sent_back_with_feedback_is_planned_again_and_the_new_one_approved(
    model: ScriptedServer, workspace: Path
) -> None:
    up(workspace, model)
    awaiting(workspace)
    told = run(workspace, model, "tell", "coordinator", COORDINATOR_GUIDANCE)
    assert told.returncode == 0, told.stdout + told.stderr
    blank = run(workspace, model, "approve", "--feedback", "  ")
    assert blank.returncode == 1 and "--feedback needs some text" in blank.stderr
    sent_back = run(workspace, model, "approve", "--feedback", FEEDBACK)
    assert sent_back.returncode == 0, sent_back.stdout + sent_back.stderr
    assert "asked for another plan" in sent_back.stdout
    awaiting(workspace, 2)
    # The planner was asked again, told its plan and the user's words.
    first, second = plan_requests(model)
    assert FEEDBACK not in first
    assert FEEDBACK in second and "storage [builder]" in second
    # What the coordinator was told is in the planner's prompt, and later in the RCA's.
    assert COORDINATOR_GUIDANCE in _plan_prompt(model, 1)
    assert _tasks(Layout.of(workspace)) == []
    shown = status(workspace, model)["approval"]
    assert (shown["round"], shown["feedback"]) == (2, [FEEDBACK])
    assert shown["plan"]["summary"] == PLAN_TOLD["summary"]
    assert len(approval_requests(workspace)) == 2
    assert f"plan 1 not approved: {FEEDBACK}" in flat(pane_text(workspace, "coordinator"))

    assert run(workspace, model, "approve").returncode == 0
    finished(workspace)
    plan = json.loads(Layout.of(workspace).plan_json.read_text())
    assert plan["summary"] == PLAN_TOLD["summary"]
    assert len(plan_requests(model)) == 2
    [rca] = [r for r in model.log if r.seen.schema_title == "RcaReport"]
    assert COORDINATOR_GUIDANCE in rca.seen.last_user


def _plan_prompt(server: ScriptedServer, index: int) -> str:
    """The whole conversation of the planner's `index`-th request, as sent."""
    plans = [r for r in server.log if r.seen.schema_title == "Plan"]
    return json.dumps(plans[index].body)


def test_a_coordinator_killed_while_it_waits_waits_again_when_resumed(
    model: ScriptedServer, workspace: Path
) -> None:
    up(workspace, model)
    awaiting(workspace)
    killed = run(workspace, model, "kill", "--grace", "1")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert_no_process_left(workspace)
    assert Layout.of(workspace).plan_proposal_json.exists()

    resumed = run(workspace, model, "resume", "--detach")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    awaiting(workspace)
    eventually(lambda: "plan 1 still waits" in pane_text(workspace, "coordinator"),
               "the resumed coordinator saying it waits", 20)  # fmt: skip
    assert len(plan_requests(model)) == 1  # the same plan, not a new one
    assert len(approval_requests(workspace)) == 1

    # Killed again, and approved while no coordinator runs: the answer waits in its inbox.
    assert run(workspace, model, "kill", "--grace", "1").returncode == 0
    assert_no_process_left(workspace)
    approved = run(workspace, model, "approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "not running" in approved.stderr
    assert run(workspace, model, "resume", "--detach").returncode == 0
    finished(workspace)
    assert len(plan_requests(model)) == 1


def test_guidance_told_to_a_builder_mid_task_reaches_its_next_turn(
    model: ScriptedServer, workspace: Path
) -> None:
    started = run(workspace, model, "up", TASK, "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    building(workspace, "models")  # its first answer takes the model 4 s
    unknown = run(workspace, model, "tell", "builder-nobody", GUIDANCE)
    assert unknown.returncode == 1 and "no agent named 'builder-nobody'" in unknown.stderr
    told = run(workspace, model, "tell", "builder-models", GUIDANCE)
    assert told.returncode == 0, told.stdout + told.stderr
    assert "delivered guidance" in told.stdout
    finished(workspace)
    assert '"""A todo item."""' in (workspace / "models.py").read_text()
    asked = [r.seen for r in model.log if GUIDANCE in r.seen.last_user]
    # Told while its first answer was on its way: in the conversation from the next turn.
    assert asked and asked[0].turn == 1 and asked[0].files == "models.py"
    assert all(s.last_user.startswith("Guidance from the user") for s in asked)
    assert f"guidance from user: {GUIDANCE}" in flat(pane_text(workspace, "builder-models"))

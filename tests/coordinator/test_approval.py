"""Plan approval's decisions and the proposal on disk (coordinator/approval.py), and what
`team approve` and `team tell` refuse to send (coordinator/steering.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coordinator import steering
from coordinator.approval import (
    REQUEST_MAX_CHARS,
    Proposal,
    Verdict,
    answers,
    feedback_prompt,
    render_plan,
    request_text,
    verdict_of,
)
from coordinator.demo_scenario import PLAN
from protocol import PlanApproval
from protocol.plan import Plan
from tests.conftest import TeamDir

THE_PLAN = Plan.model_validate(PLAN)


def proposal(round_: int = 1) -> Proposal:
    return Proposal(plan=THE_PLAN, request_id="r1", round=round_, asked_at=datetime.now(UTC))


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (PlanApproval(stage="response", approved=True, feedback="nice"), Verdict(True)),
        (PlanApproval(stage="response", approved=False, feedback=" use sqlite "),
         Verdict(False, "use sqlite")),
        (PlanApproval(stage="response", approved=False),
         Verdict(False, "the user rejected this plan, saying no more")),
        (PlanApproval(stage="request", plan_summary="a plan"), None),
    ],
)  # fmt: skip
def test_a_verdict_is_read_from_a_response_only(answer: PlanApproval, verdict: Verdict) -> None:
    assert verdict_of(answer) == verdict


def test_an_answer_naming_another_request_answers_an_older_plan() -> None:
    assert answers("r1", "r1") and answers(None, "r1")
    assert not answers("r0", "r1")


def test_the_plan_is_shown_with_its_files_dependencies_and_criteria() -> None:
    lines = render_plan(THE_PLAN)
    assert "  storage [builder] (after models): counting items" in lines
    assert "    store.py - count_open(items)" in lines
    assert "  D2 [import store.py]: store imports" in lines


def test_a_request_fits_a_message_however_big_the_plan() -> None:
    long = THE_PLAN.model_copy(deep=True)
    for module in long.modules:
        module.description = "d" * 160
    long.modules = long.modules * 2  # names repeat: only the text is judged here
    text = request_text(long, 3)
    assert text.startswith("plan 3 for approval")
    assert len(request_text(long, 3)) <= REQUEST_MAX_CHARS
    assert "team approve" in request_text(THE_PLAN, 1)


def test_the_planner_asked_again_sees_its_plan_and_every_feedback() -> None:
    prompt = feedback_prompt(THE_PLAN, ["split storage", "use sqlite"])
    assert "storage [builder]" in prompt
    assert "- split storage\n- use sqlite" in prompt


def test_a_damaged_proposal_is_no_proposal(team_dir: TeamDir) -> None:
    path = team_dir.layout.plan_proposal_json
    assert Proposal.load(path) is None
    proposal(2).save(path)
    loaded = Proposal.load(path)
    assert loaded is not None and (loaded.round, loaded.plan) == (2, THE_PLAN)
    path.write_text('{"plan": ')
    assert Proposal.load(path) is None


def test_approve_needs_a_plan_waiting_and_feedback_with_words(team_dir: TeamDir) -> None:
    layout = team_dir.layout
    with pytest.raises(steering.NothingToSteer, match="no plan waits for approval"):
        steering.approval_answer(layout, team_dir.team_id, None)
    proposal().save(layout.plan_proposal_json)
    with pytest.raises(steering.NothingToSteer, match="needs some text"):
        steering.approval_answer(layout, team_dir.team_id, "  ")
    sent_back = steering.approval_answer(layout, team_dir.team_id, " split it ")
    assert sent_back.reply_to == "r1" and sent_back.recipient == "coordinator"
    assert sent_back.payload == PlanApproval(stage="response", approved=False, feedback="split it")
    layout.plan_json.write_text("{}")
    layout.plan_proposal_json.unlink()
    with pytest.raises(steering.NothingToSteer, match="approved already"):
        steering.approval_answer(layout, team_dir.team_id, None)


@pytest.mark.parametrize(
    ("agent", "text", "refusal"),
    [
        ("builder-x", "hi", "no agent named 'builder-x'"),
        ("user", "hi", "that inbox is yours"),
        ("worker", "   ", "say something"),
        ("worker", "x" * 4001, "at most 4000 characters"),
    ],
)
def test_tell_needs_an_agent_and_some_words(
    team_dir: TeamDir, agent: str, text: str, refusal: str
) -> None:
    with pytest.raises(steering.NothingToSteer, match=refusal):
        steering.guidance(team_dir.layout, team_dir.team_id, agent, text)


def test_tell_makes_a_guidance_message_for_the_agent(team_dir: TeamDir) -> None:
    message = steering.guidance(team_dir.layout, team_dir.team_id, "worker", "  use pathlib ")
    assert (message.type, message.recipient, message.sender) == ("guidance", "worker", "user")
    assert message.payload.text == "use pathlib"  # type: ignore[union-attr]

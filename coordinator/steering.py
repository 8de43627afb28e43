"""The user steering a team at work (issue 14): the answer to a plan waiting for approval
(`team approve`) and guidance for an agent mid-task (`team tell`). Each is one message into an
inbox; these build it, or say why there is nothing to send."""

from __future__ import annotations

from coordinator.approval import Proposal
from protocol import COORDINATOR, USER, Guidance, Layout, Message, PlanApproval, make_message
from protocol.messages import GUIDANCE_MAX_CHARS


class NothingToSteer(Exception):
    """The message would reach no one who waits for it: the text says why and what to do."""


def approval_answer(layout: Layout, team_id: str, feedback: str | None) -> Message:
    """The user's answer to the plan waiting: approved without `feedback`, else not, with the
    feedback for the planner's next plan."""
    proposal = Proposal.load(layout.plan_proposal_json)
    if proposal is None:
        if layout.plan_json.exists():
            raise NothingToSteer("the plan is approved already: the team is building it")
        raise NothingToSteer(
            "no plan waits for approval (`team up --approve-plan` asks for one; "
            "`team status` shows where the team is)"
        )
    if feedback is not None and not feedback.strip():
        raise NothingToSteer("--feedback needs some text: what should the next plan change?")
    answer = (
        PlanApproval(stage="response", approved=True)
        if feedback is None
        else PlanApproval(stage="response", approved=False, feedback=feedback.strip())
    )
    return make_message(
        answer, team=team_id, sender=USER, recipient=COORDINATOR, reply_to=proposal.request_id
    )


def guidance(layout: Layout, team_id: str, agent: str, text: str) -> Message:
    """Guidance for `agent`'s next model turn (the coordinator's: its next plan or RCA)."""
    if agent == USER:
        raise NothingToSteer("that inbox is yours: tell an agent, e.g. `team tell coordinator`")
    if agent not in layout.inbox_names():
        known = ", ".join(n for n in layout.inbox_names() if n != USER) or "none yet"
        raise NothingToSteer(f"no agent named {agent!r} (agents: {known})")
    text = text.strip()
    if not text:
        raise NothingToSteer('say something: team tell AGENT "text"')
    if len(text) > GUIDANCE_MAX_CHARS:
        raise NothingToSteer(
            f"guidance is at most {GUIDANCE_MAX_CHARS} characters ({len(text)} given)"
        )
    return make_message(Guidance(text=text), team=team_id, sender=USER, recipient=agent)

"""Plan approval (issue 14): a plan that waits for the user before any worker builds.

The proposal is a file, `.agents/plan.proposed.json`: the plan, the id of the request sent to
the user's inbox, and how many times it was asked. It is what makes the wait survive `team
kill` and `team resume`: a coordinator that finds it waits again for an answer to the same
request (an answer sent while no coordinator ran is in its inbox). Approved, it becomes
plan.json; answered with feedback, the planner is asked again and a new proposal replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol import PlanApproval, atomic_write_json
from protocol.plan import Plan

REQUEST_MAX_CHARS = 6000  # the plan's text in the request message (a message is capped)
HOW_TO_ANSWER = (
    "approve it with `team approve`, or ask for another with "
    '`team approve --feedback "what to change"`'
)


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Plan
    request_id: str = Field(min_length=1)  # the plan_approval request in the user's inbox
    round: int = Field(default=1, ge=1)  # 2: the planner was asked again once, with feedback
    feedback: list[str] = Field(default_factory=list)  # the user's, oldest first
    asked_at: datetime  # an answer naming no request counts only when sent after this

    @classmethod
    def load(cls, path: Path) -> Proposal | None:
        """The proposal waiting, or None: none, or a damaged file (the plan is asked again)."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, ValueError):
            return None

    def save(self, path: Path) -> None:
        atomic_write_json(path, self)


@dataclass(frozen=True)
class Verdict:
    """What the user answered: build, or plan again with `feedback`."""

    approved: bool
    feedback: str = ""


def verdict_of(answer: PlanApproval) -> Verdict | None:
    """A response's verdict (None for a request, which is not an answer). A rejection that
    says nothing still plans again, told only that the user wants another plan."""
    if answer.stage != "response" or answer.approved is None:
        return None
    if answer.approved:
        return Verdict(True)
    return Verdict(False, answer.feedback.strip() or "the user rejected this plan, saying no more")


def answers(answer_reply_to: str | None, request_id: str) -> bool:
    """A response answers the request waiting when it names it, or names none (`team send`
    typed by hand); one that names another request answers an older plan."""
    return answer_reply_to is None or answer_reply_to == request_id


def render_plan(plan: Plan) -> list[str]:
    """The plan as a user reads it before approving: modules with their files and what they
    depend on, and the Definition of Done."""
    lines = [f"plan: {plan.summary}", "modules:"]
    for module in plan.modules:
        after = f" (after {', '.join(module.depends_on)})" if module.depends_on else ""
        lines.append(f"  {module.name} [{module.role}]{after}: {module.description}")
        for planned in module.files:
            purpose = f" - {planned.purpose}" if planned.purpose else ""
            lines.append(f"    {planned.path}{purpose}")
    lines.append("definition of done:")
    for criterion in plan.dod:
        lines.append(
            f"  {criterion.id} [{criterion.verification_type.value} {criterion.target_file}]: "
            f"{criterion.description}"
        )
    return lines


def request_text(plan: Plan, round_: int) -> str:
    """The request's plan_summary: the whole plan, as the user is asked to judge it."""
    head = f"plan {round_} for approval" if round_ > 1 else "the plan for approval"
    text = "\n".join([head, *render_plan(plan), HOW_TO_ANSWER])
    if len(text) > REQUEST_MAX_CHARS:
        text = text[: REQUEST_MAX_CHARS - 40] + "\n... (the rest: team status)"
    return text


def feedback_prompt(plan: Plan, feedback: list[str]) -> str:
    """What the planner is told when asked again: its last plan, and the user's words."""
    said = "\n".join(f"- {words}" for words in feedback)
    return (
        "The user reviewed your plan and did not approve it:\n"
        + "\n".join(render_plan(plan))
        + f"\n\nWhat the user asked for:\n{said}\n\n"
        "Make a new plan that does what the user asked. Answer with the whole plan."
    )

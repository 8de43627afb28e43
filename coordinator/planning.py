"""Planning: the planner's prompt, and asking again with the reason when its plan cannot be
built. `ask` is the model call (it waits out a server that is down); the rest is plain."""

from __future__ import annotations

from collections.abc import Callable

from coordinator.decompose import plan_to_tasks
from coordinator.outcomes import TeamFailed
from protocol import DagError, Task
from protocol.llm import ChatMessage
from protocol.plan import Plan
from protocol.reports import ExplorationReport

PLAN_TRIES = 3
PLAN_SYSTEM = """You are the planner of a team of coding agents. Split the task into modules
(one agent builds each module, in parallel where dependencies allow): data models before
storage before interfaces before tests. Give every module at least one file it writes (no file
in two modules), its dependencies by name, and its role: builder, or tester for a module of
tests. Give at least one Definition-of-Done criterion that can be checked mechanically: its
verification_type (test, command, file_exists or import) and its target_file (the test file,
the module's file, the file, or the command)."""


def plan_messages(task: str, report: ExplorationReport) -> list[ChatMessage]:
    # The report as JSON, the form the explorer was asked to give it in.
    workspace = report.model_dump_json(indent=1)
    return [
        ChatMessage.system(PLAN_SYSTEM),
        ChatMessage.user(f"The task: {task}\n\nThe workspace:\n{workspace}"),
    ]


def buildable_plan(
    messages: list[ChatMessage],
    ask: Callable[[list[ChatMessage]], Plan],
    first_id: int,
    say: Callable[[str, str], None],
    tries: int = PLAN_TRIES,
) -> tuple[Plan, list[Task]]:
    """A plan whose tasks form a DAG, asking again with the error each time one does not."""
    for _ in range(tries):
        plan = ask(messages)
        try:
            return plan, plan_to_tasks(plan, first_id=first_id)
        except DagError as exc:
            say("fail", f"the plan was refused: {exc}")
            messages = [
                *messages,
                ChatMessage(role="assistant", content=plan.model_dump_json()),
                ChatMessage.user(f"That plan cannot be built: {exc}. Fix it."),
            ]
    raise TeamFailed(f"the planner gave no buildable plan in {tries} tries")

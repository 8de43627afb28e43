"""Planning: the planner's prompt, and asking again with the reason when its plan cannot be
built. `ask` is the model call (it waits out a server that is down); the rest is plain."""

from __future__ import annotations

from collections.abc import Callable

from coordinator.decompose import plan_to_tasks
from coordinator.outcomes import TeamFailed
from coordinator.plan_repair import repair_plan
from protocol import DagError, Task
from protocol.llm import BadAnswer, ChatMessage, TruncatedAnswer
from protocol.plan import Plan
from protocol.reports import ExplorationReport

# Structured answers (plan, RCA) come at a low temperature; a plan asked for again after a
# cut or unusable one comes at higher ones, for an answer that differs from the last, not the
# same ramble again. Left to the server, llama.cpp samples at 0.8.
ANSWER_TEMPERATURE = 0.2
PLAN_TEMPERATURES = (ANSWER_TEMPERATURE, 0.6, 0.9)
PLAN_SYSTEM = """You are the planner of a team of coding agents. Split the task into modules
(one agent builds each module, in parallel where dependencies allow): data models before
storage before interfaces before tests. Give every module at least one file it writes (no file
in two modules), its dependencies by name, and its role: builder, or tester for a module of
tests. Give at least one Definition-of-Done criterion that can be checked mechanically: its
verification_type (test, command, file_exists or import) and its target_file (the test file,
the module's file, the file, or the command). Keep it small: at most 8 modules of at most 6
files, one short sentence for each description and purpose."""

CUT_PLAN = """Your plan was cut off at its token limit. Give a shorter one: at most five
modules, descriptions and purposes of one short sentence, at most five criteria."""


def plan_messages(task: str, report: ExplorationReport, guidance: str = "") -> list[ChatMessage]:
    """The planner's prompt; `guidance`, the user's words to the coordinator, comes last."""
    # The report as JSON, the form the explorer was asked to give it in.
    workspace = report.model_dump_json(indent=1)
    told = f"\n\n{guidance}" if guidance else ""
    return [
        ChatMessage.system(PLAN_SYSTEM),
        ChatMessage.user(f"The task: {task}\n\nThe workspace:\n{workspace}{told}"),
    ]


def buildable_plan(
    messages: list[ChatMessage],
    ask: Callable[[list[ChatMessage], float], Plan],
    first_id: int,
    say: Callable[[str, str], None],
    temperatures: tuple[float, ...] = PLAN_TEMPERATURES,
) -> tuple[Plan, list[Task]]:
    """A plan whose tasks form a DAG. What code can mend it mends (said in the pane); a plan
    that still cannot be built, an answer cut at its token limit or one that would not fit
    the schema is asked for again with the reason, once per temperature in all."""
    refusals = []
    for temperature in temperatures:
        try:
            plan = ask(messages, temperature)
        except TruncatedAnswer as exc:
            # The cut answer is not shown back: it is what made the next one too long.
            say("fail", f"the plan was cut off: {exc}")
            refusals.append("cut off at its token limit")
            if messages[-1].content != CUT_PLAN:
                messages = [*messages, ChatMessage.user(CUT_PLAN)]
            continue
        except BadAnswer as exc:
            say("fail", f"the plan could not be read: {exc}")
            refusals.append("not a plan in the schema")
            continue
        repaired = repair_plan(plan)
        for mend in repaired.mends:
            say("warn", f"plan mended: {mend}")
        try:
            return repaired.plan, plan_to_tasks(repaired.plan, first_id=first_id)
        except DagError as exc:
            say("fail", f"the plan was refused: {exc}")
            refusals.append(str(exc))
            messages = [
                *messages,
                ChatMessage(role="assistant", content=plan.model_dump_json()),
                ChatMessage.user(f"That plan cannot be built: {exc}. Fix it."),
            ]
    raise TeamFailed(
        f"the planner gave no buildable plan in {len(temperatures)} tries ({'; '.join(refusals)}); "
        "try a larger model for the plan role (TEAM_MODEL_PLAN) or a smaller task"
    )

"""What the team is doing and what it cost, folded from the event log: each agent's phase and
current call, tokens and model time per agent and per task, the DAG's progress, the latest
Definition-of-Done results and the budgets reached. Pure: `fold` takes one event at a time
(from `read_events` or an `EventTail`), so a watch refreshes from what was appended."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from protocol.events import (
    AgentChanged,
    BudgetReached,
    CriterionChecked,
    Event,
    ModelCallEnded,
    ModelCallStarted,
    TaskChanged,
    TeamChanged,
    ToolCalled,
    VerifyStepRan,
)
from protocol.tasks import Task


@dataclass
class Spend:
    """Tokens and model time as the servers counted them, and the tool calls made."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    model_calls: int = 0
    model_seconds: float = 0.0
    tool_calls: int = 0

    def add(self, call: ModelCallEnded) -> None:
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.cached_tokens += call.cached_tokens
        self.model_calls += 1
        self.model_seconds = round(self.model_seconds + call.duration_s, 3)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ModelCallNow:
    """A model call in progress."""

    call_id: str
    role: str
    model: str
    since: datetime


@dataclass(frozen=True)
class ToolCallSeen:
    """A tool call that ended."""

    tool: str
    outcome: str
    at: datetime


@dataclass
class AgentActivity:
    name: str
    role: str = ""
    state: str = ""
    task_id: int | None = None
    model_call: ModelCallNow | None = None
    last_tool: ToolCallSeen | None = None
    spend: Spend = field(default_factory=Spend)


@dataclass
class TaskActivity:
    id: int
    title: str = ""
    module: str = ""
    status: str = ""
    attempt: int = 1
    owner: str | None = None
    spend: Spend = field(default_factory=Spend)  # over every attempt


class Check(NamedTuple):
    passed: bool
    detail: str


@dataclass
class Activity:
    team_status: str = ""
    detail: str = ""
    iteration: int = 0
    agents: dict[str, AgentActivity] = field(default_factory=dict)
    tasks: dict[int, TaskActivity] = field(default_factory=dict)
    dod_iteration: int = 0  # the iteration whose verification `dod` and `steps` are
    dod: dict[str, Check] = field(default_factory=dict)
    steps: dict[str, Check] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)
    budgets: list[BudgetReached] = field(default_factory=list)
    events: int = 0  # folded so far: a watch redraws when it grows

    @classmethod
    def from_events(cls, events: Iterable[Event], tasks: Iterable[Task] = ()) -> Activity:
        """From a whole log; `tasks` (the task files, read once) name tasks whose creation is
        not in the log (a team from before the log, or an archived start)."""
        activity = cls()
        for task in tasks:
            activity.tasks[task.id] = TaskActivity(
                task.id, task.title, task.module, task.status.value, task.attempt, task.owner
            )
        for event in events:
            fold(activity, event)
        return activity

    def agent(self, name: str) -> AgentActivity:
        return self.agents.setdefault(name, AgentActivity(name))

    def task(self, task_id: int) -> TaskActivity:
        return self.tasks.setdefault(task_id, TaskActivity(task_id))

    def progress(self) -> dict[str, int]:
        """How many tasks are in each status."""
        return dict(Counter(t.status for t in self.tasks.values()))

    # --- for `team status --json` ---------------------------------------------------------

    def usage_json(self) -> dict[str, Any]:
        return {
            **asdict(self.spend),
            "per_agent": {name: asdict(a.spend) for name, a in sorted(self.agents.items())},
            "per_task": {str(i): asdict(t.spend) for i, t in sorted(self.tasks.items())},
        }

    def activity_json(self) -> dict[str, Any]:
        return {
            name: {
                "state": a.state,
                "role": a.role,
                "task_id": a.task_id,
                "model_call": _json(a.model_call),
                "last_tool": _json(a.last_tool),
            }
            for name, a in sorted(self.agents.items())
        }

    def dod_json(self) -> dict[str, Any]:
        return {
            "iteration": self.dod_iteration,
            "criteria": [{"id": key, **c._asdict()} for key, c in self.dod.items()],
            "steps": [{"name": key, **c._asdict()} for key, c in self.steps.items()],
        }

    def budget_json(self) -> list[dict[str, Any]]:
        return [
            b.model_dump(mode="json", include={"ts", "scope", "limit", "used", "task_id"})
            for b in self.budgets
        ]


def _json(seen: ModelCallNow | ToolCallSeen | None) -> dict[str, Any] | None:
    if seen is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(seen).items()}


def fold(activity: Activity, event: Event) -> None:
    """Change `activity` by one event of the log; messages change nothing here."""
    activity.events += 1
    match event:
        case TeamChanged():
            activity.team_status, activity.detail = event.status, event.detail
            activity.iteration = event.iteration
        case TaskChanged():
            task = activity.task(event.task_id)
            task.status, task.attempt, task.owner = event.status, event.attempt, event.owner
            task.title = event.title or task.title  # only creation events carry them
            task.module = event.module or task.module
        case AgentChanged():
            agent = activity.agent(event.name)
            agent.state, agent.role = event.state, event.role or agent.role
            agent.task_id = event.task_id
            if event.state != "working":  # stopped or dead in a call: the call is over
                agent.model_call = None
        case ModelCallStarted():
            activity.agent(event.agent).model_call = ModelCallNow(
                event.call_id, event.role, event.model, event.ts
            )
        case ModelCallEnded():
            _call_ended(activity, event)
        case ToolCalled():
            agent = activity.agent(event.agent)
            agent.last_tool = ToolCallSeen(event.tool, event.outcome, event.ts)
            for spend in _spends(activity, event.agent, event.task_id):
                spend.tool_calls += 1
        case VerifyStepRan() | CriterionChecked():
            _verified(activity, event)
        case BudgetReached():
            activity.budgets.append(event)


def _spends(activity: Activity, agent: str, task_id: int | None) -> list[Spend]:
    """Where a call counts: the team's totals, its agent's, and its task's if it had one."""
    spends = [activity.spend, activity.agent(agent).spend]
    return spends if task_id is None else [*spends, activity.task(task_id).spend]


def _call_ended(activity: Activity, call: ModelCallEnded) -> None:
    agent = activity.agent(call.agent)
    if agent.model_call is not None and agent.model_call.call_id == call.call_id:
        agent.model_call = None
    for spend in _spends(activity, call.agent, call.task_id):
        spend.add(call)


def _verified(activity: Activity, event: VerifyStepRan | CriterionChecked) -> None:
    if event.iteration != activity.dod_iteration:  # a new verification replaces the last
        activity.dod_iteration, activity.dod, activity.steps = event.iteration, {}, {}
    if isinstance(event, CriterionChecked):
        activity.dod[event.id] = Check(event.passed, event.detail)
    else:
        activity.steps[event.name] = Check(event.passed, event.detail)

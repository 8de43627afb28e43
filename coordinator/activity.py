"""What the team is doing and what it cost, folded from the event log: each agent's phase and
current call, tokens and model time per agent and per task, the DAG's progress, the latest
Definition-of-Done results and the budgets reached. Pure: `apply` takes one event at a time
(from `read_events` or an `EventTail`), so a watch refreshes from what was appended."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

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
    """Tokens and model time, as the servers counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    model_calls: int = 0
    model_seconds: float = 0.0

    def add(self, call: ModelCallEnded) -> None:
        self.prompt_tokens += call.prompt_tokens
        self.completion_tokens += call.completion_tokens
        self.cached_tokens += call.cached_tokens
        self.model_calls += 1
        self.model_seconds = round(self.model_seconds + call.duration_s, 3)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class AgentActivity:
    name: str
    role: str = ""
    state: str = ""
    task_id: int | None = None
    doing: str = ""  # "model build (qwen2.5-coder:7b)" while a call runs, else the last tool
    since: datetime | None = None  # when `doing` began (a call) or happened (a tool)
    in_call: bool = False
    spend: Spend = field(default_factory=Spend)
    tool_calls: int = 0


@dataclass
class TaskActivity:
    id: int
    title: str = ""
    module: str = ""
    status: str = ""
    attempt: int = 1
    owner: str | None = None
    spend: Spend = field(default_factory=Spend)  # over every attempt


@dataclass
class Activity:
    team_status: str = ""
    detail: str = ""
    iteration: int = 0
    agents: dict[str, AgentActivity] = field(default_factory=dict)
    tasks: dict[int, TaskActivity] = field(default_factory=dict)
    dod_iteration: int = 0
    dod: dict[str, tuple[bool, str]] = field(default_factory=dict)
    steps: dict[str, tuple[bool, str]] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)
    tool_calls: int = 0
    budgets: list[str] = field(default_factory=list)
    events: int = 0

    @classmethod
    def of(cls, events: list[Event], tasks: list[Task] | None = None) -> Activity:
        """From a whole log; `tasks` (the task files, read once) name tasks whose creation is
        not in the log (a team from before the log, or an archived start)."""
        activity = cls()
        for task in tasks or []:
            activity.tasks[task.id] = TaskActivity(
                task.id, task.title, task.module, task.status.value, task.attempt, task.owner
            )
        for event in events:
            activity.apply(event)
        return activity

    def agent(self, name: str) -> AgentActivity:
        return self.agents.setdefault(name, AgentActivity(name))

    def task(self, task_id: int) -> TaskActivity:
        return self.tasks.setdefault(task_id, TaskActivity(task_id))

    def apply(self, event: Event) -> None:
        self.events += 1
        if isinstance(event, TeamChanged):
            self.team_status, self.detail, self.iteration = (
                event.status,
                event.detail,
                event.iteration,
            )
        elif isinstance(event, TaskChanged):
            task = self.task(event.task_id)
            task.status, task.attempt, task.owner = event.status, event.attempt, event.owner
            task.title = event.title or task.title
            task.module = event.module or task.module
        elif isinstance(event, AgentChanged):
            agent = self.agent(event.name)
            agent.state, agent.role = event.state, event.role or agent.role
            agent.task_id = event.task_id
            if event.state != "working":
                agent.doing, agent.since, agent.in_call = "", None, False
        elif isinstance(event, ModelCallStarted):
            agent = self.agent(event.agent)
            agent.doing = f"model {event.role} ({event.model})"
            agent.since, agent.in_call = event.ts, True
        elif isinstance(event, ModelCallEnded):
            self._call_ended(event)
        elif isinstance(event, ToolCalled):
            agent = self.agent(event.agent)
            agent.doing, agent.since, agent.in_call = f"tool {event.tool}", event.ts, False
            agent.tool_calls += 1
            self.tool_calls += 1
        elif isinstance(event, VerifyStepRan | CriterionChecked):
            self._verified(event)
        elif isinstance(event, BudgetReached):
            where = f"task {event.task_id}" if event.task_id else "the team"
            self.budgets.append(f"{where}: {event.used} of {event.limit} tokens")

    def _call_ended(self, call: ModelCallEnded) -> None:
        agent = self.agent(call.agent)
        agent.spend.add(call)
        agent.doing = f"model {call.role}: {call.outcome}"
        agent.since, agent.in_call = call.ts, False
        self.spend.add(call)
        if call.task_id is not None:
            self.task(call.task_id).spend.add(call)

    def _verified(self, event: VerifyStepRan | CriterionChecked) -> None:
        if event.iteration != self.dod_iteration:  # a new verification replaces the last
            self.dod_iteration, self.dod, self.steps = event.iteration, {}, {}
        if isinstance(event, CriterionChecked):
            self.dod[event.id] = (event.passed, event.detail)
        else:
            self.steps[event.name] = (event.passed, event.detail)

    # --- for scripts ---------------------------------------------------------------------

    def progress(self) -> dict[str, int]:
        return dict(Counter(t.status for t in self.tasks.values()))

    def usage_json(self) -> dict[str, Any]:
        return {
            **asdict(self.spend),
            "tool_calls": self.tool_calls,
            "per_agent": {
                name: {**asdict(a.spend), "tool_calls": a.tool_calls}
                for name, a in sorted(self.agents.items())
            },
            "per_task": {str(i): asdict(t.spend) for i, t in sorted(self.tasks.items())},
        }

    def activity_json(self) -> dict[str, Any]:
        return {
            name: {
                "state": a.state,
                "role": a.role,
                "task_id": a.task_id,
                "doing": a.doing,
                "since": a.since.isoformat() if a.since else None,
                "in_model_call": a.in_call,
            }
            for name, a in sorted(self.agents.items())
        }

    def dod_json(self) -> dict[str, Any]:
        return {
            "iteration": self.dod_iteration,
            "criteria": [
                {"id": key, "passed": passed, "detail": detail}
                for key, (passed, detail) in self.dod.items()
            ],
            "steps": [
                {"name": key, "passed": passed, "detail": detail}
                for key, (passed, detail) in self.steps.items()
            ],
        }

"""How `team status --watch` shows an `Activity`: the team, each agent at work, the tasks, the
DAG's progress and the Definition-of-Done results, as one rich renderable."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from coordinator.activity import Activity, AgentActivity, Spend
from coordinator.views import STATUS_STYLE
from protocol import TaskStatus, TeamInfo
from protocol.display import inert_line
from protocol.events import BudgetReached


def tokens(spend: Spend) -> str:
    if not spend.model_calls:
        return "-"
    cached = f", {spend.cached_tokens} cached" if spend.cached_tokens else ""
    return f"{spend.prompt_tokens}+{spend.completion_tokens}{cached}"


def seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def spend_line(activity: Activity) -> str:
    """One line of totals: what `team status` shows under its header."""
    s = activity.spend
    cached = f" ({s.cached_tokens} cached)" if s.cached_tokens else ""
    return (
        f"{_count(s.model_calls, 'model call')}, {s.prompt_tokens} prompt + "
        f"{s.completion_tokens} completion tokens{cached}, {seconds(s.model_seconds)} in "
        f"models, {_count(s.tool_calls, 'tool call')}"
    )


def _doing(agent: AgentActivity, now: datetime) -> tuple[Text, str]:
    """What the agent does and for how long: its model call, else its last tool and when."""
    if agent.model_call is not None:
        call = agent.model_call
        age = (now - call.since).total_seconds()
        return Text(inert_line(f"model {call.role} ({call.model})"), style="yellow"), f"{age:.0f}s"
    if agent.last_tool is not None:
        tool = agent.last_tool
        style = "" if tool.outcome in ("ok", "finished") else "red"
        age = (now - tool.at).total_seconds()
        return Text(inert_line(f"tool {tool.tool}"), style=style), f"{age:.0f}s ago"
    return Text("-"), "-"


def _agents(activity: Activity, alive: Mapping[str, bool], now: datetime) -> Table:
    table = Table(title="agents", title_justify="left", expand=False)
    for column in ("agent", "state", "alive", "task", "doing", "for", "tokens", "model time"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for agent in sorted(activity.agents.values(), key=lambda a: a.name):
        doing, age = _doing(agent, now)
        up = alive.get(agent.name)
        table.add_row(
            inert_line(agent.name),
            inert_line(agent.state or "-"),
            "-" if up is None else Text("yes" if up else "no", style="green" if up else "red"),
            str(agent.task_id or "-"),
            doing,
            age,
            tokens(agent.spend),
            seconds(agent.spend.model_seconds) if agent.spend.model_calls else "-",
        )
    return table


def _status(status: str) -> Text:
    known = {s.value: s for s in TaskStatus}.get(status)  # the log may hold any text
    return Text(status or "-", style=STATUS_STYLE[known] if known else "")


def _tasks(activity: Activity) -> Table:
    table = Table(title="tasks", title_justify="left", expand=False)
    for column in ("id", "title", "status", "attempt", "owner", "tokens", "model time"):
        table.add_column(column, overflow="fold")
    for task in sorted(activity.tasks.values(), key=lambda t: t.id):
        table.add_row(
            str(task.id),
            inert_line(task.title or task.module or "-"),
            _status(task.status),
            str(task.attempt),
            inert_line(task.owner or "-"),
            tokens(task.spend),
            seconds(task.spend.model_seconds) if task.spend.model_calls else "-",
        )
    return table


def _dod(activity: Activity) -> Text:
    line = Text(f"verification (iteration {activity.dod_iteration}): ")
    for name, (passed, _) in [*activity.steps.items(), *activity.dod.items()]:
        # Criterion ids are the planner model's text: inert, as every model text on a terminal.
        label = f"{inert_line(name)} {'ok' if passed else 'FAILED'}  "
        line.append(label, style="green" if passed else "red")
    for name, (passed, detail) in activity.dod.items():
        if not passed and detail:
            line.append(f"\n  {inert_line(name)}: {inert_line(detail)[:160]}", style="red")
    return line


def budget_line(budget: BudgetReached) -> str:
    where = f"task {budget.task_id}'s attempt" if budget.task_id is not None else "the team"
    return f"budget reached: {where} used {budget.used} of its {budget.limit} tokens"


def watch_frame(
    activity: Activity,
    info: TeamInfo | None,
    alive: Mapping[str, bool],
    now: datetime | None = None,
) -> Group:
    """One frame: `info` is team.json (None when unreadable), `alive` each agent's process."""
    now = now or datetime.now(UTC)
    # team.json says where the team is (read each second); the log, when it is unreadable.
    status = info.status.value if info else activity.team_status or "?"
    iteration = info.iteration if info else activity.iteration
    detail = info.detail if info else activity.detail
    header = Text(f"team {info.id}" if info else "team (team.json unreadable)", style="bold")
    header.append(f"  status {status}  iteration {iteration}")
    if detail:
        header.append(f"\n{inert_line(detail)}", style="red" if status == "failed" else "")
    if not activity.events:
        header.append("\nno events yet: waiting for .agents/events.jsonl", style="dim")
    progress = activity.progress()
    done = progress.get("done", 0)
    header.append(
        f"\n{done} of {len(activity.tasks)} tasks done"
        + "".join(f", {n} {s}" for s, n in sorted(progress.items()) if s != "done")
    )
    header.append(f"\n{spend_line(activity)}", style="dim")
    parts: list[RenderableType] = [header]
    if activity.agents:
        parts.append(_agents(activity, alive, now))
    if activity.tasks:
        parts.append(_tasks(activity))
    if activity.dod or activity.steps:
        parts.append(_dod(activity))
    for budget in activity.budgets:
        parts.append(Text(budget_line(budget), style="bold red"))
    return Group(*parts)

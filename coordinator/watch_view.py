"""How `team status --watch` shows an `Activity`: the team, each agent at work, the tasks, the
DAG's progress and the Definition-of-Done results, as one rich renderable."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from coordinator.activity import Activity, Spend
from protocol import TaskStatus, TeamInfo
from protocol.display import inert_line

STATUS_STYLE = {s.value: style for s, style in {
    TaskStatus.PENDING: "dim", TaskStatus.READY: "cyan", TaskStatus.ASSIGNED: "blue",
    TaskStatus.RUNNING: "yellow", TaskStatus.DONE: "green", TaskStatus.FAILED: "red",
    TaskStatus.ABANDONED: "magenta",
}.items()}  # fmt: skip


def tokens(spend: Spend) -> str:
    if not spend.model_calls:
        return "-"
    cached = f", {spend.cached_tokens} cached" if spend.cached_tokens else ""
    return f"{spend.prompt_tokens}+{spend.completion_tokens}{cached}"


def seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


def spend_line(activity: Activity) -> str:
    """One line of totals: what `team status` shows under its header."""
    s = activity.spend
    cached = f" ({s.cached_tokens} cached)" if s.cached_tokens else ""
    return (
        f"{s.model_calls} model calls, {s.prompt_tokens} prompt + {s.completion_tokens} "
        f"completion tokens{cached}, {seconds(s.model_seconds)} in models, "
        f"{activity.tool_calls} tool calls"
    )


def _agents(activity: Activity, now: datetime) -> Table:
    table = Table(title="agents", title_justify="left", expand=False)
    for column in ("agent", "state", "task", "doing", "for", "tokens", "model time"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for agent in sorted(activity.agents.values(), key=lambda a: a.name):
        age = f"{(now - agent.since).total_seconds():.0f}s" if agent.since else "-"
        doing = Text(inert_line(agent.doing or "-"), style="yellow" if agent.in_call else "")
        table.add_row(
            inert_line(agent.name),
            inert_line(agent.state or "-"),
            str(agent.task_id or "-"),
            doing,
            age if agent.in_call else (f"{age} ago" if agent.since else "-"),
            tokens(agent.spend),
            seconds(agent.spend.model_seconds) if agent.spend.model_calls else "-",
        )
    return table


def _tasks(activity: Activity) -> Table:
    table = Table(title="tasks", title_justify="left", expand=False)
    for column in ("id", "title", "status", "attempt", "owner", "tokens", "model time"):
        table.add_column(column, overflow="fold")
    for task in sorted(activity.tasks.values(), key=lambda t: t.id):
        table.add_row(
            str(task.id),
            inert_line(task.title or task.module or "-"),
            Text(task.status or "-", style=STATUS_STYLE.get(task.status, "")),
            str(task.attempt),
            inert_line(task.owner or "-"),
            tokens(task.spend),
            seconds(task.spend.model_seconds) if task.spend.model_calls else "-",
        )
    return table


def _dod(activity: Activity) -> Text:
    line = Text(f"verification (iteration {activity.dod_iteration}): ")
    for name, (passed, _) in [*activity.steps.items(), *activity.dod.items()]:
        line.append(f"{name} {'ok' if passed else 'FAILED'}  ", style="green" if passed else "red")
    for name, (passed, detail) in activity.dod.items():
        if not passed and detail:
            line.append(f"\n  {name}: {inert_line(detail)[:160]}", style="red")
    return line


def watch_frame(activity: Activity, info: TeamInfo | None, now: datetime | None = None) -> Group:
    now = now or datetime.now(UTC)
    header = Text()
    if info is not None:
        header.append(f"team {info.id}", style="bold")
    header.append(
        f"  status {activity.team_status or (info.status.value if info else '?')}"
        f"  iteration {activity.iteration or (info.iteration if info else 0)}"
    )
    if activity.detail:
        header.append(f"\n{inert_line(activity.detail)}")
    progress = activity.progress()
    done = progress.get("done", 0)
    header.append(
        f"\n{done} of {len(activity.tasks)} tasks done"
        + "".join(f", {n} {s}" for s, n in sorted(progress.items()) if s != "done")
    )
    header.append(f"\n{spend_line(activity)}", style="dim")
    parts: list[RenderableType] = [header]
    if activity.agents:
        parts.append(_agents(activity, now))
    if activity.tasks:
        parts.append(_tasks(activity))
    if activity.dod or activity.steps:
        parts.append(_dod(activity))
    for budget in activity.budgets:
        parts.append(Text(f"budget reached: {budget}", style="bold red"))
    return Group(*parts)

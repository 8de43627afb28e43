"""How the CLI shows things: rich tables for people, JSON for scripts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from coordinator.activity import Spend
from coordinator.approval import HOW_TO_ANSWER, Proposal, render_plan
from coordinator.inbox_watch import entry_time, is_info, needs_handling
from coordinator.logs import LogFile
from coordinator.pool_status import EndpointLoad
from protocol import USER, InboxEntry, Task, TaskStatus, TeamInfo, summarize
from protocol.agents import AgentRecord
from protocol.display import inert, inert_line
from protocol.sandbox import UNCONFINED_NOTICE

STATUS_STYLE = {
    TaskStatus.PENDING: "dim",
    TaskStatus.READY: "cyan",
    TaskStatus.ASSIGNED: "blue",
    TaskStatus.RUNNING: "yellow",
    TaskStatus.DONE: "green",
    TaskStatus.FAILED: "red",
    TaskStatus.ABANDONED: "magenta",
}
STATE_LABEL = {"new": "pending", "cur": "handled", "bad": "quarantined"}


def clock(moment: datetime) -> str:
    """A moment as the user's local time of day, the way every view shows one."""
    return moment.astimezone().strftime("%H:%M:%S")


def state_label(entry: InboxEntry) -> str:
    """Where a message stands; "info" for one in new/ that no one is to handle."""
    return "info" if entry.state == "new" and is_info(entry) else STATE_LABEL[entry.state]


def _entry_cells(entry: InboxEntry) -> tuple[str, str, str, str, str, str]:
    time = clock(entry_time(entry))
    seq = str(entry.seq) if entry.name else "?"
    if entry.message is not None:
        m = entry.message
        return time, seq, m.sender, m.recipient, m.type, inert_line(summarize(m))
    sender = entry.name.sender if entry.name else "?"
    return time, seq, inert_line(sender), entry.agent, "(unreadable)", inert(entry.problem or "")


def inbox_table(entries: list[InboxEntry], *, show_state: bool) -> Table:
    table = Table(title=None, expand=False)
    for column in ("time", "seq", "from", "to", "type"):
        table.add_column(column, no_wrap=True)
    if show_state:
        table.add_column("state", no_wrap=True)
    table.add_column("summary", overflow="fold")
    for entry in entries:
        time, seq, sender, recipient, kind, summary = _entry_cells(entry)
        style = "red" if entry.state == "bad" or entry.message is None else None
        row = [time, seq, sender, recipient, kind]
        if show_state:
            row.append(state_label(entry))
        table.add_row(*row, summary, style=style)
    return table


def inbox_line(entry: InboxEntry) -> Text:
    """One streamed message, for `team inbox --follow`."""
    time, seq, sender, recipient, kind, summary = _entry_cells(entry)
    line = Text()
    line.append(f"{time} ", style="dim")
    line.append(f"#{seq:<5} ", style="dim")
    line.append(f"{sender} -> {recipient} ", style="bold")
    line.append(f"{kind} ", style="red" if entry.state == "bad" else "cyan")
    if entry.state == "bad":
        line.append("[quarantined] ", style="red")
    elif is_info(entry):
        line.append("[info] ", style="dim")
    line.append(summary)
    return line


def inbox_json(entry: InboxEntry) -> dict[str, Any]:
    """One message as a JSON object: the envelope plus where it sits in which inbox."""
    record: dict[str, Any] = {
        "inbox": entry.agent,
        "seq": entry.seq if entry.name else None,
        "state": state_label(entry),
        "needs_handling": needs_handling(entry),
        "file": str(entry.path),
    }
    if entry.message is not None:
        record["message"] = entry.message.model_dump(mode="json")
    else:
        record["problem"] = entry.problem
    return record


def team_header(info: TeamInfo) -> Text:
    header = Text()
    header.append(f"team {info.id}", style="bold")
    header.append(f"  status {info.status.value}  iteration {info.iteration}")
    if info.unconfined:
        header.append(f"\n{UNCONFINED_NOTICE}", style="bold red")
    if info.detail:
        style = "red" if info.status.value == "failed" else ""
        header.append(f"\n{inert(info.detail)}", style=style)
    if info.task:
        header.append(f"\ntask: {inert(info.task)}")
    if info.repository is not None:
        finished = info.status.value in ("done", "failed", "stopped")
        line = info.repository.how_to_get_it() if finished else info.repository.where()
        header.append(f"\n{inert(line)}")
    return header


def status_table(tasks: list[Task], spent: Mapping[int, Spend] | None = None) -> Table:
    """The task DAG; with `spent`, each task's tokens (prompt+completion) from the log."""
    table = Table()
    columns = ["id", "title", "owner", "status", "attempt", "depends on"]
    for column in [*columns, *(["tokens"] if spent else [])]:
        table.add_column(column, overflow="fold")
    for task in tasks:
        row: list[str | Text] = [
            str(task.id),
            inert_line(task.title),
            inert_line(task.owner or "-"),
            Text(task.status.value, style=STATUS_STYLE[task.status]),
            str(task.attempt),
            ", ".join(map(str, task.depends_on)) or "-",
        ]
        if spent:
            spend = spent.get(task.id)
            row.append(str(spend.tokens) if spend and spend.model_calls else "-")
        table.add_row(*row)
    return table


def agents_table(agents: list[AgentRecord], alive: list[bool]) -> Table:
    table = Table()
    for column in ("agent", "role", "state", "alive", "task", "heartbeat"):
        table.add_column(column)
    now = datetime.now(UTC)
    for agent, up in zip(agents, alive, strict=True):
        age = (now - agent.heartbeat_at).total_seconds()
        table.add_row(
            inert_line(agent.name),
            inert_line(agent.role),
            inert_line(agent.state),
            Text("yes" if up else "no", style="green" if up else "red"),
            str(agent.current_task or "-"),
            f"{age:.0f}s ago",
        )
    return table


def endpoints_table(loads: list[EndpointLoad]) -> Table:
    """The model-server pool: each endpoint's calls in flight against its capacity."""
    table = Table()
    for column in ("endpoint", "serves", "load", "state", "calls from"):
        table.add_column(column)
    for load in loads:
        room = "-" if load.capacity is None else str(load.capacity)
        style = "green" if load.state == "up" else "yellow" if load.state == "probing" else "red"
        table.add_row(
            inert_line(load.url),
            ", ".join(load.roles),
            f"{load.in_flight}/{room}",
            Text(load.state, style=style),
            inert_line(", ".join(load.holders) or "-"),
        )
    return table


def unheard_note(
    recipient: str, *, recipient_running: bool, coordinator_running: bool, team_started: bool
) -> str | None:
    """Why a message just delivered to `recipient` waits unread, or None when its process
    is there to read it (or it is the user's, read with `team inbox`)."""
    if recipient == USER or recipient_running:
        return None
    if coordinator_running:
        return f"{recipient} is not running: it will read it when the coordinator starts it again"
    if not team_started:
        return f"{recipient} is not running (the team has not started): it will read it then"
    return (
        f"{recipient} is not running (the team is stopped): "
        "it will read it when `team resume` starts it"
    )


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def logs_table(files: list[LogFile]) -> Table:
    """The agents that have logs, for `team logs` without an agent."""
    table = Table()
    for column in ("agent", "file", "size", "last modified"):
        table.add_column(column, no_wrap=True)
    for log in files:
        table.add_row(
            inert_line(log.agent),
            inert_line(log.path.name),
            _size(log.size),
            log.modified.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


def info_note(entries: list[InboxEntry]) -> str:
    """One line under the pending messages about the answers that need no reply."""
    messages = [e.message for e in entries if e.message is not None]
    kinds = ", ".join(sorted({m.type for m in messages}))
    senders = ", ".join(sorted({m.sender for m in messages}))
    answers = "answer needs" if len(entries) == 1 else "answers need"
    return (
        f"{len(entries)} {answers} no reply ({kinds} from "
        f"{inert_line(senders)}): `team inbox {USER} --all` shows them"
    )


def proposal_text(proposal: Proposal) -> Text:
    """The plan waiting for the user's approval, with how to answer it."""
    text = Text.assemble((f"plan {proposal.round} waits for your approval", "bold yellow"), "\n")
    for words in proposal.feedback:
        text.append(f"(asked again with your feedback: {words})\n", style="dim")
    for line in render_plan(proposal.plan):
        text.append(inert(line) + "\n")
    text.append(HOW_TO_ANSWER, style="bold")
    return text

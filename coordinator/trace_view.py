"""How `team trace` shows a run: the table of model calls, a task's or an agent's conversation
(each call with the messages new since the one before and its answer), and one exchange in
full; a JSON form of each for scripts. Every text a model or a tool wrote is made inert."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from coordinator.exchanges import Exchange, ToolUse, Turn, training_message
from coordinator.trajectories import Attempt, Call, Run, RunOnDisk
from coordinator.views import clock
from protocol.display import inert, inert_line

INDENT = "      "


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def started(call: Call) -> str:
    return clock(call.event.ts - timedelta(seconds=call.event.duration_s))


def _task(call: Call) -> str:
    return "-" if call.event.task_id is None else str(call.event.task_id)


def calls_table(run: Run) -> Table:
    table = Table()
    for column in ("#", "started", "agent", "task", "role", "model", "s"):
        table.add_column(column, no_wrap=True, justify="right" if column == "s" else "left")
    for column in ("prompt", "completion", "cached"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for call in run.calls:
        e = call.event
        table.add_row(
            str(call.number),
            started(call),
            inert_line(e.agent),
            _task(call),
            inert_line(e.role),
            inert_line(e.model),
            f"{e.duration_s:.2f}",
            str(e.prompt_tokens),
            str(e.completion_tokens),
            str(e.cached_tokens),
            Text(inert_line(e.outcome), style="green" if e.outcome == "ok" else "red"),
        )
    return table


def summary_line(run: Run) -> str:
    calls = run.calls
    failed = [c.event.outcome for c in calls if c.failed]
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(Counter(failed).items()))
    line = (
        f"{len(calls)} model calls, {sum(c.event.duration_s for c in calls):.1f} s; tokens: "
        f"{sum(c.event.prompt_tokens for c in calls)} prompt "
        f"({sum(c.event.cached_tokens for c in calls)} cached), "
        f"{sum(c.event.completion_tokens for c in calls)} completion; "
        + (f"{len(failed)} failed ({kinds})" if failed else "none failed")
    )
    if run.unended:
        line += f"; {run.unended} started and never ended (a killed process, or still waiting)"
    return inert_line(line)


def call_record(call: Call) -> dict[str, Any]:
    """One call of the table as JSON: its number and its event's fields."""
    event = call.event.model_dump(mode="json", exclude={"kind", "writer", "seq"})
    return {"number": call.number, **event, "overwritten_by": call.overwritten_by}


def calls_json(run: Run) -> dict[str, Any]:
    calls = run.calls
    return {
        "calls": [call_record(c) for c in calls],
        "summary": {
            "calls": len(calls),
            "seconds": round(sum(c.event.duration_s for c in calls), 3),
            "prompt_tokens": sum(c.event.prompt_tokens for c in calls),
            "completion_tokens": sum(c.event.completion_tokens for c in calls),
            "cached_tokens": sum(c.event.cached_tokens for c in calls),
            "failed": sum(1 for c in calls if c.failed),
            "never_ended": run.unended,
        },
    }


# --- conversations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """The calls of one task attempt, or one call of the coordinator's (a plan, an RCA)."""

    title: str
    calls: list[Call]
    attempt: Attempt | None = None


def task_conversations(run: Run, task_id: int) -> list[Conversation]:
    return [Conversation(_attempt_title(run, a), a.calls, a) for a in run.task_attempts(task_id)]


def agent_conversations(run: Run, agent: str) -> list[Conversation]:
    out: list[Conversation] = []
    for call in (c for c in run.calls if c.event.agent == agent):
        attempt = run.attempt_of(call)
        if attempt is None:
            out.append(Conversation(f"{call.event.role} (no task)", [call]))
        elif not out or out[-1].attempt is not attempt:
            out.append(Conversation(_attempt_title(run, attempt), [call], attempt))
        else:
            out[-1].calls.append(call)
    return out


def _attempt_title(run: Run, attempt: Attempt) -> str:
    title = run.titles.get(attempt.task_id, "")
    return (
        f"task {attempt.task_id}, attempt {attempt.attempt}"
        + (f": {title}" if title else "")
        + f"  ({attempt.owner or 'no owner'}, iteration {attempt.iteration}, {attempt.status})"
    )


def conversation_lines(disk: RunOnDisk, conversation: Conversation) -> Iterator[Text]:
    yield Text(inert_line(conversation.title), style="bold")
    previous: Exchange | None = None
    for i, call in enumerate(conversation.calls):
        exchange = disk.exchange(call)
        yield _call_header(call)
        if exchange is None:
            yield Text(f"    (not in the trace store: {disk.why_not_stored(call)})", style="dim")
        else:
            yield from _asked(exchange, previous)
            yield Text("    answered:", style="cyan")
            yield from _turn_lines(exchange.answer, exchange.error)
        following = conversation.calls[i + 1] if i + 1 < len(conversation.calls) else None
        if exchange is None or following is None or disk.exchange(following) is None:
            yield from _tool_events(call)  # the next request, which holds them, is not there
        previous = exchange
    attempt = conversation.attempt
    if attempt is not None and attempt.ended:
        yield _ending(attempt)


def _call_header(call: Call) -> Text:
    e = call.event
    line = Text(f"  call {call.number}  {started(call)}  {inert_line(e.agent)}  ")
    line.append(f"{inert_line(e.role)}  {inert_line(e.model)}  {e.duration_s:.2f} s  ")
    line.append(f"{e.prompt_tokens}+{e.completion_tokens} tokens  ")
    line.append(inert_line(e.outcome), style="green" if e.outcome == "ok" else "red")
    if e.error:
        line.append(f"  {inert_line(e.error)}", style="red")
    return line


def _asked(exchange: Exchange, previous: Exchange | None) -> Iterator[Text]:
    turns = exchange.turns
    if previous is None:
        yield Text(f"    asked ({plural(len(turns), 'message')}):", style="cyan")
        new = turns
    else:
        new = turns[len(previous.turns) :]
        if new and new[0].role == "assistant":
            new = new[1:]  # the answer shown above, as it went back to the model
        changed = turns[: len(previous.turns)] != previous.turns
        note = "; earlier ones shortened to fit the context" if changed else ""
        yield Text(f"    asked ({plural(len(new), 'new message')}{note}):", style="cyan")
    for turn in new:
        yield from _turn_lines(turn)


def _turn_lines(turn: Turn, error: str = "") -> Iterator[Text]:
    label = (
        f"tool result ({turn.tool_name})" if turn.role == "tool" and turn.tool_name else turn.role
    )
    if turn.text or not turn.tool_calls:
        yield from _block(f"{label}: ", turn.text or "(empty)")
    else:
        yield Text(f"{INDENT}{inert_line(label)}:")
    for use in turn.tool_calls:
        yield from _tool_use_lines(use)
    if error:
        yield Text(f"{INDENT}error: {inert_line(error)}", style="red")


def _block(head: str, text: str) -> Iterator[Text]:
    first, *rest = inert(text).split("\n")
    yield Text(f"{INDENT}{inert_line(head)}{first}")
    for line in rest:
        yield Text(f"{INDENT}  {line}")


def _tool_use_lines(use: ToolUse) -> Iterator[Text]:
    if isinstance(use.arguments, str):
        yield Text(f"{INDENT}call {inert_line(use.name)} with arguments that did not parse:")
        yield from _block("  ", use.arguments)
        return
    short = {k: v for k, v in use.arguments.items() if not _is_long(v)}
    inline = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in short.items())
    yield Text(f"{INDENT}call {inert_line(use.name)}({inert_line(inline)})", style="yellow")
    for key, value in use.arguments.items():
        if _is_long(value):
            yield Text(f"{INDENT}  {inert_line(key)}:", style="yellow")
            for line in inert(str(value)).rstrip("\n").split("\n"):
                yield Text(f"{INDENT}    {line}")


def _is_long(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or len(value) > 60)


def _tool_events(call: Call) -> Iterator[Text]:
    for tool in call.tools:
        style = "green" if tool.outcome in ("ok", "finished") else "red"
        line = Text(f"    ran {inert_line(tool.tool)}: ")
        line.append(inert_line(tool.outcome), style=style)
        line.append(f"  {inert_line(tool.detail)}  (from the event log, shortened)", style="dim")
        yield line


def _ending(attempt: Attempt) -> Text:
    line = Text(f"  ended {attempt.status}", style="green" if attempt.status == "done" else "red")
    if attempt.status != "done":
        line.append(f": {inert_line(attempt.note)}  [{attempt.error_class.value}]")
    return line


def conversation_json(disk: RunOnDisk, conversation: Conversation) -> dict[str, Any]:
    attempt = conversation.attempt
    calls = []
    previous: Exchange | None = None
    for call in conversation.calls:
        exchange = disk.exchange(call)
        record = call_record(call)
        record["tool_calls_run"] = [t.model_dump(mode="json") for t in call.tools]
        if exchange is None:
            record["not_stored"] = disk.why_not_stored(call)
        else:
            start = len(previous.turns) if previous else 0
            record["new_messages"] = [training_message(t) for t in exchange.turns[start:]]
            record["answer"] = training_message(exchange.answer)
        previous = exchange
        calls.append(record)
    fields = ("task_id", "attempt", "owner", "iteration", "status", "note")
    about: dict[str, Any] = {"title": conversation.title}
    about.update({name: getattr(attempt, name, None) for name in fields})
    failed = attempt is not None and attempt.ended and attempt.status != "done"
    about["error_class"] = attempt.error_class.value if attempt and failed else None
    return {**about, "calls": calls}


# --- one exchange in full --------------------------------------------------------------------


def exchange_lines(call: Call, exchange: Exchange) -> Iterator[Text]:
    e = call.event
    task = f"task {e.task_id} attempt {e.attempt or 1}" if e.task_id is not None else "no task"
    yield Text(f"call {call.number}: {e.call_id}", style="bold")
    yield Text(inert_line(f"  {e.agent}, {task}, role {e.role}, {e.model} ({e.provider})"))
    yield Text(f"  started {started(call)}, {e.duration_s:.2f} s, outcome {inert_line(e.outcome)}")
    temperature = "default" if exchange.temperature is None else f"{exchange.temperature:g}"
    yield Text(f"  temperature {temperature}, schema {inert_line(exchange.schema_name or '-')}")
    tools = ", ".join(exchange.tool_names) or "none"
    yield Text(f"  tools offered: {inert_line(tools)}")
    yield Text(f"messages ({len(exchange.turns)}):", style="cyan")
    for turn in exchange.turns:
        yield from _turn_lines(turn)
    yield Text("answer:", style="cyan")
    yield from _turn_lines(exchange.answer, exchange.error)
    yield Text(
        f"  finish_reason {inert_line(exchange.finish_reason or '-')}; tokens: {e.prompt_tokens} "
        f"prompt ({e.cached_tokens} cached), {e.completion_tokens} completion"
    )
    for note in exchange.cut:
        yield Text(f"  cut by the store: {inert_line(note)}", style="yellow")


def exchange_json(call: Call, exchange: Exchange) -> dict[str, Any]:
    return {"call": call_record(call), "exchange": exchange.raw}

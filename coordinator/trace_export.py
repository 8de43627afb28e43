"""`team trace export`: a run's failures written out for review by a stronger model
(markdown), and its model calls as training pairs for fine-tuning (JSON lines).

Markdown: one section per failed task attempt and per failed verification, in log order, each
with the task, the prompt (every message of the attempt's last stored model call, then its
answer), the code the attempt wrote (its write_file and edit_file calls, from the stored
answers; from the event log, shortened, where an answer is not stored), the error output,
the model, the temperature and the error category (coordinator/classify.py).

JSON lines: one object per stored model call with an answer (TRAINING_FIELDS).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from coordinator.classify import ErrorClass, classify
from coordinator.exchanges import Exchange, Turn, training_message
from coordinator.trace_view import plural
from coordinator.trajectories import Attempt, Call, RunOnDisk, Verification
from protocol import TaskStore
from protocol.events import ToolCalled
from protocol.taskstore import TaskFileError, UnknownTask

CODE_TOOLS = ("write_file", "edit_file")
TRAINING_FIELDS = {
    "messages": "the request's messages, then the assistant's answer: {role, content}, "
    'tool_calls as [{"type": "function", "function": {"name", "arguments": {...}}}], '
    "a tool result's name",
    "tools": 'the tools offered: [{"type": "function", "function": {name, description, '
    "parameters}}]",
    "call": "its number in `team trace` (1..N)",
    "task_id": "the task (null for the coordinator's plan and RCA calls)",
    "attempt": "the task's attempt (null without a task)",
    "role": "the model role: explore, plan, build, test, rca",
    "model": "the model that answered",
    "outcome": '"accepted" when the task attempt ended done (a coordinator call: when it '
    'succeeded), "rejected" otherwise',
    "error_category": "for a rejected one, its class (import_error, assertion, truncated, "
    "... see coordinator/classify.py); else null",
    "verified": "whether the verification after the attempt's build iteration passed; null "
    "when there was none",
}


# --- the code an attempt wrote -----------------------------------------------------------------


@dataclass(frozen=True)
class CodeWrite:
    call: int  # the model call that asked for it
    tool: str
    path: str
    arguments: dict[str, Any]
    whole: bool  # False: from the event log, where arguments are shortened
    result: str = ""  # what the tool said when it did not do it ("refused: ...")


def code_writes(disk: RunOnDisk, attempt: Attempt) -> list[CodeWrite]:
    writes = []
    for call in attempt.calls:
        exchange = disk.exchange(call)
        if exchange is not None:
            # The worker runs an answer's tool calls in order and logs each it runs.
            ran = [*call.tools, *([None] * len(exchange.answer.tool_calls))]
            for use, tool in zip(exchange.answer.tool_calls, ran, strict=False):
                if use.name in CODE_TOOLS and isinstance(use.arguments, dict):
                    path = str(use.arguments.get("path", "?"))
                    result = _not_done(tool)
                    writes.append(
                        CodeWrite(call.number, use.name, path, use.arguments, True, result)
                    )
            continue
        for tool in call.tools:
            if tool.tool in CODE_TOOLS:
                shortened = {"arguments": tool.arguments}  # "path=..., content=..." cut short
                writes.append(
                    CodeWrite(call.number, tool.tool, "", shortened, False, _not_done(tool))
                )
    return writes


def _not_done(tool: ToolCalled | None) -> str:
    if tool is None:
        return "not run"
    return "" if tool.outcome == "ok" else f"{tool.outcome}: {tool.detail}"


# --- markdown ------------------------------------------------------------------------------


def fence(text: str, language: str = "text") -> str:
    """`text` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def _language(path: str) -> str:
    return {"py": "python", "toml": "toml", "json": "json", "md": "markdown"}.get(
        path.rpartition(".")[2], "text"
    )


def _turn_markdown(turn: Turn, heading: str) -> str:
    parts = [f"**{heading}**"]
    if turn.text or not turn.tool_calls:
        parts.append(fence(turn.text or "(empty)"))
    for use in turn.tool_calls:
        arguments = (
            use.arguments
            if isinstance(use.arguments, str)
            else json.dumps(use.arguments, indent=1, ensure_ascii=False)
        )
        parts.append(f"tool call `{use.name}`:\n" + fence(arguments, "json"))
    return "\n\n".join(parts)


def _prompt_markdown(disk: RunOnDisk, attempt: Attempt) -> str:
    stored = [(c, x) for c in attempt.calls if (x := disk.exchange(c)) is not None]
    if not stored:
        if not attempt.calls:
            return "No model call was made in this attempt."
        return "No exchange of this attempt is in the trace store: " + "; ".join(
            f"call {c.number}: {disk.why_not_stored(c)}" for c in attempt.calls
        )
    call, exchange = stored[-1]
    lines = [
        f"Every message of call {call.number}, its last stored model call (the whole "
        "conversation up to it), then the answer."
    ]
    for turn in exchange.turns:
        name = f"tool result ({turn.tool_name})" if turn.tool_name else turn.role
        lines.append(_turn_markdown(turn, name))
    lines.append(_turn_markdown(exchange.answer, "answer"))
    if exchange.error:
        lines.append(f"**error:** {exchange.error}")
    return "\n\n".join(lines)


def _code_markdown(disk: RunOnDisk, attempt: Attempt) -> str:
    writes = code_writes(disk, attempt)
    if not writes:
        return "It wrote no file."
    parts = []
    for w in writes:
        where = f"call {w.call}" + ("" if w.whole else ", from the event log: shortened")
        where += f"; NOT DONE, {w.result}" if w.result else ""
        if not w.whole:
            parts.append(f"`{w.tool}` ({where}):\n" + fence(str(w.arguments["arguments"])))
        elif w.tool == "write_file":
            content = str(w.arguments.get("content", ""))
            parts.append(
                f"`{w.path}`, written whole ({where}):\n" + fence(content, _language(w.path))
            )
        else:
            old, new = str(w.arguments.get("old", "")), str(w.arguments.get("new", ""))
            parts.append(
                f"`{w.path}`, edited ({where}): replaced\n{fence(old, _language(w.path))}\n"
                f"with\n{fence(new, _language(w.path))}"
            )
    return "\n\n".join(parts)


def _model_line(attempt: Attempt) -> str:
    if not attempt.calls:
        return "- **model:** none called"
    event = attempt.calls[-1].event
    temperatures = {c.event.temperature for c in attempt.calls}
    shown = ", ".join("default" if t is None else f"{t:g}" for t in sorted(temperatures, key=str))
    return (
        f"- **model:** {event.model} ({event.provider}), role {event.role}; "
        f"**temperature:** {shown}"
    )


def _task_text(disk: RunOnDisk, task_id: int) -> str:
    try:
        task = TaskStore(disk.layout).get(task_id)
    except (TaskFileError, UnknownTask, OSError):
        return disk.run.titles.get(task_id, "(its task file is not readable)")
    return f"{task.title} (module {task.module}, files {', '.join(task.files) or '-'})\n\n" + fence(
        task.instructions
    )


def _attempt_markdown(disk: RunOnDisk, attempt: Attempt, level: str) -> str:
    return "\n\n".join(
        [
            f"{level} Task {attempt.task_id}, attempt {attempt.attempt} "
            f"({attempt.owner or 'no owner'}): {attempt.status}",
            _model_line(attempt),
            f"{level}# The task\n\n{_task_text(disk, attempt.task_id)}",
            f"{level}# The code it wrote\n\n{_code_markdown(disk, attempt)}",
            f"{level}# The prompt\n\n{_prompt_markdown(disk, attempt)}",
        ]
    )


def _failed_attempt(disk: RunOnDisk, attempt: Attempt, number: int) -> str:
    errors = [
        attempt.note,
        *(f"call {c.number}: {c.event.error}" for c in attempt.calls if c.failed),
    ]
    errors += [
        f"{t.tool}: {t.detail}" for c in attempt.calls for t in c.tools if t.outcome == "error"
    ]
    return "\n\n".join(
        [
            f"## {number}. Task {attempt.task_id}, attempt {attempt.attempt} failed: "
            f"{attempt.error_class.value}",
            f"- **error category:** {attempt.error_class.value} (its typed label: "
            f"`{attempt.label or 'none'}`)\n- **agent:** {attempt.owner}, iteration "
            f"{attempt.iteration}",
            "### Error output\n\n" + fence("\n".join(errors)),
            _attempt_markdown(disk, attempt, "###"),
        ]
    )


def _failed_verification(disk: RunOnDisk, verification: Verification, number: int) -> str:
    failing = [f"step `{s.name}`" for s in verification.steps if not s.passed]
    failing += [f"criterion {c.id}" for c in verification.criteria if not c.passed]
    built = [a for a in disk.run.attempts if a.iteration == verification.iteration]
    record = disk.iteration_record(verification)
    output = verification.output
    if record is not None and record.failures:  # what the checks printed, less shortened
        output = f"{verification.step_output}\n\nThe whole output (memory.json):\n{record.failures}"
    error_class = classify(output)
    sections = [
        f"## {number}. Verification of iteration {verification.iteration} failed: "
        f"{error_class.value}",
        f"- **error category:** {error_class.value}\n- **failing:** "
        + ", ".join(failing)
        + f"\n- **built in iteration {verification.iteration}:** "
        + (", ".join(f"task {a.task_id} ({a.owner})" for a in built) or "nothing"),
        "### Error output\n\n" + fence(output),
    ]
    if record is not None and record.root_cause:
        edits = "".join(f"\n- {edit}" for edit in record.edits)
        sections.append(f"### The root cause the RCA found\n\n{record.root_cause}{edits}")
    sections += [_attempt_markdown(disk, a, "###") for a in built]
    return "\n\n".join(sections)


def markdown(disk: RunOnDisk, team: str) -> tuple[str, int]:
    """The failure trajectories of the run as one markdown document, and how many."""
    failures: list[tuple[int, Attempt | Verification]] = [
        (a.position, a) for a in disk.run.attempts if a.ended and a.status != "done"
    ]
    failures += [(v.position, v) for v in disk.run.verifications if not v.passed]
    failures.sort(key=lambda item: item[0])
    head = (
        f"# Failure trajectories of {team}\n\n{plural(len(failures), 'failure')}, in the "
        "order they happened. Each gives the task, the prompt (every message of the model "
        "call), the code the attempt wrote, the error output, the model, the temperature and "
        "the error category."
    )
    body = []
    for number, (_, failure) in enumerate(failures, 1):
        if isinstance(failure, Attempt):
            body.append(_failed_attempt(disk, failure, number))
        else:
            body.append(_failed_verification(disk, failure, number))
    return "\n\n".join([head, *body]) + "\n", len(failures)


# --- training pairs ------------------------------------------------------------------------


def training_pairs(disk: RunOnDisk) -> Iterator[dict[str, Any]]:
    """One record per stored model call with an answer; calls of attempts still running
    (the team was stopped in them) are left out: their outcome is not known."""
    run = disk.run
    for call in run.calls:
        attempt = run.attempt_of(call)
        if attempt is not None and not attempt.ended:
            continue
        exchange = disk.exchange(call)
        if exchange is None or not (exchange.answer.text or exchange.answer.tool_calls):
            continue
        yield _pair(disk, call, attempt, exchange)


def _pair(
    disk: RunOnDisk, call: Call, attempt: Attempt | None, exchange: Exchange
) -> dict[str, Any]:
    accepted = attempt.status == "done" if attempt is not None else not call.failed
    category = None
    if not accepted:
        category = (attempt.error_class if attempt is not None else _call_class(call)).value
    verification = disk.run.verification_after(attempt) if attempt is not None else None
    return {
        "messages": [training_message(t) for t in [*exchange.turns, exchange.answer]],
        "tools": exchange.tools,
        "call": call.number,
        "task_id": call.event.task_id,
        "attempt": call.event.attempt if call.event.task_id is not None else None,
        "role": call.event.role,
        "model": exchange.model or call.event.model,
        "outcome": "accepted" if accepted else "rejected",
        "error_category": category,
        "verified": verification.passed if verification is not None else None,
    }


def _call_class(call: Call) -> ErrorClass:
    return classify(call.event.error, call.event.outcome)

"""The event log (DESIGN §3): `.agents/events.jsonl`, one JSON object per line for every state
change, message, model call, tool call and verification step, from every process of the team.

Several processes append at once. Each event is one `write(2)` of one whole line to a file
opened with O_APPEND, under an flock on the file: lines never interleave. A writer killed in the
middle of its write can leave a torn last line; the next writer, under the lock, ends it with a
newline first, so a torn line is one unreadable line (skipped and counted by the reader), never
a reader's or a neighbour's broken one. Events must never stop the work: a write that fails
(a full disk, a directory gone) is counted and dropped.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from protocol.atomic import write_all
from protocol.messages import Message, utc_now

ARGUMENT_CHARS = 160  # a tool call's arguments, shortened: the full call is in the trace store


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: datetime = Field(default_factory=utc_now)
    writer: str = ""  # "<agent>:<pid>": one writer's events carry increasing `seq`
    seq: int = 0
    agent: str = ""


class TeamChanged(_Event):
    kind: Literal["team"] = "team"
    status: str
    detail: str = ""
    iteration: int = 0


class TaskChanged(_Event):
    kind: Literal["task"] = "task"
    task_id: int
    status: str
    attempt: int = 1
    owner: str | None = None
    by: str = ""
    note: str = ""
    costs_attempt: bool = True
    category: str = ""  # a failure's ErrorCategory value ("lint", "budget", ...)
    # Set when the task is created: what it is, so a view of the log needs no task file.
    title: str = ""
    module: str = ""
    role: str = ""
    depends_on: list[int] = Field(default_factory=list)


class AgentChanged(_Event):
    kind: Literal["agent"] = "agent"
    name: str
    state: str  # starting, idle, working, stopped, dead
    role: str = ""
    pid: int | None = None
    task_id: int | None = None


class MessageEvent(_Event):
    kind: Literal["message"] = "message"
    action: Literal["sent", "handled", "quarantined"]
    id: str
    type: str
    sender: str
    recipient: str

    @classmethod
    def of(
        cls, action: Literal["sent", "handled", "quarantined"], message: Message
    ) -> MessageEvent:
        return cls(
            action=action,
            id=message.id,
            type=message.type,
            sender=message.sender,
            recipient=message.recipient,
        )


class ModelCallStarted(_Event):
    kind: Literal["model_start"] = "model_start"
    call_id: str
    role: str
    model: str
    provider: str
    task_id: int | None = None
    span_id: str = ""


class ModelCallEnded(_Event):
    kind: Literal["model_call"] = "model_call"
    call_id: str
    role: str
    model: str
    provider: str
    task_id: int | None = None
    attempt: int | None = None
    duration_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    outcome: str = "ok"  # "ok", or the error's type name (TruncatedAnswer, BadAnswer, ...)
    error: str = ""
    temperature: float | None = None
    finish_reason: str | None = None
    streamed: bool = False
    endpoint: str = ""  # the URL of the server that answered (or failed) the call
    trace_id: str = ""
    span_id: str = ""
    parent_id: str | None = None
    stored: bool = False  # the full exchange is in the trace store


class ToolCalled(_Event):
    kind: Literal["tool_call"] = "tool_call"
    tool: str
    arguments: str = ""
    outcome: str = "ok"  # ok, error, refused, finished
    detail: str = ""
    duration_s: float = 0.0
    task_id: int | None = None
    span_id: str = ""
    parent_id: str | None = None


class VerifyStepRan(_Event):
    kind: Literal["verify_step"] = "verify_step"
    name: str
    passed: bool
    duration_s: float = 0.0
    detail: str = ""
    iteration: int = 0


class CriterionChecked(_Event):
    kind: Literal["criterion"] = "criterion"
    id: str
    passed: bool
    detail: str = ""
    iteration: int = 0


class BudgetReached(_Event):
    kind: Literal["budget"] = "budget"
    scope: Literal["team", "task"]
    limit: int
    used: int
    task_id: int | None = None


Event = Annotated[
    TeamChanged
    | TaskChanged
    | AgentChanged
    | MessageEvent
    | ModelCallStarted
    | ModelCallEnded
    | ToolCalled
    | VerifyStepRan
    | CriterionChecked
    | BudgetReached,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


@dataclass
class EventLog:
    """One process's writer of one log file; thread-safe. `agent` names the process."""

    path: Path
    agent: str
    dropped: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self.writer = f"{self.agent}:{os.getpid()}"

    def emit(self, event: _Event) -> None:
        with self._lock:
            self._seq += 1
            stamped = event.model_copy(
                update={"writer": self.writer, "seq": self._seq, "agent": event.agent or self.agent}
            )
            try:
                line = stamped.model_dump_json(exclude_defaults=False).encode("utf-8") + b"\n"
                append_line(self.path, line)
            except (OSError, ValueError):  # a full disk; a text that cannot be encoded
                self.dropped += 1


def append_line(path: Path, line: bytes) -> None:
    """Append one whole line to `path` under its flock (several processes at once)."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a writer died mid-line: end its torn line first
        # One write(2) but for a short one (a disk filling up): the rest, or an OSError.
        write_all(fd, line)
    finally:
        os.close(fd)  # closing drops the flock


@dataclass(frozen=True)
class ReadResult:
    events: list[Event]
    offset: int  # where the next read starts: after the last whole line
    bad_lines: int


def read_events(path: Path, offset: int = 0) -> ReadResult:
    """The whole lines of `path` from byte `offset` on, parsed; a line that is not an event
    (torn by a kill, or written by hand) is counted, not raised."""
    try:
        with open(path, "rb") as handle:
            return _read_from(handle, offset)
    except FileNotFoundError:
        return ReadResult([], offset, 0)


def _read_from(handle: BinaryIO, offset: int) -> ReadResult:
    handle.seek(offset)
    data = handle.read()
    end = data.rfind(b"\n") + 1  # a last line still being written is read next time
    events: list[Event] = []
    bad = 0
    for raw in data[:end].splitlines():
        if not raw.strip():
            continue
        try:
            events.append(EVENT_ADAPTER.validate_json(raw))
        except ValidationError:
            bad += 1
    return ReadResult(events, offset + end, bad)


class EventTail:
    """Reads a log as it grows: each `read()` gives the events appended since the last one.
    A log that was replaced (archived by a re-run) or shrank is read again from its start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.bad_lines = 0
        self._inode: int | None = None

    def read(self) -> list[Event]:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return []
        with handle:
            # The file read is the one looked at: a log replaced between a look by name and
            # the read would otherwise be read from the old file's offset.
            stat = os.fstat(handle.fileno())
            if stat.st_ino != self._inode or stat.st_size < self.offset:
                self._inode, self.offset = stat.st_ino, 0
            result = _read_from(handle, self.offset)
        self.offset = result.offset
        self.bad_lines += result.bad_lines
        return result.events


# --- the process's log -------------------------------------------------------------------------

_logs: dict[Path, EventLog] = {}
_logs_lock = threading.Lock()
_process_agent = "cli"


def set_process_agent(name: str) -> None:
    """Name this process's events (the agent it is): called once at its start."""
    global _process_agent
    _process_agent = name
    with _logs_lock:
        _logs.clear()


def event_log(path: Path) -> EventLog:
    """This process's writer for the log at `path` (one per path, so one sequence)."""
    with _logs_lock:
        log = _logs.get(path)
        if log is None or log.writer != f"{_process_agent}:{os.getpid()}":
            log = _logs[path] = EventLog(path, _process_agent)
        return log


def emit(path: Path, event: _Event) -> None:
    """Append `event` to the log at `path` unless its directory is gone (no team there)."""
    if path.parent.is_dir():
        event_log(path).emit(event)


def short(text: str, limit: int = ARGUMENT_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

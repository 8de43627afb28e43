"""Protocol v1: the message envelope and its eight payload types (DESIGN §4; `guidance`, the
eighth, came with issue 14).

A message on disk is one JSON object:

    {"v": 1, "id": "...", "type": "completion", "team": "...", "sender": "builder-storage",
     "recipient": "coordinator", "created_at": "...", "reply_to": null, "payload": {...}}

Every message type is its own envelope class with `type: Literal[...]`; `Message` is their
discriminated union and `MESSAGE_ADAPTER` the one place that parses it.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

PROTOCOL_VERSION = 1
AGENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_AGENT_NAME = re.compile(AGENT_NAME_PATTERN)

AgentName = Annotated[str, Field(pattern=AGENT_NAME_PATTERN)]
TaskId = Annotated[int, Field(ge=1)]


def is_agent_name(name: str) -> bool:
    """Agent names are also directory names: lower-case letters, digits, `-` and `_`."""
    return bool(_AGENT_NAME.match(name))


def new_message_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    # Unknown fields are an error, not silently dropped: a typo in a payload must be caught.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- payloads --------------------------------------------------------------------------------


class FileEdit(_Model):
    """One concrete change an RCA asks for on a retry."""

    file: str
    action: str
    details: str


class TraceRef(_Model):
    """Where a worker's spans hang in the team run's trace (DESIGN §3)."""

    trace_id: str = Field(pattern=r"^[0-9a-f]{1,32}$")
    parent_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{1,32}$")


class TaskAssignment(_Model):
    task_id: TaskId
    attempt: int = Field(ge=1)
    title: str
    files: list[str]
    instructions: str = ""
    dod: list[str] = Field(default_factory=list, description="ids of the DoD criteria it serves")
    context: list[FileEdit] = Field(
        default_factory=list, description="the RCA's concrete edits, on retries"
    )
    cascade_step: int = Field(
        default=0, ge=0, description="fixes of these files so far: the role's cascade model"
    )
    trace: TraceRef | None = None


class ProgressUpdate(_Model):
    task_id: TaskId
    phase: str
    detail: str = ""


class FileCheck(_Model):
    path: str
    ok: bool
    detail: str = ""


class Completion(_Model):
    task_id: TaskId
    attempt: int = Field(ge=1)
    files_changed: list[str]
    summary: str
    checks: list[FileCheck] = Field(default_factory=list)


class ErrorCategory(StrEnum):
    MODEL = "model"
    # The model server cannot be reached: the coordinator holds dispatch until it answers,
    # and the task's failure costs it no attempt.
    UNREACHABLE = "model_unreachable"
    STOPPED = "stopped"  # a shutdown request or signal stopped the task: no attempt lost
    TOOL = "tool"
    LINT = "lint"
    TIMEOUT = "timeout"
    BUDGET = "budget"  # the task's token cap (team.task_max_tokens) was reached
    # The agent got nowhere (prose, cut answers, the same call, failing calls) after a nudge.
    NO_PROGRESS = "no_progress"
    PROTOCOL = "protocol"
    CRASH = "crash"
    OTHER = "other"


class ErrorReport(_Model):
    task_id: TaskId | None = None
    category: ErrorCategory
    message: str
    stderr_tail: str = ""
    recoverable: bool


class PlanApproval(_Model):
    """A request (coordinator -> user or agent) or its response, told apart by `stage`."""

    stage: Literal["request", "response"]
    plan_summary: str | None = None
    approved: bool | None = None
    feedback: str = ""

    @model_validator(mode="after")
    def _stage_has_its_fields(self) -> Self:
        if self.stage == "request" and not self.plan_summary:
            raise ValueError("a plan_approval request needs a plan_summary")
        if self.stage == "response" and self.approved is None:
            raise ValueError("a plan_approval response needs approved: true or false")
        return self


GUIDANCE_MAX_CHARS = 4000


class Guidance(_Model):
    """Words from the user (`team tell`) for an agent's next model turn: a worker puts them
    into its task's conversation, the coordinator into its next planning or RCA prompt."""

    text: str = Field(min_length=1, max_length=GUIDANCE_MAX_CHARS)

    @model_validator(mode="after")
    def _not_blank(self) -> Self:
        if not self.text.strip():
            raise ValueError("guidance needs some text")
        return self


class ShutdownRequest(_Model):
    reason: str
    grace_seconds: float = Field(default=30.0, ge=0)


class ShutdownResponse(_Model):
    accepted: bool
    unfinished: list[str] = Field(default_factory=list)


Payload = (
    TaskAssignment
    | ProgressUpdate
    | Completion
    | ErrorReport
    | PlanApproval
    | Guidance
    | ShutdownRequest
    | ShutdownResponse
)


# --- envelopes -------------------------------------------------------------------------------


class _Envelope(_Model):
    v: Literal[1] = 1
    id: str = Field(default_factory=new_message_id, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    team: str = Field(min_length=1)
    sender: AgentName
    recipient: AgentName
    created_at: datetime = Field(default_factory=utc_now)
    reply_to: str | None = None


class TaskAssignmentMessage(_Envelope):
    type: Literal["task_assignment"] = "task_assignment"
    payload: TaskAssignment


class ProgressUpdateMessage(_Envelope):
    type: Literal["progress_update"] = "progress_update"
    payload: ProgressUpdate


class CompletionMessage(_Envelope):
    type: Literal["completion"] = "completion"
    payload: Completion


class ErrorReportMessage(_Envelope):
    type: Literal["error_report"] = "error_report"
    payload: ErrorReport


class PlanApprovalMessage(_Envelope):
    type: Literal["plan_approval"] = "plan_approval"
    payload: PlanApproval


class GuidanceMessage(_Envelope):
    type: Literal["guidance"] = "guidance"
    payload: Guidance


class ShutdownRequestMessage(_Envelope):
    type: Literal["shutdown_request"] = "shutdown_request"
    payload: ShutdownRequest


class ShutdownResponseMessage(_Envelope):
    type: Literal["shutdown_response"] = "shutdown_response"
    payload: ShutdownResponse


Message = Annotated[
    TaskAssignmentMessage
    | ProgressUpdateMessage
    | CompletionMessage
    | ErrorReportMessage
    | PlanApprovalMessage
    | GuidanceMessage
    | ShutdownRequestMessage
    | ShutdownResponseMessage,
    Field(discriminator="type"),
]
MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)

_ENVELOPES: dict[type[BaseModel], type[_Envelope]] = {
    TaskAssignment: TaskAssignmentMessage,
    ProgressUpdate: ProgressUpdateMessage,
    Completion: CompletionMessage,
    ErrorReport: ErrorReportMessage,
    PlanApproval: PlanApprovalMessage,
    Guidance: GuidanceMessage,
    ShutdownRequest: ShutdownRequestMessage,
    ShutdownResponse: ShutdownResponseMessage,
}
PAYLOAD_TYPES: dict[str, type[BaseModel]] = {
    str(envelope.model_fields["type"].default): payload for payload, envelope in _ENVELOPES.items()
}
MESSAGE_TYPES: tuple[str, ...] = tuple(PAYLOAD_TYPES)


def make_message(
    payload: Payload,
    *,
    team: str,
    sender: str,
    recipient: str,
    reply_to: str | None = None,
    message_id: str | None = None,
) -> Message:
    """Wrap a payload in the envelope of its type.

    `message_id` lets a sender that retries after a crash reuse the id, so the receiver
    handles the message once.
    """
    envelope = _ENVELOPES[type(payload)]
    fields: dict[str, Any] = {
        "team": team,
        "sender": sender,
        "recipient": recipient,
        "reply_to": reply_to,
        "payload": payload,
    }
    if message_id is not None:
        fields["id"] = message_id
    message: Message = envelope.model_validate(fields)  # type: ignore[assignment]
    return message


def message_json_schema() -> dict[str, Any]:
    """The JSON Schema of a protocol v1 message, generated from the models above."""
    return MESSAGE_ADAPTER.json_schema()


def summarize(message: Message) -> str:
    """One line that says what a message is about, for tables and logs."""
    p = message.payload
    match p:
        case TaskAssignment():
            return f"task {p.task_id} (attempt {p.attempt}): {p.title} [{', '.join(p.files)}]"
        case ProgressUpdate():
            return f"task {p.task_id}: {p.phase}" + (f" - {p.detail}" if p.detail else "")
        case Completion():
            return f"task {p.task_id} done: {p.summary}"
        case ErrorReport():
            where = f"task {p.task_id}: " if p.task_id is not None else ""
            return f"{where}{p.category.value}: {p.message}"
        case PlanApproval(stage="request"):
            return f"approve plan? {p.plan_summary}"
        case PlanApproval():
            verdict = "approved" if p.approved else "rejected"
            return verdict + (f": {p.feedback}" if p.feedback else "")
        case Guidance():
            return f"guidance: {p.text}"
        case ShutdownRequest():
            return f"shut down within {p.grace_seconds:g}s: {p.reason}"
        case ShutdownResponse():
            left = f", left: {', '.join(p.unfinished)}" if p.unfinished else ""
            return ("accepted" if p.accepted else "refused") + left
    raise AssertionError(f"unhandled payload {type(p).__name__}")

"""What goes into and comes out of a model call, independent of any provider's wire format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.roles import ROLES, Role

__all__ = [
    "ROLES",
    "CallProgress",
    "ChatMessage",
    "ChatResult",
    "Reply",
    "Role",
    "ToolCall",
    "ToolSpec",
    "Usage",
]


def scrubbed(value: Any) -> Any:
    """`value` with every lone surrogate (a model's `"\\ud800"` in JSON) made U+FFFD: such a
    string cannot be encoded as UTF-8, and would fail the next request, the event log and
    the trace store far from where it came in."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {scrubbed(k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return value


class ToolCall(BaseModel):
    """A call the model made. `arguments_error` is the parser's words when the arguments it
    sent could not be read (OpenAI's JSON string cut off, say): `arguments` is then empty and
    the call is answered as a failed one, not run."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    arguments_error: str | None = None

    @field_validator("name", "arguments")
    @classmethod
    def _scrub(cls, value: Any) -> Any:
        return scrubbed(value)


class ChatMessage(BaseModel):
    """One turn of a conversation. A `tool` message answers the tool call `tool_call_id`."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    tool_name: str | None = None

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        return cls(role="user", content=content)

    @classmethod
    def tool_result(cls, call: ToolCall, content: str) -> ChatMessage:
        return cls(role="tool", content=content, tool_call_id=call.id, tool_name=call.name)


class ToolSpec(BaseModel):
    """A tool the model may call; `parameters` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Usage(BaseModel):
    """Tokens as the server reports them; `cached_tokens` is the part of the prompt it did
    not process again (OpenAI `prompt_tokens_details.cached_tokens`, llama.cpp
    `timings.cache_n`, Anthropic `cache_read_input_tokens`; Ollama reports none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Reply(BaseModel):
    """A provider's answer, decoded from its wire format (before any recovery or parsing)."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str = ""

    @field_validator("text")
    @classmethod
    def _scrub(cls, value: str) -> str:
        text: str = scrubbed(value)
        return text


class ChatResult(BaseModel):
    """What `ModelClient.chat` returns."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    text: str
    tool_calls: list[ToolCall]
    parsed: Any = None
    usage: Usage
    duration_s: float
    model: str
    provider: str
    finish_reason: str | None = None
    attempts: int = 1
    recovered_tool_calls: bool = False
    streamed: bool = False
    call_id: str = ""  # the call's id in the event log and trace store ("" untraced)


@dataclass(frozen=True)
class CallProgress:
    """What a pane shows of a model call while it runs: `start`, then `chunk` as a streamed
    answer arrives (`tokens` so far, the `text` so far), then `end`."""

    phase: Literal["start", "chunk", "end"]
    role: str
    model: str
    elapsed_s: float = 0.0
    tokens: int = 0
    text: str = ""
    ok: bool = True

"""What goes into and comes out of a model call, independent of any provider's wire format."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocol.roles import ROLES, Role

__all__ = ["ROLES", "ChatMessage", "ChatResult", "Reply", "Role", "ToolCall", "ToolSpec", "Usage"]


class ToolCall(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


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
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Reply(BaseModel):
    """A provider's answer, decoded from its wire format (before any recovery or parsing)."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str = ""


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

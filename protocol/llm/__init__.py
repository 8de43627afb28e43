"""The model client (DESIGN §7): one interface for every role over Ollama, OpenAI-compatible
servers, Anthropic, and recorded cassettes; plus the scripted server that stands in for a model
in tests and demos."""

from protocol.llm.client import ModelClient
from protocol.llm.errors import (
    BadAnswer,
    BadServerURL,
    CassetteMismatch,
    ContextOverflow,
    ModelError,
    ModelNotFound,
    ModelTimeout,
    ServerError,
    ServerUnreachable,
    TruncatedAnswer,
)
from protocol.llm.transport import HttpxTransport, RecordingTransport, ReplayTransport
from protocol.llm.types import ROLES, ChatMessage, ChatResult, Role, ToolCall, ToolSpec, Usage

__all__ = [
    "ROLES",
    "BadAnswer",
    "BadServerURL",
    "CassetteMismatch",
    "ChatMessage",
    "ChatResult",
    "ContextOverflow",
    "HttpxTransport",
    "ModelClient",
    "ModelError",
    "ModelNotFound",
    "ModelTimeout",
    "RecordingTransport",
    "ReplayTransport",
    "Role",
    "ServerError",
    "ServerUnreachable",
    "ToolCall",
    "ToolSpec",
    "TruncatedAnswer",
    "Usage",
]

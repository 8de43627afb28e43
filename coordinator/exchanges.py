"""One stored model exchange (protocol/callstore.py), read the same way whatever the provider's
wire format was (Ollama, OpenAI, Anthropic): the conversation as turns, the tools offered,
the schema asked for, the temperature and the answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from protocol.llm.wire import ANSWER_TOOL


@dataclass(frozen=True)
class ToolUse:
    name: str
    arguments: dict[str, Any] | str  # a string when they did not parse as a JSON object


@dataclass(frozen=True)
class Turn:
    role: str  # system, user, assistant, tool
    text: str = ""
    tool_calls: tuple[ToolUse, ...] = ()
    tool_name: str = ""  # the tool a `tool` turn answers, when the wire names it


@dataclass(frozen=True)
class Exchange:
    turns: list[Turn]  # the request's messages
    answer: Turn
    error: str  # "<ErrorType>: message" for a failed call
    tools: list[dict[str, Any]]  # offered, in the function-calling form {"type", "function"}
    schema_name: str | None
    temperature: float | None
    finish_reason: str | None
    usage: dict[str, int]
    model: str
    cut: list[str] = field(default_factory=list)  # strings the store shortened
    raw: dict[str, Any] = field(default_factory=dict)  # the stored record, as it is

    @property
    def tool_names(self) -> list[str]:
        return [str(t["function"].get("name", "?")) for t in self.tools]


def read_exchange(record: dict[str, Any]) -> Exchange:
    """The exchange a `CallStore.load` gave back."""
    request = record.get("request") or {}
    answer = record.get("answer") or {}
    schema_name, tools = _schema_and_tools(request)
    options = request.get("options") or {}
    temperature = options.get("temperature", request.get("temperature"))
    return Exchange(
        turns=_turns(request),
        answer=Turn(
            "assistant",
            str(answer.get("text") or ""),
            tuple(
                _tool_use(c.get("name"), c.get("arguments")) for c in _dicts(answer, "tool_calls")
            ),
        ),
        error=str(answer.get("error") or ""),
        tools=tools,
        schema_name=schema_name,
        temperature=temperature if isinstance(temperature, int | float) else None,
        finish_reason=answer.get("finish_reason"),
        usage={k: v for k, v in (answer.get("usage") or {}).items() if isinstance(v, int)},
        model=str(answer.get("model") or request.get("model") or ""),
        cut=[str(note) for note in record.get("cut") or []],
        raw=record,
    )


def _dicts(value: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = value.get(key)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _tool_use(name: Any, arguments: Any) -> ToolUse:
    if isinstance(arguments, str):  # OpenAI sends them as a JSON string
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return ToolUse(str(name or "?"), arguments)
        arguments = parsed
    if not isinstance(arguments, dict):
        return ToolUse(str(name or "?"), json.dumps(arguments))
    return ToolUse(str(name or "?"), arguments)


def _turns(request: dict[str, Any]) -> list[Turn]:
    turns = []
    if isinstance(request.get("system"), str):  # Anthropic keeps it out of the messages
        turns.append(Turn("system", request["system"]))
    for message in _dicts(request, "messages"):
        if "missing" in message:  # a blob the store lost
            turns.append(Turn("missing", str(message["missing"])))
        elif isinstance(message.get("content"), list):
            turns.extend(_block_turns(str(message.get("role", "?")), message["content"]))
        else:
            calls = tuple(
                _tool_use((c.get("function") or c).get("name"), (c.get("function") or c).get(
                    "arguments"))
                for c in _dicts(message, "tool_calls")
            )  # fmt: skip
            name = message.get("tool_name") or message.get("name") or ""
            role = str(message.get("role", "?"))
            turns.append(Turn(role, str(message.get("content") or ""), calls, str(name)))
    return turns


def _block_turns(role: str, blocks: list[Any]) -> list[Turn]:
    """Anthropic's content blocks: text and tool_use make one turn, each tool_result its own."""
    texts, calls, results = [], [], []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(_tool_use(block.get("name"), block.get("input")))
        elif kind == "tool_result":
            content = block.get("content")
            results.append(
                Turn("tool", content if isinstance(content, str) else json.dumps(content))
            )
    own = [Turn(role, "".join(texts), tuple(calls))] if texts or calls else []
    return results + own


def _schema_and_tools(request: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The name of the answer's schema, if one was asked for, and the tools offered."""
    schema_name = None
    form = request.get("format")  # Ollama: the schema itself, or "json"
    if isinstance(form, dict):
        schema_name = str(form.get("title") or "a JSON schema")
    elif isinstance(form, str):
        schema_name = form
    response_format = request.get("response_format")  # OpenAI
    if isinstance(response_format, dict):
        schema = response_format.get("json_schema") or {}
        schema_name = str(schema.get("name") or response_format.get("type") or "")
    tools = []
    for tool in _dicts(request, "tools"):
        if "function" in tool:
            tools.append(tool)
        elif tool.get("name") == ANSWER_TOOL:  # Anthropic's schema answer is a forced tool
            schema_name = str((tool.get("input_schema") or {}).get("title") or ANSWER_TOOL)
        else:
            function = {
                "name": tool.get("name"),
                "description": tool.get("description", ""),
                "parameters": tool.get("input_schema", {}),
            }
            tools.append({"type": "function", "function": function})
    return schema_name, tools


def training_message(turn: Turn) -> dict[str, Any]:
    """A turn in the chat form fine-tuning tools read: role and content, `tool_calls` as
    {"type": "function", "function": {"name", "arguments": {...}}}, a tool turn's `name`."""
    message: dict[str, Any] = {"role": turn.role, "content": turn.text}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in turn.tool_calls
        ]
    if turn.role == "tool" and turn.tool_name:
        message["name"] = turn.tool_name
    return message

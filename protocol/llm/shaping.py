"""Shaping a conversation for a model and reading its answer: tools written into the prompt
for a model without native tool calls, tool calls recovered from text, a schema answer parsed,
and the words of a repair round."""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from protocol.llm.toolcalls import extract_json, recover_tool_calls
from protocol.llm.types import ChatMessage, Reply, ToolCall, ToolSpec
from protocol.llm.wire import ANSWER_TOOL

TEXT_TOOLS_PROMPT = """You can call these tools. To call one, answer with exactly one block
<tool_call>{{"name": "<tool name>", "arguments": {{...}}}}</tool_call>
and nothing else. The tools, as JSON:
{tools}"""
REPAIR_PROMPT = """Your answer could not be used: {error}
Answer again with only a JSON object that matches the required schema, no other text."""


def with_text_tools(
    conversation: list[ChatMessage], tools: Sequence[ToolSpec]
) -> list[ChatMessage]:
    specs = json.dumps([tool.model_dump() for tool in tools], indent=1)
    prompt = ChatMessage.system(TEXT_TOOLS_PROMPT.format(tools=specs))
    # Text-mode models see calls and results as plain turns.
    plain = [
        ChatMessage(role="assistant", content=m.content or calls_text(m))
        if m.role == "assistant" and m.tool_calls
        else ChatMessage.user(f"[{m.tool_name} result]\n{m.content}")
        if m.role == "tool"
        else m
        for m in conversation
    ]
    return [prompt, *plain]


def tool_calls_of(reply: Reply, tools: Sequence[ToolSpec] | None) -> tuple[list[ToolCall], bool]:
    if reply.tool_calls or not tools:
        calls = [c for c in reply.tool_calls if c.name != ANSWER_TOOL]
        return calls, False
    recovered = recover_tool_calls(reply.text, {tool.name for tool in tools})
    return recovered, bool(recovered)


def parse_answer(reply: Reply, schema: type[BaseModel]) -> BaseModel:
    forced = [c for c in reply.tool_calls if c.name == ANSWER_TOOL]
    if forced and forced[0].arguments_error:
        raise ValueError(f"the answer is not valid JSON: {forced[0].arguments_error}")
    value = forced[0].arguments if forced else extract_json(reply.text)
    return schema.model_validate(value)


def calls_text(message: Reply | ChatMessage) -> str:
    return "\n".join(
        f"<tool_call>{json.dumps({'name': c.name, 'arguments': c.arguments})}</tool_call>"
        for c in message.tool_calls
    )


def describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in exc.errors()[:5]
        ]
        return "; ".join(parts)
    return str(exc)

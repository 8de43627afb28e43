from __future__ import annotations

import pytest
from pydantic import BaseModel

from protocol.llm.shaping import parse_answer
from protocol.llm.toolcalls import coerce_arguments, extract_json, recover_tool_calls, strip_think
from protocol.llm.types import Reply
from protocol.llm.wire import ANSWER_TOOL, native_call

TOOLS = {"read_file", "finish"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>hmm</think>answer", "answer"),
        ("<think>a</think> x <think>b</think> y", "x  y"),
        ("reasoning...</think>answer", "answer"),
        ("answer<think>never closed", "answer"),
        ("plain", "plain"),
    ],
)
def test_strip_think(text: str, expected: str) -> None:
    assert strip_think(text) == expected


def test_two_tagged_calls_are_both_recovered_in_order() -> None:
    text = (
        '<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>\n'
        '<tool_call>{"name": "finish", "arguments": {"summary": "ok"}}</tool_call>'
    )
    calls = recover_tool_calls(text, TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [
        ("read_file", {"path": "a.py"}),
        ("finish", {"summary": "ok"}),
    ]
    assert len({c.id for c in calls}) == 2


def test_the_openai_shape_and_parameters_key_are_understood() -> None:
    text = '{"function": {"name": "read_file", "arguments": "{\\"path\\": \\"x\\"}"}}'
    assert recover_tool_calls(text, TOOLS)[0].arguments == {"path": "x"}
    text = '{"name": "finish", "parameters": {"summary": "s"}}'
    assert recover_tool_calls(text, TOOLS)[0].arguments == {"summary": "s"}


def test_a_list_of_calls_in_a_fence() -> None:
    text = '```json\n[{"name": "read_file", "arguments": {"path": "a"}}, {"name": "finish"}]\n```'
    assert [c.name for c in recover_tool_calls(text, TOOLS)] == ["read_file", "finish"]


@pytest.mark.parametrize(
    "text",
    [
        "I think the answer is {x: 1}",
        '{"name": "rm_rf", "arguments": {}}',
        '{"result": {"name": "read_file"}}',
        '<tool_call>{"name": "read_file", "arguments": "not json"}</tool_call>',
        "",
    ],
    ids=["prose", "unknown-tool", "not-a-call", "bad-arguments", "empty"],
)
def test_text_without_a_call_to_an_offered_tool_gives_none(text: str) -> None:
    assert recover_tool_calls(text, TOOLS) == []


def test_ids_are_stable_so_replays_match() -> None:
    text = '{"name": "finish", "arguments": {"summary": "s"}}'
    assert recover_tool_calls(text, TOOLS)[0].id == recover_tool_calls(text, TOOLS)[0].id


def test_arguments_as_object_or_json_string() -> None:
    assert coerce_arguments({"a": 1}) == {"a": 1}
    assert coerce_arguments('{"a": 1}') == {"a": 1}
    assert coerce_arguments("") == {}
    with pytest.raises(ValueError, match="must be a JSON object"):
        coerce_arguments("[1]")


@pytest.mark.parametrize("raw", ['{"path": "m.py", "content": "x', "[1]", '{"a": ' * 100_000])
def test_arguments_that_cannot_be_read_make_a_call_that_says_why(raw: str) -> None:
    call = native_call("write_file", raw, 0, None)
    assert (call.name, call.arguments) == ("write_file", {})
    assert call.arguments_error
    assert call.id == native_call("write_file", raw, 0, None).id


class Verdict(BaseModel):
    verdict: str


def test_a_forced_answer_whose_arguments_cannot_be_read_is_not_valid() -> None:
    reply = Reply(tool_calls=[native_call(ANSWER_TOOL, '{"verdict": "pa', 0, "t1")])
    with pytest.raises(ValueError, match="not valid JSON: Unterminated string"):
        parse_answer(reply, Verdict)


@pytest.mark.parametrize(
    "text",
    [
        '{"verdict": "pass"}',
        'Here you go:\n```json\n{"verdict": "pass"}\n```',
        '<think>...</think>The result: {"verdict": "pass"} as asked.',
    ],
)
def test_extract_json_finds_the_answer(text: str) -> None:
    assert extract_json(text) == {"verdict": "pass"}


def test_extract_json_without_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("I could not decide.")


def test_a_call_whose_content_has_raw_newlines_is_recovered() -> None:
    text = '<tool_call>{"name": "read_file", "arguments": {"path": "a\nb"}}</tool_call>'
    assert recover_tool_calls(text, TOOLS)[0].arguments == {"path": "a\nb"}


def test_a_fenced_call_is_taken_from_the_fence_not_from_prose_before_it() -> None:
    text = (
        'Earlier I considered {"name": "finish", "arguments": {"summary": "too early"}}.\n'
        '```json\n{"name": "read_file", "arguments": {"path": "a.py"}}\n```'
    )
    [call] = recover_tool_calls(text, TOOLS)
    assert (call.name, call.arguments) == ("read_file", {"path": "a.py"})


def test_a_python_fence_before_the_json_one_is_skipped() -> None:
    text = 'Code:\n```python\nx = {"x": 1}\n```\nAnswer:\n```json\n{"verdict": "pass"}\n```'
    assert extract_json(text) == {"verdict": "pass"}

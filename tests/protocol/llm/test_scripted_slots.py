"""The scripted server queues like a real one: at most `slots` answers at once (llama.cpp's
`-np N`), each taking the time its tokens cost, so that parallelism can be measured honestly."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocol.llm.scripted import Scenario, ScriptedServer, main

ANSWER = {"content": "hi", "usage": {"prompt_tokens": 100, "completion_tokens": 20}}


def scenario(**extra: Any) -> Scenario:
    return Scenario.model_validate({"models": [{"name": "m"}], "rules": [{"reply": ANSWER}],
                                    **extra})  # fmt: skip


def ask_at_once(server: ScriptedServer, requests: int) -> float:
    """`requests` chats sent together; the seconds until the last was answered."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    start = threading.Barrier(requests)
    codes: list[int] = []

    def ask() -> None:
        start.wait()
        codes.append(httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30)
                     .status_code)  # fmt: skip

    began = time.monotonic()
    threads = [threading.Thread(target=ask) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * requests
    return time.monotonic() - began


# 100 prompt tokens at 1 ms and 20 answer tokens at 5 ms: 0.2 s an answer.
COST = {"prompt_seconds": 0.001, "completion_seconds": 0.005}


def test_requests_beyond_the_slots_wait_for_one_to_free() -> None:
    with ScriptedServer(scenario(slots=2, cost=COST)) as server:
        seconds = ask_at_once(server, 4)
        assert server.model.busy_peak == 2
    assert seconds >= 0.4, "two rounds of two answers of 0.2 s"


def test_without_slots_every_request_is_answered_at_once() -> None:
    with ScriptedServer(scenario(cost=COST)) as server:
        ask_at_once(server, 4)
        assert server.model.busy_peak >= 2  # all four may overlap; never queued


def test_an_answer_takes_what_its_tokens_cost_less_the_cached_prompt() -> None:
    model = ScriptedServer(scenario(cost=COST)).model
    reply = Scenario.model_validate({"rules": [{"reply": {**ANSWER, "delay": 0.5}}]}).rules[0]
    [answer] = reply.answers()
    assert round(model.thinking(answer), 3) == 0.7
    cached = answer.model_copy(
        update={"usage": answer.usage.model_copy(update={"cached_tokens": 100})}
    )
    assert round(model.thinking(cached), 3) == 0.6


def test_props_report_the_slots() -> None:
    props = {"default_generation_settings": {"n_ctx": 4096}}
    with ScriptedServer(scenario(slots=3, props=props)) as server:
        body = httpx.get(f"{server.url}/props", timeout=10).json()
    assert body["total_slots"] == 3 and body["default_generation_settings"]["n_ctx"] == 4096


def test_slots_on_the_command_line_must_be_at_least_one(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(scenario().model_dump_json(by_alias=True))
    with pytest.raises(SystemExit) as refused:
        main([str(path), "--slots", "0"])
    assert refused.value.code == 2

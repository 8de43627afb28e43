"""Scripted answers that depend on the sampling a request asks for (temperature, seed), as a
real model's do, so that best-of-N sampling can be tested against them."""

from __future__ import annotations

from typing import Any

import httpx

from protocol.llm.scripted import Scenario, ScriptedServer

RULES = [
    {"match": {"temperature": [0.5, 1.0]}, "reply": {"content": "warm"}},
    {"match": {"seed": 7}, "reply": {"content": "seeded"}},
    {"reply": {"content": "cold"}},
]


def answer(server: ScriptedServer, api: str, **sampling: Any) -> str:
    messages = [{"role": "user", "content": "hello"}]
    if api == "ollama":
        body = {"model": "m", "messages": messages, "stream": False, "options": sampling}
        return str(httpx.post(f"{server.url}/api/chat", json=body, timeout=10)
                   .json()["message"]["content"])  # fmt: skip
    body = {"model": "m", "messages": messages, **sampling}
    reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10).json()
    return str(reply["choices"][0]["message"]["content"])


def test_a_rule_can_answer_only_within_a_temperature_range_or_for_a_seed() -> None:
    scenario = Scenario.model_validate({"models": [{"name": "m"}], "rules": RULES})
    with ScriptedServer(scenario) as server:
        for api in ("openai", "ollama"):
            assert answer(server, api, temperature=0.8) == "warm"
            assert answer(server, api, temperature=1.0) == "warm", "the range is inclusive"
            assert answer(server, api, temperature=0.2) == "cold"
            assert answer(server, api, temperature=0.2, seed=7) == "seeded"
            assert answer(server, api) == "cold", "no temperature sent: no range matches"
        assert [r.seen.temperature for r in server.log[:3]] == [0.8, 1.0, 0.2]

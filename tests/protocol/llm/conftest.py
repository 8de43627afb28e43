"""Fixtures: a scripted model server on a real loopback port, and clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.config import load_config
from protocol.llm import ModelClient
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.llm.transport import Transport
from protocol.llm.types import Role

PROVIDERS = ["ollama", "openai", "anthropic"]
MODEL = "coder:7b"


class Sleeps(list[float]):
    """Records backoff delays instead of waiting them out."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


StartServer = Callable[..., ScriptedServer]
MakeClient = Callable[..., ModelClient]


@pytest.fixture
def scripted() -> Iterator[StartServer]:
    """Start a scripted server from rules (and optional models and llama.cpp /props body);
    stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(
        rules: list[dict[str, Any]],
        models: list[dict[str, Any]] | None = None,
        props: dict[str, Any] | None = None,
    ) -> ScriptedServer:
        scenario = Scenario.model_validate(
            {"models": models if models is not None else [{"name": MODEL}], "rules": rules,
             "props": props}
        )  # fmt: skip
        server = ScriptedServer(scenario).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps, tmp_path: Path) -> MakeClient:
    def make(
        url: str,
        provider: str,
        *,
        role: Role = "build",
        model: str = MODEL,
        transport: Transport | None = None,
        limits: dict[str, Any] | None = None,
        **route: Any,
    ) -> ModelClient:
        base = {"ollama": url, "openai": url + "/v1", "anthropic": url}[provider]
        key = {
            "ollama": "ollama_host",
            "openai": "openai_base_url",
            "anthropic": "anthropic_base_url",
        }
        config = load_config(
            env={},
            user_config=tmp_path / "no-user-config.toml",
            overrides={
                "providers": {key[provider]: base},
                "models": {role: {"provider": provider, "model": model, **route}},
                "limits": {"read_timeout": 5.0, **(limits or {})},
            },
        )
        return ModelClient(config, role, transport=transport, sleep=sleeps)

    return make

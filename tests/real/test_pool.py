"""The model-server pool on two real llama.cpp servers: calls of agents at once spread over
both, one killed in the middle of its answer and the call finished on the other, then used
again once it is back."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.config import Config, load_config
from protocol.llm import ChatMessage, ModelClient
from protocol.llm.errors import TruncatedAnswer
from protocol.llm.pool import places
from protocol.llm.pool_board import FileBoard
from tests.processes import in_threads
from tests.real.server import ALIAS, LlamaServer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def second(llama: LlamaServer, tmp_path: Path) -> Iterator[LlamaServer]:
    other = LlamaServer(llama.binary, llama.model, tmp_path / "second.log")
    other.start()
    yield other
    other.kill()


def pool_config(tmp_path: Path, *servers: LlamaServer) -> Config:
    return load_config(
        env={},
        user_config=tmp_path / "none.toml",
        overrides={
            "models": {"build": {"provider": "openai", "model": ALIAS, "max_answer_tokens": 300}},
            "endpoints": [
                {"url": f"{s.url}/v1", "provider": "openai", "capacity": 1} for s in servers
            ],
            "limits": {"backoff_base": 0.1, "backoff_max": 0.5},
        },
    )


def ask_at_once(config: Config, board: FileBoard, agents: int, prompt: str) -> list[str]:
    """One call from each of `agents` clients at once; the endpoint each ran on."""
    went: list[str] = []

    def agent() -> None:
        with ModelClient(config, "build", board=board) as client:
            # A story that ran to the cap was answered all the same.
            with contextlib.suppress(TruncatedAnswer):
                assert client.chat([ChatMessage.user(prompt)], temperature=0.0).text.strip()
            went.append(client.base_url)

    in_threads(agent, agents, timeout=240)
    return went


def test_two_real_servers_share_the_calls_and_one_killed_mid_answer_is_drained_then_back(
    server: LlamaServer, second: LlamaServer, tmp_path: Path
) -> None:
    config = pool_config(tmp_path, server, second)
    board = FileBoard(tmp_path / "pool")
    both = {f"{server.url}/v1", f"{second.url}/v1"}
    poem = "Write a short poem about the sea."
    assert set(ask_at_once(config, board, 2, poem)) == both  # capacity 1 each: one each

    killer = threading.Timer(0.3, second.kill)  # while both write their stories
    killer.start()
    went = ask_at_once(config, board, 2, "Write a long story about a robot.")
    killer.join()
    assert Counter(went) == {f"{server.url}/v1": 2}  # the killed one's call finished there
    [load] = [x for x in board.loads(places(config, "openai", ALIAS, "build"))
              if x.url == f"{second.url}/v1"]  # fmt: skip
    # Probed (and found dead) while the other wrote its story: out for longer each time.
    assert load.failures >= 1 and load.in_flight == 0

    second.start()
    threading.Event().wait(load.down_for + 0.2)
    assert set(ask_at_once(config, board, 2, poem)) == both

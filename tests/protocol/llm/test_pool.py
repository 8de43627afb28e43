"""The model-server pool: calls spread by load over scripted servers that count their own
concurrent requests, never past an endpoint's capacity, a stopped endpoint drained and then
used again once it is back, a dead agent's slots given back; and the decisions alone."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.config import Config, ConfigError, load_config
from protocol.events import ModelCallEnded, read_events
from protocol.layout import Layout
from protocol.llm import ChatMessage, ModelClient, ModelError, ModelTimeout, ServerUnreachable
from protocol.llm.pool import AllDown, Full, Health, Place, choose, down_for, places
from protocol.llm.pool_board import FileBoard, Held, MemoryBoard
from protocol.llm.scripted import Scenario, ScriptedServer
from protocol.tracing import Tracer, read_spans
from tests.processes import in_threads, kill9

MODEL = "m"
CALLER = Path(__file__).parents[1] / "procs" / "pool_caller.py"
ROOT = Path(__file__).parents[3]


def answering(delay: float = 0.05, **reply: Any) -> Scenario:
    """A server that takes `delay` for each answer, with no queue of its own: what it answers
    at once is what the pool sent it at once (its `busy_peak`)."""
    return Scenario.model_validate(
        {"models": [{"name": MODEL}], "rules": [{"reply": {"content": "ok", "delay": delay,
                                                           **reply}}]}
    )  # fmt: skip


@pytest.fixture
def servers() -> Iterator[Callable[..., ScriptedServer]]:
    started: list[ScriptedServer] = []

    def start(scenario: Scenario | None = None, port: int = 0) -> ScriptedServer:
        server = ScriptedServer(scenario or answering(), port=port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        with contextlib.suppress(OSError):  # one the test stopped itself
            server.stop()


def pool_config(
    tmp_path: Path, *endpoints: tuple[ScriptedServer | str, int], **extra: Any
) -> Config:
    return load_config(
        env={},
        user_config=tmp_path / "none.toml",
        overrides={
            "models": {"build": {"provider": "openai", "model": MODEL}},
            "endpoints": [
                {"url": f"{_url(s)}/v1", "provider": "openai", "capacity": c} for s, c in endpoints
            ],
            "limits": {"read_timeout": 10.0, "backoff_base": 0.05, "backoff_max": 0.2},
            **extra,
        },
    )


def _url(server: ScriptedServer | str) -> str:
    return server if isinstance(server, str) else server.url


def served(server: ScriptedServer) -> int:
    return sum(1 for logged in server.log if logged.status == 200)


def run_agents(
    config: Config, board: FileBoard | MemoryBoard, agents: int, calls: int
) -> list[str]:
    """`agents` threads, each with its own client, making `calls` calls; where each went."""
    went: list[str] = []

    def agent() -> None:
        with ModelClient(config, "build", board=board) as client:
            for n in range(calls):
                client.chat([ChatMessage.user(f"call {n}")])
                went.append(client.base_url)

    in_threads(agent, agents)
    return went


# --- on real scripted servers ---------------------------------------------------------------


def test_calls_spread_by_load_and_no_server_is_sent_more_than_its_capacity(
    tmp_path: Path, servers: Callable[..., ScriptedServer]
) -> None:
    one, two = servers(), servers()
    config = pool_config(tmp_path, (one, 1), (two, 2))
    run_agents(config, FileBoard(tmp_path / "pool"), agents=5, calls=6)
    assert one.model.busy_peak == 1 and two.model.busy_peak == 2
    assert served(one) + served(two) == 30
    assert served(two) > served(one) > 0  # the bigger one takes more


def test_three_servers_share_the_work_of_agents_in_processes_of_their_own(
    tmp_path: Path, servers: Callable[..., ScriptedServer]
) -> None:
    three = [servers(), servers(), servers()]
    config = pool_config(tmp_path, *((s, 1) for s in three))
    board = tmp_path / "pool"
    agents = [
        subprocess.Popen(
            [sys.executable, str(CALLER), str(board), config.model_dump_json(), "5"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    for agent in agents:
        assert agent.stdout is not None and agent.stdout.readline().strip() == "ready"
    for agent in agents:
        assert agent.stdin is not None
        agent.stdin.write("go\n")
        agent.stdin.flush()
    outputs = [agent.communicate(timeout=60)[0].split() for agent in agents]
    assert [agent.returncode for agent in agents] == [0, 0, 0]
    assert sum(map(len, outputs)) == 15
    assert [s.model.busy_peak for s in three] == [1, 1, 1]
    assert all(served(s) >= 2 for s in three), [served(s) for s in three]


def test_a_server_stopped_mid_run_is_drained_and_used_again_once_it_is_back(
    tmp_path: Path, servers: Callable[..., ScriptedServer]
) -> None:
    first, second, third = servers(), servers(), servers()
    config = pool_config(tmp_path, (first, 1), (second, 1), (third, 1))
    board = FileBoard(tmp_path / "pool")
    run_agents(config, board, agents=3, calls=2)
    assert served(second) > 0
    port = second.port
    second.stop()

    went = run_agents(config, board, agents=3, calls=4)  # the team finishes on the others
    assert len(went) == 12 and f"{second.url}/v1" not in went
    [load] = [
        x
        for x in board.loads(places(config, "openai", MODEL, "build"))
        if x.url == f"http://127.0.0.1:{port}/v1"
    ]
    assert load.failures >= 1

    back = servers(port=port)
    time.sleep(down_for(load.failures) + 0.1)  # its time out over: probed back in
    run_agents(config, board, agents=3, calls=3)
    assert served(back) > 0
    assert all(h.failures == 0 for h in board.loads(places(config, "openai", MODEL, "build")))


def test_a_busy_or_failing_server_hands_the_call_to_another_at_once(
    tmp_path: Path, servers: Callable[..., ScriptedServer]
) -> None:
    failing = servers(answering(status=503, error="overloaded"))
    busy = servers(answering(status=429, error="slow down", headers={"retry-after": "5"}))
    good = servers()
    config = pool_config(tmp_path, (failing, 2), (busy, 2), (good, 2))
    slept: list[float] = []
    client = ModelClient(config, "build", board=MemoryBoard(), sleep=slept.append)
    for _ in range(3):
        assert client.chat([ChatMessage.user("hi")]).text == "ok"
    assert client.base_url == f"{good.url}/v1"
    assert slept == []  # never a backoff: another endpoint was up each time
    assert len(failing.log) == 1 and len(busy.log) == 1  # then passed over while down


def test_every_endpoint_down_is_retried_with_backoff_then_said(tmp_path: Path) -> None:
    config = pool_config(tmp_path, ("http://127.0.0.1:9", 1), ("http://127.0.0.1:7", 1),
                         limits={"max_retries": 2, "backoff_base": 0.01})  # fmt: skip
    slept: list[float] = []
    client = ModelClient(config, "build", board=MemoryBoard(), sleep=slept.append)
    with pytest.raises(ServerUnreachable, match="any of the 2 openai endpoints") as caught:
        client.chat([ChatMessage.user("hi")])
    assert "after 4 tries" in str(caught.value)  # a failover, then a try after each backoff
    assert "fix their url in [[endpoints]]" in str(caught.value)
    assert len(slept) == 2  # a backoff only once both were down


def test_a_killed_agents_slot_is_given_back(tmp_path: Path) -> None:
    folder = tmp_path / "pool"
    place = Place("http://127.0.0.1:9/v1", 1)
    holder = subprocess.Popen(
        [sys.executable, str(CALLER), str(folder), "hold", place.url],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        board = FileBoard(folder)
        assert isinstance(board.take([place]), Full)
        assert board.loads([place])[0].holders == [holder.pid]
    finally:
        kill9(holder)
    held = board.take([place])
    assert isinstance(held, Held)
    board.give_back(held)
    assert board.loads([place])[0].in_flight == 0


def test_a_damaged_board_starts_afresh(tmp_path: Path) -> None:
    folder = tmp_path / "pool"
    folder.mkdir()
    (folder / "board.json").write_text('{"slots": [1, 2')
    board = FileBoard(folder)
    place = Place("http://h:1", 1)
    assert isinstance(board.take([place]), Held)
    assert json.loads((folder / "board.json").read_text())["slots"]


def test_the_trace_says_where_each_call_ran(
    tmp_path: Path, servers: Callable[..., ScriptedServer]
) -> None:
    one, two = servers(), servers()
    config = pool_config(tmp_path, (one, 1), (two, 1))
    (tmp_path / ".agents" / "traces").mkdir(parents=True)
    tracer = Tracer(Layout.of(tmp_path), "abc123", "builder-x")
    client = ModelClient(config, "build", board=MemoryBoard(), tracer=tracer)
    client.chat([ChatMessage.user("hi")])
    ended = [e for e in read_events(tmp_path / ".agents" / "events.jsonl").events
             if isinstance(e, ModelCallEnded)]  # fmt: skip
    assert [e.endpoint for e in ended] == [f"{one.url}/v1"]
    [span] = read_spans(tracer.spans_path)
    assert span.attrs["endpoint"] == f"{one.url}/v1"


# --- the decisions --------------------------------------------------------------------------

A, B, C = Place("http://a", 2), Place("http://b", 1), Place("http://c", None, listed=False)


def test_choose_takes_the_least_outstanding_within_capacity() -> None:
    assert choose([A, B], {}, {}, 0) == A  # a tie: more room
    assert choose([A, B], {"http://a": 1}, {}, 0) == B
    assert choose([A, B], {"http://a": 1, "http://b": 1}, {}, 0) == A
    assert choose([A, B], {"http://a": 2, "http://b": 1}, {}, 0) == Full()
    assert choose([C], {"http://c": 50}, {}, 0) == C  # no capacity said: no limit


def test_choose_passes_over_a_down_endpoint_and_probes_it_one_call_at_a_time() -> None:
    down = {"http://a": Health(failures=2, down_until=10.0)}
    assert choose([A, B], {}, down, 5.0) == B
    assert choose([A, B], {"http://b": 1}, down, 5.0) == Full()
    assert choose([A], {}, down, 5.0) == AllDown(A)
    assert choose([A, B], {"http://b": 1}, down, 11.0) == A  # its time is up: the probe
    assert choose([A, B], {"http://a": 1, "http://b": 1}, down, 11.0) == Full()


def test_an_endpoint_is_passed_over_longer_with_each_failure_in_a_row() -> None:
    assert [down_for(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert down_for(30) == 60.0


def test_places_are_the_endpoints_that_serve_the_model_and_role(tmp_path: Path) -> None:
    config = load_config(
        env={},
        user_config=tmp_path / "none.toml",
        overrides={
            "providers": {"ollama_host": "http://primary:11434"},
            "endpoints": [
                {"url": "gpu2", "models": ["big"], "capacity": 2},
                {"url": "http://gpu3:11434", "roles": ["explore"]},
                {"url": "http://vllm:8000/v1", "provider": "openai"},
            ],
        },
    )
    assert places(config, "ollama", "big", "plan") == [Place("http://gpu2:11434", 2)]
    assert places(config, "ollama", "small", "explore") == [Place("http://gpu3:11434", 1)]
    assert places(config, "ollama", "big", "explore") == [
        Place("http://gpu2:11434", 2), Place("http://gpu3:11434", 1)
    ]  # fmt: skip
    assert places(config, "ollama", "small", "build") == [
        Place("http://primary:11434", None, listed=False)
    ]
    assert places(config, "openai", "any", "build") == [Place("http://vllm:8000/v1", 1)]


def test_a_bad_endpoint_url_is_a_config_error_that_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"endpoint 2 \(\[\[endpoints\]\] url = 'http://a b'\)"):
        load_config(
            env={},
            user_config=tmp_path / "none.toml",
            overrides={"endpoints": [{"url": "http://ok:1"},
                                     {"url": "http://a b", "provider": "openai"}]},
        )  # fmt: skip
    with pytest.raises(ConfigError, match="capacity"):
        load_config(env={}, user_config=tmp_path / "none.toml",
                    overrides={"endpoints": [{"url": "http://ok:1", "capacity": 0}]})  # fmt: skip


def test_calls_failing_together_are_one_failure_and_a_forced_try_goes_to_the_soonest_back() -> None:
    now = [100.0]
    board = MemoryBoard(clock=lambda: now[0])
    a, b = Place("http://a", 4), Place("http://b", 4)
    for _ in range(4):  # four calls in flight on `a` when it went down
        board.failed(a)
    board.failed(b)
    now[0] += 0.5
    board.failed(b, at_least=5.0)
    loads = {load.url: load for load in board.loads([a, b])}
    assert loads["http://a"].failures == 1 and loads["http://b"].failures == 1
    held = board.take([b, a], force=True)
    assert isinstance(held, Held) and held.place == a and held.failing  # back in 0.5 s, not 5
    now[0] += 1.0
    board.failed(a)  # its probe failed: out for longer
    assert {x.url: x.failures for x in board.loads([a])} == {"http://a": 2}


def test_a_call_that_finds_every_slot_taken_waits_no_longer_than_the_read_timeout(
    tmp_path: Path,
) -> None:
    config = pool_config(tmp_path, ("http://127.0.0.1:9", 1), limits={"read_timeout": 0.2})
    board = MemoryBoard()
    assert isinstance(board.take(places(config, "openai", MODEL, "build")), Held)  # ours: alive
    slept: list[float] = []
    client = ModelClient(config, "build", board=board, sleep=slept.append)
    with pytest.raises(ModelTimeout, match="no free slot on the openai server"):
        client.chat([ChatMessage.user("hi")])
    assert len(slept) == 10  # 0.2 s in polls of 20 ms, counted, not timed


def test_a_probe_answered_at_all_brings_the_endpoint_back(
    tmp_path: Path, servers: Callable[..., ScriptedServer]
) -> None:
    server = servers(answering(status=400, error="bad request"))
    config = pool_config(tmp_path, (server, 2), limits={"max_retries": 0})
    board = MemoryBoard(clock=lambda: 0.0)
    [place] = places(config, "openai", MODEL, "build")
    board.failed(place)
    client = ModelClient(config, "build", board=board)
    with pytest.raises(ModelError):
        client.chat([ChatMessage.user("hi")])
    assert board.loads([place])[0].failures == 0  # it answered: up, not probed for ever


def test_a_call_waiting_for_a_busy_endpoint_outlasts_the_probes_of_a_dead_one(
    tmp_path: Path, servers: Callable[..., ScriptedServer]
) -> None:
    """Seen on two real llama.cpp servers: one killed while the other wrote a long answer.
    The call that had been on the dead one waited for the busy one, and meanwhile probed the
    dead one each time its time out ended; those failovers must not use up its retries."""
    long = {"match": {"contains": "long"}, "reply": {"content": "ok", "delay": 3.5}}
    slow = servers(
        Scenario.model_validate(
            {"models": [{"name": MODEL}], "rules": [long, {"reply": {"content": "ok"}}]}
        )
    )
    config = pool_config(tmp_path, ("http://127.0.0.1:9", 1), (slow, 1),
                         limits={"max_retries": 0})  # fmt: skip
    board = MemoryBoard()
    busy = threading.Thread(
        target=lambda: ModelClient(config, "build", board=board).chat([ChatMessage.user("long")])
    )
    busy.start()
    while not slow.log:  # the slow one is at work on the other call
        time.sleep(0.01)
    client = ModelClient(config, "build", board=board)
    assert client.chat([ChatMessage.user("b")]).text == "ok"
    busy.join()
    assert client.base_url == f"{slow.url}/v1"
    [dead] = [x for x in board.loads(client.places) if x.url == "http://127.0.0.1:9/v1"]
    assert dead.failures >= 3  # tried, then probed at 1 s and 3 s while it waited

#!/usr/bin/env python3
"""Model-server pool benchmark (issue 14): a fixed workload of model calls from 4 agent
processes (each its own `ModelClient`, the slots counted on one `FileBoard`, as in a team)
against 1, 2 and 4 scripted servers of capacity 1 each, every answer taking --answer-ms. The
throughput (calls a second) for each, its ratio to one server's, and the most requests each
server was ever answering at once (counted by the server itself: never above 1).

Prints readable lines, then as its LAST line one JSON object:
    {"agents": 4, "calls": n, "answer_ms": ms, "by_servers": {"1": {"seconds": s,
     "calls_per_s": x, "ratio": r, "target": 0.85 * N, "met": bool, "peaks": [1, ...],
     "per_server": [calls, ...]}, "2": ..., "4": ...}, "met": bool}

Usage: python scripts/bench_pool.py [--calls 96] [--answer-ms 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from protocol.config import Config  # noqa: E402
from protocol.llm import ChatMessage, ModelClient  # noqa: E402
from protocol.llm.pool_board import FileBoard  # noqa: E402
from protocol.llm.scripted import Scenario, ScriptedServer  # noqa: E402

AGENTS = 4
MODEL = "coder:7b"
TARGET = 0.85  # of the number of servers, as a ratio to one server's throughput


def agent(board: str, config_json: str, calls: int) -> None:
    """One agent process: wait for the go line on stdin, then make `calls` calls."""
    config = Config.model_validate_json(config_json)
    with ModelClient(config, "build", board=FileBoard(Path(board))) as client:
        # A team's agents live long: their first call's one-time costs (imports, the
        # connection, the server's /props) are paid before the clock starts.
        client.chat([ChatMessage.user("warm up")])
        print("ready", flush=True)
        sys.stdin.readline()
        for n in range(calls):
            client.chat([ChatMessage.user(f"call {n}")])


def config_for(servers: list[ScriptedServer]) -> Config:
    return Config.model_validate(
        {
            "models": {"build": {"provider": "openai", "model": MODEL}},
            "endpoints": [
                {"url": f"{s.url}/v1", "provider": "openai", "capacity": 1} for s in servers
            ],
            "providers": {"stream": False},
        }
    )


def run(count: int, calls: int, answer_s: float) -> dict[str, Any]:
    scenario = Scenario.model_validate(
        {"models": [{"name": MODEL}], "rules": [{"reply": {"content": "ok", "delay": answer_s}}]}
    )
    servers = [ScriptedServer(scenario).start() for _ in range(count)]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pool-") as scratch:
            command = [sys.executable, __file__, "--agent", scratch,
                       config_for(servers).model_dump_json(), str(calls // AGENTS)]  # fmt: skip
            agents = [
                subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(AGENTS)
            ]
            for process in agents:
                assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            for server in servers:
                server.log.clear()
            began = time.monotonic()
            for process in agents:
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            codes = [process.wait(300) for process in agents]
            seconds = time.monotonic() - began
        assert codes == [0] * AGENTS, codes
        per_server = [sum(1 for r in s.log if r.status == 200) for s in servers]
        return {
            "seconds": round(seconds, 3),
            "calls_per_s": round(sum(per_server) / seconds, 2),
            "peaks": [s.model.busy_peak for s in servers],
            "per_server": per_server,
        }
    finally:
        for server in servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=96, help="calls in all, shared by 4 agents")
    parser.add_argument("--answer-ms", type=float, default=100.0, help="each answer's time")
    parser.add_argument("--agent", nargs=3, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.agent:
        agent(options.agent[0], options.agent[1], int(options.agent[2]))
        return
    calls = options.calls - options.calls % AGENTS
    by_servers: dict[str, dict[str, Any]] = {}
    for count in (1, 2, 4):
        result = run(count, calls, options.answer_ms / 1000)
        by_servers[str(count)] = result
        base = by_servers["1"]["calls_per_s"]
        result["ratio"] = round(result["calls_per_s"] / base, 2)
        result["target"] = round(TARGET * count, 2)
        result["met"] = result["ratio"] >= result["target"] and max(result["peaks"]) <= 1
        print(
            f"{count} server(s): {calls} calls in {result['seconds']:.2f}s = "
            f"{result['calls_per_s']:.1f}/s, x{result['ratio']:.2f} (target x{result['target']}),"
            f" per server {result['per_server']}, most at once {result['peaks']}"
        )
    met = all(r["met"] for r in by_servers.values())
    print(json.dumps({"agents": AGENTS, "calls": calls, "answer_ms": options.answer_ms,
                      "by_servers": by_servers, "met": met}))  # fmt: skip


if __name__ == "__main__":
    main()

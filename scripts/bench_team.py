#!/usr/bin/env python3
"""Team benchmark: K independent modules, the scripted model answering each first write after
L seconds; `team up --wait` with --workers 1 and with --workers K, in tmux. With `--slots`,
the K-worker run is repeated against a server that answers at most N requests at once (as a
real llama.cpp server with `-np N`; the others queue): the speedup a user of such a server gets.

Prints readable lines, then as its LAST line one JSON object:
    {"modules": K, "t_serial_s": ..., "t_parallel_s": ..., "critical_path_s": ...,
     "speedup": ..., "spawn_s": ..., "by_slots": {"1": {"t_parallel_s", "speedup",
     "target"}, ...}}
t_serial_s / t_parallel_s are the build phases (first assignment to last task done, from the
task files); the whole runs' wall times are given too. speedup = t_serial_s / t_parallel_s.
spawn_s: from `team up` being run to the last of the K builder panes starting (exploring and
planning come first); builders_up_after_plan_s: from the tasks being written to the last builder
starting (the builders are started together).

Usage: python scripts/bench_team.py [--modules K] [--latency L] [--runner tmux|subprocess]
                                    [--slots 1,2,4]
target = 0.9 x min(K, N): what a slot-limited server allows, less a tenth for the team's own work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from protocol import Layout, TaskStore, TeamInfo  # noqa: E402
from protocol.agents import read_agents  # noqa: E402
from protocol.llm.scripted import Scenario, ScriptedServer  # noqa: E402

MODEL = "bench:1b"


def scenario(modules: int, latency: float, slots: int | None = None) -> dict[str, Any]:
    plan = {
        "summary": "independent modules",
        "modules": [
            {
                "name": f"m{i}",
                "description": f"module {i}",
                "role": "builder",
                "depends_on": [],
                "files": [{"path": f"m{i}.py", "purpose": "a value"}],
            }
            for i in range(modules)
        ],
        "dod": [
            {
                "id": f"D{i}",
                "description": f"m{i} imports",
                "verification_type": "import",
                "target_file": f"m{i}.py",
            }
            for i in range(modules)
        ],
    }
    finish = {"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]}
    rules: list[dict[str, Any]] = [{"match": {"schema": "Plan"}, "reply": {"json": plan}}]
    for i in range(modules):
        write = {"name": "write_file", "arguments": {"path": f"m{i}.py", "content": f"X = {i}\n"}}
        rules.append(
            {
                "match": {"files": f"m{i}.py", "turn": 0},
                "reply": {"tool_calls": [write], "delay": latency},
            }
        )
    rules.append({"reply": finish})
    return {"models": [{"name": MODEL}], "rules": rules, "slots": slots}


def run(server: ScriptedServer, workers: int, runner: str) -> dict[str, float]:
    # Outside any repository: a workspace inside one would be a team on that repository's
    # branch (and out of the sandbox's view of this checkout's venv).
    workspace = Path(tempfile.mkdtemp(prefix="bench-team-")) / "ws"
    env = {
        **os.environ,
        "OLLAMA_HOST": server.url,
        "TEAM_CONFIG": "/nonexistent",
        **{f"TEAM_MODEL_{r}": MODEL for r in ("PLAN", "BUILD", "EXPLORE", "TEST", "RCA")},
    }
    started = time.time()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coordinator.cli",
            "-w",
            str(workspace),
            "up",
            "bench",
            "--runner",
            runner,
            "--wait",
            "--workers",
            str(workers),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.time() - started
    layout = Layout.of(workspace)
    if done.returncode != 0:
        raise SystemExit(f"team up failed:\n{done.stdout}\n{done.stderr}")
    tasks = [t for t in TaskStore(layout).all() if t.module != "explore"]
    assigned = min(e.at for t in tasks for e in t.history if e.status.value == "assigned")
    finished = max(e.at for t in tasks for e in t.history if e.status.value == "done")
    builders = [r for r in read_agents(layout) if r.name.startswith("builder-")]
    last_up = max(r.started_at.timestamp() for r in builders)
    planned = min(e.at for t in tasks for e in t.history if e.note == "created").timestamp()
    info = TeamInfo.read(layout.team_json)
    if info.tmux_session:
        subprocess.run(
            [sys.executable, "-m", "coordinator.cli", "-w", str(workspace), "kill", "--grace", "5"],
            env=env,
            cwd=REPO,
            capture_output=True,
        )
    shutil.rmtree(workspace.parent, ignore_errors=True)
    return {
        "build": (finished - assigned).total_seconds(),
        "wall": wall,
        "spawn": last_up - started,
        "builders_up": last_up - planned,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=4)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--runner", choices=["tmux", "subprocess"], default="tmux")
    parser.add_argument(
        "--slots", default="", help="comma-separated server capacities to measure, e.g. 1,2,4"
    )
    options = parser.parse_args()
    try:
        capacities = [int(n) for n in options.slots.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--slots takes numbers separated by commas, not {options.slots!r}")
    if any(n < 1 for n in capacities):
        parser.error("--slots: every capacity must be at least 1")
    with ScriptedServer(Scenario.model_validate(scenario(options.modules, options.latency))) as s:
        serial = run(s, 1, options.runner)
        print(f"--workers 1: build {serial['build']:.2f}s, whole run {serial['wall']:.2f}s")
    with ScriptedServer(Scenario.model_validate(scenario(options.modules, options.latency))) as s:
        parallel = run(s, options.modules, options.runner)
        print(
            f"--workers {options.modules}: build {parallel['build']:.2f}s, "
            f"whole run {parallel['wall']:.2f}s, last builder up {parallel['spawn']:.2f}s "
            "after team up"
        )
    by_slots = {}
    for slots in capacities:
        queued = Scenario.model_validate(scenario(options.modules, options.latency, slots))
        with ScriptedServer(queued) as s:
            limited = run(s, options.modules, options.runner)
        speedup = serial["build"] / limited["build"]
        target = 0.9 * min(options.modules, slots)
        print(f"--workers {options.modules}, {slots} slot(s): build {limited['build']:.2f}s, "
              f"speedup {speedup:.2f} (target {target:.2f})")  # fmt: skip
        by_slots[str(slots)] = {
            "t_parallel_s": round(limited["build"], 3),
            "speedup": round(speedup, 2),
            "target": round(target, 2),
            "met": speedup >= target,
        }
    result = {
        "modules": options.modules,
        "t_serial_s": round(serial["build"], 3),
        "t_parallel_s": round(parallel["build"], 3),
        "critical_path_s": options.latency,
        "speedup": round(serial["build"] / parallel["build"], 2),
        "spawn_s": round(parallel["spawn"], 3),
        "builders_up_after_plan_s": round(parallel["builders_up"], 3),
        "wall_serial_s": round(serial["wall"], 3),
        "wall_parallel_s": round(parallel["wall"], 3),
        "runner": options.runner,
        "by_slots": by_slots,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

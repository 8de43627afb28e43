#!/usr/bin/env python3
"""Sampling benchmark (issue 13): over a set of scripted tester behaviours (right always, right
only at some temperatures or seeds, right only once told what failed, never right), the share
of test files that end with every test passing when a tester's file is sampled as N = 1, 4 and
4+4 candidates (agent_worker/test_sampling.py: real pytest runs in the sandbox), and the model
calls and tokens each costs. Then the wall time of a wave asked one at a time against one asked
4 at once, on a server with 4 slots and a cost per token.

Prints readable lines, then as its LAST line one JSON object:
    {"behaviours": B, "by_n": {"1": {"all_passing": share, "calls": n, "tokens": n}, "4": ...,
     "4+4": ...}, "parallel": {"sequential_s": s, "parallel_s": s, "speedup": x}}
Tokens are estimated (characters / 4) from what was sent and answered: the scripted server
does not count them.

With --fixes, whole `team up --wait` runs (subprocess workers) of a planted bug whose fixer is
right only at some temperatures, with `sampling.fix_candidates` K = 1, 2 and 3: whether the team
ends done, in how many iterations, with how many model calls and in what wall time. The JSON
line then has "fixes": {"1": {"done": share, "iterations": n, "calls": n, "wall_s": s}, "2": ...}.

Usage: python scripts/bench_sampling.py [--cost-ms 2] [--fixes]
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

from agent_worker.prompts import SAMPLING_SYSTEM, task_prompt  # noqa: E402
from agent_worker.test_sampling import TestSampler, Waves  # noqa: E402
from protocol import Layout, TaskAssignment, TeamInfo  # noqa: E402
from protocol.config import Config, ModelRoute, Providers  # noqa: E402
from protocol.llm import ChatMessage, ModelClient  # noqa: E402
from protocol.llm.budget import estimate_message_tokens  # noqa: E402
from protocol.llm.scripted import Scenario, ScriptedServer  # noqa: E402
from protocol.llm.weak_models import CONSTANTS_TEST  # noqa: E402
from protocol.sandbox import Sandbox  # noqa: E402

MODEL = "tester:1b"
PATH = "tests/test_shop.py"
SOURCE = '''def total(prices: list[float], discount: float = 0.0) -> float:
    """The sum of `prices`, less `discount` (a share from 0 to 1)."""
    if not 0 <= discount <= 1:
        raise ValueError("discount is a share from 0 to 1")
    return round(sum(prices) * (1 - discount), 2)
'''
GOOD = """import pytest
from shop import total


def test_total():
    assert total([1.0, 2.5]) == 3.5


def test_discount():
    assert total([10.0], 0.25) == 7.5


def test_bad_discount():
    with pytest.raises(ValueError):
        total([1.0], 2)
"""
BAD_IMPORT = "from shop import total, tax\n\n\ndef test_tax():\n    assert tax(10) == 1\n"
WRONG_VALUE = "from shop import total\n\n\ndef test_total():\n    assert total([1.0, 2.0]) == 4\n"
CLOCK = (
    "import time\nfrom shop import total\n\n\n"
    "def test_total():\n    assert total([1.0]) == 1.0\n    assert time.time() == time.time()\n"
)


def answer(source: str) -> dict[str, Any]:
    return {"content": f"```python\n{source}```"}


def rules_of(right: dict[str, Any] | None, wrong: str = BAD_IMPORT) -> list[dict[str, Any]]:
    good = [{"match": right, "reply": answer(GOOD)}] if right is not None else []
    return [*good, {"reply": answer(wrong)}]


BEHAVIOURS: dict[str, list[dict[str, Any]]] = {
    "always right": rules_of({}),
    "right only cool (t <= 0.35)": rules_of({"temperature": [0.0, 0.35]}),
    "right only at t 0.6": rules_of({"temperature": [0.55, 0.65]}),
    "right only hot (t >= 0.95)": rules_of({"temperature": [0.95, 2.0]}),
    "right at one seed in four": rules_of({"seed": 3}),
    "right once told what failed": rules_of({"contains": "failed with"}),
    "a clock test unless t 0.7": rules_of({"temperature": [0.65, 0.75]}, CLOCK),
    "SmolLM2's constants unless told": rules_of({"contains": "tests no code"}, CONSTANTS_TEST),
    "never right (wrong value)": rules_of(None, WRONG_VALUE),
}
SETTINGS = {"1": Waves(1, 0), "4": Waves(4, 0), "4+4": Waves(4, 4)}


def workspace(folder: Path) -> Layout:
    layout = Layout.of(folder)
    layout.create_dirs()
    (folder / "shop.py").write_text(SOURCE)
    return layout


def config_for(server: ScriptedServer) -> Config:
    route = ModelRoute(provider="openai", model=MODEL, max_answer_tokens=1024)
    base = Config()
    models = {**base.models, "test": route}
    providers = Providers(openai_base_url=f"{server.url}/v1", stream=False)
    return base.model_copy(update={"models": models, "providers": providers})


def sample(
    layout: Layout, rules: list[dict[str, Any]], waves: Waves, scenario: dict[str, Any]
) -> tuple[bool, int, int, float]:
    """One test file sampled: whether its kept candidate passes, the calls, the tokens, the
    wall time."""
    server = ScriptedServer(
        Scenario.model_validate({"models": [{"name": MODEL}], "rules": rules, **scenario})
    ).start()
    try:
        config = config_for(server)
        clients = [ModelClient(config, "test") for _ in range(max(1, waves.parallel))]
        sampler = TestSampler(layout, Sandbox(layout.workspace), clients, waves, "bench")
        assignment = TaskAssignment(task_id=1, attempt=1, title="tests of shop", files=[PATH])
        messages = [
            ChatMessage.system(SAMPLING_SYSTEM.format(name="bench")),
            ChatMessage.user(task_prompt(assignment, layout.workspace, 4000)),
        ]
        started = time.monotonic()
        sampled = sampler.sample(PATH, messages)
        wall = time.monotonic() - started
        for client in clients:
            client.close()
    finally:
        server.stop()
    tokens = sum(
        estimate_message_tokens(r.body.get("messages", []))
        + len(r.reply.content if r.reply else "") // 4
        for r in server.log
    )
    return bool(sampled.kept and sampled.kept.wins), len(server.log), tokens, wall


# --- sampled fixes, through whole team runs ----------------------------------------------------

BUGGY = "def double(n):\n    return n + n + 1\n"
STILL_WRONG = "def double(n):\n    return n + n + 2\n"
RIGHT = "def double(n):\n    return 2 * n\n"
FIX_PLAN = {
    "summary": "a doubler",
    "modules": [{"name": "double", "description": "a doubler", "role": "builder",
                 "depends_on": [], "files": [{"path": "double.py", "purpose": "double(n)"}]}],
    "dod": [{"id": "D1", "description": "doubles", "verification_type": "command",
             "target_file": "python3 -c 'import double; assert double.double(2) == 4'"}],
}  # fmt: skip
FIX_RCA = {
    "whys": ["double(2) is not 4", "it adds too much", "a slip", "not tested", "a slip"],
    "root_cause": "double adds one too many",
    "concrete_edits": [{"file": "double.py", "action": "edit", "details": "return 2 * n"}],
}


def written(source: str) -> dict[str, Any]:
    """One answer that writes double.py and finishes."""
    write = {"name": "write_file", "arguments": {"path": "double.py", "content": source}}
    return {"tool_calls": [write, {"name": "finish", "arguments": {"summary": "done"}}]}


FIXERS: dict[str, dict[str, Any] | None] = {
    "the first fix is right": {},
    "right only at t 0.6": {"temperature": [0.55, 0.65]},
    "right only at t 0.9": {"temperature": [0.85, 0.95]},
    "never right": None,
}


def fix_run(folder: Path, right: dict[str, Any] | None, candidates: int) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"match": {"schema": "Plan"}, "reply": {"json": FIX_PLAN}},
        {"match": {"schema": "RcaReport"}, "reply": {"json": FIX_RCA}},
    ]
    if right is not None:
        rules.append({"match": {**right, "contains": "Mandatory"}, "reply": written(RIGHT)})
    rules += [{"match": {"contains": "Mandatory"}, "reply": written(STILL_WRONG)},
              {"match": {"files": "double.py"}, "reply": written(BUGGY)}]  # fmt: skip
    rules.append({"reply": {"tool_calls": [{"name": "finish", "arguments": {"summary": "ok"}}]}})
    server = ScriptedServer(
        Scenario.model_validate({"models": [{"name": MODEL}], "rules": rules})
    ).start()
    config = folder / "config.toml"
    config.write_text(f"[limits]\nmax_retries = 0\n[sampling]\nfix_candidates = {candidates}\n")
    workspace = folder / "ws"
    env = {**os.environ, "OPENAI_BASE_URL": f"{server.url}/v1", "TEAM_CONFIG": str(config),
           **{f"TEAM_MODEL_{r}": f"openai:{MODEL}"
              for r in ("PLAN", "BUILD", "EXPLORE", "TEST", "RCA")}}  # fmt: skip
    started = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-m", "coordinator.cli", "-w", str(workspace), "up", "a doubler",
             "--runner", "subprocess", "--wait", "--max-iterations", "3"],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        server.stop()
    info = TeamInfo.read(Layout.of(workspace).team_json)
    return {"done": info.status.value == "done", "iterations": info.iteration,
            "calls": len(server.log), "wall_s": time.monotonic() - started}  # fmt: skip


def fixes(folder: Path) -> dict[str, dict[str, Any]]:
    by_k: dict[str, dict[str, Any]] = {}
    for k in (1, 2, 3):
        runs = []
        for name, right in FIXERS.items():
            run = fix_run(Path(tempfile.mkdtemp(dir=folder)), right, k)
            runs.append(run)
            print(f"K={k} {name:24} {'done' if run['done'] else 'failed':6} in iteration "
                  f"{run['iterations']}, {run['calls']} calls, {run['wall_s']:.1f}s")  # fmt: skip
        by_k[str(k)] = {
            "done": round(sum(r["done"] for r in runs) / len(runs), 3),
            "iterations": sum(r["iterations"] for r in runs),
            "calls": sum(r["calls"] for r in runs),
            "wall_s": round(sum(r["wall_s"] for r in runs), 1),
        }
    return by_k


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost-ms", type=float, default=2.0,
                        help="ms per completion token in the parallel run (default 2)")  # fmt: skip
    parser.add_argument(
        "--fixes", action="store_true", help="also sampled fixes (K = 1, 3), in team runs"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-sampling-"))
    try:
        layout = workspace(folder / "ws")
        by_n: dict[str, dict[str, Any]] = {}
        for label, waves in SETTINGS.items():
            passing = calls = tokens = 0
            for name, rules in BEHAVIOURS.items():
                ok, asked, spent, _ = sample(layout, rules, waves, {})
                passing += ok
                calls += asked
                tokens += spent
                print(f"N={label:4} {name:32} {'all pass' if ok else 'kept best':9} "
                      f"{asked} calls, ~{spent} tokens")  # fmt: skip
            share = round(passing / len(BEHAVIOURS), 3)
            by_n[label] = {"all_passing": share, "calls": calls, "tokens": tokens}
            print(f"N={label}: {passing} of {len(BEHAVIOURS)} files all passing, {calls} calls")
        # Two waves that find nothing (8 candidates, each different and each failing of its
        # own) on a 4-slot server whose answers take time.
        cost = {"slots": 4, "cost": {"completion_seconds": args.cost_ms / 1000}}
        temps = [0.3, 0.6, 0.8, 1.0, 0.4, 0.7, 0.9, 1.1]
        slow = [{"match": {"temperature": [t - 0.01, t + 0.01]},
                 "reply": {**answer(f"# candidate at {t}\n{BAD_IMPORT}"), "delay": 0.5}}
                for t in temps]  # fmt: skip
        _, _, _, sequential = sample(layout, slow, Waves(4, 4, parallel=1), cost)
        _, _, _, parallel = sample(layout, slow, Waves(4, 4, parallel=4), cost)
        speedup = round(sequential / parallel, 2)
        print(f"8 candidates, 4-slot server: one at a time {sequential:.2f}s, "
              f"4 at once {parallel:.2f}s ({speedup}x)")  # fmt: skip
        result = {
            "behaviours": len(BEHAVIOURS),
            "by_n": by_n,
            "parallel": {
                "sequential_s": round(sequential, 2),
                "parallel_s": round(parallel, 2),
                "speedup": speedup,
            },
        }
        if args.fixes:
            result["fixes"] = fixes(folder)
        print(json.dumps(result))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

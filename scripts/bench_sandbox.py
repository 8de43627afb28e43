"""What confinement costs: the wall time of running a trivial command and a small pytest run
through `protocol.sandbox.Sandbox`, confined and unconfined, and of the sandbox probe.

Usage: python scripts/bench_sandbox.py [--runs N]
Prints one line per measure, then one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocol.sandbox import Sandbox, _probe, probe_sandbox

TEST = "def test_one():\n    assert 1 + 1 == 2\n"


def timed(run: object, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    probe_sandbox().require()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as scratch:
        workspace = Path(scratch)
        (workspace / "test_one.py").write_text(TEST)
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        results = {}
        for confined in (True, False):
            sandbox = Sandbox(workspace, confined=confined)
            label = "confined" if confined else "unconfined"
            results[f"true_{label}"] = timed(
                lambda s=sandbox: s.run(["true"], timeout=30), options.runs
            )
            results[f"pytest_{label}"] = timed(
                lambda s=sandbox: s.run(pytest, timeout=60), max(3, options.runs // 4)
            )

        def probe() -> None:
            _probe.cache_clear()
            probe_sandbox()

        results["probe"] = timed(probe, options.runs)
    for name, figures in results.items():
        print(f"{name:>20}: median {figures['median_ms']:8.2f} ms, max {figures['max_ms']:8.2f} ms")
    overhead = results["true_confined"]["median_ms"] - results["true_unconfined"]["median_ms"]
    print(json.dumps({"runs": options.runs, "overhead_ms": round(overhead, 2), **results}))


if __name__ == "__main__":
    main()

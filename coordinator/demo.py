"""`team demo`: the whole pipeline on a bundled example task, driven by the scripted model
server (no real model): explore, plan, build in parallel, a failing verification, RCA, a fix,
a passing verification."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coordinator.demo_scenario import DEMO_TASK, scenario
from protocol import atomic_write_text

DEMO_MODEL = "scripted-demo"
NOTICE = (
    "team demo: the model is SCRIPTED (protocol/llm/scripted.py answers from "
    "coordinator/demo_scenario.py); it shows the machinery, not a model's skill"
)


# The first line of the config the demo writes: a later `team up` there must not inherit it.
DEMO_CONFIG_MARK = "# written by team demo: every role on the scripted model"


class DemoError(Exception):
    pass


def demo_workspace(given: Path | None) -> Path:
    if given is not None:
        return given
    return Path(tempfile.mkdtemp(prefix="agent-team-demo-")) / "todo"


def stop_scripted_model(workspace: Path) -> None:
    """End the scripted server an earlier `team demo` here started, if it still runs."""
    pid_file = workspace / ".agents" / "demo-model.pid"
    with contextlib.suppress(ValueError, ProcessLookupError, PermissionError, OSError):
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"protocol.llm.scripted" in cmdline:  # never a pid reused by something else
            os.kill(pid, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)


def is_demo(config: Path) -> bool:
    """Whether the team's model config is the one `team demo` wrote (a scripted model)."""
    try:
        return config.read_text(encoding="utf-8").startswith(DEMO_CONFIG_MARK)
    except OSError:
        return False


def start_scripted_model(workspace: Path, delay: float) -> str:
    """The scripted server as its own process, gone after five idle minutes; its URL. One
    an earlier demo left here is ended first."""
    stop_scripted_model(workspace)
    folder = workspace / ".agents"
    folder.mkdir(parents=True, exist_ok=True)
    scenario_file = folder / "demo-scenario.json"
    scenario_file.write_text(json.dumps(scenario(DEMO_MODEL, delay=delay), indent=1))
    port_file = folder / "demo-model.port"
    port_file.unlink(missing_ok=True)
    log = (folder / "demo-model.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-P",
            "-m",
            "protocol.llm.scripted",
            str(scenario_file),
            "--port-file",
            str(port_file),
            "--idle-exit",
            "300",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (folder / "demo-model.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 20
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DemoError(f"the scripted model server did not start: see {folder}/demo-model.log")
        time.sleep(0.05)
    return f"http://127.0.0.1:{port_file.read_text().strip()}"


def write_demo_config(workspace: Path, url: str) -> None:
    """Every role on the scripted model, in the team's own config (nothing global changes)."""
    roles = "".join(
        f'[models.{role}]\nprovider = "ollama"\nmodel = "{DEMO_MODEL}"\n\n'
        for role in ("plan", "build", "explore", "test", "rca")
    )
    text = f'{DEMO_CONFIG_MARK}\n[providers]\nollama_host = "{url}"\n\n{roles}'
    atomic_write_text(workspace / ".agents" / "config.toml", text)


__all__ = [
    "DEMO_TASK",
    "NOTICE",
    "DemoError",
    "demo_workspace",
    "start_scripted_model",
    "write_demo_config",
]

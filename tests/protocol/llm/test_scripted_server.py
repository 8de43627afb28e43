"""The scripted server as its own process, the way `team demo` and benchmarks start it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.processes import REPO


def test_the_server_process_answers_on_the_port_it_reports(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({
        "models": [{"name": "coder:7b"}],
        "rules": [{"match": {"task": 3}, "reply": {"content": "task three"}},
                  {"reply": {"content": "anything else"}}],
    }))  # fmt: skip
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "protocol.llm.scripted",
            str(scenario),
            "--port-file",
            str(port_file),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        tags = httpx.get(url + "/api/tags").json()
        assert [m["name"] for m in tags["models"]] == ["coder:7b"]
        ask = {"model": "coder:7b", "stream": False,
               "messages": [{"role": "user", "content": "TASK 3: cli\nFILES: cli.py"}]}  # fmt: skip
        answer = httpx.post(url + "/api/chat", json=ask).json()
        assert answer["message"]["content"] == "task three"
        assert answer["done"] is True
        openai = httpx.post(url + "/v1/chat/completions", json={**ask, "messages": [
            {"role": "user", "content": "hello"}]}).json()  # fmt: skip
        assert openai["choices"][0]["message"]["content"] == "anything else"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "scripted model server on http://127.0.0.1:" in out


def test_a_bad_scenario_is_a_clear_error(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text('{"rules": [{"reply": {"contnet": "typo"}}]}')
    done = subprocess.run(
        [sys.executable, "-m", "protocol.llm.scripted", str(scenario)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert f"scenario {scenario}" in done.stderr
    assert "contnet" in done.stderr

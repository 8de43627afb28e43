"""`team doctor` against the real llama.cpp server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import REPO
from tests.real.server import LlamaServer

pytestmark = pytest.mark.timeout(120)


def test_doctor_shows_the_servers_models_and_what_it_can_do(server: LlamaServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "doctor"],
        env={**os.environ, **server.env(), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=100,
        cwd=REPO,
    )
    out = done.stdout + done.stderr
    assert "Traceback" not in out
    assert "smollm2" in out
    assert "tools as text" in out  # its template takes no tools (/props)
    assert "4096" in out  # the real context per slot, not the configured window
    assert "context build" in out  # the warning: configured more than the server gives

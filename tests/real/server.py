"""The real llama.cpp server of the real-model tier, started and stopped from the tests, on a
port of its own (scripts/real_model.sh builds it once per machine)."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.processes import REPO

SCRIPT = REPO / "scripts" / "real_model.sh"
ALIAS = "smollm2"


def installed() -> tuple[Path, Path]:
    """The server binary and the model file the script installs (they may not exist)."""
    out = subprocess.run(["bash", str(SCRIPT), "paths"], capture_output=True, text=True, check=True)
    server, model = out.stdout.split()
    return Path(server), Path(model)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    binary: Path
    model: Path
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        command = [str(self.binary), "-m", str(self.model), "--alias", ALIAS, "--jinja"]
        command += ["-c", "8192", "-np", "2", "-t", "2", "--host", "127.0.0.1"]
        command += ["--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited {self.proc.returncode}: {self.log}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"llama-server did not answer /health in {timeout:g}s: {self.log}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def env(self) -> dict[str, str]:
        """What points a team at this server for every role."""
        roles = ("PLAN", "BUILD", "EXPLORE", "TEST", "RCA")
        return {
            "OPENAI_BASE_URL": f"{self.url}/v1",
            "TEAM_CONFIG": "/nonexistent",
            **{f"TEAM_MODEL_{role}": f"openai:{ALIAS}" for role in roles},
        }

"""The real-model tier: every test here talks to a real llama.cpp server with a real small
model (SmolLM2-135M). They are marked `real_model`; `scripts/test.sh` runs them after the main
suite. When the server cannot be built here they are skipped, and the reason says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real.server import SCRIPT, LlamaServer, installed


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real_model)


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    binary, model = installed()
    missing = [str(p) for p in (binary, model) if not p.exists()]
    if missing:
        pytest.skip(
            f"the real model server is not installed ({', '.join(missing)} missing): "
            f"`bash {SCRIPT.name} install` failed or was not run; its build log is "
            f"{binary.parent.parent / 'build.log'}"
        )
    server = LlamaServer(binary, model, tmp_path_factory.mktemp("llama") / "server.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def server(llama: LlamaServer) -> LlamaServer:
    """The session's server, started again if a test killed it."""
    if llama.proc is None or llama.proc.poll() is not None:
        llama.start()
    return llama

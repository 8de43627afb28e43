"""When a spawn counts (DESIGN §2): only once the worker has registered from the process that
was started and gone idle; a child that died first is reported with its last output."""

from __future__ import annotations

import time
from collections.abc import Callable

from protocol import Layout
from protocol.agents import AgentRecord, read_agent


class SpawnFailed(Exception):
    """An agent's process died, or never registered, after it was started."""


def await_registration(
    layout: Layout,
    name: str,
    *,
    is_this_spawn: Callable[[AgentRecord], bool],
    died: Callable[[], str | None],
    output: Callable[[], str],
    where: str,
    timeout: float,
) -> AgentRecord:
    """Poll the agent's record until `is_this_spawn` holds for it and it is idle. `died`
    says how the process ended (None while it runs); `output` is its last lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_agent(layout, name)
        if record is not None and is_this_spawn(record) and record.state == "idle":
            return record
        ended = died()
        if ended is not None:
            raise SpawnFailed(f"{name} died at start ({ended}):\n{output()}")
        time.sleep(0.05)
    raise SpawnFailed(f"{name} did not register within {timeout:g}s ({where}):\n{output()}")

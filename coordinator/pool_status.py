"""What `team status` says of the model-server pool: each endpoint's load and health, read
from the team's board of slots (protocol/llm/pool_board.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from protocol import Layout
from protocol.agents import AgentRecord
from protocol.config import Config
from protocol.llm.pool import Place, places
from protocol.llm.pool_board import FileBoard, MemoryBoard
from protocol.roles import ROLES


@dataclass
class EndpointLoad:
    url: str
    provider: str
    roles: list[str]  # the roles whose calls may go there
    capacity: int | None
    in_flight: int
    failures: int  # in a row; 0: up
    down_for: float  # seconds it is still passed over
    holders: list[str] = field(default_factory=list)  # the agents with a call there now
    listed: bool = True  # from [[endpoints]]

    @property
    def state(self) -> str:
        if not self.failures:
            return "up"
        if self.down_for > 0:
            return f"down {self.down_for:.0f}s more ({self.failures} failures in a row)"
        return "probing"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "down_for": round(self.down_for, 1), "state": self.state}


def endpoint_loads(layout: Layout, config: Config, agents: list[AgentRecord]) -> list[EndpointLoad]:
    """Every endpoint a role of the team calls, with its slots in use now."""
    by_place: dict[tuple[str, Place], list[str]] = {}
    for role in ROLES:
        route = config.route(role)
        if route.provider == "cassette":  # replayed: no server
            continue
        for place in places(config, route.provider, route.model, role):
            by_place.setdefault((route.provider, place), []).append(role)
    if not by_place:
        return []
    # No board yet (no call made, or a workspace that cannot be written to): nothing in flight.
    options = [place for _, place in by_place]
    try:
        board = FileBoard(layout.pool_dir) if layout.pool_dir.is_dir() else MemoryBoard()
        loads = board.loads(options)
    except OSError:  # a board it cannot lock (another user's team, a read-only mount)
        loads = MemoryBoard().loads(options)
    names = {agent.pid: agent.name for agent in agents}
    return [
        EndpointLoad(
            url=load.url,
            provider=provider,
            roles=roles,
            capacity=load.capacity,
            in_flight=load.in_flight,
            failures=load.failures,
            down_for=load.down_for,
            holders=[names.get(pid, f"pid {pid}") for pid in load.holders],
            listed=place.listed,
        )
        for ((provider, place), roles), load in zip(by_place.items(), loads, strict=True)
    ]

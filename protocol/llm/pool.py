"""The model-server pool: which endpoint a model call goes to.

Every call of every agent takes a slot on one endpoint that serves its provider, model and
role: the one with the fewest outstanding requests, never past its capacity. The agents are
separate processes, so the slots are counted on a board they share (pool_board.py: a JSON file
under a lock in `.agents/pool/`, or memory for one process). A slot names its process, so the
slots of a process that died are given back by whoever reads the board next.

An endpoint that fails (no connection, 429, 5xx) is marked down for a while that doubles
with each failure in a row (`down_for`); calls go to the others meanwhile. When its time is
up it is probed back in: one call at a time goes to it until one succeeds.

The decisions are pure functions of the board's state (`choose`, `down_for`); pool_board.py
does the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from protocol.config import Config, Endpoint
from protocol.llm.server_errors import URL_FIELD

DOWN_FIRST = 1.0  # seconds an endpoint is passed over after its first failure in a row
DOWN_MAX = 60.0


@dataclass(frozen=True)
class Place:
    """An endpoint a call can be placed on. `capacity` None: as many as are sent (the
    provider's URL with no `providers.slots`: the server queues what it cannot answer)."""

    url: str
    capacity: int | None
    listed: bool = True  # from [[endpoints]]; False: the provider's URL


@dataclass
class Health:
    """What the board knows of an endpoint's failures."""

    failures: int = 0  # in a row; 0: up
    down_until: float = 0.0  # wall-clock seconds

    def down(self, now: float) -> bool:
        return self.failures > 0 and now < self.down_until

    def probing(self, now: float) -> bool:
        """Failed, and its time out is over: it takes one call, to see if it is back."""
        return self.failures > 0 and now >= self.down_until


@dataclass(frozen=True)
class Full:
    """Every endpoint that is up is at its capacity: wait for a slot."""


@dataclass(frozen=True)
class AllDown:
    """Every endpoint is down; `soonest` is the one whose time out ends first."""

    soonest: Place


@dataclass
class Load:
    """One endpoint's line in `team status`."""

    url: str
    capacity: int | None
    in_flight: int = 0
    failures: int = 0
    down_for: float = 0.0  # seconds left; 0: up (or being probed)
    holders: list[int] = field(default_factory=list)  # the pids holding its slots


def down_for(failures: int) -> float:
    """How long an endpoint that failed `failures` times in a row is passed over."""
    return min(DOWN_MAX, DOWN_FIRST * 2.0 ** max(0, failures - 1))


def places(config: Config, provider: str, model: str, role: str) -> list[Place]:
    """Where a call of `role` to `model` may go: the endpoints listed for it, else the
    provider's URL from `[providers]`."""
    listed = [Place(e.url, e.capacity) for e in config.endpoints if e.serves(provider, model, role)]
    if listed:
        return list(dict.fromkeys(listed))
    url: str = getattr(config.providers, URL_FIELD[provider]).rstrip("/")
    slots = config.providers.slots.get(provider)  # type: ignore[call-overload]
    return [Place(url, slots, listed=False)]


def capacity(options: Sequence[Place]) -> int | None:
    """How many calls the places answer at once; None when one of them does not say."""
    if any(p.capacity is None for p in options):
        return None
    return sum(p.capacity or 0 for p in options)


def choose(
    options: Sequence[Place],
    in_flight: Mapping[str, int],
    health: Mapping[str, Health],
    now: float,
) -> Place | Full | AllDown:
    """The place for the next call: among the endpoints that are up (or being probed, one call
    at a time) and below their capacity, the one with the fewest outstanding requests; ties go
    to the one with more room, then to the first listed."""
    usable: list[tuple[int, float, int, Place]] = []
    up = 0
    for order, place in enumerate(options):
        state = health.get(place.url, Health())
        busy = in_flight.get(place.url, 0)
        if state.down(now):
            continue
        up += 1
        limit = 1 if state.probing(now) else place.capacity
        if limit is not None and busy >= limit:
            continue
        room = -float("inf") if limit is None else busy - limit
        usable.append((busy, room, order, place))
    if usable:
        return min(usable, key=lambda u: u[:3])[3]
    if up:
        return Full()
    return AllDown(min(options, key=lambda p: health.get(p.url, Health()).down_until))


def endpoint_label(endpoint: Endpoint) -> str:
    """An endpoint as `team doctor` names it."""
    what = ", ".join(endpoint.models) if endpoint.models else f"any {endpoint.provider} model"
    roles = f"; roles {', '.join(endpoint.roles)}" if endpoint.roles else ""
    return f"{endpoint.url} ({what}{roles}; capacity {endpoint.capacity})"

"""Where the pool's slots and endpoint health are counted (pool.py decides from them).

`FileBoard`: `.agents/pool/board.json`, read and written under `.agents/pool/board.lock`, so
that every agent process of a team counts the same slots. `MemoryBoard`: the same in memory,
for the clients of one process that has no workspace (`team doctor`, benchmarks, tests).

A slot records the pid and the start time of the process that holds it; a slot whose process
is gone (killed, crashed: it could not give it back) is dropped at the next transaction. A
damaged board.json is started afresh: it holds only what is in flight now.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.agents import pid_alive, process_started_at
from protocol.atomic import atomic_write_json
from protocol.llm.pool import AllDown, Full, Health, Load, Place, choose, down_for
from protocol.locks import ProcessLock

State = dict[str, Any]  # {"slots": {id: {url, pid, started, since}}, "health": {url: {...}}}


@dataclass(frozen=True)
class Held:
    """A slot taken on `place`; give it back with `Board.give_back`."""

    place: Place
    slot: str
    failing: bool = False  # the endpoint had failed (it is probed): a success clears that


def _started(pid: int) -> float | None:
    started = process_started_at(pid)
    return started.timestamp() if started else None


def _alive(slot: dict[str, Any]) -> bool:
    pid = slot.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    recorded, now = slot.get("started"), _started(pid)
    # The same pid with a later start is another process that reused it.
    return recorded is None or now is None or abs(float(recorded) - now) < 2.0


class Board(ABC):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._pid = os.getpid()
        self._started = _started(self._pid)

    @abstractmethod
    def _state(self) -> Iterator[State]:
        """The state for one transaction, written back (when changed) after it."""

    @contextmanager
    def transaction(self) -> Iterator[State]:
        yield from self._state()

    def take(self, options: Sequence[Place], *, force: bool = False) -> Held | Full | AllDown:
        """A slot on the place `choose` picks. `force`: when every endpoint is down, the one
        back soonest is tried anyway (still within its capacity): how an endpoint that
        failed is retried after the call's backoff, and how a call that finds them all down
        probes one."""
        with self.transaction() as state:
            now = self.clock()
            self._drop_dead(state)
            in_flight = _counts(state)
            health = _health(state)
            picked = choose(options, in_flight, health, now)
            if force and isinstance(picked, AllDown):  # the soonest back, down or not
                picked = choose([picked.soonest], in_flight, {}, now)
            if not isinstance(picked, Place):
                return picked
            slot = uuid.uuid4().hex[:12]
            state["slots"][slot] = {
                "url": picked.url,
                "pid": self._pid,
                "started": self._started,
                "since": now,
            }
            return Held(picked, slot, failing=picked.url in health)

    def give_back(self, held: Held) -> None:
        with self.transaction() as state:
            state["slots"].pop(held.slot, None)

    def failed(self, place: Place, at_least: float = 0.0) -> None:
        """The endpoint failed a call: passed over for longer with each failure in a row."""
        with self.transaction() as state:
            now = self.clock()
            before = Health(**state["health"].get(place.url, {}))
            # Calls that were in flight when it went down fail together: one outage, one
            # failure (counted again only once it is probed, or was up).
            failures = before.failures + (0 if before.down(now) else 1)
            until = max(before.down_until, now + max(down_for(failures), at_least))
            state["health"][place.url] = {"failures": failures, "down_until": until}

    def succeeded(self, place: Place) -> None:
        with self.transaction() as state:
            state["health"].pop(place.url, None)

    def up_besides(self, options: Sequence[Place], place: Place) -> bool:
        """Whether an endpoint other than `place` is up now (a failed call can go there at
        once, with no backoff)."""
        with self.transaction() as state:
            now = self.clock()
            health = _health(state)
        return any(o != place and not health.get(o.url, Health()).down(now) for o in options)

    def loads(self, options: Sequence[Place]) -> list[Load]:
        """Each endpoint's slots in use and health, for `team status`."""
        with self.transaction() as state:
            now = self.clock()
            self._drop_dead(state)
            slots = list(state["slots"].values())
            health = _health(state)
        out = []
        for place in options:
            mine = [s for s in slots if s.get("url") == place.url]
            state_of = health.get(place.url, Health())
            out.append(
                Load(
                    place.url,
                    place.capacity,
                    in_flight=len(mine),
                    failures=state_of.failures,
                    down_for=max(0.0, state_of.down_until - now) if state_of.failures else 0.0,
                    holders=sorted({int(s["pid"]) for s in mine}),
                )
            )
        return out

    @staticmethod
    def _drop_dead(state: State) -> None:
        dead = [slot for slot, held in state["slots"].items() if not _alive(held)]
        for slot in dead:
            del state["slots"][slot]


def _health(state: State) -> dict[str, Health]:
    return {url: Health(**h) for url, h in state["health"].items()}


def _counts(state: State) -> dict[str, int]:
    counts: dict[str, int] = {}
    for held in state["slots"].values():
        counts[held["url"]] = counts.get(held["url"], 0) + 1
    return counts


def _fresh() -> State:
    return {"slots": {}, "health": {}}


def _valid(data: Any) -> State:
    if (
        isinstance(data, dict)
        and isinstance(data.get("slots"), dict)
        and isinstance(data.get("health"), dict)
        and all(isinstance(s, dict) and isinstance(s.get("url"), str)
                for s in data["slots"].values())
        and all(isinstance(h, dict) and set(h) == {"failures", "down_until"}
                and isinstance(h["failures"], int) and isinstance(h["down_until"], int | float)
                for h in data["health"].values())
    ):  # fmt: skip
        return data
    return _fresh()


class FileBoard(Board):
    """The board of a team: `folder` is `.agents/pool/`."""

    def __init__(self, folder: Path, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "board.json"
        self._lock = ProcessLock(folder / "board.lock")

    def _state(self) -> Iterator[State]:
        with self._lock.held():
            try:
                state = _valid(json.loads(self.path.read_text()))
            except (OSError, ValueError):
                state = _fresh()
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                atomic_write_json(self.path, state, fsync=False)  # only what is in flight


class MemoryBoard(Board):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock)
        self._data = _fresh()
        self._lock = threading.Lock()

    def _state(self) -> Iterator[State]:
        with self._lock:
            yield self._data


PROCESS_BOARD = MemoryBoard()  # the clients of a process with no workspace share it

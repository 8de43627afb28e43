"""Reading inboxes for people: all messages of some agents, and a stream of new ones.

Order is by inbox, then by the inbox's sequence number: never by clock time (DESIGN §4).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from protocol import InboxEntry, Layout, ShutdownResponse
from protocol.mailbox import MOVED, MessageState, read_entry
from protocol.receiver import watch_creations

ALL_STATES: tuple[MessageState, ...] = ("new", "cur", "bad")
_LATER_STATE = {"new": 0, "cur": 1, "bad": 1}


def is_info(entry: InboxEntry) -> bool:
    """An answer that asks for nothing: an agent's shutdown_response (to `team kill`, or to
    a coordinator that has stopped since). Nobody acts on it, so it would wait as "pending"
    forever."""
    payload = entry.message.payload if entry.message is not None else None
    return isinstance(payload, ShutdownResponse)


def needs_handling(entry: InboxEntry) -> bool:
    """Whether a message still waits for its reader to act on it."""
    return entry.state == "new" and not is_info(entry)


def entry_time(entry: InboxEntry) -> datetime:
    """When a message was sent (by its envelope), else when its file last changed: for
    display only."""
    if entry.message is not None:
        return entry.message.created_at
    try:
        return datetime.fromtimestamp(os.lstat(entry.path).st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)


def _file_names(layout: Layout, agent: str, state: MessageState) -> list[str]:
    try:
        names = os.listdir(getattr(layout.inbox(agent), state))
    except FileNotFoundError:
        return []
    return [n for n in names if not n.endswith(".reason") and not n.startswith(".")]


def _read_new(
    layout: Layout,
    agents: list[str],
    states: tuple[MessageState, ...],
    team: str,
    seen: set[tuple[str, str]],
) -> list[InboxEntry]:
    """Entries whose (agent, file name) is not in `seen`, one per message: a file caught
    between new/ and cur/ (it is briefly in both) counts once, in its later place."""
    found: dict[tuple[str, str], InboxEntry] = {}
    for agent in agents:
        for state in states:
            for name in _file_names(layout, agent, state):
                key = (agent, name)
                if key in seen:
                    continue
                entry = read_entry(agent, state, getattr(layout.inbox(agent), state) / name, team)
                if entry.problem == MOVED:
                    continue  # it is in cur/ or bad/ now, and will be read there
                earlier = found.get(key)
                if earlier is None or _LATER_STATE[state] >= _LATER_STATE[earlier.state]:
                    found[key] = entry
    return sorted(found.values(), key=lambda e: (e.agent, e.seq, e.path.name))


def collect(
    layout: Layout, agents: list[str], states: tuple[MessageState, ...], team: str
) -> list[InboxEntry]:
    """The messages in `states` of every inbox in `agents`, by inbox and sequence number."""
    return _read_new(layout, agents, states, team, set())


def follow(
    layout: Layout,
    agent: str | None,
    team: str,
    *,
    skip: set[tuple[str, str]],
    timeout: float | None = None,
    poll_interval: float = 1.0,
) -> Iterator[InboxEntry]:
    """Yield each message delivered from now on (handled or not, quarantined too), once.

    `skip` holds (agent, file name) pairs already shown. A message keeps its file name when
    it moves from new/ to cur/ or bad/, so it is never shown twice, and only files not seen
    before are read on each wake-up. Stops after `timeout` seconds, or never when None.
    """
    wake = threading.Event()
    observer = watch_creations(layout.inboxes_dir, wake, recursive=True)
    seen = set(skip)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            wake.clear()
            agents = [agent] if agent else layout.inbox_names()
            for entry in _read_new(layout, agents, ALL_STATES, team, seen):
                seen.add((entry.agent, entry.path.name))
                yield entry
            if deadline is not None and time.monotonic() >= deadline:
                return
            wait = poll_interval
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            wake.wait(wait)
    finally:
        observer.stop()
        observer.join()

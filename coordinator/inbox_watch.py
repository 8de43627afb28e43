"""Reading inboxes for people: all messages of some agents, and a stream of new ones."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from watchdog.events import FileCreatedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from protocol import InboxEntry, Layout, list_inbox
from protocol.mailbox import MessageState

ALL_STATES: tuple[MessageState, ...] = ("new", "cur", "bad")


def entry_time(entry: InboxEntry) -> datetime:
    """When a message was sent (by its envelope), else when its file last changed."""
    if entry.message is not None:
        return entry.message.created_at
    try:
        return datetime.fromtimestamp(os.lstat(entry.path).st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)


def collect(
    layout: Layout, agents: list[str], states: tuple[MessageState, ...], team: str
) -> list[InboxEntry]:
    """The messages in `states` of every inbox in `agents`, oldest first."""
    entries = [e for agent in agents for e in list_inbox(layout, agent, states=states, team=team)]
    entries.sort(key=lambda e: (entry_time(e), e.agent, e.seq))
    return entries


class _Wake(FileSystemEventHandler):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.event.set()


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
    it moves from new/ to cur/ or bad/, so it is never shown twice. Stops after `timeout`
    seconds, or never when it is None.
    """
    wake = threading.Event()
    observer = Observer()
    observer.schedule(
        _Wake(wake),
        str(layout.inboxes_dir),
        recursive=True,
        event_filter=[FileCreatedEvent],
    )
    observer.daemon = True
    observer.start()
    seen = set(skip)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            wake.clear()
            agents = [agent] if agent else layout.inbox_names()
            for entry in collect(layout, agents, ALL_STATES, team):
                key = (entry.agent, entry.path.name)
                if key not in seen:
                    seen.add(key)
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

"""The team's mailboxes: Maildir-style delivery into per-agent inboxes (DESIGN §4).

A sender writes `tmp/<unique>.part` and fsyncs it, then, under the inbox lock, takes the inbox's
next sequence number and moves the file into `new/<seq>.<sender>.<id>.json` (hard link, then
unlink: see `move_file`), so names sort in delivery order and a reader never sees half a
message. `Receiver` (receiver.py) consumes them.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from protocol import events
from protocol.atomic import fsync_dir, move_file, write_temp
from protocol.events import MessageEvent
from protocol.layout import InboxPaths, Layout
from protocol.locks import ProcessLock
from protocol.messages import Message
from protocol.wire import MAX_MESSAGE_BYTES, BadMessage, parse_message

SEQ_DIGITS = 10
_SEQ_RECORD = 24  # bytes of the .seq file: a zero-padded number, rewritten in place
MESSAGE_NAME = re.compile(
    rf"^(?P<seq>\d{{{SEQ_DIGITS}}})\.(?P<sender>[a-z0-9][a-z0-9_-]{{0,62}})\."
    r"(?P<id>[A-Za-z0-9_-]{1,64})\.json$"
)
STALE_TEMP_SECONDS = 600.0
MOVED = "moved while being read"


class UnknownRecipient(Exception):
    def __init__(self, agent: str, known: list[str]) -> None:
        names = ", ".join(known) or "none"
        super().__init__(f"no inbox for agent {agent!r} in this team (inboxes: {names})")
        self.agent = agent


class MessageTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Delivered:
    path: Path
    seq: int


@dataclass(frozen=True)
class MessageName:
    """What a message file's name says: its place in the inbox, its sender and id."""

    seq: int
    sender: str
    message_id: str

    @classmethod
    def parse(cls, name: str) -> MessageName | None:
        match = MESSAGE_NAME.match(name)
        if match is None:
            return None
        return cls(int(match["seq"]), match["sender"], match["id"])

    def file_name(self) -> str:
        return f"{self.seq:0{SEQ_DIGITS}d}.{self.sender}.{self.message_id}.json"


def create_inbox(layout: Layout, agent: str) -> InboxPaths:
    """Create `agent`'s inbox (idempotent) and return its paths."""
    inbox = layout.inbox(agent)
    for directory in inbox.dirs():
        directory.mkdir(parents=True, exist_ok=True)
    inbox.lock.touch(exist_ok=True)
    return inbox


def _highest_seq_on_disk(inbox: InboxPaths) -> int:
    highest = 0
    for directory in (inbox.new, inbox.cur, inbox.bad):
        for name in os.listdir(directory):
            parsed = MessageName.parse(name)
            if parsed is not None:
                highest = max(highest, parsed.seq)
    return highest


def _parse_seq(record: bytes) -> int | None:
    record = record.strip()
    return int(record) if record.isdigit() else None


def _read_seq_at(fd: int) -> int | None:
    return _parse_seq(os.pread(fd, _SEQ_RECORD, 0))


def _write_seq_at(fd: int, seq: int) -> None:
    # One small pwrite at offset 0: a kill -9 cannot tear it (the page cache keeps it whole).
    os.pwrite(fd, f"{seq:0{_SEQ_RECORD - 1}d}\n".encode(), 0)


def read_seq(inbox: InboxPaths) -> int | None:
    """The last number given out, read without the lock; None when the counter is missing
    or damaged (a sender rebuilds it from the names)."""
    try:
        with open(inbox.seq, "rb") as f:
            return _parse_seq(f.read(_SEQ_RECORD))
    except FileNotFoundError:
        return None


def _next_seq(inbox: InboxPaths) -> int:
    """Give out the inbox's next sequence number. The caller holds `inbox.lock`."""
    fd = os.open(inbox.seq, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        last = _read_seq_at(fd)
        # A missing or damaged counter is rebuilt from the names, so numbers never go back.
        seq = (last if last is not None else _highest_seq_on_disk(inbox)) + 1
        _write_seq_at(fd, seq)
        return seq
    finally:
        os.close(fd)


def raise_seq_to_disk(inbox: InboxPaths) -> None:
    """Make sure the counter is past every number on disk. `.seq` is not fsynced on each
    send (that would double the cost), so after a power loss it may lag the names; a receiver
    calls this when it starts."""
    with ProcessLock(inbox.lock).held():
        fd = os.open(inbox.seq, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            highest = _highest_seq_on_disk(inbox)
            if highest > (_read_seq_at(fd) or 0):
                _write_seq_at(fd, highest)
        finally:
            os.close(fd)


class Mailbox:
    """Sends messages into the inboxes of one team."""

    def __init__(self, layout: Layout, team: str, *, fsync: bool = True) -> None:
        self.layout = layout
        self.team = team
        self.fsync = fsync
        self._locks: dict[str, ProcessLock] = {}

    def _inbox_lock(self, agent: str, inbox: InboxPaths) -> ProcessLock:
        lock = self._locks.get(agent)
        if lock is None:
            lock = self._locks[agent] = ProcessLock(inbox.lock)
        return lock

    def send(self, message: Message) -> Delivered:
        """Deliver `message` into its recipient's inbox; return once it is durably in `new/`."""
        if message.team != self.team:
            raise ValueError(f"message for team {message.team!r} sent through team {self.team!r}")
        data = message.model_dump_json().encode("utf-8")
        if len(data) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(
                f"{message.type} to {message.recipient} is {len(data)} bytes; "
                f"the limit is {MAX_MESSAGE_BYTES}"
            )
        inbox = self.layout.inbox(message.recipient)
        try:
            temp = write_temp(inbox.tmp, data, fsync=self.fsync)
        except FileNotFoundError:
            raise UnknownRecipient(message.recipient, self.layout.inbox_names()) from None
        try:
            with self._inbox_lock(message.recipient, inbox).held():
                seq = _next_seq(inbox)
                name = MessageName(seq, message.sender, message.id).file_name()
                target = inbox.new / name
                move_file(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if self.fsync:
            fsync_dir(inbox.new)
        events.emit(self.layout.events_jsonl, MessageEvent.of("sent", message))
        return Delivered(target, seq)


MessageState = Literal["new", "cur", "bad"]


@dataclass(frozen=True)
class InboxEntry:
    """One file in an inbox, read without changing anything (for `team inbox`)."""

    agent: str
    state: MessageState
    path: Path
    name: MessageName | None
    message: Message | None
    problem: str | None

    @property
    def seq(self) -> int:
        return self.name.seq if self.name else 0


def _bad_reason(path: Path) -> str:
    reason = path.with_name(path.name + ".reason")
    try:
        return reason.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "no reason recorded"


def read_entry(agent: str, state: MessageState, path: Path, team: str | None) -> InboxEntry:
    name = MessageName.parse(path.name)
    if state == "bad":
        return InboxEntry(agent, state, path, name, None, _bad_reason(path))
    try:
        if not os.path.lexists(path):
            raise FileNotFoundError(path)
        if not path.is_file() or path.is_symlink():
            raise BadMessage("not a regular file")
        if path.stat().st_size > MAX_MESSAGE_BYTES:
            raise BadMessage("too large")
        message = parse_message(path.read_bytes(), team=team)
    except FileNotFoundError:
        return InboxEntry(agent, state, path, name, None, MOVED)
    except (BadMessage, OSError) as exc:
        return InboxEntry(agent, state, path, name, None, str(exc))
    return InboxEntry(agent, state, path, name, message, None)


def list_inbox(
    layout: Layout, agent: str, *, states: tuple[MessageState, ...] = ("new",), team: str | None
) -> list[InboxEntry]:
    """The messages of one inbox in the given states, in delivery order. Reads only."""
    inbox = layout.inbox(agent)
    entries: list[InboxEntry] = []
    for state in states:
        directory = getattr(inbox, state)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        for file_name in names:
            if file_name.endswith(".reason") or file_name.startswith("."):
                continue
            entries.append(read_entry(agent, state, directory / file_name, team))
    entries.sort(key=lambda e: (e.seq, e.path.name))
    return entries


def remove_stale_temp_files(inbox: InboxPaths, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete `tmp/` files a crashed sender left behind; they were never delivered."""
    removed = 0
    cutoff = time.time() - older_than
    for entry in os.scandir(inbox.tmp):
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed

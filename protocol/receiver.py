"""The one consumer of an agent's inbox: handles each message once, in delivery order.

Wake-ups come from watchdog (inotify) on `new/`, but a wake-up is only a hint: every wake-up,
and a timer at least every `poll_interval`, rescans `new/` in name order (DESIGN §4 measured
inotify overflowing under bursts). A message moves to `cur/` only after its handler returned,
and its appearance in `cur/` is the commit. A crash between the two hands the message to the
next receiver again with `redelivered=True`, so a handler that is idempotent on the message id
makes handling exactly-once.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from watchdog.events import FileCreatedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from protocol import events
from protocol.atomic import move_file
from protocol.events import MessageEvent
from protocol.layout import Layout
from protocol.locks import HeldLock, ProcessLock, try_lock
from protocol.mailbox import (
    Mailbox,
    MessageName,
    UnknownRecipient,
    create_inbox,
    raise_seq_to_disk,
    read_seq,
    remove_stale_temp_files,
)
from protocol.messages import ErrorCategory, ErrorReport, Message, is_agent_name, make_message
from protocol.wire import MAX_MESSAGE_BYTES, BadMessage, parse_message

log = logging.getLogger(__name__)
_HANDLING_RECORD = 256


class InboxBusy(Exception):
    """Another process is already consuming this inbox."""


@dataclass(frozen=True)
class Delivery:
    """What a handler is given: the message, its place in the inbox, and whether a previous
    receiver may already have handled it before crashing."""

    message: Message
    seq: int
    redelivered: bool


Handler = Callable[[Delivery], None]


class _WakeOnChange(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._wake.set()


def watch_creations(path: Path, wake: threading.Event, *, recursive: bool = False) -> BaseObserver:
    """Set `wake` whenever a file is created under `path` (a started watchdog observer; the
    caller stops and joins it). Only creations: opens, writes and closes would each cost a
    Python callback and wake the reader for nothing, and moves are not how files arrive."""
    observer = Observer()
    observer.schedule(
        _WakeOnChange(wake), str(path), recursive=recursive, event_filter=[FileCreatedEvent]
    )
    observer.daemon = True
    observer.start()
    return observer


class Receiver:
    """Consume `agent`'s inbox. Use as a context manager: it holds the inbox's receiver lock."""

    def __init__(
        self,
        layout: Layout,
        team: str,
        agent: str,
        handler: Handler,
        *,
        poll_interval: float = 2.0,
        watch: bool = True,
    ) -> None:
        self.agent = agent
        self.layout = layout
        self.inbox = create_inbox(layout, agent)
        self._mailbox = Mailbox(layout, team, fsync=False)
        self._team = team
        self._handler = handler
        self._poll_interval = poll_interval
        self._watch = watch
        self._wake = threading.Event()
        self._handled: dict[str, str] = {}
        self._peeked: set[str] = set()  # names `peek` read and found not wanted
        self._observer: BaseObserver | None = None
        self._lock: HeldLock | None = None
        self._inbox_lock = ProcessLock(self.inbox.lock)

    # --- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> Receiver:
        self._lock = try_lock(self.inbox.receiver_lock)
        if self._lock is None:
            raise InboxBusy(f"another process is already handling the inbox of {self.agent!r}")
        try:
            self._handled = self._load_handled_ids()
            remove_stale_temp_files(self.inbox)
            raise_seq_to_disk(self.inbox)
            if self._watch:
                self._start_watching()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._observer is not None:
                self._observer.stop()
                self._observer.join()
        finally:
            if self._lock is not None:
                self._lock.release()

    def _start_watching(self) -> None:
        # Only new/: files arrive there by hard link and leave by unlink, so no "moved from"
        # event (which watchdog holds 0.5 s) slows the wake-ups.
        self._observer = watch_creations(self.inbox.new, self._wake)

    def _load_handled_ids(self) -> dict[str, str]:
        handled: dict[str, str] = {}
        for file_name in os.listdir(self.inbox.cur):
            parsed = MessageName.parse(file_name)
            if parsed is not None:
                handled[parsed.message_id] = file_name
        return handled

    # --- the loop ------------------------------------------------------------------------

    def serve(
        self,
        stop: threading.Event | None = None,
        *,
        max_messages: int | None = None,
        max_idle: float | None = None,
    ) -> int:
        """Handle messages until `stop` is set, `max_messages` were handled, or nothing came
        for `max_idle` seconds. Returns how many were handled."""
        handled = 0
        idle_since = time.monotonic()
        while stop is None or not stop.is_set():
            self._wake.clear()
            remaining = None if max_messages is None else max_messages - handled
            count = self.process_pending(max_messages=remaining)
            handled += count
            if max_messages is not None and handled >= max_messages:
                break
            now = time.monotonic()
            if count:
                idle_since = now
            elif max_idle is not None and now - idle_since >= max_idle:
                break
            timeout = self._poll_interval
            if max_idle is not None:
                timeout = min(timeout, max(0.0, idle_since + max_idle - now))
            if stop is not None and stop.is_set():
                break
            self._wake.wait(timeout)
        return handled

    def wake(self) -> None:
        """Make `serve` rescan now (e.g. from a signal handler after setting `stop`)."""
        self._wake.set()

    def process_pending(self, *, max_messages: int | None = None) -> int:
        """Handle what is in `new/` now, in name order; return how many handlers ran."""
        handled = 0
        for file_name in self._snapshot():
            if max_messages is not None and handled >= max_messages:
                break
            if self._process_one(file_name):
                handled += 1
        return handled

    def peek(self, wanted: Callable[[Message], bool]) -> bool:
        """Whether a message waiting in `new/` is `wanted`, without handling it: for a check
        made often in the middle of a handler (a shutdown request during a task). Each file is
        read once, by the same safe read as handling; a bad one is left for `serve`."""
        for file_name in sorted(os.listdir(self.inbox.new)):
            if file_name in self._peeked:
                continue
            try:
                message = self._read(file_name)
            except FileNotFoundError:
                continue
            except (BadMessage, OSError):
                self._peeked.add(file_name)
                continue
            if wanted(message):
                return True
            self._peeked.add(file_name)
        return False

    def take(self, wanted: Callable[[Message], bool]) -> list[Message]:
        """Handle now, ahead of their turn, the waiting messages that are `wanted`, and return
        them: for messages that order does not concern, read in the middle of a handler (the
        user's guidance during a task). Each is committed to `cur/` as `serve` would; a bad
        or duplicate file is left for `serve` to judge."""
        taken: list[Message] = []
        for file_name in sorted(os.listdir(self.inbox.new)):
            name = MessageName.parse(file_name)
            if name is None:
                continue
            try:
                message = self._read(file_name)
            except (FileNotFoundError, BadMessage, OSError):
                continue
            if (
                not wanted(message)
                or message.recipient != self.agent
                or message.id in self._handled
                or (name.message_id, name.sender) != (message.id, message.sender)
            ):
                continue
            move_file(self.inbox.new / file_name, self.inbox.cur / file_name)
            self._handled[message.id] = file_name
            events.emit(self.layout.events_jsonl, MessageEvent.of("handled", message))
            taken.append(message)
        return taken

    def _snapshot(self) -> list[str]:
        """The names in `new/` that can be handled now without breaking the order.

        A listing taken while senders link N and then N+1 can show N+1 without N (readdir
        walks a hash order). But a sender numbers and links under the inbox lock, so when the
        counter reads S, every message below S is already linked, and a listing started after
        that read holds them all: handling the names up to S keeps the order. Names above S
        wait for the next scan, except numbers the counter had not even reached after the
        listing: those were not numbered by it (written straight into new/) and are judged
        now. A damaged counter falls back to listing under the lock.
        """
        before = read_seq(self.inbox)
        if before is None:
            with self._inbox_lock.held():
                return sorted(os.listdir(self.inbox.new))
        names = sorted(os.listdir(self.inbox.new))
        after = read_seq(self.inbox) or before
        ready = []
        for file_name in names:
            name = MessageName.parse(file_name)
            if name is None or name.seq <= before or name.seq > after:
                ready.append(file_name)
        return ready

    def _process_one(self, file_name: str) -> bool:
        path = self.inbox.new / file_name
        name = MessageName.parse(file_name)
        if name is None:
            self._quarantine(file_name, "not a message file name (<seq>.<sender>.<id>.json)")
            return False
        try:
            message = self._read(file_name)
        except FileNotFoundError:
            return False
        except BadMessage as exc:
            self._quarantine(file_name, exc.reason)
            self._notify_sender(file_name, exc, name)
            return False
        except OSError as exc:  # unreadable (permissions, I/O error): never jam the inbox
            self._quarantine(file_name, f"cannot read: {exc.strerror or exc}")
            return False
        if name.message_id != message.id or name.sender != message.sender:
            self._quarantine(file_name, "file name does not match the message's sender and id")
            return False
        if message.recipient != self.agent:
            self._quarantine(file_name, f"addressed to {message.recipient!r}, not {self.agent!r}")
            return False
        if self._handled.get(message.id) == file_name:
            os.unlink(path)  # a crash between linking into cur/ and unlinking here: finish it
            return False
        if message.id in self._handled:
            self._quarantine(
                file_name,
                f"duplicate: message id {message.id} was handled as {self._handled[message.id]}",
            )
            return False
        redelivered = self._read_handling() == file_name
        self._write_handling(file_name)
        try:
            self._handler(Delivery(message, name.seq, redelivered))
        except Exception as exc:
            # A poison message must not be retried forever; keep it, with the error, in bad/,
            # and tell its sender.
            reason = f"handler failed: {type(exc).__name__}: {exc}"
            self._quarantine(file_name, reason)
            failure = BadMessage(
                reason, sender=message.sender, message_id=message.id, message_type=message.type
            )
            self._notify_sender(file_name, failure, name)
            raise
        move_file(path, self.inbox.cur / file_name)  # the commit: in cur/ means handled
        self._handled[message.id] = file_name
        events.emit(self.layout.events_jsonl, MessageEvent.of("handled", message))
        return True

    # --- reading and quarantine ----------------------------------------------------------

    def _read(self, file_name: str) -> Message:
        path = self.inbox.new / file_name
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            raise BadMessage("a symbolic link, not a message file")
        if stat.S_ISDIR(info.st_mode):
            raise BadMessage("a directory, not a message file")
        if not stat.S_ISREG(info.st_mode):
            raise BadMessage("not a regular file")
        if info.st_size > MAX_MESSAGE_BYTES:
            raise BadMessage(f"too large: {info.st_size} bytes (limit {MAX_MESSAGE_BYTES})")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            data = os.read(fd, MAX_MESSAGE_BYTES + 1)
        finally:
            os.close(fd)
        return parse_message(data, team=self._team)

    def _quarantine(self, file_name: str, reason: str) -> None:
        """Move a file from new/ to bad/, with `<name>.reason` beside it. Nothing is deleted."""
        target = self.inbox.bad / file_name
        suffix = 1
        while os.path.lexists(target):
            target = self.inbox.bad / f"{file_name}.{suffix}"
            suffix += 1
        # The reason first: a crash before the move leaves the file in new/ to be retried.
        target.with_name(target.name + ".reason").write_text(reason + "\n", encoding="utf-8")
        move_file(self.inbox.new / file_name, target)
        log.warning("inbox %s: quarantined %s: %s", self.agent, file_name, reason)

    def _notify_sender(self, file_name: str, exc: BadMessage, name: MessageName) -> None:
        sender = exc.sender or name.sender
        if sender is None or not is_agent_name(sender) or sender == self.agent:
            return
        if exc.message_type == "error_report":  # never answer a report with a report
            return
        report = ErrorReport(
            category=ErrorCategory.PROTOCOL,
            message=f"your message {file_name} to {self.agent} was quarantined: {exc.reason}",
            recoverable=True,
        )
        reply = make_message(
            report,
            team=self._team,
            sender=self.agent,
            recipient=sender,
            reply_to=exc.message_id,
        )
        try:
            self._mailbox.send(reply)
        except UnknownRecipient:
            log.warning(
                "inbox %s: cannot tell unknown sender %r about %s", self.agent, sender, file_name
            )

    # --- the handling marker -------------------------------------------------------------

    def _read_handling(self) -> str:
        try:
            with open(self.inbox.handling, "rb") as f:
                return f.read(_HANDLING_RECORD).decode("ascii", "replace").strip()
        except FileNotFoundError:
            return ""

    def _write_handling(self, file_name: str) -> None:
        fd = os.open(self.inbox.handling, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, file_name.encode("ascii").ljust(_HANDLING_RECORD), 0)
        finally:
            os.close(fd)

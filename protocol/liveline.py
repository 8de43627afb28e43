"""A model call in progress, as a pane shows it: one live line, redrawn every second, with the
call, its seconds, the tokens so far and tokens/s, or that it waits. A local model may take
minutes; a pane that says nothing for that long looks dead. Without a terminal (a log file),
a plain line now and then instead."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator

from rich.console import Console
from rich.text import Text

from protocol.display import inert
from protocol.llm.types import CallProgress

QUIET_SECONDS = 10.0  # no new token for this long: the line says the call went quiet
PLAIN_EVERY = 15.0  # without a terminal, a progress line this often


class LiveCall:
    """One model call's figures, and the line that says them (pure but for the clock)."""

    def __init__(self, start: CallProgress, now: float) -> None:
        self.role, self.model = start.role, start.model
        self.started = now
        self.tokens = 0
        self.last_token = now
        self.first_token: float | None = None
        self.shown = now

    def update(self, progress: CallProgress, now: float) -> None:
        if progress.tokens > self.tokens:
            self.tokens = progress.tokens
            self.last_token = now
            self.first_token = self.first_token or now

    def line(self, now: float) -> str:
        head = f"{self.role} ({self.model}): {now - self.started:.0f} s"
        if self.first_token is None:
            return f"{head}, waiting for the first token"
        rate = self.tokens / max(now - self.first_token, 0.1)
        quiet = now - self.last_token
        tail = f", quiet for {quiet:.0f} s" if quiet >= QUIET_SECONDS else ""
        return f"{head}, {self.tokens} tokens, {rate:.1f} tokens/s{tail}"

    def finished(self, end: CallProgress) -> str:
        rate = end.tokens / end.elapsed_s if end.elapsed_s > 0 else 0.0
        tokens = "1 token" if end.tokens == 1 else f"{end.tokens} tokens"
        return f"{self.role} answered in {end.elapsed_s:.1f} s, {tokens} ({rate:.1f}/s)"


class LiveLine:
    """The live line of one pane; thread-safe. Other output goes through `paused()`."""

    def __init__(self, console: Console, tty: bool | None = None) -> None:
        self.console = console
        self.tty = sys.stdout.isatty() if tty is None else tty
        self._call: LiveCall | None = None
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._drawn = False

    def update(self, progress: CallProgress) -> str | None:
        """Take a progress report; at the call's end, the line that sums it up."""
        now = time.monotonic()
        with self._lock:
            if progress.phase == "start":
                self._call = LiveCall(progress, now)
                if self._ticker is None or not self._ticker.is_alive():
                    self._ticker = threading.Thread(target=self._tick, daemon=True)
                    self._ticker.start()
                return None
            if self._call is None:
                return None
            if progress.phase == "chunk":
                self._call.update(progress, now)
                return None
            call, self._call = self._call, None
            self._clear()
        return call.finished(progress) if progress.ok else None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Print other lines above the live one."""
        with self._lock:
            self._clear()
            try:
                yield
            finally:
                self._draw()

    def _tick(self) -> None:
        while True:
            time.sleep(1.0)
            with self._lock:
                call = self._call
                if call is None:
                    return
                now = time.monotonic()
                if self.tty:
                    self._draw()
                elif now - call.shown >= PLAIN_EVERY:
                    call.shown = now
                    text = time.strftime("%H:%M:%S ") + "model   " + call.line(now)
                    with contextlib.suppress(OSError):
                        self.console.print(Text(inert(text), style="dim"))

    def _draw(self) -> None:
        if not self.tty or self._call is None:
            return
        text = time.strftime("%H:%M:%S ") + "model   " + self._call.line(time.monotonic())
        width = max(20, self.console.width - 1)
        with contextlib.suppress(OSError):
            sys.stdout.write("\r\x1b[K\x1b[2m" + inert(text)[:width] + "\x1b[0m")
            sys.stdout.flush()
        self._drawn = True

    def _clear(self) -> None:
        if self._drawn:
            with contextlib.suppress(OSError):
                sys.stdout.write("\r\x1b[K")
                sys.stdout.flush()
            self._drawn = False

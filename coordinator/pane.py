"""The coordinator's pane and log: one line per event, time-stamped, made inert first."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.text import Text

from protocol.display import inert
from protocol.liveline import LiveLine
from protocol.llm.types import CallProgress

STYLES = {
    "fail": "bold red",
    "warn": "yellow",
    "done": "bold green",
    "check": "green",
    "task": "cyan",
}


@dataclass
class Pane:
    log: Path
    console: Console = field(default_factory=lambda: Console(markup=False, highlight=False))
    # With the subprocess runner the pane's output is the log itself: print once.
    echo: bool = True

    def __post_init__(self) -> None:
        self.live = LiveLine(self.console, tty=None if self.echo else False)

    def say(self, kind: str, text: str) -> None:
        text = inert(text)  # models' and messages' text never drives the terminal
        stamp = time.strftime("%H:%M:%S ")
        if self.echo:
            line = Text(stamp, style="dim")
            line.append(f"{kind:<6} ", style=STYLES.get(kind, "white"))
            line.append(text)
            # A closed pane must not stop the coordinator.
            with contextlib.suppress(OSError), self.live.paused():
                self.console.print(line)
        # The pane may close; `team logs coordinator` reads this.
        with contextlib.suppress(OSError), self.log.open("a") as log:
            log.write(f"{stamp}{kind:<6} {text}\n")

    def model_progress(self, progress: CallProgress) -> None:
        """A planning or RCA call as it runs: a live line in the pane; its end in the log."""
        finished = self.live.update(progress)
        if finished:
            self.say("model", finished)

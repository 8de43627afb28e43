"""What a worker's pane shows, and its log file: one readable line per thing it does."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

from protocol.display import inert
from protocol.liveline import LiveLine
from protocol.llm.types import CallProgress

STYLES = {
    "task": "bold cyan",
    "told": "bold magenta",
    "tool": "white",
    "write": "green",
    "lint": "bold red",
    "refused": "bold yellow",
    "check": "green",
    "fail": "bold red",
    "done": "bold green",
    "model": "dim",
    "run": "magenta",
    "read": "dim",
    "info": "dim",
}


class View:
    def __init__(self, name: str, log_file: Path) -> None:
        self.name = name
        self.console = Console(markup=False, highlight=False, soft_wrap=True)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log = logging.getLogger(f"agent.{name}")
        self.log.setLevel(logging.INFO)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.log.addHandler(handler)
        self.log.propagate = False
        self.live = LiveLine(self.console)

    def event(self, kind: str, detail: str) -> None:
        detail = inert(detail)  # a model's text never drives the terminal
        line = Text(time.strftime("%H:%M:%S "), style="dim")
        line.append(f"{kind:<8}", style=STYLES.get(kind, "white"))
        line.append(detail)
        with self.live.paused():
            self.console.print(line)
        self.log.info("%s %s", kind, detail)

    def model_progress(self, progress: CallProgress) -> None:
        """A model call as it runs: a live line in the pane, then a line that sums it up."""
        finished = self.live.update(progress)
        if finished:
            self.event("model", finished)

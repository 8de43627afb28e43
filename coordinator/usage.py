"""Tokens the team spent, read from the event log as it grows (the workers write their model
calls there): what the team's budget is checked against."""

from __future__ import annotations

from pathlib import Path

from coordinator.activity import Spend
from protocol.events import EventTail, ModelCallEnded


class TokenTally:
    def __init__(self, log: Path) -> None:
        self._tail = EventTail(log)
        self._spend = Spend()  # counted as `team status` counts them

    def total(self) -> int:
        """Prompt + completion tokens of every model call in the log so far."""
        for event in self._tail.read():
            if isinstance(event, ModelCallEnded):
                self._spend.add(event)
        return self._spend.tokens

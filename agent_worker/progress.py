"""Whether an agent is getting anywhere, as pure functions over the rounds it has had: a round
that answers with prose, is cut at the answer cap, repeats a call it already made, or makes
only calls that fail is a stall; so is a second round in a row of only looking around once
every file of the task is written. The loop nudges after the first stall and stops after the
next (`STALL_ROUNDS`), long before its round limit; stalls of looking end it as a finish."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent_worker.tools import describe_arguments

STALL_ROUNDS = 2  # stalls in a row that end the loop; the one before gets a nudge
WRITING_TOOLS = frozenset({"write_file", "edit_file"})
LOOKING_TOOLS = frozenset({"list_files", "read_file"})


class StallKind(StrEnum):
    PROSE = "prose"  # no tool call at all
    CUT = "cut"  # the answer was cut at the answer cap: nothing of it is usable
    REPEATED = "repeated"  # every call was made before, with nothing written since
    FAILED = "failed"  # every call failed: unknown tool, bad arguments, refused
    # Every file is written, and it only looks around, round after round, without `finish`.
    LOOKING = "looking"


@dataclass(frozen=True)
class Call:
    name: str
    arguments: str  # canonical JSON: two calls are the same when name and this match
    outcome: str  # ok, error, refused, finished (the Toolbox's words)
    output: str = ""

    @classmethod
    def of(cls, name: str, arguments: dict[str, Any], outcome: str, output: str = "") -> Call:
        canonical = json.dumps(arguments, sort_keys=True, default=str)
        return cls(name, canonical, outcome, output[:300])

    def shown(self) -> str:
        return f"{self.name}({describe_arguments(json.loads(self.arguments), limit=40)})"


@dataclass(frozen=True)
class Round:
    """What one model turn did: its calls in order, or that its answer was cut."""

    number: int
    calls: tuple[Call, ...] = ()
    cut: bool = False
    all_written: bool = False  # every file of the task was written by the end of the round

    @property
    def wrote(self) -> bool:
        return any(c.name in WRITING_TOOLS and c.outcome == "ok" for c in self.calls)


@dataclass(frozen=True)
class Stall:
    kind: StallKind
    round: int
    detail: str  # what the round did, in a line (the calls, or the failures)


def stall_of(rounds: Sequence[Round]) -> Stall | None:
    """Why the last of `rounds` got nowhere, or None when it made progress."""
    if not rounds:
        return None
    last = rounds[-1]
    if last.cut:
        return Stall(StallKind.CUT, last.number, "the answer was cut at the answer cap")
    if not last.calls:
        return Stall(StallKind.PROSE, last.number, "answered with prose, no tool call")
    failed = [c for c in last.calls if c.outcome in ("error", "refused")]
    if len(failed) == len(last.calls):
        detail = "; ".join(f"{c.shown()}: {c.output.splitlines()[0] if c.output else ''}"
                           for c in failed)  # fmt: skip
        return Stall(StallKind.FAILED, last.number, f"only failing calls: {detail}")
    if _looks(last) and _looked_since_done(rounds[:-1]):
        shown = ", ".join(c.shown() for c in last.calls)
        return Stall(StallKind.LOOKING, last.number, f"all its files are written; {shown}")
    seen = _calls_since_last_write(rounds[:-1])
    if all((c.name, c.arguments) in seen for c in last.calls):
        shown = ", ".join(c.shown() for c in last.calls)
        return Stall(StallKind.REPEATED, last.number, f"the same call again: {shown}")
    return None


def trailing_stalls(rounds: Sequence[Round]) -> list[Stall]:
    """The stalls of the rounds since the last one that made progress, oldest first."""
    stalls: list[Stall] = []
    for end in range(len(rounds), 0, -1):
        stall = stall_of(rounds[:end])
        if stall is None:
            break
        stalls.insert(0, stall)
    return stalls


def _looks(round: Round) -> bool:
    return bool(round.calls) and all(c.name in LOOKING_TOOLS for c in round.calls)


def _looked_since_done(rounds: Sequence[Round]) -> bool:
    """Whether every file was written and, since, there was a round of only looking: one look
    at what it wrote is a review; a second in a row is where a weak model never stops."""
    return len(rounds) >= 2 and rounds[-2].all_written and _looks(rounds[-1])


def _calls_since_last_write(rounds: Sequence[Round]) -> set[tuple[str, str]]:
    """The calls made since the workspace last changed (the writing round's own included: the
    same write again changes nothing)."""
    start = max((i for i, r in enumerate(rounds) if r.wrote), default=0)
    return {(c.name, c.arguments) for r in rounds[start:] for c in r.calls}

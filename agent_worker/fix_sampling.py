"""Sampled fixes (issue 13, Agentless-style selection by tests): on a fix task after a failed
verification, a builder may make K candidate fixes of its files, one after another, each from
the files as they were; each is judged by the Definition-of-Done criteria, run in the sandbox as
verification runs them, and the one that makes the most pass without breaking one that passed
is kept. `sampling.fix_candidates` is K (default 1: one fix, as before)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent_worker.tools import LOCK_TIMEOUT
from coordinator.verify import Runner
from protocol import atomic_write_text, file_lock
from protocol.layout import Layout
from protocol.plan import DodCriterion, Plan, load_plan
from protocol.sandbox import Sandbox
from protocol.workspace_files import read_text_inside

FIX_TEMPERATURES = (0.2, 0.6, 0.9, 1.0)

Files = dict[str, str | None]  # each file's text, None where it does not exist


@dataclass(frozen=True)
class FixCandidate:
    number: int
    temperature: float
    passing: frozenset[str]  # the criteria it makes pass
    broken: frozenset[str]  # the criteria that passed before it and fail after
    files: Files  # what it left
    failed: str = ""  # why the attempt itself failed (no finish, checks): not a candidate

    def describe(self, total: int) -> str:
        head = f"fix {self.number} (temperature {self.temperature:g})"
        if self.failed:
            return f"{head}: {self.failed}"
        said = f"{head}: {len(self.passing)} of {total} criteria pass"
        return said + (f", breaks {', '.join(sorted(self.broken))}" if self.broken else "")


def fix_temperature(number: int) -> float:
    """The first fix at the loop's own temperature; the others warmer, to differ."""
    return FIX_TEMPERATURES[min(number - 1, len(FIX_TEMPERATURES) - 1)]


def fix_rank(candidate: FixCandidate) -> tuple[int, int, int, int]:
    """Best first when sorted: an attempt that finished; nothing broken; the most criteria
    passing; the earlier fix."""
    return (
        1 if candidate.failed else 0,
        len(candidate.broken),
        -len(candidate.passing),
        candidate.number,
    )


def best_fix(candidates: Sequence[FixCandidate]) -> FixCandidate | None:
    finished = [c for c in candidates if not c.failed]
    return min(finished, key=fix_rank) if finished else None


def read_plan(layout: Layout) -> Plan | None:
    """The plan as the coordinator wrote it (None without one, or a damaged one): its
    criteria judge fixes, its files say which modules are still to be built."""
    try:
        return load_plan(layout.plan_json.read_bytes())
    except (OSError, ValueError):
        return None


@dataclass
class FixJudge:
    """Runs the criteria on the workspace as it is now, in the sandbox."""

    sandbox: Sandbox
    criteria: list[DodCriterion]
    timeout: float = 120.0
    on_step: Callable[[str], None] = lambda name: None

    def passing(self) -> frozenset[str]:
        runner = Runner(self.sandbox, self.timeout)
        passed = set()
        for criterion in self.criteria:
            self.on_step(criterion.id)
            if runner.criterion(criterion).passed:
                passed.add(criterion.id)
        return frozenset(passed)


def read_files(layout: Layout, paths: Sequence[str]) -> Files:
    return {path: read_text_inside(layout.workspace, path) for path in paths}


def put_files(layout: Layout, files: Files) -> None:
    """Put the task's own files back as `files` has them (a file that did not exist is
    removed), each under its lock as any write is."""
    for relative, text in files.items():
        real = layout.workspace / relative
        with file_lock(layout.file_lock(relative), timeout=LOCK_TIMEOUT):
            if text is None:
                real.unlink(missing_ok=True)
            elif read_text_inside(layout.workspace, relative) != text:
                real.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(real, text)

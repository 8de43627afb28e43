"""A run as the event log tells it, for `team trace`: its model calls numbered 1..N in log
order, each with the tool calls run on its answer; the task attempts and how each ended; the
verifications. `read_run` is a pure function of the events; `RunOnDisk` adds the trace store
that holds each call's whole exchange."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from coordinator.classify import ErrorClass, classify, note_category
from coordinator.exchanges import Exchange, read_exchange
from coordinator.memory import IterationRecord, Memory
from protocol import Layout
from protocol.callstore import CallStore
from protocol.config import ConfigError, load_config
from protocol.events import (
    CriterionChecked,
    Event,
    ModelCallEnded,
    ModelCallStarted,
    TaskChanged,
    TeamChanged,
    ToolCalled,
    VerifyStepRan,
    read_events,
)

ENDED = ("done", "failed", "abandoned")


@dataclass
class Call:
    number: int  # 1..N in the order of the event log: what `team trace --call N` takes
    event: ModelCallEnded
    tools: list[ToolCalled] = field(default_factory=list)  # run on its answer, in order
    # A later call with the same call id (the store keeps one exchange per id) replaced it.
    overwritten_by: int | None = None

    @property
    def failed(self) -> bool:
        return self.event.outcome != "ok"


@dataclass
class Attempt:
    task_id: int
    attempt: int
    position: int  # index in the log of its last change: failures are listed in log order
    owner: str | None = None
    iteration: int = 0  # the build iteration it ran in (0: exploring, before the plan)
    status: str = "pending"  # the last status of this attempt
    note: str = ""
    category: str = ""  # the failure's ErrorCategory, as the worker typed it
    calls: list[Call] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def label(self) -> str:
        """The typed label of its failure: the failed model call's error type for a "model"
        failure, else the category its note starts with."""
        category = self.category or note_category(self.note)  # a note: a log from before
        failed_calls = [c for c in self.calls if c.failed]
        if category in ("model", "") and failed_calls:
            return failed_calls[-1].event.outcome
        return category

    @property
    def error_class(self) -> ErrorClass:
        errors = "\n".join([self.note, *(c.event.error for c in self.calls if c.failed)])
        return classify(errors, self.label)


@dataclass
class Verification:
    iteration: int
    position: int
    steps: list[VerifyStepRan] = field(default_factory=list)
    criteria: list[CriterionChecked] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        passes = [s.passed for s in self.steps] + [c.passed for c in self.criteria]
        return bool(passes) and all(passes)

    @property
    def step_output(self) -> str:
        """Its failing steps, each with a failing test's assertion lines."""
        return "\n\n".join(f"step {s.name} failed:\n{s.detail}" for s in self.steps if not s.passed)

    @property
    def output(self) -> str:
        """What its failing steps and criteria printed, as the event log has it (shortened)."""
        parts = [f"criterion {c.id} failed: {c.detail}" for c in self.criteria if not c.passed]
        return "\n\n".join([self.step_output, *parts]).strip()


@dataclass
class Run:
    calls: list[Call]
    attempts: list[Attempt]
    verifications: list[Verification]
    titles: dict[int, str]  # task id -> title, from the events that created the tasks
    unended: int  # calls that started and never ended (a killed process, or still waiting)

    def task_attempts(self, task_id: int) -> list[Attempt]:
        return [a for a in self.attempts if a.task_id == task_id]

    def attempt_of(self, call: Call) -> Attempt | None:
        key = (call.event.task_id, call.event.attempt or 1)
        return next((a for a in self.attempts if (a.task_id, a.attempt) == key), None)

    def verification_after(self, attempt: Attempt) -> Verification | None:
        """The last verification of the iteration the attempt was built in."""
        found = [v for v in self.verifications if v.iteration == attempt.iteration]
        return found[-1] if found else None


def read_run(events: list[Event]) -> Run:
    """The run the events tell, in their order."""
    calls: list[Call] = []
    last_call: dict[str, Call] = {}  # per writer: the call its next tool calls answer
    by_id: dict[str, Call] = {}  # the last call of each call id: the one the store holds
    attempts: dict[tuple[int, int], Attempt] = {}
    verifications: list[Verification] = []
    titles: dict[int, str] = {}
    started: Counter[str] = Counter()
    iteration = 0
    for position, event in enumerate(events):
        match event:
            case TeamChanged():
                iteration = event.iteration
            case ModelCallStarted():
                started[event.call_id] += 1
            case ModelCallEnded():
                started[event.call_id] -= 1
                call = Call(len(calls) + 1, event)
                if event.call_id in by_id:
                    by_id[event.call_id].overwritten_by = call.number
                by_id[event.call_id] = call
                calls.append(call)
                last_call[event.writer] = call
                if event.task_id is not None:  # a worker's call, for its task attempt
                    key = (event.task_id, event.attempt or 1)
                    attempt = attempts.setdefault(key, Attempt(*key, position, status="running"))
                    attempt.calls.append(call)
            case ToolCalled():
                if event.writer in last_call:
                    last_call[event.writer].tools.append(event)
            case TaskChanged():
                if event.title:
                    titles[event.task_id] = event.title
                attempt = attempts.setdefault(
                    (event.task_id, event.attempt),
                    Attempt(event.task_id, event.attempt, position),
                )
                attempt.status, attempt.note, attempt.position = event.status, event.note, position
                attempt.category = event.category
                attempt.owner = event.owner or attempt.owner
                if event.status in ("assigned", "running") and not attempt.iteration:
                    attempt.iteration = iteration
            case VerifyStepRan() | CriterionChecked():
                current = verifications[-1] if verifications else None
                again = (
                    isinstance(event, VerifyStepRan) and current is not None and current.criteria
                )
                if current is None or current.iteration != event.iteration or again:
                    current = Verification(event.iteration, position)
                    verifications.append(current)
                if isinstance(event, VerifyStepRan):
                    current.steps.append(event)
                else:
                    current.criteria.append(event)
    worked = [a for a in attempts.values() if a.status not in ("pending", "ready")]
    return Run(calls, worked, verifications, titles, sum(n for n in started.values() if n > 0))


def unstored_reason(call: Call, store_limit_bytes: int, store_used_bytes: int) -> str:
    """Why a call's exchange is not in the trace store, in words a user can act on."""
    if call.overwritten_by is not None:
        return (
            f"call {call.overwritten_by} was given the same call id ({call.event.call_id}), "
            "and its exchange replaced this one in the store"
        )
    if call.event.stored:
        return "the store had it, but its file is gone from .agents/traces/calls/"
    if store_limit_bytes == 0:
        return "the trace store is off ([team] trace_store_mb = 0 in the config)"
    if store_used_bytes >= store_limit_bytes:
        return (
            f"the trace store was full ({store_limit_bytes // (1024 * 1024)} MB, "
            "[team] trace_store_mb in the config)"
        )
    if call.failed:
        return f"the call failed ({call.event.outcome}) before a request was sent"
    return "the process that made it could not write the store"


@dataclass
class RunOnDisk:
    """A team's run as its `.agents/` holds it: the events read once, the exchanges on demand."""

    layout: Layout
    run: Run
    store: CallStore
    memory: Memory  # what each iteration's verification found, and its RCA
    bad_lines: int

    @classmethod
    def read(cls, layout: Layout) -> RunOnDisk:
        result = read_events(layout.events_jsonl)
        try:
            limit_mb = load_config(layout.config_toml).team.trace_store_mb
        except ConfigError:
            limit_mb = 256
        store = CallStore(layout.traces_dir, limit_bytes=limit_mb * 1024 * 1024)
        memory = Memory.load(layout.memory_json)
        return cls(layout, read_run(result.events), store, memory, result.bad_lines)

    def iteration_record(self, verification: Verification) -> IterationRecord | None:
        """memory.json's record of the verification, when it was its iteration's last."""
        same = [v for v in self.run.verifications if v.iteration == verification.iteration]
        if same[-1] is not verification:
            return None
        return next(
            (i for i in self.memory.iterations if i.iteration == verification.iteration), None
        )

    def exchange(self, call: Call) -> Exchange | None:
        """The call's whole exchange, or None when it is not (or no longer) in the store."""
        if call.overwritten_by is not None or not call.event.stored:
            return None
        record = self.store.load(call.event.call_id)
        return read_exchange(record) if record is not None else None

    def why_not_stored(self, call: Call) -> str:
        return unstored_reason(call, self.store.limit_bytes, self.store.used_bytes())

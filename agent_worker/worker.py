"""One agent process: it registers, heartbeats, waits on its inbox, and works the tasks it is
assigned (DESIGN §2, §6, §8). `python -m agent_worker --workspace DIR --name NAME --role ROLE`."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import FrameType

from agent_worker.assertions import assertion_check
from agent_worker.candidates import module_names
from agent_worker.fix_sampling import (
    FixCandidate,
    FixJudge,
    best_fix,
    fix_temperature,
    put_files,
    read_files,
    read_plan,
)
from agent_worker.lint import compile_check, import_check
from agent_worker.loop import (
    AgentLoop,
    Limits,
    LoopStopped,
    NoProgress,
    OutOfTokens,
    ShutdownRequested,
)
from agent_worker.prompts import (
    GUIDANCE,
    REPAIR_AFTER_CHECKS,
    REPORT_REQUEST,
    SAMPLING_SYSTEM,
    SYSTEM,
    task_prompt,
)
from agent_worker.test_sampling import TestSampler, Waves, server_capacity
from agent_worker.tools import (
    ALL_TOOLS,
    READ_ONLY_TOOLS,
    Toolbox,
    is_test_file,
    ownership_guard,
    remove_stale_temp_files,
    tester_guard,
)
from agent_worker.view import View
from protocol import (
    COORDINATOR,
    Completion,
    Delivery,
    ErrorCategory,
    ErrorReport,
    FileCheck,
    Guidance,
    Layout,
    Mailbox,
    Payload,
    ProgressUpdate,
    Receiver,
    ShutdownRequest,
    ShutdownResponse,
    TaskAssignment,
    TaskFileError,
    TaskStatus,
    TaskStore,
    TransitionConflict,
    events,
    make_message,
)
from protocol.agents import MODEL_ROLE, AgentRecord, AgentRole
from protocol.config import Config, load_config
from protocol.events import AgentChanged, BudgetReached
from protocol.llm import (
    BadAnswer,
    ChatMessage,
    ModelClient,
    ModelError,
    ServerUnreachable,
    ToolCall,
    TruncatedAnswer,
)
from protocol.llm.pool_board import FileBoard
from protocol.messages import GuidanceMessage, Message, ShutdownRequestMessage, utc_now
from protocol.plan import DodCriterion, Plan
from protocol.reports import ExplorationReport
from protocol.sandbox import UNCONFINED_NOTICE, Sandbox
from protocol.tasks import TaskResult
from protocol.team import read_team_or_backup
from protocol.tracing import Tracer, new_trace_id
from protocol.workspace_files import read_text_inside

HEARTBEAT_SECONDS = 2.0
# What an attempt that went well gives: its summary, the files it wrote, their checks, and
# the task's result.
Outcome = tuple[str, list[str], list[FileCheck], TaskResult]


class ChecksFailed(LoopStopped):
    def __init__(self, message: str, checks: list[FileCheck]) -> None:
        super().__init__(f"files fail their checks: {message}")
        self.checks = checks
        self.details = "\n".join(f"{c.path}: {c.detail}" for c in checks if not c.ok)


def raise_if_failing(checks: list[FileCheck]) -> None:
    """`ChecksFailed` naming each file whose check fails, if any does."""
    if any(not c.ok for c in checks):
        bad = "; ".join(f"{c.path}: {c.detail}" for c in checks if not c.ok)
        raise ChecksFailed(bad, checks)


class Stopping(BaseException):
    """Raised from the message handler to stop before starting new work: a BaseException, so
    the receiver leaves the message unhandled in the inbox rather than quarantining it."""


# Failures that are not the task's doing: they cost it no attempt.
NOT_ITS_FAULT = frozenset({ErrorCategory.UNREACHABLE, ErrorCategory.STOPPED})


def failure_category(exc: Exception) -> ErrorCategory:
    """What kind of failure ended an attempt: decided here, from the exception's type, and
    carried to the coordinator as a field (never as words it has to match)."""
    if isinstance(exc, ShutdownRequested):
        return ErrorCategory.STOPPED
    if isinstance(exc, OutOfTokens):
        return ErrorCategory.BUDGET
    if isinstance(exc, ChecksFailed):
        return ErrorCategory.LINT
    if isinstance(exc, NoProgress):
        return ErrorCategory.NO_PROGRESS
    if isinstance(exc, ServerUnreachable):
        return ErrorCategory.UNREACHABLE
    if isinstance(exc, ModelError):
        return ErrorCategory.MODEL
    return ErrorCategory.TIMEOUT


def completion_id(assignment: TaskAssignment) -> str:
    """The same id every time a task's attempt is reported done, so resending is safe."""
    return f"done-{assignment.task_id}-{assignment.attempt}"


@dataclass
class Worker:
    layout: Layout
    name: str
    role: AgentRole
    limits: Limits = field(default_factory=Limits)
    max_tasks: int | None = None
    max_idle: float | None = None

    def __post_init__(self) -> None:
        # A damaged team.json (the coordinator writes it again) must not stop a worker from
        # starting: the id and the sandbox's settings are in its last good copy too.
        team, error = read_team_or_backup(self.layout.team_json)
        if team is None:
            assert error is not None
            raise error
        self.team = team
        self.sandbox = Sandbox.for_team(self.layout.workspace, self.team)
        self.mailbox = Mailbox(self.layout, self.team.id)
        self.store = TaskStore(self.layout)
        self.view = View(self.name, self.layout.log_file(self.name))
        self.board = FileBoard(self.layout.pool_dir)  # the team's model-server slots
        self.stop = threading.Event()
        self._exiting = threading.Event()
        self._record_lock = threading.Lock()
        self.record = AgentRecord(
            name=self.name, role=self.role, pid=os.getpid(), pane=os.environ.get("TMUX_PANE")
        )
        self.receiver: Receiver | None = None
        self._guidance: list[str] = []  # told between tasks: for the next task's first turn
        self.tasks_done = 0
        self.unfinished: list[str] = []
        self._signals = 0

    # --- lifetime --------------------------------------------------------------------

    def run(self) -> int:
        """Serve until a shutdown request, a signal, or a bound; 0 on a clean stop."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._set_state("starting")
        for name in remove_stale_temp_files(self.layout.workspace):
            self.view.event("info", f"removed {name}, left by a writer that died")
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        try:
            with Receiver(self.layout, self.team.id, self.name, self._handle) as receiver:
                self.receiver = receiver
                self._set_state("idle")
                self.view.event("info", f"{self.name} ({self.role}) ready, pid {os.getpid()}")
                if not self.sandbox.confined:
                    self.view.event("fail", UNCONFINED_NOTICE)
                receiver.serve(stop=self.stop, max_idle=self.max_idle)
        except Stopping:
            pass  # an assignment arrived after the stop: it stays in the inbox
        finally:
            self.stop.set()
            self._exiting.set()
            self._set_state("stopped")
            self.view.event("info", "stopped")
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.view.event("info", "stopping at the next safe point (again to force)")
        self.unfinished.append("stopped by a signal")
        self.stop.set()
        if self.receiver is not None:
            self.receiver.wake()

    def _heartbeat(self) -> None:
        # Until the process exits, not until a stop is asked: a task still finishing must not
        # look dead to the coordinator.
        while not self._exiting.wait(HEARTBEAT_SECONDS):
            try:
                self._write_record()
            except OSError as exc:  # a full disk must not end the heartbeat for good
                self.view.event("info", f"heartbeat not written: {exc}")

    def _set_state(self, state: str, task: int | None = None, detail: str = "") -> None:
        with self._record_lock:
            changed = (self.record.state, self.record.current_task) != (state, task)
            self.record = self.record.model_copy(
                update={"state": state, "current_task": task, "detail": detail}
            )
        self._write_record()
        if changed:
            events.emit(
                self.layout.events_jsonl,
                AgentChanged(
                    name=self.name, state=state, role=self.role, pid=os.getpid(), task_id=task
                ),
            )

    def _write_record(self) -> None:
        with self._record_lock:
            self.record = self.record.model_copy(update={"heartbeat_at": utc_now()})
            self.record.write(self.layout)

    def _send(
        self, payload: Payload, reply_to: str | None = None, message_id: str | None = None
    ) -> None:
        self.mailbox.send(
            make_message(
                payload,
                team=self.team.id,
                sender=self.name,
                recipient=COORDINATOR,
                reply_to=reply_to,
                message_id=message_id,
            )
        )

    # --- messages ------------------------------------------------------------------------

    def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        payload = message.payload
        if isinstance(payload, TaskAssignment):
            if self.stop.is_set():
                # Not a safe point to start work: leave it in the inbox, unhandled, for
                # whoever takes this agent's tasks next.
                raise Stopping
            self._work(payload, message.id, delivery.redelivered)
            self.tasks_done += 1
            if self.max_tasks is not None and self.tasks_done >= self.max_tasks:
                self.stop.set()
        elif isinstance(payload, Guidance):  # between tasks: for the next one
            self._guidance.append(payload.text)
            self.view.event("told", f"guidance from {message.sender}, for the next task: "
                                    f"{payload.text}")  # fmt: skip
        elif isinstance(payload, ShutdownRequest):
            if self._stale(message):
                self.view.event("info", f"ignored an old shutdown request: {payload.reason}")
                return
            self.view.event("info", f"shutdown requested: {payload.reason}")
            self._send(ShutdownResponse(accepted=True, unfinished=self.unfinished), message.id)
            self.stop.set()
        else:
            self.view.event("info", f"ignored a {message.type} from {message.sender}")

    def _take_guidance(self) -> list[str]:
        """The user's guidance for the task's next turn: what came between tasks, and what
        has come since (taken from the inbox ahead of its turn; the pane shows each)."""
        texts, self._guidance = self._guidance, []
        if self.receiver is not None:
            for message in self.receiver.take(lambda m: isinstance(m, GuidanceMessage)):
                assert isinstance(message.payload, Guidance)
                texts.append(message.payload.text)
                self.view.event("told", f"guidance from {message.sender}: {message.payload.text}")
        if texts:
            self.view.event("info", f"guidance put into the conversation ({len(texts)})")
        return texts

    def _shutdown_pending(self) -> bool:
        """A safe point: a signal, or a shutdown_request for this life of the agent waiting in
        the inbox (read by the receiver's own safe read: `Receiver.peek`)."""
        if self.stop.is_set():
            return True
        if self.receiver is None:
            return False
        # A task queued behind the request fails at once too, as `stopped`: no attempt lost.
        return self.receiver.peek(
            lambda message: isinstance(message, ShutdownRequestMessage) and not self._stale(message)
        )

    def _stale(self, message: Message) -> bool:
        """Sent before this process started: left from an earlier life of this agent (a
        `team kill` it did not survive)."""
        return message.created_at < self.record.started_at

    # --- a task --------------------------------------------------------------------------

    def _work(self, assignment: TaskAssignment, message_id: str, redelivered: bool) -> None:
        task_id = assignment.task_id
        try:
            self.store.transition(
                task_id,
                TaskStatus.ASSIGNED,
                TaskStatus.RUNNING,
                by=self.name,
                note=f"attempt {assignment.attempt}",
                expected_owner=self.name,
                expected_attempt=assignment.attempt,
            )
        except (TransitionConflict, KeyError, TaskFileError) as exc:
            # Taken by another, finished, or moved on: not ours to start.
            self.view.event("info", f"task {task_id}: not starting it: {exc}")
            if redelivered:
                self._resend_completion(assignment, message_id)
            return
        self._set_state("working", task_id, assignment.title)
        self.view.event("task", f"{task_id}: {assignment.title} [{', '.join(assignment.files)}]")
        self._progress(task_id, "started", f"attempt {assignment.attempt}")
        config = load_config(self.layout.config_toml)  # per attempt: the user may change it
        # A fix of files that failed verification goes to the next model of the cascade.
        role = MODEL_ROLE[self.role]
        config = config.at_cascade_step(role, assignment.cascade_step)
        model = config.route(role).model
        if assignment.cascade_step:
            self.view.event("info", f"task {task_id}: fix {assignment.cascade_step} of these "
                                    f"files, by {model} (models.{role}.cascade)")  # fmt: skip
        tracer = self._tracer(assignment, config)
        span = tracer.open(f"task {task_id} attempt {assignment.attempt}", "task",
                           task_id=task_id, attempt=assignment.attempt, model=model,
                           cascade_step=assignment.cascade_step)  # fmt: skip
        tracer = tracer.child(span.span_id, task_id=task_id, attempt=assignment.attempt)
        try:
            summary, files, checks, result = self._attempt(assignment, config, tracer)
        except (LoopStopped, ModelError) as exc:
            tracer.close(span, failure_category(exc).value)
            self._fail(assignment, exc, message_id)
        except Exception as exc:  # a bug of ours: report it, keep the worker alive
            tracer.close(span, ErrorCategory.CRASH.value)
            self._fail(assignment, exc, message_id, category=ErrorCategory.CRASH)
        else:
            tracer.close(span, "done")
            if self._move(assignment, TaskStatus.DONE, summary, result):
                self._send(
                    self._completion(assignment, files, summary, checks),
                    message_id,
                    message_id=completion_id(assignment),
                )
                self.view.event("done", f"task {task_id}: {summary}")
        finally:
            self._set_state("idle")

    def _move(
        self,
        assignment: TaskAssignment,
        status: TaskStatus,
        note: str,
        result: TaskResult | None = None,
        costs_attempt: bool = True,
        category: ErrorCategory | None = None,
    ) -> bool:
        """running -> `status`, only if the task is still this agent's at this attempt."""
        try:
            self.store.transition(
                assignment.task_id,
                TaskStatus.RUNNING,
                status,
                by=self.name,
                note=note[:500],
                result=result,
                expected_owner=self.name,
                expected_attempt=assignment.attempt,
                costs_attempt=costs_attempt,
                category=category,
            )
        except (TransitionConflict, KeyError, TaskFileError) as exc:
            self.view.event("info", f"task {assignment.task_id} moved on meanwhile: {exc}")
            return False
        return True

    @staticmethod
    def _completion(
        assignment: TaskAssignment, files: list[str], summary: str, checks: list[FileCheck]
    ) -> Completion:
        return Completion(
            task_id=assignment.task_id,
            attempt=assignment.attempt,
            files_changed=files,
            summary=summary,
            checks=checks,
        )

    def _resend_completion(self, assignment: TaskAssignment, message_id: str) -> None:
        """Killed between finishing a task and telling the coordinator: tell it now. The
        message id is the same, so a coordinator that already had it handles it once."""
        try:
            task = self.store.get(assignment.task_id)
        except (KeyError, TaskFileError):
            return
        done_here = (task.status, task.owner, task.attempt) == (
            TaskStatus.DONE,
            self.name,
            assignment.attempt,
        )
        if done_here and task.result is not None:
            self._send(
                self._completion(assignment, task.result.files, task.result.summary or "done", []),
                message_id,
                message_id=completion_id(assignment),
            )
            self.view.event("info", f"task {task.id}: completion sent again after a restart")

    def _tracer(self, assignment: TaskAssignment, config: Config) -> Tracer:
        """This attempt's place in the team run's trace (its own trace when the assignment
        names none, as a hand-sent one does)."""
        trace = assignment.trace
        return Tracer(
            self.layout,
            trace.trace_id if trace else new_trace_id(),
            self.name,
            trace.parent_id if trace else None,
            store_limit_bytes=config.team.trace_store_bytes,
        )

    def _attempt(self, assignment: TaskAssignment, config: Config, tracer: Tracer) -> Outcome:
        """One attempt at a task: a tester's test files sampled (best-of-N), a builder's fix
        sampled K times when configured, else one run of the agent loop."""
        plan = read_plan(self.layout)
        if self._samples_tests(assignment, config):
            toolbox = self._toolbox(assignment)
            sampled = self._sampled_attempt(assignment, config, tracer, toolbox, plan)
            if sampled is not None:
                return sampled
            # No candidate held a file: the agent loop writes the tests.
        fixes = config.sampling.fix_candidates
        if self.role == "builder" and assignment.context and fixes > 1 and plan is not None:
            return self._sampled_fixes(assignment, config, tracer, list(plan.dod), fixes)
        return self._loop_attempt(assignment, config, tracer)

    def _loop_attempt(
        self,
        assignment: TaskAssignment,
        config: Config,
        tracer: Tracer,
        temperature: float | None = AgentLoop.temperature,
    ) -> Outcome:
        client = self._client(config, tracer)
        toolbox = self._toolbox(assignment)
        loop = AgentLoop(
            client,
            toolbox,
            self.limits,
            should_stop=self._shutdown_pending,
            on_event=self.view.event,
            tracer=tracer,
            files=tuple(assignment.files),
            temperature=temperature,
            guidance=self._take_guidance,
        )
        budget = client.route.context_window // 3
        edit_format = config.edit_format(client.configured)
        prompt = task_prompt(assignment, self.layout.workspace, budget, edit_format)
        messages = [
            ChatMessage.system(SYSTEM[self.role].format(name=self.name)),
            ChatMessage.user(prompt),
        ]
        deadline = time.monotonic() + self.limits.max_seconds
        with client:
            self._progress(assignment.task_id, "building")
            summary = loop.run(messages, deadline)
            checks = self._checks(toolbox.written, assignment.files)
            if any(not c.ok for c in checks):  # one more pass to repair what fails
                failures = "\n".join(f"- {c.path}: {c.detail}" for c in checks if not c.ok)
                messages.append(ChatMessage.user(REPAIR_AFTER_CHECKS.format(failures=failures)))
                self._progress(assignment.task_id, "repairing", failures)
                summary = loop.run(messages, deadline)
                checks = self._checks(toolbox.written, assignment.files)
            raise_if_failing(checks)
            result = TaskResult(summary=summary, files=toolbox.written,
                                model=client.configured.model)  # fmt: skip
            if self.role == "explorer":
                loop.check_tokens()
                result.report = self._report(client, loop, messages)
        return summary, toolbox.written, checks, result

    def _sampled_fixes(
        self,
        assignment: TaskAssignment,
        config: Config,
        tracer: Tracer,
        criteria: list[DodCriterion],
        count: int,
    ) -> Outcome:
        """Up to `count` fixes, each from the files as they were and judged by the plan's
        criteria (agent_worker/fix_sampling.py); the best is put back and reported."""
        own = list(dict.fromkeys([*assignment.files, *(e.file for e in assignment.context)]))
        before = read_files(self.layout, own)
        judge = FixJudge(self.sandbox, criteria, config.sampling.test_timeout)
        self._progress(assignment.task_id, "judging", "the criteria before the fix")
        baseline = judge.passing()
        candidates: list[FixCandidate] = []
        outcomes: dict[int, Outcome] = {}
        failure: LoopStopped | None = None
        for number in range(1, count + 1):
            if number > 1:
                put_files(self.layout, before)
            temperature = fix_temperature(number)
            self.view.event("info", f"task {assignment.task_id}: fix {number} of up to {count}, "
                                    f"temperature {temperature:g}")  # fmt: skip
            try:
                outcomes[number] = self._loop_attempt(assignment, config, tracer, temperature)
            except ShutdownRequested:
                raise
            except LoopStopped as exc:
                failure = exc
                candidates.append(FixCandidate(number, temperature, frozenset(), frozenset(),
                                               {}, str(exc)[:200]))  # fmt: skip
                continue
            passing = judge.passing()
            candidate = FixCandidate(number, temperature, passing, baseline - passing,
                                     read_files(self.layout, own))  # fmt: skip
            candidates.append(candidate)
            everything = len(passing) == len(criteria)
            self.view.event("check" if everything else "info", candidate.describe(len(criteria)))
            if everything:
                break
        kept = best_fix(candidates)
        if kept is None:
            put_files(self.layout, before)
            assert failure is not None
            raise failure
        put_files(self.layout, kept.files)
        summary, files, checks, result = outcomes[kept.number]
        summary = (f"{summary} [{kept.describe(len(criteria))}; kept, of {len(candidates)} "
                   "fixes]")[:500]  # fmt: skip
        self.view.event("done", f"task {assignment.task_id}: kept {kept.describe(len(criteria))}")
        return summary, files, checks, result.model_copy(update={"summary": summary})

    def _client(self, config: Config, tracer: Tracer) -> ModelClient:
        return ModelClient(
            config,
            MODEL_ROLE[self.role],
            tracer=tracer,
            on_progress=self.view.model_progress,
            board=self.board,
        )

    def _samples_tests(self, assignment: TaskAssignment, config: Config) -> bool:
        """A tester's task of Python test files only is sampled (best-of-N), unless the user
        turned sampling off (`sampling.test_candidates = 0`)."""
        files = assignment.files
        return (
            self.role == "tester"
            and config.sampling.test_candidates > 0
            and bool(files)
            and all(f.endswith(".py") and is_test_file(f) for f in files)
        )

    def _sampled_attempt(
        self,
        assignment: TaskAssignment,
        config: Config,
        tracer: Tracer,
        toolbox: Toolbox,
        plan: Plan | None,
    ) -> Outcome | None:
        """Each test file as best-of-N candidates (agent_worker/test_sampling.py), the kept
        one written as any write is; None when no candidate of a file held one (the agent loop
        writes the task instead)."""
        settings = config.sampling
        first = self._client(config, tracer)
        parallel = server_capacity(config, first)
        clients = [first, *(self._client(config, tracer) for _ in range(parallel - 1))]
        waves = Waves.of(settings, parallel)
        sampler = TestSampler(self.layout, self.sandbox, clients, waves, self.name,
                              on_event=self.view.event,
                              should_stop=self._shutdown_pending)  # fmt: skip
        budget = first.route.context_window // 3
        prompt = task_prompt(assignment, self.layout.workspace, budget, "whole")  # no tools
        messages = [ChatMessage.system(SAMPLING_SYSTEM.format(name=self.name)),
                    ChatMessage.user(prompt)]  # fmt: skip
        self._progress(assignment.task_id, "sampling",
                       f"{waves.first} candidates per test file, {parallel} at once")  # fmt: skip
        if plan is not None:  # an import of a module still to be built is not the test's fault
            sampler.planned = module_names([f.path for m in plan.modules for f in m.files])
        reports, models = [], []
        try:
            for path in assignment.files:
                if self._shutdown_pending():
                    raise ShutdownRequested("a shutdown was requested")
                # The user's guidance reaches the candidates of the next file asked for.
                messages += [ChatMessage.user(GUIDANCE.format(text=words))
                             for words in self._take_guidance()]  # fmt: skip
                with tracer.span(f"sample {path}", "sampling", path=path) as span:
                    sampled = sampler.sample(path, messages)
                    kept = sampled.kept
                    span.attrs.update(candidates=sampled.requests,
                                      kept=kept.number if kept else None,
                                      passed=bool(kept and kept.wins),
                                      model=kept.model if kept else "")  # fmt: skip
                if kept is None or kept.content is None:
                    self.view.event("fail", f"{sampled.report()}: writing the tests with tools")
                    return None
                call = ToolCall(id=f"candidate-{kept.number}", name="write_file",
                                arguments={"path": path, "content": kept.content})  # fmt: skip
                self.view.event("tool", f"write_file({path}) candidate {kept.number}")
                written = toolbox.run(call)
                if written.outcome != "ok":
                    raise ChecksFailed(
                        written.output, [FileCheck(path=path, ok=False, detail=written.output)]
                    )
                reports.append(sampled.report())
                models.append(kept.model)
        finally:
            for client in clients:
                client.close()
        checks = self._checks(toolbox.written, assignment.files)
        raise_if_failing(checks)
        summary = "; ".join(reports)[:500]
        model = ", ".join(dict.fromkeys(models))
        return (
            summary,
            toolbox.written,
            checks,
            TaskResult(summary=summary, files=toolbox.written, model=model),
        )

    def _report(
        self, client: ModelClient, loop: AgentLoop, messages: list[ChatMessage]
    ) -> ExplorationReport | None:
        """The explorer's structured report; None when the model cannot give one (cut at its
        cap, or not the schema): the coordinator plans from what it found itself."""
        messages.append(ChatMessage.user(REPORT_REQUEST))
        try:
            report = client.chat(loop.fitted(messages), schema=ExplorationReport).parsed
        except (TruncatedAnswer, BadAnswer) as exc:
            self.view.event("fail", f"no exploration report: {exc}")
            return None
        return report if isinstance(report, ExplorationReport) else None

    def _toolbox(self, assignment: TaskAssignment) -> Toolbox:
        # A fix task may write what the RCA's edits name, as well as its own files.
        own = [*assignment.files, *(edit.file for edit in assignment.context)]
        guard = ownership_guard(self.layout, assignment.task_id, own)

        def may_write(relative: str) -> str | None:
            return (tester_guard(relative) if self.role == "tester" else None) or guard(relative)

        tools = (*READ_ONLY_TOOLS, "finish") if self.role == "explorer" else ALL_TOOLS
        return Toolbox(
            self.layout,
            self.name,
            assignment.task_id,
            tools,
            may_write=may_write,
            on_event=self.view.event,
            should_stop=self._shutdown_pending,
            sandbox=self.sandbox,
        )

    def _checks(self, written: list[str], owned: list[str]) -> list[FileCheck]:
        """Each file written must compile and (for Python modules) import; each file the
        task owns must exist when it says it is done."""
        checks = []
        for relative in dict.fromkeys([*written, *owned]):
            source = read_text_inside(self.layout.workspace, relative)
            if source is None:
                detail = (
                    "missing"
                    if not (self.layout.workspace / relative).exists()
                    else ("not a regular file in the workspace")
                )
                checks.append(FileCheck(path=relative, ok=False, detail=detail))
                continue
            failure = compile_check(relative, source) or assertion_check(relative, source)
            failure = failure or import_check(self.sandbox, relative)
            ok = failure is None
            detail = "compiles and imports" if ok else (failure.message if failure else "")
            self.view.event("check" if ok else "fail", f"{relative}: {detail}")
            checks.append(FileCheck(path=relative, ok=ok, detail=detail))
        return checks

    def _progress(self, task_id: int, phase: str, detail: str = "") -> None:
        self._send(ProgressUpdate(task_id=task_id, phase=phase, detail=detail[:500]))

    def _fail(
        self,
        assignment: TaskAssignment,
        exc: Exception,
        message_id: str,
        category: ErrorCategory | None = None,
    ) -> None:
        if category is None:
            category = failure_category(exc)
        if isinstance(exc, ShutdownRequested):
            self.unfinished.append(f"task {assignment.task_id}")
        if isinstance(exc, OutOfTokens):
            events.emit(
                self.layout.events_jsonl,
                BudgetReached(
                    scope="task", limit=exc.limit, used=exc.used, task_id=assignment.task_id
                ),
            )
        message = str(exc) or type(exc).__name__
        self.view.event("fail", f"task {assignment.task_id}: {message}")
        tail = exc.details if isinstance(exc, ChecksFailed) else ""
        if category == ErrorCategory.CRASH:
            tail = "".join(traceback.format_exception(exc))[-2000:]
        costs = category not in NOT_ITS_FAULT
        if self._move(
            assignment,
            TaskStatus.FAILED,
            f"{category.value}: {message}",
            costs_attempt=costs,
            category=category,
        ):
            report = ErrorReport(
                task_id=assignment.task_id,
                category=category,
                message=message[:2000],
                stderr_tail=tail[-2000:],
                recoverable=True,
            )
            self._send(report, message_id)

"""One agent process: it registers, heartbeats, waits on its inbox, and works the tasks it is
assigned (DESIGN §2, §6, §8). `python -m agent_worker --workspace DIR --name NAME --role ROLE`."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from types import FrameType

from agent_worker.lint import compile_check, import_check
from agent_worker.loop import AgentLoop, Limits, LoopStopped, ShutdownRequested
from agent_worker.prompts import REPAIR_AFTER_CHECKS, REPORT_REQUEST, SYSTEM, task_prompt
from agent_worker.tools import (
    ALL_TOOLS,
    READ_ONLY_TOOLS,
    Toolbox,
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
    Layout,
    Mailbox,
    Payload,
    ProgressUpdate,
    Receiver,
    ShutdownRequest,
    ShutdownResponse,
    TaskAssignment,
    TaskStatus,
    TaskStore,
    TeamInfo,
    TransitionConflict,
    list_inbox,
    make_message,
)
from protocol.agents import AgentRecord, AgentRole
from protocol.config import load_config
from protocol.llm import ChatMessage, ModelClient, ModelError
from protocol.messages import utc_now
from protocol.reports import ExplorationReport
from protocol.roles import Role

MODEL_ROLE: dict[AgentRole, Role] = {"builder": "build", "explorer": "explore", "tester": "test"}
HEARTBEAT_SECONDS = 2.0


class ChecksFailed(LoopStopped):
    def __init__(self, message: str, checks: list[FileCheck]) -> None:
        super().__init__(f"files fail their checks: {message}")
        self.checks = checks


@dataclass
class Worker:
    layout: Layout
    name: str
    role: AgentRole
    limits: Limits = field(default_factory=Limits)
    max_tasks: int | None = None
    max_idle: float | None = None

    def __post_init__(self) -> None:
        self.team = TeamInfo.read(self.layout.team_json)
        self.mailbox = Mailbox(self.layout, self.team.id)
        self.store = TaskStore(self.layout)
        self.view = View(self.name, self.layout.log_file(self.name))
        self.stop = threading.Event()
        self.record = AgentRecord(
            name=self.name, role=self.role, pid=os.getpid(), pane=os.environ.get("TMUX_PANE")
        )
        self.receiver: Receiver | None = None
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
                receiver.serve(stop=self.stop, max_idle=self.max_idle)
        finally:
            self.stop.set()
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
        while not self.stop.wait(HEARTBEAT_SECONDS):
            self._write_record()

    def _set_state(self, state: str, task: int | None = None, detail: str = "") -> None:
        self.record = self.record.model_copy(
            update={"state": state, "current_task": task, "detail": detail}
        )
        self._write_record()

    def _write_record(self) -> None:
        self.record = self.record.model_copy(update={"heartbeat_at": utc_now()})
        self.record.write(self.layout)

    def _send(self, payload: Payload, reply_to: str | None = None) -> None:
        self.mailbox.send(
            make_message(
                payload,
                team=self.team.id,
                sender=self.name,
                recipient=COORDINATOR,
                reply_to=reply_to,
            )
        )

    # --- messages ------------------------------------------------------------------------

    def _handle(self, delivery: Delivery) -> None:
        message = delivery.message
        payload = message.payload
        if isinstance(payload, TaskAssignment):
            self._work(payload, message.id)
            self.tasks_done += 1
            if self.max_tasks is not None and self.tasks_done >= self.max_tasks:
                self.stop.set()
        elif isinstance(payload, ShutdownRequest):
            self.view.event("info", f"shutdown requested: {payload.reason}")
            self._send(ShutdownResponse(accepted=True, unfinished=self.unfinished), message.id)
            self.stop.set()
        else:
            self.view.event("info", f"ignored a {message.type} from {message.sender}")

    def _shutdown_pending(self) -> bool:
        """A safe point: a signal, or a shutdown_request waiting in the inbox."""
        if self.stop.is_set():
            return True
        entries = list_inbox(self.layout, self.name, team=self.team.id)
        return any(e.message is not None and e.message.type == "shutdown_request" for e in entries)

    # --- a task --------------------------------------------------------------------------

    def _work(self, assignment: TaskAssignment, message_id: str) -> None:
        task_id = assignment.task_id
        try:
            task = self.store.transition(
                task_id,
                TaskStatus.ASSIGNED,
                TaskStatus.RUNNING,
                by=self.name,
                note=f"attempt {assignment.attempt}",
            )
        except (TransitionConflict, KeyError) as exc:
            # Already taken, finished or moved on (e.g. redelivered after a crash): not ours.
            self.view.event("info", f"task {task_id}: not starting it: {exc}")
            return
        if task.owner != self.name:
            self.view.event("info", f"task {task_id} belongs to {task.owner}, not to me")
            return
        self._set_state("working", task_id, assignment.title)
        self.view.event("task", f"{task_id}: {assignment.title} [{', '.join(assignment.files)}]")
        self._progress(task_id, "started", f"attempt {assignment.attempt}")
        try:
            summary, files, checks, result = self._attempt(assignment)
        except (LoopStopped, ModelError) as exc:
            self._fail(assignment, exc, message_id)
        else:
            self.store.transition(
                task_id,
                TaskStatus.RUNNING,
                TaskStatus.DONE,
                by=self.name,
                note=summary,
                result=result,
            )
            self._send(
                Completion(
                    task_id=task_id,
                    attempt=assignment.attempt,
                    files_changed=files,
                    summary=summary,
                    checks=checks,
                ),
                message_id,
            )
            self.view.event("done", f"task {task_id}: {summary}")
        finally:
            self._set_state("idle")

    def _attempt(
        self, assignment: TaskAssignment
    ) -> tuple[str, list[str], list[FileCheck], dict[str, object]]:
        client = ModelClient(load_config(self.layout.config_toml), MODEL_ROLE[self.role])
        toolbox = self._toolbox(assignment)
        loop = AgentLoop(
            client,
            toolbox,
            self.limits,
            should_stop=self._shutdown_pending,
            on_event=self.view.event,
        )
        budget = client.route.context_window // 3
        messages = [
            ChatMessage.system(SYSTEM[self.role].format(name=self.name)),
            ChatMessage.user(task_prompt(assignment, self.layout.workspace, budget)),
        ]
        deadline = time.monotonic() + self.limits.max_seconds
        with client:
            self._progress(assignment.task_id, "building")
            summary = loop.run(messages, deadline)
            checks = self._checks(toolbox.written)
            if any(not c.ok for c in checks):  # one more pass to repair what fails
                failures = "\n".join(f"- {c.path}: {c.detail}" for c in checks if not c.ok)
                messages.append(ChatMessage.user(REPAIR_AFTER_CHECKS.format(failures=failures)))
                self._progress(assignment.task_id, "repairing", failures)
                summary = loop.run(messages, deadline)
                checks = self._checks(toolbox.written)
            if any(not c.ok for c in checks):
                bad = "; ".join(f"{c.path}: {c.detail}" for c in checks if not c.ok)
                raise ChecksFailed(bad, checks)
            result: dict[str, object] = {"summary": summary, "files": toolbox.written}
            if self.role == "explorer":
                messages.append(ChatMessage.user(REPORT_REQUEST))
                report = client.chat(messages, schema=ExplorationReport).parsed
                result["report"] = report.model_dump() if report else None
        return summary, toolbox.written, checks, result

    def _toolbox(self, assignment: TaskAssignment) -> Toolbox:
        guard = ownership_guard(self.layout, assignment.task_id, assignment.files)

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
        )

    def _checks(self, written: list[str]) -> list[FileCheck]:
        """Each file written must compile and (for Python modules) import."""
        checks = []
        for relative in written:
            path = self.layout.workspace / relative
            if not path.is_file():
                checks.append(FileCheck(path=relative, ok=False, detail="missing"))
                continue
            failure = compile_check(relative, path.read_text(encoding="utf-8", errors="replace"))
            failure = failure or import_check(self.layout.workspace, relative)
            ok = failure is None
            detail = "compiles and imports" if ok else (failure.message if failure else "")
            self.view.event("check" if ok else "fail", f"{relative}: {detail}")
            checks.append(FileCheck(path=relative, ok=ok, detail=detail))
        return checks

    def _progress(self, task_id: int, phase: str, detail: str = "") -> None:
        self._send(ProgressUpdate(task_id=task_id, phase=phase, detail=detail[:500]))

    def _fail(self, assignment: TaskAssignment, exc: Exception, message_id: str) -> None:
        if isinstance(exc, ShutdownRequested):
            category, recoverable = ErrorCategory.OTHER, True
            self.unfinished.append(f"task {assignment.task_id}")
        elif isinstance(exc, ChecksFailed):
            category, recoverable = ErrorCategory.LINT, True
        elif isinstance(exc, ModelError):
            category, recoverable = ErrorCategory.MODEL, True
        else:
            category, recoverable = ErrorCategory.TIMEOUT, True
        self.view.event("fail", f"task {assignment.task_id}: {exc}")
        self.store.transition(
            assignment.task_id,
            TaskStatus.RUNNING,
            TaskStatus.FAILED,
            by=self.name,
            note=str(exc)[:500],
        )
        self._send(
            ErrorReport(
                task_id=assignment.task_id,
                category=category,
                message=str(exc)[:2000],
                recoverable=recoverable,
            ),
            message_id,
        )

"""The coordinator process (DESIGN §1): explore, plan, build the DAG with workers in parallel,
verify, find the root cause, fix, and repeat until every Definition-of-Done criterion passes.

`python -m coordinator --workspace DIR [--workers N] [--max-iterations K] [--runner R]`
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field

from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from coordinator import git, snapshots
from coordinator.decompose import plan_to_tasks
from coordinator.memory import IterationRecord, Memory
from coordinator.rca import evidence, fix_tasks, rca_messages
from coordinator.registration import SpawnFailed
from coordinator.runners import Runner
from coordinator.stuck import fingerprint, is_stuck
from coordinator.verify import Verification, verify
from protocol import (
    COORDINATOR,
    Completion,
    DagError,
    Delivery,
    ErrorCategory,
    ErrorReport,
    Layout,
    Mailbox,
    ProgressUpdate,
    Receiver,
    ShutdownRequest,
    Task,
    TaskAssignment,
    TaskStatus,
    TaskStore,
    TeamInfo,
    TeamStatus,
    TransitionConflict,
    UnknownRecipient,
    atomic_write_json,
    make_message,
)
from protocol.agents import AgentRecord, AgentRole, is_running, read_agents
from protocol.config import load_config
from protocol.display import inert
from protocol.llm import ChatMessage, ModelClient, ModelError, ServerUnreachable
from protocol.messages import utc_now
from protocol.plan import Plan
from protocol.reports import RcaReport
from protocol.roles import Role
from protocol.sandbox import UNCONFINED_NOTICE, Sandbox
from protocol.workspace_files import read_bytes_inside, write_bytes_inside

S = TaskStatus
MAX_ATTEMPTS = 3
STALE_HEARTBEAT = 120.0  # seconds without a heartbeat before a live process counts as hung
PLAN_SYSTEM = """You are the planner of a team of coding agents. Split the task into modules
(one agent builds each module, in parallel where dependencies allow): data models before
storage before interfaces before tests. Name every file each module writes (no file in two
modules), each module's dependencies by name, and Definition-of-Done criteria that can be
checked mechanically (verification_type test, command, file_exists or import, with the
target file or command)."""


class TeamFailed(Exception):
    """The team stops without meeting its Definition of Done; the message says why."""


class TeamStopped(Exception):
    """`team kill` (a shutdown_request) or a signal asked the coordinator to stop."""


@dataclass
class Coordinator:
    layout: Layout
    runner: Runner
    workers: int = 4
    max_iterations: int = 5
    tick: float = 0.3
    console: Console = field(default_factory=lambda: Console(markup=False, highlight=False))

    def __post_init__(self) -> None:
        self.team = TeamInfo.read(self.layout.team_json)
        self.mailbox = Mailbox(self.layout, self.team.id)
        self.store = TaskStore(self.layout)
        self.config = load_config(self.layout.config_toml)
        self.memory = Memory.load(self.layout.memory_json)
        self.sandbox = Sandbox.for_team(self.layout.workspace, self.team)
        self.spawned: dict[str, AgentRole] = {}
        self.stop_reason: str | None = None
        self.model_down: str | None = None
        self.started_at = utc_now()
        self._exiting = threading.Event()

    # --- the whole run ---------------------------------------------------------------------

    def run(self) -> int:
        """0 when every DoD criterion passes; 1 when the team stops short (the reason is in
        team.json and the pane)."""
        self._register("working")
        if not self.sandbox.confined:
            self.say("fail", UNCONFINED_NOTICE)
        beat = threading.Thread(target=self._heartbeat, daemon=True)
        beat.start()
        try:
            with Receiver(self.layout, self.team.id, COORDINATOR, self._on_message) as receiver:
                self.receiver = receiver
                try:
                    plan = self._plan()
                    self._iterate(plan)
                except TeamStopped as exc:
                    self._set(TeamStatus.STOPPED, str(exc))
                    self.say("info", f"stopped: {exc}; everything is on disk (team resume)")
                    return 0
                except (TeamFailed, ModelError, DagError, SpawnFailed) as exc:
                    self._set(TeamStatus.FAILED, str(exc))
                    self.say("fail", str(exc))
                    return 1
                except Exception as exc:  # a bug of ours: say so in team status, not a hang
                    tail = traceback.format_exc()[-1500:]
                    self._set(TeamStatus.FAILED, f"the coordinator crashed: {exc!r}\n{tail}")
                    self.say("fail", f"the coordinator crashed:\n{tail}")
                    return 1
                finally:
                    self._shut_down_workers()
            self._set(TeamStatus.DONE, "every Definition-of-Done criterion passes")
            self.say("done", "every Definition-of-Done criterion passes")
            if self.team.repository is not None:
                self.say("done", self.team.repository.how_to_get_it())
            return 0
        finally:
            self._exiting.set()
            self._register("stopped")

    def _register(self, state: str) -> None:
        record = AgentRecord(
            name=COORDINATOR,
            role="coordinator",
            pid=os.getpid(),
            pane=os.environ.get("TMUX_PANE"),
            state=state,
        )  # type: ignore[arg-type]
        record.write(self.layout)

    def _heartbeat(self) -> None:
        while not self._exiting.wait(2.0):
            with contextlib.suppress(OSError):
                self._register("working")

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def _iterate(self, plan: Plan) -> None:
        """Build, verify and fix until the Definition of Done is met; `TeamFailed` otherwise."""
        # A resumed team carries on the iteration it was in, with the tasks not yet done.
        current = {
            t.id
            for t in self.store.all()
            if t.module != "explore" and t.status not in (S.DONE, S.ABANDONED)
        }
        snapshot_files: list[str] = []
        for iteration in range(max(self.team.iteration, 1), self.max_iterations + 1):
            self._set(TeamStatus.BUILDING, iteration=iteration)
            self.say("info", f"iteration {iteration}: building {len(current)} tasks")
            self._build(current)
            self._set(TeamStatus.VERIFYING)
            result = verify(self.layout.workspace, plan.dod, sandbox=self.sandbox)
            if snapshot_files and self._regressed(result, iteration):
                result = self._roll_back(result, plan, iteration - 1, snapshot_files)
            self._commit(f"agent-team iteration {iteration}")
            failing = [c.id for c in result.criteria if not c.passed]
            self._report(result)
            fp = fingerprint(failing or ["build"], result.failures())
            self.memory.record(
                IterationRecord(
                    iteration=iteration,
                    dod={c.id: c.passed for c in result.criteria},
                    failures=result.failures()[:2000],
                    fingerprint=fp,
                )
            )
            self.memory.save(self.layout.memory_json)
            if result.passed and result.criteria:
                return
            if is_stuck(self.memory.fingerprints()):
                raise TeamFailed(
                    f"stuck: the same failure three times ({', '.join(failing)}):\n"
                    f"{result.failures()[:1500]}"
                )
            if iteration == self.max_iterations:
                raise TeamFailed(
                    f"{self.max_iterations} iterations without meeting the "
                    f"Definition of Done; failing: {', '.join(failing) or 'build'}"
                )
            snapshot_files = self._snapshot_passing(result, plan, iteration)
            current = self._fix(result, plan, iteration)
        raise TeamFailed(
            f"iteration {self.team.iteration} is past --max-iterations "
            f"{self.max_iterations}: resume with a higher --max-iterations"
        )

    def _commit(self, message: str) -> None:
        repository = self.team.repository
        branch = repository.branch if repository else None
        try:
            commit = git.commit_work(self.layout.workspace, message, repository)
        except git.GitError as exc:  # the work stays on disk; say why it is not committed
            self.say("fail", f"not committed: {exc}")
            return
        if commit:
            self.say("info", f"committed {commit[:12]}" + (f" on {branch}" if branch else ""))

    # --- explore and plan ------------------------------------------------------------------

    def _plan(self) -> Plan:
        if self.layout.plan_json.exists():
            return Plan.model_validate_json(self.layout.plan_json.read_bytes())
        report = self._explore()
        self._set(TeamStatus.PLANNING)
        self.say("info", "planning")
        messages = [
            ChatMessage.system(PLAN_SYSTEM),
            ChatMessage.user(f"The task: {self.team.task}\n\nThe workspace:\n{report}"),
        ]
        for _ in range(3):
            plan = self._ask("plan", messages, Plan)
            assert isinstance(plan, Plan)
            try:
                tasks = plan_to_tasks(plan, first_id=self.store.next_id())
            except DagError as exc:  # ask again, with the error
                self.say("fail", f"the plan was refused: {exc}")
                messages += [
                    ChatMessage(role="assistant", content=plan.model_dump_json()),
                    ChatMessage.user(f"That plan cannot be built: {exc}. Fix it."),
                ]
                continue
            self.store.add(tasks)  # the tasks first: a plan on disk means its tasks are too
            atomic_write_json(self.layout.plan_json, plan)
            self.say("info", f"plan: {len(tasks)} tasks, {len(plan.dod)} criteria")
            self._warn_of_uncommitted_overlap(tasks)
            return plan
        raise TeamFailed("the planner gave no buildable plan in three tries")

    def _warn_of_uncommitted_overlap(self, tasks: list[Task]) -> None:
        """The user's uncommitted files that the plan changes too: said now, and kept in
        team.json so that `team status` and the last message say it where the user looks."""
        repository = self.team.repository
        if repository is None:
            return
        planned = {f for t in tasks for f in t.files}
        overlap = sorted(planned & set(repository.dirty))
        if not overlap:
            return
        self.team = TeamInfo.read(self.layout.team_json)
        update = {"repository": repository.model_copy(update={"overlap": overlap})}
        self.team = self.team.model_copy(update=update)
        self.team.write(self.layout.team_json)
        self.say(
            "fail",
            f"the plan changes files you have uncommitted changes in: {', '.join(overlap)}; "
            f"the team works from your last commit; commit or stash yours before "
            f"`git merge {repository.branch}`",
        )

    def _explore(self) -> str:
        self._set(TeamStatus.EXPLORING)
        explore = Task(
            id=self.store.next_id(),
            title="explore the workspace",
            role="explorer",
            module="explore",
        )
        self.store.add([explore])
        self._build({explore.id})
        task = self.store.get(explore.id)
        report = (task.result or {}).get("report") if task.status == S.DONE else None
        return str(report) if report else "(no exploration report)"

    # --- building ----------------------------------------------------------------------------

    def _build(self, task_ids: set[int]) -> None:
        """Dispatch each task when its dependencies are done, until all are done or given up."""
        while True:
            self.store.promote_ready()
            self.receiver.process_pending()
            if self.stop_reason:
                raise TeamStopped(self.stop_reason)
            self._check_liveness(task_ids)
            tasks = [t for t in self.store.all() if t.id in task_ids]
            self._retry_or_abandon(tasks)
            tasks = [t for t in self.store.all() if t.id in task_ids]
            if all(t.status in (S.DONE, S.ABANDONED) for t in tasks):
                return
            if self.model_down:
                self._wait_for_model()
            busy = sum(t.status in (S.ASSIGNED, S.RUNNING) for t in tasks)
            ready = sorted((t for t in tasks if t.status == S.READY), key=lambda t: t.id)
            batch = ready[: max(0, self.workers - busy)]
            self._start_workers(batch)
            for task in batch:
                self._dispatch(task)
            self.receiver.serve(max_idle=self.tick)

    def _start_workers(self, tasks: list[Task]) -> None:
        """Start the missing workers of a batch all at once, then wait for each: a spawn
        counts only when the worker registered (DESIGN §2)."""
        missing = {}
        for task in tasks:
            name = agent_name(task)
            if name not in missing and not self.runner.alive(name):
                missing[name] = agent_role(task)
        for name, role in missing.items():
            self.say("info", f"starting {name}")
            self.runner.start(name, role)
            self.spawned[name] = role
        for name in missing:
            self.runner.wait_ready(name)

    def _dispatch(self, task: Task) -> None:
        name = agent_name(task)
        claimed = self.store.claim(task.id, name)
        assignment = TaskAssignment(
            task_id=task.id,
            attempt=claimed.attempt,
            title=task.title,
            files=task.files,
            instructions=task.instructions,
            dod=task.dod,
            context=task.edits,
        )
        self.mailbox.send(
            make_message(assignment, team=self.team.id, sender=COORDINATOR, recipient=name)
        )
        self.say("task", f"task {task.id} -> {name}: {task.title}")

    def _check_liveness(self, task_ids: set[int]) -> None:
        """A dead worker's task fails (and so returns to ready, attempt + 1, for a new one).
        A worker whose heartbeat (a thread of its own, every 2 s) stopped is hung: ended."""
        now = utc_now()
        for record in read_agents(self.layout):
            hung = (now - record.heartbeat_at).total_seconds() > STALE_HEARTBEAT
            if record.name != COORDINATOR and hung and is_running(record):
                self.say("fail", f"{record.name} stopped heartbeating: ending it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(record.pid, signal.SIGKILL)
        for task in self.store.all():
            active = task.status in (S.ASSIGNED, S.RUNNING)
            if task.id in task_ids and active and task.owner and not self.runner.alive(task.owner):
                try:
                    self.store.transition(
                        task.id,
                        task.status,
                        S.FAILED,
                        by=COORDINATOR,
                        note=f"{task.owner} died",
                        expected_owner=task.owner,
                    )
                    self.say("fail", f"{task.owner} died working on task {task.id}")
                except TransitionConflict:
                    pass

    def _retry_or_abandon(self, tasks: list[Task]) -> None:
        abandoned = set()
        for task in tasks:
            if task.status == S.FAILED:
                # An unreachable model server is not the task's fault: it costs no attempt.
                failures = sum(
                    1 for e in task.history if e.status == S.FAILED and not _not_its_fault(e.note)
                )
                retry = failures < MAX_ATTEMPTS
                self.store.transition(
                    task.id,
                    S.FAILED,
                    S.READY if retry else S.ABANDONED,
                    by=COORDINATOR,
                    note="retry" if retry else "gave up",
                )
                if not retry:
                    abandoned.add(task.id)
            elif task.status == S.ABANDONED:
                abandoned.add(task.id)
        for task in tasks:  # a task whose dependency was given up cannot be built either
            if task.status in (S.PENDING, S.READY) and abandoned & set(task.depends_on):
                self.store.transition(
                    task.id,
                    task.status,
                    S.ABANDONED,
                    by=COORDINATOR,
                    note="a dependency was abandoned",
                )

    def _on_message(self, delivery: Delivery) -> None:
        message = delivery.message
        payload = message.payload
        if isinstance(payload, Completion):
            self.say("done", f"{message.sender}: task {payload.task_id}: {payload.summary}")
        elif isinstance(payload, ErrorReport):
            self.say("fail", f"{message.sender}: {payload.category.value}: {payload.message}")
            if payload.category == ErrorCategory.MODEL and "cannot reach" in payload.message:
                self.model_down = payload.message
        elif isinstance(payload, ProgressUpdate):
            self.say("info", f"{message.sender}: task {payload.task_id} {payload.phase}")
        elif isinstance(payload, ShutdownRequest):
            if message.created_at < self.started_at:
                self.say("info", f"ignored an old shutdown request: {payload.reason}")
                return
            self.say("info", f"shutdown requested by {message.sender}: {payload.reason}")
            self.request_stop(payload.reason)

    def _wait_for_model(self) -> None:
        """Hold dispatch until the model server answers again, saying so in `team status`."""
        reason = self.model_down or "the model server is unreachable"
        self._set(self.team.status, f"waiting for the model server: {reason}")
        self.say("fail", f"waiting for the model server: {reason}")
        client = ModelClient(self.config, "build")
        with client:
            while True:
                self.receiver.process_pending()
                if self.stop_reason:
                    raise TeamStopped(self.stop_reason)
                try:
                    client.available_models()
                    break
                except (ModelError, NotImplementedError):
                    self.receiver.serve(max_idle=2.0)
        self.model_down = None
        self._set(self.team.status, "the model server is back")
        self.say("info", "the model server is back")

    def _ask(self, role: Role, messages: list[ChatMessage], schema: type[BaseModel]) -> BaseModel:
        """A structured answer from the plan/RCA model, waiting out an unreachable server."""
        while True:
            try:
                with ModelClient(self.config, role) as client:
                    parsed = client.chat(messages, schema=schema).parsed
                    assert isinstance(parsed, schema)
                    return parsed
            except ServerUnreachable as exc:
                self.model_down = str(exc)
                self._wait_for_model()

    # --- after verification ------------------------------------------------------------------

    def _report(self, result: Verification) -> None:
        for step in result.steps:
            self.say(
                "check" if step.passed else "fail",
                f"{step.name}: {'ok' if step.passed else 'failed'}",
            )
        for criterion in result.criteria:
            self.say(
                "check" if criterion.passed else "fail", f"{criterion.id}: {criterion.detail[:160]}"
            )

    def _regressed(self, result: Verification, iteration: int) -> bool:
        before = next((i.dod for i in self.memory.iterations if i.iteration == iteration - 1), {})
        now = {c.id: c.passed for c in result.criteria}
        return any(passed and not now.get(cid, False) for cid, passed in before.items())

    def _roll_back(
        self, result: Verification, plan: Plan, snapshot: int, files: list[str]
    ) -> Verification:
        """Put back, one at a time, the snapshotted files the retry changed, keeping each
        restore that makes more criteria pass, until nothing that passed before fails."""
        for relative in snapshots.changed(self.layout, snapshot, files):
            if not self._regressed(result, snapshot + 1):
                break
            current = read_bytes_inside(self.layout.workspace, relative)
            snapshots.rollback(self.layout, snapshot, [relative])
            trial = verify(self.layout.workspace, plan.dod, sandbox=self.sandbox)
            if _passing(trial) > _passing(result):
                self.say("info", f"rolled back {relative}: the retry broke what passed")
                result = trial
            elif current is not None:  # that file was not the cause: keep the new version
                write_bytes_inside(self.layout.workspace, relative, current)
        return result

    def _snapshot_passing(self, result: Verification, plan: Plan, iteration: int) -> list[str]:
        """Copies of what exists now, before the retry build: a rollback puts back only the
        copies that make more criteria pass, so keeping more of them is safe."""
        passing = {c.id for c in result.criteria if c.passed}
        files = [c.target_file for c in plan.dod if c.id in passing and c.target_file]
        files += [f for t in self.store.all() if t.status == S.DONE for f in t.files]
        return snapshots.take(self.layout, iteration, list(dict.fromkeys(files)))

    def _fix(self, result: Verification, plan: Plan, iteration: int) -> set[int]:
        self._set(TeamStatus.VERIFYING, "root-cause analysis")
        tasks = self.store.all()
        budget = self.config.route("rca").context_window // 2
        text = evidence(self.layout.workspace, result, tasks, budget, self.team.repository)
        passing = [c.id for c in result.criteria if c.passed]
        messages = rca_messages(self.team.task, text, passing, self.memory.render())
        report = self._ask("rca", messages, RcaReport)
        assert isinstance(report, RcaReport)
        self.say("info", f"root cause: {report.root_cause}")
        entry = self.memory.iterations[-1]
        entry.root_cause = report.root_cause
        entry.edits = [f"{e.file}: {e.details}" for e in report.concrete_edits]
        self.memory.save(self.layout.memory_json)
        fixes = fix_tasks(report, [t for t in tasks if t.module != "explore"], self.store.next_id())
        history = self.memory.render(max_tokens=600)
        fixes = [
            f.model_copy(update={"instructions": f"{f.instructions}\n\n{history}"}) for f in fixes
        ]
        if not fixes:
            raise TeamFailed(f"the root-cause analysis proposed no edits: {report.root_cause}")
        self.store.add(fixes)
        return {t.id for t in fixes}

    # --- state and display -------------------------------------------------------------------

    def _set(self, status: TeamStatus, detail: str = "", iteration: int | None = None) -> None:
        self.team = TeamInfo.read(self.layout.team_json)
        update: dict[str, object] = {"status": status, "detail": detail}
        if iteration is not None:
            update["iteration"] = iteration
        self.team = self.team.model_copy(update=update)
        self.team.write(self.layout.team_json)

    def _shut_down_workers(self) -> None:
        """Ask every live worker to stop (those an earlier coordinator started too)."""
        names = set(self.spawned) | {
            r.name for r in read_agents(self.layout) if r.name != COORDINATOR and is_running(r)
        }
        for name in sorted(names):
            if self.runner.alive(name):
                request = ShutdownRequest(reason="the team is done", grace_seconds=30)
                with contextlib.suppress(UnknownRecipient):
                    self.mailbox.send(
                        make_message(request, team=self.team.id, sender=COORDINATOR, recipient=name)
                    )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(self.runner.alive(n) for n in names):
            time.sleep(0.1)
        self.runner.stop_all()

    def say(self, kind: str, text: str) -> None:
        text = inert(text)  # models' and messages' text never drives the terminal
        style = {"fail": "bold red", "done": "bold green", "check": "green", "task": "cyan"}
        stamp = time.strftime("%H:%M:%S ")
        line = Text(stamp, style="dim")
        line.append(f"{kind:<6} ", style=style.get(kind, "white"))
        line.append(text)
        self.console.print(line)
        # The pane may close; `team logs coordinator` reads this.
        with contextlib.suppress(OSError), self.layout.log_file(COORDINATOR).open("a") as log:
            log.write(f"{stamp}{kind:<6} {text}\n")


def _not_its_fault(note: str) -> bool:
    """Failures that cost a task no attempt: an unreachable model server, a shutdown."""
    return ("cannot reach" in note and note.startswith("model:")) or (
        "shutdown was requested" in note or note.endswith(" died (team kill)")
    )


def _passing(result: Verification) -> int:
    return sum(c.passed for c in result.criteria) + all(s.passed for s in result.steps)


def agent_role(task: Task) -> AgentRole:
    return (
        "tester"
        if task.role == "tester"
        else ("explorer" if task.role == "explorer" else "builder")
    )


def agent_name(task: Task) -> str:
    """One worker per module: `builder-storage`, `tester-tests`, `explorer`."""
    if task.role == "explorer":
        return "explorer"
    module = re.sub(r"[^a-z0-9_-]+", "-", (task.module or f"task{task.id}").lower()).strip("-")
    prefix = "tester" if task.role == "tester" else "builder"
    return f"{prefix}-{module or task.id}"[:60]

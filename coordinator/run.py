"""The coordinator process (DESIGN §1): explore, plan, build the DAG with workers in parallel,
verify, find the root cause, fix, and repeat until every Definition-of-Done criterion passes.

`python -m coordinator --workspace DIR [--workers N] [--max-iterations K] [--runner R]`

The pieces: `decisions` decides what a build does next (pure), `building` does it,
`planning` gets a buildable plan, `rollback` undoes a retry that broke what passed, `pane`
says it. This class holds them together: the iterations, the inbox, team.json.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel
from rich.console import Console

from coordinator import criteria, git, rollback, snapshots
from coordinator.approval import (
    HOW_TO_ANSWER,
    Proposal,
    Verdict,
    answers,
    feedback_prompt,
    render_plan,
    request_text,
    verdict_of,
)
from coordinator.building import Build
from coordinator.decisions import after_verification, agent_role_of
from coordinator.decompose import plan_to_tasks
from coordinator.given_up import describe as describe_given_up
from coordinator.given_up import given_up, nothing_built
from coordinator.memory import IterationRecord, Memory
from coordinator.outcomes import TeamFailed, TeamStopped
from coordinator.pane import Pane
from coordinator.planning import ANSWER_TEMPERATURE, buildable_plan, plan_messages
from coordinator.rca import UNUSABLE, evidence, fix_tasks, rca_messages, report_from_evidence
from coordinator.registration import SpawnFailed
from coordinator.runners import Runner
from coordinator.stuck import fingerprint
from coordinator.survey import Survey, merged, survey_workspace
from coordinator.usage import TokenTally
from coordinator.validate import report as problems_report
from coordinator.validate import task_problems
from coordinator.verify import Verification, failure_lines, verify
from protocol import (
    COORDINATOR,
    USER,
    Completion,
    DagError,
    Delivery,
    ErrorCategory,
    ErrorReport,
    Guidance,
    Layout,
    Mailbox,
    PlanApproval,
    ProgressUpdate,
    Receiver,
    ShutdownRequest,
    Task,
    TaskFileError,
    TaskStatus,
    TaskStore,
    TeamInfo,
    TeamStatus,
    UnknownRecipient,
    atomic_write_json,
    events,
    make_message,
)
from protocol.agents import MODEL_ROLE, AgentRecord, AgentState, is_running, read_agents
from protocol.config import TeamSettings, load_config
from protocol.events import AgentChanged, BudgetReached, CriterionChecked, VerifyStepRan
from protocol.llm import (
    BadAnswer,
    ChatMessage,
    ModelClient,
    ModelError,
    ServerUnreachable,
    TruncatedAnswer,
)
from protocol.llm.pool_board import FileBoard
from protocol.messages import utc_now
from protocol.plan import Plan, PlanAnswer, load_plan
from protocol.reports import ExplorationReport, RcaReport
from protocol.roles import Role
from protocol.sandbox import UNCONFINED_NOTICE, Sandbox
from protocol.team import TeamFileError, update_team
from protocol.tracing import OpenSpan, Tracer, new_trace_id

S = TaskStatus
HEARTBEAT_SECONDS = 2.0
WORKER_GRACE = 30.0  # seconds the workers get to stop at a safe point when the team ends
# The explorer's instructions: what code already found, so that it adds only judgement.
EXPLORE_FACTS = """What code found in the workspace (facts, kept as they are):
{facts}
Read the files that matter for the task, then call finish. Your report adds the judgement: a
summary of what the workspace holds and the conventions its code follows."""


@dataclass
class Coordinator:
    layout: Layout
    runner: Runner
    workers: int = TeamSettings().workers
    max_iterations: int = TeamSettings().max_iterations
    tick: float = 0.3
    max_ticks: int | None = None  # a bound on each build, for tests
    console: Console = field(default_factory=lambda: Console(markup=False, highlight=False))
    # False when the output goes to the log file anyway (`--detach`, `--wait`): said once.
    echo: bool = True
    max_tokens: int | None = None  # the team's token budget (all agents), None: no limit

    def __post_init__(self) -> None:
        self.team = TeamInfo.read(self.layout.team_json)
        self.mailbox = Mailbox(self.layout, self.team.id)
        self.store = TaskStore(self.layout)
        self.config = load_config(self.layout.config_toml)
        self.memory = Memory.load(self.layout.memory_json)
        self.sandbox = Sandbox.for_team(self.layout.workspace, self.team)
        self.pane = Pane(self.layout.log_file(COORDINATOR), self.console, self.echo)
        self.say = self.pane.say
        self.stop_reason: str | None = None
        self.model_down: str | None = None
        self.model_down_role: Role = "build"  # whose server to wait for
        self.stop_grace = WORKER_GRACE  # how long the workers get to stop at the end
        self.started_at: datetime = utc_now()
        self._exiting = threading.Event()
        self._state: AgentState | None = None
        self._awaited: Proposal | None = None  # the plan that waits for the user's verdict
        self._verdicts: dict[str, Verdict] = {}  # the user's answers, by request id
        # This run's trace: the run's span, under it each iteration, the planning and the
        # root-cause analysis; the workers' task spans hang under the iteration's.
        self.tracer = Tracer(
            self.layout,
            new_trace_id(),
            COORDINATOR,
            store_limit_bytes=self.config.team.trace_store_bytes,
        )
        self.spent = TokenTally(self.layout.events_jsonl)
        self.board = FileBoard(self.layout.pool_dir)  # the model-server slots it shares
        self.build = Build(
            self.store,
            self.runner,
            self.mailbox,
            self.team.id,
            self.workers,
            self.say,
            checkpoint=self._checkpoint,
            serve=lambda seconds: self.receiver.serve(max_idle=seconds),
            tick=self.tick,
            max_ticks=self.max_ticks,
        )

    # --- the whole run ---------------------------------------------------------------------

    def run(self) -> int:
        """0 when every DoD criterion passes, or on a requested stop; 1 when the team stops
        short (the reason is in team.json and the pane)."""
        self.register("working")
        if not self.sandbox.confined:
            self.say("fail", UNCONFINED_NOTICE)
        threading.Thread(target=self._heartbeat, daemon=True).start()
        self._update(trace_id=self.tracer.trace_id)
        run = self.tracer.open("run", "run", task=self.team.task[:200])
        self.tracer = self.tracer.child(run.span_id)
        code = 1
        try:
            with Receiver(self.layout, self.team.id, COORDINATOR, self._on_message) as receiver:
                self.receiver = receiver
                code = self._run()
                return code
        finally:
            self.tracer.close(run, self.team.status.value if code == 0 else "failed")
            self._exiting.set()
            self.register("stopped")

    def _run(self) -> int:
        try:
            problems = task_problems(self.store)
            if problems:
                raise TeamFailed(problems_report(problems))
            self._iterate(self._plan())
        except TeamStopped as exc:
            self._set(TeamStatus.STOPPED, str(exc))
            self.say("info", f"stopped: {exc}; everything is on disk (team resume)")
            return 0
        except (TeamFailed, ModelError, DagError, SpawnFailed, TaskFileError) as exc:
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

    def register(self, state: AgentState) -> None:
        """agents/coordinator.json: the pid and start `team status` and a second `team up`
        show; written first thing once the coordinator holds the workspace lock."""
        AgentRecord(
            name=COORDINATOR,
            role="coordinator",
            pid=os.getpid(),
            pane=os.environ.get("TMUX_PANE"),
            state=state,
            started_at=self.started_at,
        ).write(self.layout)
        if state != self._state:
            self._state = state
            events.emit(
                self.layout.events_jsonl,
                AgentChanged(name=COORDINATOR, state=state, role="coordinator", pid=os.getpid()),
            )

    def _heartbeat(self) -> None:
        while not self._exiting.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):  # a full disk must not end the heartbeat
                self.register("working")

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
            with self.tracer.span(f"iteration {iteration}", "iteration", iteration=iteration) as it:
                current, snapshot_files, done = self._iteration(
                    plan, iteration, current, snapshot_files, it
                )
            if done:
                return
        raise TeamFailed(
            f"iteration {self.team.iteration} is past --max-iterations "
            f"{self.max_iterations}: resume with a higher --max-iterations"
        )

    def _iteration(
        self,
        plan: Plan,
        iteration: int,
        current: set[int],
        snapshot_files: list[str],
        span: OpenSpan,
    ) -> tuple[set[int], list[str], bool]:
        """One build-verify-fix round: the next round's tasks and snapshot, or done."""
        self._set(TeamStatus.BUILDING, iteration=iteration)
        self.say("info", f"iteration {iteration}: building {len(current)} tasks")
        self.build.trace = self.tracer.ref(span)
        self.build.run(current)
        lost = given_up(self.store.all(), current)
        self._set(TeamStatus.VERIFYING, describe_given_up(lost))  # in team.json and an event
        with self.tracer.child(span.span_id).span("verify", "verify"):
            result = self._verify(plan)
        before = self._results_of(iteration - 1)
        if snapshot_files and rollback.regressed(before, result):
            result = rollback.roll_back(
                self.layout,
                result,
                before,
                iteration - 1,
                snapshot_files,
                lambda: self._verify(plan),
                self.say,
            )
        self._commit(f"agent-team iteration {iteration}")
        failing = [c.id for c in result.criteria if not c.passed]
        self._report(result)
        self._remember(iteration, result, failing)
        verdict = after_verification(
            result.passed and bool(result.criteria),
            failing,
            result.failures(),
            self.memory.fingerprints(),
            iteration,
            self.max_iterations,
        )
        if verdict == "":
            return current, snapshot_files, True
        if result.nothing_built and lost:  # another round would build the same nothing
            raise TeamFailed(nothing_built(lost))
        if verdict is not None:
            raise TeamFailed(verdict + (f"; {describe_given_up(lost)}" if lost else ""))
        keep = rollback.files_to_keep(result, plan, self.store.all())
        snapshot_files = snapshots.take(self.layout, iteration, keep)
        with self.tracer.child(span.span_id).span("root-cause analysis", "rca") as rca_span:
            current = self._fix(plan, result, rca_span)
        return current, snapshot_files, False

    def _results_of(self, iteration: int) -> dict[str, bool]:
        return next((i.dod for i in self.memory.iterations if i.iteration == iteration), {})

    def _remember(self, iteration: int, result: Verification, failing: list[str]) -> None:
        self.memory.record(
            IterationRecord(
                iteration=iteration,
                dod={c.id: c.passed for c in result.criteria},
                failures=result.failures()[:2000],
                fingerprint=fingerprint(failing or ["build"], result.failures()),
            )
        )
        self.memory.save(self.layout.memory_json)

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
        """The plan to build: plan.json when there is one (a resumed team), else a new one,
        approved by the user first when the team asks for approval."""
        if self.layout.plan_json.exists():
            return load_plan(self.layout.plan_json.read_bytes())
        survey = survey_workspace(self.layout.workspace)
        proposal = Proposal.load(self.layout.plan_proposal_json) if self._approves() else None
        report: ExplorationReport | None = None
        if proposal is None:
            report = self._explore(survey)
            plan = self._new_plan(survey, plan_messages(self.team.task, report,
                                                        self.memory.guidance_text()))  # fmt: skip
            if not self._approves():
                return self._adopt(plan)
            proposal = self._propose(plan, 1, [])
        else:
            self.say("info", f"plan {proposal.round} still waits for your approval")
        while True:
            verdict = self._await_verdict(proposal)
            if verdict.approved:
                self.say("done", f"plan {proposal.round} approved: building")
                return self._adopt(proposal.plan)
            self.say("info", f"plan {proposal.round} not approved: {verdict.feedback}")
            feedback = [*proposal.feedback, verdict.feedback]
            report = report or self._explore(survey)
            messages = plan_messages(self.team.task, report, self.memory.guidance_text())
            messages.append(ChatMessage.user(feedback_prompt(proposal.plan, feedback)))
            proposal = self._propose(self._new_plan(survey, messages), proposal.round + 1,
                                     feedback)  # fmt: skip

    def _approves(self) -> bool:
        return self.team.approve_plan or self.config.team.approve_plan

    def _new_plan(self, survey: Survey, messages: list[ChatMessage]) -> Plan:
        """A buildable plan from the planner, with what the workspace implies added by code."""
        self._set(TeamStatus.PLANNING)
        self.say("info", "planning")
        first_id = self.store.next_id()
        with self.tracer.span("planning", "planning") as planning:

            def ask(messages: list[ChatMessage], temperature: float) -> Plan:
                answer = self._ask("plan", messages, PlanAnswer, planning, temperature)
                return Plan.model_validate(answer.model_dump())

            plan, _ = buildable_plan(messages, ask, first_id, self.say)
        completed = criteria.complete(plan, survey)  # what the workspace implies, by code
        for note in completed.notes():
            self.say("info", note)
        return completed.plan

    def _adopt(self, plan: Plan) -> Plan:
        """The plan, as the one built: its tasks and plan.json on disk, the proposal gone."""
        tasks = plan_to_tasks(plan, first_id=self.store.next_id())
        self.store.add(tasks)  # the tasks first: a plan on disk means its tasks are too
        atomic_write_json(self.layout.plan_json, plan)
        self.layout.plan_proposal_json.unlink(missing_ok=True)
        self.say("info", f"plan: {len(tasks)} tasks, {len(plan.dod)} criteria")
        self._warn_of_uncommitted_overlap(tasks)
        return plan

    def _propose(self, plan: Plan, round_: int, feedback: list[str]) -> Proposal:
        """The plan to the user's inbox as a plan_approval request, and on disk as the
        proposal (saved first: a request the user answers always has its plan)."""
        request = make_message(
            PlanApproval(stage="request", plan_summary=request_text(plan, round_)),
            team=self.team.id,
            sender=COORDINATOR,
            recipient=USER,
        )
        proposal = Proposal(plan=plan, request_id=request.id, round=round_, feedback=feedback,
                            asked_at=request.created_at)  # fmt: skip
        proposal.save(self.layout.plan_proposal_json)
        self.mailbox.send(request)
        return proposal

    def _await_verdict(self, proposal: Proposal) -> Verdict:
        """Show the plan and wait for the user's answer to its request, handling the inbox
        (a stop request stops the wait: the proposal stays, and `team resume` waits again)."""
        self._set(TeamStatus.AWAITING_APPROVAL, f"plan {proposal.round}: {HOW_TO_ANSWER}")
        for line in render_plan(proposal.plan):
            self.say("info", line)
        repository = self.team.repository
        here = repository.user_dir if repository else str(self.layout.workspace)
        self.say("info", f"waiting for your approval: {HOW_TO_ANSWER} (in another shell, "
                         f"with -w {here}; in tmux, Ctrl-b d detaches first)")  # fmt: skip
        self._awaited = proposal
        try:
            while True:
                verdict = self._verdicts.pop(proposal.request_id, None)
                if verdict is not None:
                    return verdict
                if self.stop_reason:
                    raise TeamStopped(self.stop_reason)
                self.receiver.serve(max_idle=0.5)
        finally:
            self._awaited = None

    def _warn_of_uncommitted_overlap(self, tasks: list[Task]) -> None:
        """The user's uncommitted files that the plan changes too: said now, and kept in
        team.json so that `team status` and the last message say it where the user looks."""
        repository = self.team.repository
        if repository is None:
            return
        overlap = sorted({f for t in tasks for f in t.files} & set(repository.dirty))
        if not overlap:
            return
        self._update(repository=repository.model_copy(update={"overlap": overlap}))
        self.say(
            "fail",
            f"the plan changes files you have uncommitted changes in: {', '.join(overlap)}; "
            f"the team works from your last commit; commit or stash yours before "
            f"`git merge {repository.branch}`",
        )

    def _explore(self, survey: Survey) -> ExplorationReport:
        """The workspace's facts as code found them, with the explorer's judgement (summary,
        conventions) when there is something to judge: from the explore task already there
        (a resumed team), built if it is not finished, else from a new one that is given the
        facts. An empty workspace needs no explorer."""
        self._set(TeamStatus.EXPLORING)
        earlier = [t for t in self.store.all() if t.module == "explore"]
        if earlier and earlier[-1].status != S.ABANDONED:
            explore = earlier[-1]
        elif survey.empty:
            self.say("info", "the workspace is empty: planning from what code found, no explorer")
            return survey.report()
        else:
            explore = Task(
                id=self.store.next_id(),
                title="explore the workspace",
                role="explorer",
                module="explore",
                instructions=EXPLORE_FACTS.format(facts=survey.render()),
            )
            self.store.add([explore])
        with self.tracer.span("explore", "explore") as span:
            self.build.trace = self.tracer.ref(span)
            self.build.run({explore.id})
        task = self.store.get(explore.id)
        answer = task.result.report if task.status == S.DONE and task.result else None
        if answer is None:
            self.say("info", "no report from the explorer: planning from what code found")
        return merged(survey, answer)

    # --- messages and the model server ------------------------------------------------------

    def _on_message(self, delivery: Delivery) -> None:
        message = delivery.message
        payload = message.payload
        if isinstance(payload, Completion):
            self.say("done", f"{message.sender}: task {payload.task_id}: {payload.summary}")
        elif isinstance(payload, ErrorReport):
            self.say("fail", f"{message.sender}: {payload.category.value}: {payload.message}")
            if payload.category == ErrorCategory.UNREACHABLE:
                self.model_down = payload.message
                self.model_down_role = MODEL_ROLE[agent_role_of(message.sender)]
        elif isinstance(payload, ProgressUpdate):
            self.say("info", f"{message.sender}: task {payload.task_id} {payload.phase}")
        elif isinstance(payload, PlanApproval):
            self._on_approval(message.sender, payload, message.reply_to, message.created_at)
        elif isinstance(payload, Guidance):
            self.memory.guidance.append(payload.text)
            self.memory.save(self.layout.memory_json)
            self.say("info", f"guidance from {message.sender} (for the next plan or RCA): "
                             f"{payload.text}")  # fmt: skip
        elif isinstance(payload, ShutdownRequest):
            if message.created_at < self.started_at:
                self.say("info", f"ignored an old shutdown request: {payload.reason}")
                return
            self.say("info", f"shutdown requested by {message.sender}: {payload.reason}")
            # Done waiting for the workers before whoever asked ends this process.
            self.stop_grace = min(self.stop_grace, payload.grace_seconds * 0.8)
            self.request_stop(payload.reason)

    def _on_approval(
        self, sender: str, answer: PlanApproval, reply_to: str | None, sent_at: datetime
    ) -> None:
        """A user's answer to the plan waiting: kept for the wait to take."""
        verdict = verdict_of(answer)
        awaited = self._awaited or Proposal.load(self.layout.plan_proposal_json)
        if verdict is None or awaited is None or not answers(reply_to, awaited.request_id):
            self.say("info", f"ignored a plan_approval from {sender}: no plan of ours waits for it")
            return
        if reply_to is None and sent_at < awaited.asked_at:
            self.say("info", f"ignored a plan_approval from {sender} sent before plan "
                             f"{awaited.round} was asked")  # fmt: skip
            return
        self._verdicts[awaited.request_id] = verdict

    def _checkpoint(self) -> None:
        """Between two looks at the tasks: handle the inbox, stop if asked, put back a
        deleted or damaged team.json, and hold while the model server is down."""
        self.receiver.process_pending()
        if self.stop_reason:
            raise TeamStopped(self.stop_reason)
        self._keep_team_file()
        self._check_budget()
        if self.model_down:
            self._wait_for_model()

    def _check_budget(self) -> None:
        """The team's token budget: every agent's model calls, as the servers counted them
        (read from the event log, which the workers append to)."""
        if self.max_tokens is None:
            return
        used = self.spent.total()
        if used >= self.max_tokens:
            events.emit(
                self.layout.events_jsonl,
                BudgetReached(scope="team", limit=self.max_tokens, used=used),
            )
            raise TeamFailed(
                f"the team's token budget of {self.max_tokens} is spent ({used} tokens): "
                "raise it with `team resume --max-tokens N` to carry on"
            )

    def _keep_team_file(self) -> None:
        """A worker reads team.json as it starts, and one started while the file is gone dies
        at start (which fails the team): write it again before the next look can start one."""
        try:
            TeamInfo.read(self.layout.team_json)
        except TeamFileError:
            self._update()

    def _wait_for_model(self) -> None:
        """Hold dispatch until the model server answers again, saying so in `team status`."""
        reason = self.model_down or "the model server is unreachable"
        self._set(self.team.status, f"waiting for the model server: {reason}")
        self.say("fail", f"waiting for the model server: {reason}")
        with ModelClient(self.config, self.model_down_role, board=self.board) as client:
            while True:
                self.receiver.process_pending()
                if self.stop_reason:
                    raise TeamStopped(self.stop_reason)
                try:
                    client.available_models()
                    break
                except NotImplementedError:  # a server that cannot be asked: try the work
                    break
                except ModelError:
                    self.receiver.serve(max_idle=2.0)
        self.model_down = None
        self._set(self.team.status, "the model server is back")
        self.say("info", "the model server is back")

    def _ask(
        self,
        role: Role,
        messages: list[ChatMessage],
        schema: type[BaseModel],
        parent: OpenSpan,
        temperature: float = ANSWER_TEMPERATURE,
    ) -> BaseModel:
        """A structured answer from the plan/RCA model, waiting out an unreachable server."""
        self._check_budget()
        tracer = self.tracer.child(parent.span_id)
        while True:
            try:
                with ModelClient(
                    self.config,
                    role,
                    tracer=tracer,
                    on_progress=self.pane.model_progress,
                    board=self.board,
                ) as client:
                    answer = client.chat(messages, schema=schema, temperature=temperature)
                    parsed = answer.parsed
                    assert isinstance(parsed, schema)
                    return parsed
            except ServerUnreachable as exc:
                self.model_down = str(exc)
                self.model_down_role = role
                self._wait_for_model()

    # --- verification ---------------------------------------------------------------------------

    def _verify(self, plan: Plan) -> Verification:
        """Verify, saying each step as it starts; each result goes to the event log."""
        iteration = self.team.iteration
        planned = [f for t in self.store.all() if t.module != "explore" for f in t.files]
        result = verify(
            self.layout.workspace,
            plan.dod,
            sandbox=self.sandbox,
            on_step=lambda name: self.say("run", f"verifying: {name}"),
            planned=list(dict.fromkeys(planned)),
        )
        log = self.layout.events_jsonl
        for step in result.steps:
            detail = "\n".join(failure_lines(step.output)) if not step.passed else ""
            events.emit(
                log,
                VerifyStepRan(
                    name=step.name, passed=step.passed, detail=detail[:500], iteration=iteration
                ),
            )
        for criterion in result.criteria:
            events.emit(
                log,
                CriterionChecked(
                    id=criterion.id,
                    passed=criterion.passed,
                    detail=events.short(criterion.detail, 300),
                    iteration=iteration,
                ),
            )
        return result

    # --- after verification ------------------------------------------------------------------

    def _report(self, result: Verification) -> None:
        for step in result.steps:
            ok = "ok" if step.passed else "failed"
            self.say("check" if step.passed else "fail", f"{step.name}: {ok}")
            for line in [] if step.passed else failure_lines(step.output):
                self.say("fail", f"  {line[:200]}")
        for criterion in result.criteria:
            self.say(
                "check" if criterion.passed else "fail", f"{criterion.id}: {criterion.detail[:160]}"
            )

    def _fix(self, plan: Plan, result: Verification, span: OpenSpan) -> set[int]:
        self._set(TeamStatus.VERIFYING, "root-cause analysis")
        tasks = self.store.all()
        budget = self.config.route("rca").context_window // 2
        text = evidence(self.layout.workspace, result, tasks, budget, self.team.repository)
        passing = [c.id for c in result.criteria if c.passed]
        messages = rca_messages(self.team.task, text, passing, self.memory.render())
        try:
            report = self._ask("rca", messages, RcaReport, span)
        except (TruncatedAnswer, BadAnswer) as exc:
            self.say("fail", f"{UNUSABLE}: {exc}; fixing from the failing output alone")
            report = report_from_evidence(self.layout.workspace, result, tasks, plan.dod)
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

    # --- state -------------------------------------------------------------------------------

    def _set(self, status: TeamStatus, detail: str = "", iteration: int | None = None) -> None:
        changes: dict[str, object] = {"status": status, "detail": detail}
        if iteration is not None:
            changes["iteration"] = iteration
        self._update(**changes)

    def _update(self, **changes: object) -> None:
        """team.json, changed under its lock; while the coordinator runs, a damaged or deleted
        file is written again from its own copy (and the pane says so)."""

        def repaired(exc: TeamFileError) -> None:
            self.say("fail", f"team.json was damaged ({exc}): writing it again from memory")

        self.team = update_team(
            self.layout.team_json, fallback=self.team, on_repair=repaired, **changes
        )

    def _shut_down_workers(self) -> None:
        """Ask every live worker to stop (those an earlier coordinator started too)."""
        names = set(self.build.spawned) | {
            r.name for r in read_agents(self.layout) if r.name != COORDINATOR and is_running(r)
        }
        for name in sorted(names):
            if self.runner.alive(name):
                request = ShutdownRequest(reason="the team is done", grace_seconds=self.stop_grace)
                with contextlib.suppress(UnknownRecipient):
                    self.mailbox.send(
                        make_message(request, team=self.team.id, sender=COORDINATOR, recipient=name)
                    )
        deadline = time.monotonic() + self.stop_grace
        while time.monotonic() < deadline and any(self.runner.alive(n) for n in names):
            time.sleep(0.1)
        self.runner.stop_all()

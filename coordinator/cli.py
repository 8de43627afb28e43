"""The `team` command: thin click commands that parse, call one function, and render."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import socket
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NoReturn
from urllib.parse import urlsplit

import click
import libtmux
from rich.console import Console
from rich.live import Live
from rich.text import Text

from coordinator import steering, trace_export, trace_view, views
from coordinator.activity import Activity, fold
from coordinator.approval import Proposal
from coordinator.classify import ErrorClass
from coordinator.demo import (
    DEMO_TASK,
    NOTICE,
    DemoError,
    demo_workspace,
    is_demo,
    start_scripted_model,
    write_demo_config,
)
from coordinator.doctor import run_checks
from coordinator.inbox_watch import ALL_STATES, collect, follow, is_info, needs_handling
from coordinator.lifecycle import kill_team
from coordinator.liveness import FINISHED, liveness_problems
from coordinator.logs import agent_logs, follow_lines, last_lines, log_files
from coordinator.pool_status import endpoint_loads
from coordinator.tmux import TeamSession, socket_name
from coordinator.trace_export import TRAINING_FIELDS
from coordinator.trajectories import RunOnDisk
from coordinator.up import (
    UpError,
    cannot_write,
    choose_confinement,
    launch,
    placement,
    prepare,
    refuse_a_running_coordinator,
    take_start_lock,
)
from coordinator.validate import report as problems_report
from coordinator.validate import task_problems
from coordinator.watch_view import budget_line, spend_line, watch_frame
from coordinator.workspace import Team, init_workspace, open_team, team_workspace
from protocol import (
    COORDINATOR,
    MESSAGE_TYPES,
    USER,
    BadMessage,
    Layout,
    Mailbox,
    Message,
    NotATeamWorkspace,
    Task,
    TaskFileError,
    TaskStore,
    TeamFileError,
    TeamInfo,
    TeamStatus,
    UnknownRecipient,
    make_message,
    parse_payload,
)
from protocol.agents import is_running, read_agent, read_agents
from protocol.config import Config, ConfigError, TeamSettings, load_config
from protocol.display import inert
from protocol.events import EventTail, read_events
from protocol.llm import pool
from protocol.llm.client import URL_FIELD, URL_SETTING
from protocol.locks import HeldLock
from protocol.messages import is_agent_name
from protocol.team import backup_of, damage_advice, read_team_or_backup, update_team
from protocol.wire import MAX_MESSAGE_BYTES, load_json_object


class Context:
    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        # No markup: message text, titles and paths are data, and "[/x]" in them must print.
        self.out = Console(soft_wrap=True, markup=False)
        if not self.out.is_terminal:  # piped into a file or grep: don't fold rows at 80 columns
            self.out.width = 160

    def say(self, line: str) -> None:
        """One line for the user; text from models and files made inert first."""
        self.out.print(inert(line), highlight=False)

    def team(self) -> Team:
        workspace = team_workspace(self.workspace)
        team_json = Layout.of(workspace).team_json
        try:
            return open_team(workspace)
        except NotATeamWorkspace as exc:
            if not backup_of(team_json).is_file():
                raise click.ClickException(str(exc)) from None
            # team.json deleted: its last good copy, not a new team (`team init`), carries on.
            lost = TeamFileError(f"{team_json} does not exist", missing=True)
            raise click.ClickException(damage_advice(team_json, lost)) from None
        except TeamFileError as exc:
            raise click.ClickException(damage_advice(team_json, exc)) from None

    def damaged_team(self) -> tuple[Layout, TeamInfo | None, str | None]:
        """For the commands that must work when team.json is damaged (`status`, `kill`):
        the layout, team.json or its last good copy, and what is wrong, if anything."""
        layout = Layout.of(team_workspace(self.workspace))
        if not layout.root.is_dir():
            raise click.ClickException(str(NotATeamWorkspace(layout.workspace)))
        info, error = read_team_or_backup(layout.team_json)
        return layout, info, damage_advice(layout.team_json, error) if error else None


pass_context = click.make_pass_decorator(Context)
DEFAULTS = TeamSettings()


def _set_workspace(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).workspace = value


# Accepted after the command too (`team status -w DIR`), as people type it.
workspace_option = click.option(
    "-w",
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    expose_value=False,
    callback=_set_workspace,
    help="The team's workspace (default: the current directory).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-w",
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    envvar="TEAM_WORKSPACE",
    help="The team's workspace (the directory holding .agents/). Env: TEAM_WORKSPACE.",
)
@click.version_option(package_name="agent-team")
@click.pass_context
def cli(ctx: click.Context, workspace: Path) -> None:
    """A team of local-LLM coding agents that share one workspace.

    The agents talk through inboxes under .agents/inboxes/ and work from numbered task files
    under .agents/tasks/. These commands look at and talk to a team.

    \b
    Examples:
      team init -w ./myproject        create a team in ./myproject
      team status                     the tasks and who works on them
      team inbox --follow             watch the messages as they arrive
    """
    ctx.obj = Context(workspace)


@cli.command(short_help="Create a team in the workspace (idempotent).")
@click.option("--task", default="", help="The task this team works on (kept in team.json).")
@workspace_option
@pass_context
def init(c: Context, task: str) -> None:
    """Create a team in the workspace: .agents/ with team.json and inboxes.

    Safe to run again: an existing team keeps its id and everything on disk.

    \b
    Example:
      team init -w ./myproject
    """
    try:
        team, created = init_workspace(c.workspace, task=task)
    except TeamFileError as exc:
        raise click.ClickException(f"{exc}; fix or remove it, then run `team init` again") from None
    except OSError as exc:
        raise click.ClickException(f"cannot create the team in {c.workspace}: {exc}") from None
    verb = "created" if created else "already there:"
    c.out.print(f"{verb} team {team.info.id} in {team.layout.root}", highlight=False)
    c.out.print("inboxes: " + ", ".join(team.layout.inbox_names()), highlight=False)


@cli.command(short_help="Show the messages in the inboxes.")
@click.argument("agent", required=False)
@click.option("--all", "include_all", is_flag=True, help="Also handled and quarantined messages.")
@click.option("--follow", "-f", is_flag=True, help="Keep running and show messages as they come.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="With --follow: stop after this many seconds (default: until Ctrl-C).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, for scripts.")
@workspace_option
@pass_context
def inbox(
    c: Context,
    agent: str | None,
    include_all: bool,
    follow: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Show the messages waiting in AGENT's inbox (every inbox when AGENT is left out).

    Pending messages are shown by default; --all adds the ones already handled and the
    quarantined ones (with the reason they were refused). Answers to you that need no reply
    (the agents' shutdown_response to `team kill`) are counted in one line, not listed as
    pending: --all lists them as "info"; in --json, "needs_handling" is false for them.

    \b
    Examples:
      team inbox                      what is waiting, in every inbox
      team inbox coordinator --all    everything the coordinator received
      team inbox --follow --json      stream every new message as JSON lines
    """
    team = c.team()
    layout = team.layout
    if agent is not None and agent not in layout.inbox_names():
        known = ", ".join(layout.inbox_names()) or "none"
        raise click.BadParameter(f"no inbox named {agent!r} (inboxes: {known})", param_hint="AGENT")
    agents = [agent] if agent else layout.inbox_names()
    # One snapshot of every state: what it shows is printed, all of it counts as seen by
    # --follow, so nothing that arrives after it is missed and nothing in it is shown twice.
    snapshot = collect(layout, agents, ALL_STATES, team.info.id)
    entries = [e for e in snapshot if include_all or e.state == "new"]
    # Answers to the user that ask for nothing are no pending work: one line, not rows.
    rows = entries if include_all else [e for e in entries if needs_handling(e)]
    info = [] if include_all else [e for e in entries if is_info(e)]
    if as_json:
        for entry in entries:  # info ones too: each record says if it needs handling
            _print_json(views.inbox_json(entry))
    elif not follow or entries:
        c.out.print(views.inbox_table(rows, show_state=include_all))
        if not rows:
            c.out.print(
                "no messages" + ("" if include_all else " waiting (--all shows handled ones)")
            )
        if info:
            c.out.print(views.info_note(info), highlight=False)
    if follow:
        skip = {(e.agent, e.path.name) for e in snapshot}
        _follow(c, team, agent, skip, timeout, as_json)


def _follow(
    c: Context,
    team: Team,
    agent: str | None,
    skip: set[tuple[str, str]],
    timeout: float | None,
    as_json: bool,
) -> None:
    # On stderr, so that a script reading the JSON lines on stdout never sees it.
    click.echo("following new messages (Ctrl-C to stop)...", err=True)
    try:
        for entry in follow(team.layout, agent, team.info.id, skip=skip, timeout=timeout):
            if as_json:
                _print_json(views.inbox_json(entry))
            else:
                c.out.print(views.inbox_line(entry))
    except KeyboardInterrupt:
        pass


def _print_json(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


@cli.command()
@click.option("--to", "recipient", required=True, help="The agent whose inbox gets the message.")
@click.option(
    "--type",
    "message_type",
    required=True,
    type=click.Choice(MESSAGE_TYPES),
    help="The message type.",
)
@click.option(
    "--payload",
    required=True,
    help="The payload, as a JSON object; @FILE reads it from FILE, - from standard input.",
)
@click.option("--from", "sender", default=USER, show_default=True, help="Who the message is from.")
@click.option("--reply-to", default=None, help="The id of the message this answers.")
@workspace_option
@pass_context
def send(
    c: Context,
    recipient: str,
    message_type: str,
    payload: str,
    sender: str,
    reply_to: str | None,
) -> None:
    """Send one message into an agent's inbox. It is validated before it is delivered.

    `team approve` answers a plan_approval and `team tell` gives guidance; this is the raw
    form of both, and a handy way to poke an agent while debugging.
    A message to an agent that is not running is delivered all the same (it reads it when it
    starts); a note on stderr says so.

    \b
    Examples:
      team send --to coordinator --type plan_approval \\
          --payload '{"stage": "response", "approved": true}'
      team send --to builder-storage --type shutdown_request --payload '{"reason": "done"}'
      team send --to coordinator --type plan_approval --payload @approval.json
      echo '{"reason": "done"}' | team send --to builder-storage \\
          --type shutdown_request --payload -
    """
    team = c.team()
    try:
        raw = load_json_object(_payload_bytes(payload))
    except BadMessage as exc:
        raise click.BadParameter(exc.reason, param_hint="--payload") from None
    if not is_agent_name(sender):
        raise click.BadParameter(f"{sender!r} is not an agent name", param_hint="--from")
    try:
        body = parse_payload(message_type, raw)
    except BadMessage as exc:
        raise click.BadParameter(exc.reason, param_hint="--payload") from None
    if recipient not in team.layout.inbox_names():
        known = ", ".join(team.layout.inbox_names()) or "none"
        raise click.BadParameter(
            f"no inbox named {recipient!r} (inboxes: {known})", param_hint="--to"
        )
    message = make_message(
        body, team=team.info.id, sender=sender, recipient=recipient, reply_to=reply_to
    )
    _deliver(c, team, message)


def _deliver(c: Context, team: Team, message: Message, said: str = "") -> None:
    """Deliver `message`: one "delivered" line on stdout (what a script reads), and on
    stderr a note when no one runs who would read it now."""
    try:
        delivered = Mailbox(team.layout, team.info.id).send(message)
    except UnknownRecipient as exc:
        raise click.ClickException(str(exc)) from None
    recipient = message.recipient
    c.out.print(
        f"delivered {message.type} {message.id} to {recipient} (seq {delivered.seq}){said}",
        highlight=False,
    )
    coordinator = read_agent(team.layout, "coordinator")
    note = views.unheard_note(
        recipient,
        recipient_running=is_running(read_agent(team.layout, recipient)),
        coordinator_running=is_running(coordinator),
        team_started=coordinator is not None,
    )
    if note:  # on stderr: stdout stays the one "delivered" line a script may read
        click.echo(f"delivered, but {note}", err=True)


@cli.command(short_help="Approve the plan waiting, or ask for another with feedback.")
@click.option(
    "--feedback",
    default=None,
    help="Do not approve: the planner makes a new plan with these words, shown for approval.",
)
@workspace_option
@pass_context
def approve(c: Context, feedback: str | None) -> None:
    """Answer the plan that waits for your approval (`team up --approve-plan`, or
    `[team] approve_plan = true`). Without --feedback the team builds it; with --feedback
    the planner is asked again with your words, and the new plan waits for you in turn.
    `team status` shows the plan; the answer waits in the coordinator's inbox if it is not
    running (`team resume` reads it).

    \b
    Examples:
      team approve
      team approve --feedback "keep the store in SQLite, not JSON"
    """
    team = c.team()
    try:
        message = steering.approval_answer(team.layout, team.info.id, feedback)
    except steering.NothingToSteer as exc:
        raise click.ClickException(str(exc)) from None
    _deliver(c, team, message, ": approved" if feedback is None else ": asked for another plan")


@cli.command(short_help="Give an agent guidance for its next model turn.")
@click.argument("agent")
@click.argument("text")
@workspace_option
@pass_context
def tell(c: Context, agent: str, text: str) -> None:
    """Tell AGENT something for its next model turn: a worker puts TEXT into the task's
    conversation (its pane shows it arrived; told while idle, it goes into its next task);
    the coordinator puts it into every later planning and root-cause prompt.

    \b
    Examples:
      team tell builder-storage "use pathlib, not os.path"
      team tell coordinator "the CLI must stay compatible with Python 3.9"
    """
    team = c.team()
    try:
        message = steering.guidance(team.layout, team.info.id, agent, text)
    except steering.NothingToSteer as exc:
        raise click.ClickException(str(exc)) from None
    _deliver(c, team, message)


def _payload_bytes(payload: str) -> bytes:
    """The --payload as bytes: the JSON itself, or what @FILE or - (stdin) holds."""
    if payload == "-":
        return _read_capped(sys.stdin.buffer, "standard input")
    if not payload.startswith("@"):
        return payload.encode("utf-8", "surrogatepass")
    try:
        with open(payload[1:], "rb") as f:
            return _read_capped(f, payload[1:])
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {payload[1:]!r}: {exc.strerror or exc}", param_hint="--payload"
        ) from None


def _read_capped(stream: BinaryIO, source: str) -> bytes:
    # One byte over the limit is enough to refuse it: never read a huge file whole.
    data = stream.read(MAX_MESSAGE_BYTES + 1)
    if len(data) > MAX_MESSAGE_BYTES:
        raise click.BadParameter(
            f"{source} holds more than a message may ({MAX_MESSAGE_BYTES} bytes)",
            param_hint="--payload",
        )
    return data


@cli.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Print the team and tasks as one JSON object."
)
@click.option(
    "--watch",
    is_flag=True,
    help="Keep showing what the team does, live from the event log, until the team has "
    "ended and its coordinator is gone (Ctrl-C leaves sooner). Not on a terminal (a pipe, a "
    "file), it prints a plain frame each time something changed.",
)
@click.option(
    "--interval",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0.1),
    envvar="TEAM_STATUS_INTERVAL",
    help="Seconds between two redraws of --watch (team.json and the agents: once a second).",
)
@workspace_option
@pass_context
def status(c: Context, as_json: bool, watch: bool, interval: float) -> None:
    """Show the team and its task DAG: each task's status, owner, attempt and dependencies,
    the tokens and model time spent, and any process that should be running and is not (a
    coordinator or worker that was killed: `team resume` carries on). Exits 1 when a state
    file is damaged.

    With --watch: each agent's phase, its current model or tool call and for how long, tokens
    and time per agent and per task, the DAG's progress and the latest Definition-of-Done
    results, refreshed from `.agents/events.jsonl`.

    --json keys: team, agents, tasks, problems, not_running, and from the event log: usage
    (prompt_tokens, completion_tokens, cached_tokens, model_calls, model_seconds, tool_calls,
    and the same per_agent and per_task), activity (per agent: state, role, task_id,
    model_call {call_id, role, model, since} while one runs, last_tool {tool, outcome, at}),
    progress (tasks per status), dod (iteration, criteria [{id, passed, detail}], steps [{name,
    passed, detail}]), budget ([{ts, scope, limit, used, task_id}], the budgets reached) and
    approval (the plan waiting for `team approve`: {plan, request_id, round, feedback,
    asked_at}, else null), endpoints (the model servers the roles call: [{url, provider,
    roles, capacity, in_flight, failures, down_for, state, holders, listed}]).
    docs/observability.md describes them.

    \b
    Examples:
      team status
      team status --watch
      team status --json | jq '.tasks[] | select(.status == "failed")'
      team status --json | jq .usage.per_task
    """
    if watch:
        if as_json:
            raise click.UsageError("--watch and --json do not go together")
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch is left
            watch_status(c, interval)
        return
    layout, info, damage = c.damaged_team()
    tasks, problems = _read_tasks(TaskStore(layout))
    if damage:
        problems.insert(0, damage)
    agents = read_agents(layout)
    activity = Activity.from_events(read_events(layout.events_jsonl).events, tasks)
    # Shown, and in --json, but not an exit 1: a team between two looks can show them.
    gone = liveness_problems(info, agents, tasks, is_running)
    proposal = None if layout.plan_json.exists() else Proposal.load(layout.plan_proposal_json)
    try:
        endpoints = endpoint_loads(layout, load_config(layout.config_toml), agents)
    except ConfigError:  # said by the commands that use the config
        endpoints = []
    if as_json:
        _print_json(
            {
                "team": info.model_dump(mode="json") if info else None,
                "agents": [{**a.model_dump(mode="json"), "alive": is_running(a)} for a in agents],
                "tasks": [task.model_dump(mode="json") for task in tasks],
                "problems": problems,
                "not_running": gone,
                "usage": activity.usage_json(),
                "activity": activity.activity_json(),
                "progress": activity.progress(),
                "dod": activity.dod_json(),
                "budget": activity.budget_json(),
                "approval": proposal.model_dump(mode="json") if proposal else None,
                "endpoints": [load.as_json() for load in endpoints],
            }
        )
    else:
        if info is not None:
            c.out.print(views.team_header(info))
        if activity.spend.model_calls:
            c.out.print(Text(spend_line(activity), style="dim"))
        if proposal is not None:
            c.out.print(views.proposal_text(proposal), highlight=False)
        for line in gone:  # first: the header's status is what the dead process last wrote
            c.out.print(
                Text.assemble(("not running: ", "bold yellow"), inert(line)), highlight=False
            )
        if agents:
            c.out.print(views.agents_table(agents, [is_running(a) for a in agents]))
        if any(load.listed for load in endpoints):  # a pool of [[endpoints]]
            c.out.print(views.endpoints_table(endpoints))
        if tasks:
            c.out.print(views.status_table(tasks, {i: t.spend for i, t in activity.tasks.items()}))
        else:
            c.out.print("no tasks yet")
        for budget in activity.budgets:
            c.out.print(Text(budget_line(budget), style="bold red"))
        for problem in problems:
            c.out.print(Text.assemble(("problem: ", "bold red"), inert(problem)), highlight=False)
    if problems:
        sys.exit(1)


def watch_status(c: Context, interval: float) -> None:
    """`team status --watch`: fold the event log as it grows (waiting for it if there is none
    yet) and redraw; leave when the team has ended and its coordinator is gone."""
    layout, info, _ = c.damaged_team()
    tasks, _ = _read_tasks(TaskStore(layout))  # once: names tasks from before the log
    tail = EventTail(layout.events_jsonl)
    activity = Activity.from_events(tail.read(), tasks)
    alive: dict[str, bool] = {}
    looked = float("-inf")
    shown: tuple[int, dict[str, bool]] | None = None
    gone = 0  # looks in a row that found the coordinator of an unfinished team not running
    with _screen(c) as screen:
        while True:
            ended = False
            if time.monotonic() - looked >= 1.0:
                looked = time.monotonic()
                info = read_team_or_backup(layout.team_json)[0] or info
                alive = {a.name: is_running(a) for a in read_agents(layout)}
                finished = info is not None and info.status in FINISHED
                ended = finished and not alive.get(COORDINATOR)
                # Killed (kill -9, the OOM killer): its status stays "building" forever. A
                # few looks in a row, so that a team still starting is not taken for dead.
                at_work = (
                    info is not None and not finished and info.status != TeamStatus.INITIALISED
                )
                dead = at_work and alive.get(COORDINATOR) is False  # its record, not running
                gone = gone + 1 if dead else 0
            for event in tail.read():  # after the look: an ended team's last events are there
                fold(activity, event)
            frame = watch_frame(activity, info, alive)
            if screen is not None:
                screen.update(frame, refresh=True)
            elif shown != (activity.events, alive):
                c.out.print(frame)
                c.out.print()
            shown = (activity.events, dict(alive))
            if ended:
                return
            if gone >= DEAD_LOOKS:
                raise click.ClickException(
                    "the team's coordinator is not running, and the team did not finish: "
                    f"`team resume -w {layout.workspace}` carries on"
                )
            time.sleep(interval)  # a redraw's pace, not a wait for another process


DEAD_LOOKS = 5  # seconds of a missing coordinator before --watch says the team is dead


def _screen(c: Context) -> contextlib.AbstractContextManager[Live | None]:
    """A live screen on a terminal; none elsewhere, where each frame is printed."""
    if c.out.is_terminal:
        return Live(console=c.out, auto_refresh=False)
    return contextlib.nullcontext()


def _read_tasks(store: TaskStore) -> tuple[list[Task], list[str]]:
    """Every readable task, and one line for each task file that is not."""
    tasks: list[Task] = []
    problems: list[str] = []
    for task_id in store.ids():
        try:
            tasks.append(store.get(task_id))
        except TaskFileError as exc:
            problems.append(str(exc))
    return tasks, problems


@cli.command(short_help="Check tmux, git, the model server, the models, the sandbox.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check, for scripts.")
@workspace_option
@pass_context
def doctor(c: Context, as_json: bool) -> None:
    """Check that this machine can run a team: tmux and git, the model server (every endpoint
    of a pool of [[endpoints]]) and every configured model on it, and the bubblewrap sandbox.
    Exits 1 when a needed check fails; an endpoint that serves no role is a warning.

    The models come from the configuration: defaults, ~/.config/agent-team/config.toml, the
    workspace's .agents/config.toml, then OLLAMA_HOST, OPENAI_BASE_URL, TEAM_MODEL_<ROLE>...

    \b
    Example:
      OLLAMA_HOST=http://gpu-box:11434 team doctor
    """
    try:
        # Fail fast: a doctor that retries for half a minute helps nobody.
        config = load_config(
            Layout.of(c.workspace).config_toml,
            overrides={"limits": {"max_retries": 0, "read_timeout": 15}},
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    checks = run_checks(config)
    for check in checks:
        if as_json:
            _print_json(
                {
                    "check": check.name,
                    "ok": check.ok,
                    "needed": check.needed,
                    "detail": check.detail,
                }
            )
        else:
            style = {"ok": "green", "FAIL": "bold red", "warn": "yellow"}[check.label]
            line = Text.assemble(
                (f"{check.label:>4}", style), inert(f"  {check.name}: {check.detail}")
            )
            c.out.print(line, highlight=False)
    if any(not check.ok and check.needed for check in checks):
        sys.exit(1)


def _launch(
    c: Context,
    team: Team,
    options: LaunchOptions,
    *,
    unconfined: bool,
    start_lock: HeldLock,
    resume: bool = False,
    undo: Callable[[], None] = lambda: None,
) -> NoReturn:
    """Start the team's coordinator (`team up`, `resume`, `demo`) and exit with its outcome.
    The start lock goes once the coordinator holds the workspace; `undo` puts team.json back
    when the coordinator could not be started."""
    try:
        code = launch(
            team,
            workers=options.workers,
            max_iterations=options.max_iterations,
            runner=options.runner,
            attach=sys.stdout.isatty(),
            detach=options.detach,
            wait=options.wait,
            say=c.say,
            unconfined=unconfined,
            resume=resume,
            started=start_lock.release,
            max_rounds=options.max_rounds,
            max_seconds=options.max_seconds,
            max_tokens=options.max_tokens,
        )
    except UpError as exc:
        with contextlib.suppress(TeamFileError, OSError):
            undo()
        raise click.ClickException(str(exc)) from None
    finally:
        start_lock.release()
    sys.exit(code)


@dataclass(frozen=True)
class LaunchOptions:
    """What `team up`, `team resume` and `team demo` are told about the run (None: the
    config's `[team]`, protocol/config.py TeamSettings)."""

    runner: str
    detach: bool
    wait: bool
    workers: int | None = None
    max_iterations: int | None = None
    max_rounds: int | None = None
    max_seconds: float | None = None
    max_tokens: int | None = None


def _check_config(directory: Path) -> Config:
    """A bad setting is said here, at once, not in the coordinator's log later."""
    try:
        return load_config(Layout.of(directory).config_toml)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _check_model_server(config: Config) -> None:
    """A team whose planner's server is not even listening would only wait: say so now,
    exit 1. Only a connection is asked for (what a busy server answers is the team's own
    calls' business, and one that goes away later is waited for)."""
    route = config.route("plan")
    if route.provider not in URL_FIELD:
        return  # a cassette: no server
    provider = route.provider
    options = pool.places(config, provider, route.model, "plan")
    failures = []
    for place in options:  # one endpoint of the pool that listens is enough to start
        parts = urlsplit(place.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "", port), timeout=5).close()
            return
        except OSError as exc:
            failures.append(f"{place.url} ({exc.strerror or exc})")
    where = (
        f"the {provider} server at {failures[0]}: start it (for Ollama: `ollama serve`), or "
        f"set {URL_SETTING[provider]} to where it runs"
        if not options[0].listed
        else f"any {provider} endpoint of the planner's model ({'; '.join(failures)}): "
        "start one, or fix [[endpoints]]"
    )
    raise click.ClickException(
        f"cannot reach {where}. The team needs its model server from the start: nothing was "
        "started. `team doctor` checks the server and every model."
    )


def _start_lock(directory: Path, what: str) -> HeldLock:
    try:
        return take_start_lock(directory, what)
    except UpError as exc:
        raise click.ClickException(str(exc)) from None


no_sandbox_option = click.option(
    "--no-sandbox",
    is_flag=True,
    help="Run the models' code (tests, commands, installs) WITHOUT the bubblewrap sandbox, "
    "where it cannot work; every pane and `team status` then say so.",
)


def _confinement(no_sandbox: bool, command: str) -> bool:
    try:
        return choose_confinement(no_sandbox, command)
    except UpError as exc:
        raise click.ClickException(str(exc)) from None


def _say_placement(c: Context, team: Team) -> None:
    if team.info.repository is not None:
        for line in placement(team.info.repository, team.layout.workspace):
            c.say(line)


def launch_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `team up` and `team resume` share, gathered into one `LaunchOptions`."""
    decorators = [
        click.option(
            "--workers",
            default=None,
            type=click.IntRange(1, 32),
            envvar="TEAM_WORKERS",
            help=f"How many agents build at once [default: {DEFAULTS.workers}, or [team] "
            "workers in the config].",
        ),
        click.option(
            "--max-iterations",
            default=None,
            type=click.IntRange(1, 50),
            help=f"Build-verify-fix rounds before giving up [default: {DEFAULTS.max_iterations}].",
        ),
        click.option(
            "--max-rounds",
            default=None,
            type=click.IntRange(1, 500),
            help=f"Model turns an agent gets per task attempt [default: {DEFAULTS.max_rounds}].",
        ),
        click.option(
            "--max-seconds",
            default=None,
            type=click.FloatRange(min=1),
            help=f"Seconds an agent gets per task attempt [default: {DEFAULTS.max_seconds:g}].",
        ),
        click.option(
            "--max-tokens",
            default=None,
            type=click.IntRange(min=1),
            envvar="TEAM_MAX_TOKENS",
            help="Tokens (prompt + completion, all agents) the team may spend; reached, it "
            "stops with that reason [default: no limit, or [team] max_tokens]. A cap per "
            "task attempt is [team] task_max_tokens in the config.",
        ),
        click.option(
            "--runner",
            type=click.Choice(["tmux", "subprocess"]),
            default="tmux",
            show_default=True,
            envvar="TEAM_RUNNER",
            help="Agents in tmux panes, or plain processes (hosts without tmux).",
        ),
        click.option(
            "--detach", is_flag=True, help="Start and return at once (`team kill` stops it)."
        ),
        click.option(
            "--wait",
            is_flag=True,
            help="Block until done; exit 0 only if every criterion passes. Ctrl-C stops the team.",
        ),
        no_sandbox_option,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _options(given: dict[str, Any]) -> LaunchOptions:
    return LaunchOptions(
        runner=given["runner"],
        detach=given["detach"],
        wait=given["wait"],
        workers=given["workers"],
        max_iterations=given["max_iterations"],
        max_rounds=given["max_rounds"],
        max_seconds=given["max_seconds"],
        max_tokens=given["max_tokens"],
    )


@cli.command(short_help="Set a team to work on a task.")
@click.argument("task", required=False)
@click.option("-f", "--file", "task_file", type=click.File("r"), help="Read the task from a file.")
@click.option(
    "--approve-plan",
    is_flag=True,
    help="Show the plan and wait for `team approve` before any worker builds (also "
    "[team] approve_plan = true in the config).",
)
@launch_options
@workspace_option
@pass_context
def up(
    c: Context,
    task: str | None,
    task_file: Any,
    approve_plan: bool,
    no_sandbox: bool,
    **given: Any,
) -> None:
    """Set a team of agents to work on TASK in the workspace: explore, plan, build in
    parallel, verify, fix, until every Definition-of-Done criterion passes.

    The models come from the configuration (see `team doctor`). On a terminal, with the tmux
    runner, you are attached to the team's session; Ctrl-b d detaches and the team goes on,
    Ctrl-C in its first pane stops it. One team works in a directory at a time: a second
    `team up` there says which team is at work and how to stop it.

    \b
    Examples:
      team up "a todo CLI with a JSON store and tests" -w ./todo
      team up -f task.md --workers 2 --wait
      team up --approve-plan "a URL shortener"   # then: team status, team approve
    """
    text = (task_file.read() if task_file else task or "").strip()
    if not text:
        raise click.UsageError('say what to build: team up "<task>" or team up -f FILE')
    unconfined = _confinement(no_sandbox, "team up")
    _check_model_server(_check_config(c.workspace))
    start_lock = _start_lock(c.workspace, "team up")
    try:
        team = prepare(c.workspace, text)
        if approve_plan:  # in team.json: a resumed team still waits for the approval
            team = Team(team.layout, update_team(team.layout.team_json, approve_plan=True))
    except (UpError, TeamFileError) as exc:
        start_lock.release()
        raise click.ClickException(str(exc)) from None
    _say_placement(c, team)
    _launch(c, team, _options(given), unconfined=unconfined, start_lock=start_lock)


@cli.command(short_help="Stop the team; everything stays on disk.")
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds the agents get to stop at a safe point before they are ended.",
)
@workspace_option
@pass_context
def kill(c: Context, grace: float) -> None:
    """Stop the team: a shutdown_request to every agent (they stop at their next safe point),
    then, after the grace period, every process of the team still running is ended (found
    from the agents' records and the process table, so even with a damaged team.json) and
    the tmux session closed. Tasks, messages and files stay on disk: `team resume` carries on.

    \b
    Example:
      team kill --grace 10
    """
    layout, info, damage = c.damaged_team()
    if damage:
        click.echo(f"warning: {damage}", err=True)
    kill_team(layout, info, grace, c.say)
    name = f"team {info.id}" if info else "the team"
    c.out.print(f"{name} stopped; `team status` shows where it was", highlight=False)


@cli.command(short_help="Carry on a stopped or crashed team from what is on disk.")
@launch_options
@workspace_option
@pass_context
def resume(c: Context, no_sandbox: bool, **given: Any) -> None:
    """Start a new coordinator for the team in the workspace. It rebuilds its state from
    .agents/ (plan, tasks, memory), leaves running workers at their tasks, restarts dead ones,
    and never assigns a task twice. The task files are checked first: a missing dependency,
    a cycle or an unreadable file is named, with the fix, before anything starts.

    \b
    Example:
      team resume --wait
    """
    team = c.team()
    unconfined = _confinement(no_sandbox, "team resume")
    _check_config(team.layout.workspace)
    here = Path(team.info.repository.user_dir) if team.info.repository else team.layout.workspace
    start_lock = _start_lock(here, "team resume")
    try:
        refuse_a_running_coordinator(team.layout, team.info, here)
        problems = task_problems(TaskStore(team.layout))
        if problems:
            raise UpError(problems_report(problems))
        if is_demo(team.layout.config_toml):  # `team kill` ended its scripted model: again
            url = start_scripted_model(team.layout.workspace, 0.5)
            write_demo_config(team.layout.workspace, url)
            c.say(f"the demo's scripted model is back at {url}")
        before = TeamInfo.read(team.layout.team_json)
        info = update_team(team.layout.team_json, status=TeamStatus.INITIALISED, detail="resuming")
    except (UpError, TeamFileError, DemoError) as exc:
        start_lock.release()
        raise click.ClickException(str(exc)) from None

    def undo() -> None:  # not resumed after all: team.json says where it was, not "resuming"
        update_team(team.layout.team_json, status=before.status, detail=before.detail)

    _launch(
        c,
        Team(team.layout, info),
        _options(given),
        unconfined=unconfined,
        start_lock=start_lock,
        resume=True,
        undo=undo,
    )


@cli.command(short_help="Attach to the team's tmux session.")
@workspace_option
@pass_context
def attach(c: Context) -> None:
    """Attach to the team's tmux session (Ctrl-b d detaches; the team goes on).

    \b
    Example:
      team attach -w ./todo
    """
    team = c.team()
    if not team.info.tmux_session:
        raise click.ClickException(
            "this team runs without tmux: `team logs AGENT` shows each agent"
        )
    server = libtmux.Server(socket_name=socket_name(team.info.id))
    if TeamSession.find(server, team.info.tmux_session) is None:
        raise click.ClickException(
            f"team {team.info.id} has no tmux session any more ({team.info.status.value}; "
            "`team kill` closes it): `team status` and `team logs AGENT` show what it did"
        )
    os.execvp(
        "tmux", ["tmux", "-L", socket_name(team.info.id), "attach", "-t", team.info.tmux_session]
    )


@cli.command(short_help="Show an agent's log, or list the logs.")
@click.argument("agent", required=False)
@click.option(
    "-n",
    "--lines",
    default=50,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many last lines.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they are written.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="With --follow: stop after this many seconds (default: until Ctrl-C).",
)
@workspace_option
@pass_context
def logs(c: Context, agent: str | None, lines: int, follow: bool, timeout: float | None) -> None:
    """Show the last lines of AGENT's log (.agents/logs/AGENT.log, and AGENT.out, what its
    process printed, when it has one). Without AGENT, list the logs there are.

    \b
    Examples:
      team logs                          whose logs there are, their sizes and ages
      team logs builder-storage -n 100
      team logs coordinator -f           keep printing new lines until Ctrl-C
    """
    team = c.team()
    if agent is None:
        if follow:
            raise click.UsageError("say whose log to follow: team logs AGENT --follow")
        files = log_files(team.layout)
        if files:
            c.out.print(views.logs_table(files))
        else:
            c.out.print("no logs yet: each agent writes .agents/logs/AGENT.log when it starts")
        return
    found = agent_logs(team.layout, agent)
    if not found:
        known = sorted({log.agent for log in log_files(team.layout)})
        raise click.BadParameter(
            f"no log for {agent!r} (logs: {', '.join(known) or 'none'})", param_hint="AGENT"
        )
    echo = _log_echo(several=len(found) > 1)
    offsets: dict[Path, int] = {}
    for path in found:
        text, offsets[path] = last_lines(path, lines, whole_lines=follow)
        echo(path, text)
    if not follow:
        return
    # On stderr, so that the log itself can be piped on.
    click.echo(f"following {', '.join(p.name for p in found)} (Ctrl-C to stop)...", err=True)
    try:
        for path, line in follow_lines(found, offsets, timeout=timeout):
            echo(path, [line])
    except KeyboardInterrupt:
        pass


def _log_echo(*, several: bool) -> Callable[[Path, list[str]], None]:
    """Print log lines made inert; from several files, under a `==> NAME <==` header each
    time the file changes, as `tail` does."""
    last: list[Path] = []  # the file of the last header

    def echo(path: Path, text: list[str]) -> None:
        if several and last != [path]:
            click.echo(f"==> {inert(path.name)} <==")
            last[:] = [path]
        if text:
            click.echo("\n".join(inert(line) for line in text))

    return echo


@cli.group(
    invoke_without_command=True,
    short_help="The run's model calls: what each was asked and answered.",
)
@click.option("--task", "task_id", type=int, default=None, help="One task's conversation.")
@click.option("--agent", default=None, help="One agent's conversations.")
@click.option("--call", "number", type=int, default=None, help="Call N (from the list) in full.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@workspace_option
@pass_context
def trace(
    c: Context, task_id: int | None, agent: str | None, number: int | None, as_json: bool
) -> None:
    """The model calls of the team's run, from .agents/events.jsonl, numbered 1..N in the
    order they ended: who made each, for which task, the model, the seconds, the tokens
    and the outcome. --task and --agent show the conversations: each call with the messages
    new since the call before (the first shows all) and its answer, tool calls and tool
    results, and how each attempt ended. --call N shows one exchange in full, from the
    trace store (.agents/traces/). `team trace export` writes the failures out.

    \b
    Examples:
      team trace                         every call, and the token sums
      team trace --task 3                task 3's attempts, call by call
      team trace --agent builder-storage
      team trace --call 7 --json | jq .exchange.request.messages
    """
    given = (("--task", task_id), ("--agent", agent), ("--call", number))
    chosen = [option for option, value in given if value is not None]
    if click.get_current_context().invoked_subcommand is not None:
        if chosen or as_json:
            raise click.UsageError(f"{(chosen or ['--json'])[0]} is for `team trace` alone")
        return
    if len(chosen) > 1:
        raise click.UsageError(
            f"one of --task, --agent and --call at a time, not {' and '.join(chosen)}"
        )
    disk = _recorded_run(c)
    if number is not None:
        _show_call(c, disk, number, as_json)
    elif task_id is not None or agent is not None:
        _show_conversations(c, disk, task_id, agent, as_json)
    elif as_json:
        _print_json(trace_view.calls_json(disk.run))
    else:
        c.out.print(trace_view.calls_table(disk.run))
        c.out.print(trace_view.summary_line(disk.run), highlight=False)
        if disk.bad_lines:
            c.say(f"{disk.bad_lines} lines of the log could not be read (torn by a kill)")


def _recorded_run(c: Context) -> RunOnDisk:
    disk = RunOnDisk.read(c.team().layout)
    if not disk.run.calls:
        events = disk.layout.events_jsonl
        why = "holds no model call yet" if events.is_file() else "does not exist yet"
        raise click.ClickException(
            f"{events} {why}: every process of the team logs its model calls there as they "
            "end (`team up` or `team demo` starts a run; an earlier run is under "
            ".agents/history/)"
        )
    return disk


def _show_call(c: Context, disk: RunOnDisk, number: int, as_json: bool) -> None:
    calls = disk.run.calls
    if not 1 <= number <= len(calls):
        raise click.BadParameter(
            f"there is no call {number}: the run has calls 1 to {len(calls)} (`team trace`)",
            param_hint="--call",
        )
    call = calls[number - 1]
    exchange = disk.exchange(call)
    if exchange is None:
        raise click.ClickException(
            f"the exchange of call {number} ({call.event.agent}, {call.event.role}) is not in "
            f"the trace store: {disk.why_not_stored(call)}. `team trace` shows its tokens "
            "and outcome"
        )
    if as_json:
        _print_json(trace_view.exchange_json(call, exchange))
        return
    for line in trace_view.exchange_lines(call, exchange):
        c.out.print(line, highlight=False)


def _show_conversations(
    c: Context, disk: RunOnDisk, task_id: int | None, agent: str | None, as_json: bool
) -> None:
    run = disk.run
    if task_id is not None:
        conversations = trace_view.task_conversations(run, task_id)
        if not conversations:
            worked = sorted({a.task_id for a in run.attempts})
            raise click.BadParameter(
                f"no task {task_id} was worked on in this run (tasks: "
                f"{', '.join(map(str, worked)) or 'none'})",
                param_hint="--task",
            )
    else:
        assert agent is not None
        conversations = trace_view.agent_conversations(run, agent)
        if not conversations:
            known = sorted({call.event.agent for call in run.calls})
            raise click.BadParameter(
                f"{agent!r} made no model call in this run (agents: {', '.join(known)})",
                param_hint="--agent",
            )
    if as_json:
        records = [trace_view.conversation_json(disk, conv) for conv in conversations]
        _print_json({"task_id": task_id, "agent": agent, "conversations": records})
        return
    for conversation in conversations:
        for line in trace_view.conversation_lines(disk, conversation):
            c.out.print(line, highlight=False)
        c.out.print("")


def _export_help() -> str:
    """`team trace export --help`, with the JSON fields and error classes from their homes."""
    fields = ["\b", "The fields of each JSON line (--format jsonl):"]
    for name, meaning in TRAINING_FIELDS.items():
        first, *rest = textwrap.wrap(f"{name}: {meaning}", 92)
        fields += [f"  {first}", *(f"      {line}" for line in rest)]
    text = """Write the run's failures out for review: --format markdown gives, for each
    failed task attempt and each failed verification, the task, the prompt (every message of
    the attempt's last stored model call, then its answer), the code it wrote (its write_file
    and edit_file calls; from the event log, shortened, where the answer is not stored), the
    error output, the model, the temperature and the error category ({classes}). On a
    terminal, control characters are shown escaped; a file gets the text as it was.

    --format jsonl writes one JSON object per line: a training pair for fine-tuning (LoRA)
    for each stored model call with an answer, of every ended task attempt and of the
    coordinator's plan and RCA calls.

    {fields}

    \b
    Examples:
      team trace export -o failures.md
      team trace export --format jsonl -o pairs.jsonl
      team trace export --format jsonl | jq 'select(.outcome == "rejected")'
    """
    classes = ", ".join(c.value for c in ErrorClass)
    return inspect.cleandoc(text).format(classes=classes, fields="\n".join(fields))


@trace.command(
    short_help="Write the failures out (markdown) or training pairs (jsonl).",
    help=_export_help(),
)
@click.option(
    "--format",
    "form",
    type=click.Choice(["markdown", "jsonl"]),
    default="markdown",
    show_default=True,
    help="markdown: the failures, for review; jsonl: training pairs, one per line.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (default: standard output).",
)
@workspace_option
@pass_context
def export(c: Context, form: str, output: Path | None) -> None:
    disk = _recorded_run(c)
    if form == "markdown":
        text, count = trace_export.markdown(disk, f"team {c.team().info.id}")
        what = trace_view.plural(count, "failure")
    else:
        pairs = list(trace_export.training_pairs(disk))
        text = "".join(json.dumps(pair) + "\n" for pair in pairs)
        what = trace_view.plural(len(pairs), "training pair")
    if output is None:
        # On a terminal, model text is made inert; redirected, it is written as it was.
        sys.stdout.write(inert(text) if sys.stdout.isatty() else text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    c.say(f"wrote {what} to {output}")


@cli.command(short_help="Run the whole pipeline on an example, with a scripted model.")
@click.option(
    "--runner",
    type=click.Choice(["tmux", "subprocess"]),
    default="tmux",
    show_default=True,
    envvar="TEAM_RUNNER",
)
@click.option(
    "--delay",
    default=0.5,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds the scripted model 'thinks' before each first write.",
)
@click.option("--detach", is_flag=True, help="Start and return at once.")
@click.option(
    "--wait", is_flag=True, help="Block until done; exit 0 only if every criterion passes."
)
@click.option(
    "-w",
    "--workspace",
    "demo_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to build the example (default: a new temp directory).",
)
@no_sandbox_option
@pass_context
def demo(
    c: Context,
    runner: str,
    delay: float,
    detach: bool,
    wait: bool,
    demo_dir: Path | None,
    no_sandbox: bool,
) -> None:
    """Run the whole pipeline on a bundled example task, with a SCRIPTED model server standing
    in for a real one: explore, plan three modules, build them in parallel (one has a planted
    bug), verify (it fails), find the root cause, fix it, verify again (it passes).

    \b
    Example:
      team demo            # in tmux: watch the panes; Ctrl-b d to detach
      team demo --wait --runner subprocess
    """
    unconfined = _confinement(no_sandbox, "team demo")
    root = click.get_current_context().find_root()
    given = root.get_parameter_source("workspace") != click.core.ParameterSource.DEFAULT
    # `team -w DIR demo` and TEAM_WORKSPACE count as much as `team demo -w DIR`.
    workspace = demo_workspace(demo_dir or (c.workspace if given else None))
    c.out.print(NOTICE, style="bold yellow", highlight=False)
    start_lock = _start_lock(workspace, "team demo")
    try:
        team = prepare(workspace, DEMO_TASK)
        url = start_scripted_model(team.layout.workspace, delay)
        write_demo_config(team.layout.workspace, url)
        c.out.print(f"workspace: {workspace}  scripted model: {url}", highlight=False)
    except (UpError, DemoError) as exc:
        start_lock.release()
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        start_lock.release()
        raise click.ClickException(cannot_write(workspace, exc)) from None
    _say_placement(c, team)
    options = LaunchOptions(runner=runner, detach=detach, wait=wait, workers=3, max_iterations=3)
    _launch(c, team, options, unconfined=unconfined, start_lock=start_lock)


def main() -> None:
    cli(prog_name="team")


if __name__ == "__main__":
    main()

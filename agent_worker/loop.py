"""The agent loop: ask the model, run the tool calls it makes, give back the results, repeat,
until it calls `finish` or a limit is reached. Failure modes are the named exceptions below,
handled in one place by the worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_worker.progress import STALL_ROUNDS, Call, Round, Stall, StallKind, trailing_stalls
from agent_worker.prompts import ANSWER_CUT, GUIDANCE, LOOKED_FINISH, nudge
from agent_worker.tools import Finished, Toolbox, describe_arguments
from protocol.config import TeamSettings
from protocol.llm import ChatMessage, ModelClient, ToolCall, TruncatedAnswer
from protocol.llm.budget import estimate_message_tokens, truncate_head_tail
from protocol.tracing import OpenSpan, Tracer

TOOL_RESULT_TOKENS = 2_000  # one long tool result must not crowd out the conversation


class LoopStopped(Exception):
    """The loop ended without `finish`."""


class OutOfRounds(LoopStopped):
    pass


class OutOfTime(LoopStopped):
    pass


class ShutdownRequested(LoopStopped):
    pass


class NoProgress(LoopStopped):
    """Rounds in a row that got nowhere (prose, a cut answer, the same call again, only
    failing calls), after a nudge: `stalls` says what each did."""

    def __init__(self, stalls: list[Stall], fix: str = "") -> None:
        said = "; ".join(f"round {s.round}: {s.detail}" for s in stalls)
        super().__init__(f"no progress in {len(stalls)} rounds in a row, after a nudge: {said}"
                         + (f"; {fix}" if fix else ""))  # fmt: skip
        self.stalls = stalls
        self.kinds = [s.kind for s in stalls]


class OutOfTokens(LoopStopped):
    """The task attempt spent its token cap (`team.task_max_tokens`)."""

    def __init__(self, used: int, limit: int) -> None:
        super().__init__(f"the task's token cap of {limit} is spent ({used} tokens used)")
        self.used = used
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    max_rounds: int = TeamSettings().max_rounds
    max_seconds: float = TeamSettings().max_seconds
    max_tokens: int | None = TeamSettings().task_max_tokens


@dataclass
class AgentLoop:
    client: ModelClient
    toolbox: Toolbox
    limits: Limits
    should_stop: Callable[[], bool] = lambda: False
    on_event: Callable[[str, str], None] = lambda kind, detail: None
    temperature: float | None = 0.2
    seed: int | None = None
    tracer: Tracer | None = None
    files: tuple[str, ...] = ()  # the task's FILES, named in a nudge
    # The user's words that arrived since the last turn (`team tell`): put into the
    # conversation before the next one.
    guidance: Callable[[], list[str]] = lambda: []
    rounds: int = 0
    tokens: int = 0  # prompt + completion, over every call of this loop
    history: list[Round] = field(default_factory=list)

    def run(self, messages: list[ChatMessage], deadline: float | None = None) -> str:
        """Run until `finish` (its summary is returned) or a limit; `messages` grows in place
        so that a caller can carry on the same conversation."""
        deadline = deadline or time.monotonic() + self.limits.max_seconds
        while True:
            if self.should_stop():
                raise ShutdownRequested("a shutdown was requested")
            if self.rounds >= self.limits.max_rounds:
                raise OutOfRounds(f"no finish after {self.rounds} rounds")
            if time.monotonic() > deadline:
                raise OutOfTime(f"no finish within {self.limits.max_seconds:g}s")
            self.check_tokens()
            for words in self.guidance():
                messages.append(ChatMessage.user(GUIDANCE.format(text=words)))
            self.rounds += 1
            summary = self.step(messages)
            if summary is None:
                summary = self.judge(messages)
            if summary is not None:
                return summary

    def step(self, messages: list[ChatMessage]) -> str | None:
        """One round: the model's answer, then each of its tool calls in order."""
        try:
            result = self.client.chat(
                self.fitted(messages),
                tools=self.toolbox.specs(),
                temperature=self.temperature,
                seed=self.seed,
            )
        except TruncatedAnswer:  # what there was of it is unusable: the model is told
            self.tokens += self.client.route.max_answer_tokens  # it spent its whole cap
            self.on_event("fail", f"answer cut at its cap, {self._cap()}: asking for less")
            messages.append(ChatMessage(role="assistant", content=ANSWER_CUT))
            self.history.append(Round(self.rounds, cut=True, all_written=self._all_written()))
            return None
        self.tokens += result.usage.total
        messages.append(
            ChatMessage(role="assistant", content=result.text, tool_calls=result.tool_calls)
        )
        if not result.tool_calls:
            self.on_event("model", result.text[:200] or "(no tool call)")
            self.history.append(Round(self.rounds, all_written=self._all_written()))
            return None
        calls: list[Call] = []
        try:
            return self._run_calls(messages, result.tool_calls, calls)
        finally:
            self.history.append(Round(self.rounds, tuple(calls), all_written=self._all_written()))

    def judge(self, messages: list[ChatMessage]) -> str | None:
        """After a round without `finish`: a nudge after the first stall, `NoProgress` after
        `STALL_ROUNDS` of them in a row; or, when they were all of looking around with every
        file written, a finish on the model's behalf (the summary returned): the files are
        checked as after any finish, and verification judges them."""
        stalls = trailing_stalls(self.history)
        if len(stalls) >= STALL_ROUNDS:
            if all(s.kind == StallKind.LOOKING for s in stalls):
                self.on_event("info", "every file is written and it only looks around: finished")
                return LOOKED_FINISH.format(files=", ".join(self.files))
            fix = f"raise {self._cap()} in .agents/config.toml, or use a model that answers briefly"
            raise NoProgress(stalls, fix if all(s.kind == StallKind.CUT for s in stalls) else "")
        if stalls:
            cap = self.client.route.max_answer_tokens
            text = nudge(stalls[-1], self.toolbox.tools, self.files, self.toolbox.written, cap=cap)
            self.on_event("info", f"nudged: {stalls[-1].detail}")
            messages.append(ChatMessage.user(text))
        return None

    def _all_written(self) -> bool:
        return bool(self.files) and set(self.files) <= set(self.toolbox.written)

    def _cap(self) -> str:
        route = self.client.route
        return f"models.{self.client.role}.max_answer_tokens (now {route.max_answer_tokens})"

    def _run_calls(
        self, messages: list[ChatMessage], tool_calls: list[ToolCall], calls: list[Call]
    ) -> str | None:
        finished: str | None = None
        for call in tool_calls:
            self.on_event("tool", f"{call.name}({describe_arguments(call.arguments)})")
            if finished is not None:  # every call gets an answer, even after `finish`
                messages.append(ChatMessage.tool_result(call, "not run: finish was called"))
                continue
            span = self.tracer.open(f"tool {call.name}", "tool") if self.tracer else None
            try:
                run = self.toolbox.run(call)
            except Finished as done:
                finished = done.summary
                messages.append(ChatMessage.tool_result(call, "finished"))
                self._traced(span, call, "finished", done.summary)
                continue
            self._traced(span, call, run.outcome, run.output)
            calls.append(Call.of(call.name, call.arguments, run.outcome, run.output))
            output = truncate_head_tail(run.output, TOOL_RESULT_TOKENS)
            messages.append(ChatMessage.tool_result(call, output))
            if self.should_stop():  # a safe point between tool calls
                raise ShutdownRequested("a shutdown was requested")
        return finished

    def check_tokens(self) -> None:
        limit = self.limits.max_tokens
        if limit is not None and self.tokens >= limit:
            raise OutOfTokens(self.tokens, limit)

    def _traced(self, span: OpenSpan | None, call: ToolCall, outcome: str, output: str) -> None:
        if self.tracer is not None and span is not None:
            arguments = describe_arguments(call.arguments)
            self.tracer.tool_called(call.name, arguments, outcome, output, span)

    def fitted(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        """The conversation cut to the role's context: old tool results and long tool-call
        arguments (a whole file already written) shrink first, more on each pass."""
        route = self.client.route
        budget = route.context_window - route.max_answer_tokens - 1_000  # tools and schema
        fitted = list(messages)
        for keep in (400, 100):
            if estimate_message_tokens([m.model_dump() for m in fitted]) <= budget:
                break
            fitted = [_shrunk(m, keep, old=i < len(fitted) - 4) for i, m in enumerate(fitted)]
        return fitted


def _shrunk(message: ChatMessage, keep: int, *, old: bool) -> ChatMessage:
    if message.role == "tool" and old:
        return message.model_copy(update={"content": truncate_head_tail(message.content, keep)})
    if message.role == "assistant" and len(message.content) > keep * 4:
        # Text-mode models write their calls (whole files) into the content.
        message = message.model_copy(update={"content": truncate_head_tail(message.content, keep)})
    if message.role == "assistant" and message.tool_calls:
        calls = [
            call.model_copy(
                update={
                    "arguments": {
                        key: truncate_head_tail(value, keep) if isinstance(value, str) else value
                        for key, value in call.arguments.items()
                    }
                }
            )
            for call in message.tool_calls
        ]
        return message.model_copy(update={"tool_calls": calls})
    return message

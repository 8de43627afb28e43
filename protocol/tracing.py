"""Traces (DESIGN §3): per team run a trace id, and spans for the run, each iteration, each task
attempt, each model call and each tool call, with parent links, written to
`.agents/traces/<trace_id>.jsonl` as they end. Model calls also go to the event log with their
tokens, and their full request and answer to the trace store (`callstore.py`).

A `Tracer` is one process's view of where it is in the trace: its parent span. A worker's
parent is the task-attempt span the coordinator named in the assignment.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from protocol import events
from protocol.callstore import CallStore
from protocol.events import ModelCallEnded, ModelCallStarted, ToolCalled
from protocol.layout import Layout
from protocol.messages import TraceRef, utc_now

Attr = str | int | float | bool | None


class Span(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_id: str
    span_id: str
    parent_id: str | None = None
    name: str  # run, iteration 2, task 3 attempt 1, model plan, tool write_file
    kind: str  # run, iteration, task, model, tool, verify, planning, rca
    start: datetime
    duration_s: float
    outcome: str = "ok"
    agent: str = ""
    attrs: dict[str, Attr] = Field(default_factory=dict)


# One count per process, shared by every tracer in it (a child, each task attempt), and a
# random part: a call id names one exchange in the store, and must never be given twice, not
# even by a later process with the same pid (a resume after a reboot).
_CALLS = itertools.count(1)
_PROCESS = uuid.uuid4().hex[:6]
_CALLS_LOCK = threading.Lock()


def new_trace_id() -> str:
    return uuid.uuid4().hex[:16]


def new_span_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class OpenSpan:
    """A span being timed: `attrs` and `outcome` may be set before it ends."""

    span_id: str
    name: str
    kind: str
    parent_id: str | None
    start: datetime = field(default_factory=utc_now)
    started: float = field(default_factory=time.monotonic)
    outcome: str = "ok"
    attrs: dict[str, Attr] = field(default_factory=dict)


@dataclass
class Tracer:
    """Writes one process's spans and call events. `parent_id` is the span new spans hang
    under; `task_id`/`attempt` label the model and tool calls made for a task."""

    layout: Layout
    trace_id: str
    agent: str
    parent_id: str | None = None
    task_id: int | None = None
    attempt: int | None = None
    store_limit_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        self.store = CallStore(self.layout.traces_dir, limit_bytes=self.store_limit_bytes)

    @property
    def events_path(self) -> Path:
        return self.layout.events_jsonl

    @property
    def spans_path(self) -> Path:
        return self.layout.trace_file(self.trace_id)

    def child(self, parent_id: str | None, **labels: Any) -> Tracer:
        """The same trace, under another parent (a task attempt's span)."""
        tracer = Tracer(self.layout, self.trace_id, self.agent, parent_id, **labels)
        tracer.store = self.store
        return tracer

    def ref(self, span: OpenSpan) -> TraceRef:
        """Where another process's spans hang under `span` (an assignment's `trace`)."""
        return TraceRef(trace_id=self.trace_id, parent_id=span.span_id)

    def emit(self, event: events._Event) -> None:
        events.emit(self.events_path, event)

    # --- spans ---------------------------------------------------------------------------

    def open(self, name: str, kind: str, parent_id: str | None = None, **attrs: Attr) -> OpenSpan:
        return OpenSpan(new_span_id(), name, kind, parent_id or self.parent_id, attrs=dict(attrs))

    def close(self, span: OpenSpan, outcome: str | None = None) -> None:
        record = Span(
            trace_id=self.trace_id,
            span_id=span.span_id,
            parent_id=span.parent_id,
            name=span.name,
            kind=span.kind,
            start=span.start,
            duration_s=round(time.monotonic() - span.started, 4),
            outcome=outcome or span.outcome,
            agent=self.agent,
            attrs=span.attrs,
        )
        if self.spans_path.parent.is_dir():
            with contextlib.suppress(OSError, ValueError):  # a trace must never stop the work
                events.append_line(self.spans_path, record.model_dump_json().encode() + b"\n")

    @contextlib.contextmanager
    def span(self, name: str, kind: str, **attrs: Attr) -> Iterator[OpenSpan]:
        """Time the block as a span; its outcome is the exception's type name if one leaves."""
        opened = self.open(name, kind, None, **attrs)
        try:
            yield opened
        except BaseException as exc:
            self.close(opened, type(exc).__name__)
            raise
        self.close(opened)

    # --- model and tool calls ---------------------------------------------------------------

    def new_call_id(self) -> str:
        with _CALLS_LOCK:
            return f"{self.agent}-{os.getpid()}{_PROCESS}-{next(_CALLS)}"

    def model_started(self, call_id: str, role: str, model: str, provider: str) -> OpenSpan:
        span = self.open(f"model {role}", "model", role=role, model=model, provider=provider)
        self.emit(
            ModelCallStarted(
                call_id=call_id,
                role=role,
                model=model,
                provider=provider,
                task_id=self.task_id,
                span_id=span.span_id,
            )
        )
        return span

    def model_ended(
        self,
        span: OpenSpan,
        call: ModelCallEnded,
        request: dict[str, Any] | None,
        answer: dict[str, Any] | None,
    ) -> None:
        """The call's event, its span, and its full exchange in the store."""
        stored = request is not None and self.store.save(call.call_id, request, answer or {})
        self.emit(
            call.model_copy(
                update={
                    "task_id": self.task_id,
                    "attempt": self.attempt,
                    "trace_id": self.trace_id,
                    "span_id": span.span_id,
                    "parent_id": span.parent_id,
                    "stored": stored,
                }
            )
        )
        span.attrs.update(
            call_id=call.call_id,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            cached_tokens=call.cached_tokens,
            endpoint=call.endpoint,  # where it ran: the pool's endpoint
        )
        self.close(span, call.outcome)

    def tool_called(
        self, tool: str, arguments: str, outcome: str, detail: str, started: OpenSpan
    ) -> None:
        duration = round(time.monotonic() - started.started, 4)
        self.emit(
            ToolCalled(
                tool=tool,
                arguments=events.short(arguments),
                outcome=outcome,
                detail=events.short(detail),
                duration_s=duration,
                task_id=self.task_id,
                span_id=started.span_id,
                parent_id=started.parent_id,
            )
        )
        self.close(started, outcome)


def read_spans(path: Path) -> list[Span]:
    """The spans of one trace file; lines that do not parse (torn by a kill) are skipped."""
    spans = []
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        with contextlib.suppress(ValueError):
            spans.append(Span.model_validate_json(line))
    return spans

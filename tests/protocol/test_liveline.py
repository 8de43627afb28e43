"""The live line of a model call: what it says at each moment (pure, given the clock)."""

from __future__ import annotations

from protocol.liveline import LiveCall
from protocol.llm.types import CallProgress


def progress(phase: str, tokens: int = 0, elapsed: float = 0.0) -> CallProgress:
    return CallProgress(phase, "build", "coder:7b", elapsed, tokens)  # type: ignore[arg-type]


def test_a_call_waits_then_counts_tokens_then_goes_quiet() -> None:
    live = LiveCall(progress("start"), now=100.0)
    assert live.line(103.4) == "build (coder:7b): 3 s, waiting for the first token"
    live.update(progress("chunk", tokens=1), now=104.0)
    live.update(progress("chunk", tokens=41), now=106.0)
    assert live.line(106.0) == "build (coder:7b): 6 s, 41 tokens, 20.5 tokens/s"
    assert live.line(117.0).endswith(", quiet for 11 s")
    assert live.finished(progress("end", tokens=50, elapsed=20.0)) == (
        "build answered in 20.0 s, 50 tokens (2.5/s)"
    )


def test_an_older_progress_report_never_lowers_the_count() -> None:
    live = LiveCall(progress("start"), now=0.0)
    live.update(progress("chunk", tokens=10), now=1.0)
    live.update(progress("chunk", tokens=4), now=2.0)
    assert live.tokens == 10 and live.last_token == 1.0

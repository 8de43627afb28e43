"""Traces: spans with parent links, model calls recorded with their tokens and their whole
exchange (kept once per message, capped), whether the call succeeded or failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import callstore
from protocol.callstore import CallStore
from protocol.layout import Layout
from protocol.tracing import Tracer, read_spans


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / ".agents"
    (root / "traces").mkdir(parents=True)
    return root


def request(*texts: str) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": t} for t in texts]}


def test_the_store_keeps_each_message_once_and_gives_the_exchange_back(root: Path) -> None:
    store = CallStore(root / "traces")
    assert store.save("c1", request("a", "b"), {"text": "first"})
    assert store.save("c2", request("a", "b", "c"), {"text": "second"})
    blobs = list((root / "traces" / "blobs").glob("*/*.json"))
    assert len(blobs) == 4  # a, b, c, and the one request body without its messages
    loaded = store.load("c2")
    assert loaded is not None
    assert [m["content"] for m in loaded["request"]["messages"]] == ["a", "b", "c"]
    assert loaded["request"]["model"] == "m"
    assert loaded["answer"] == {"text": "second"}
    assert store.load("never") is None


def test_an_over_long_string_is_cut_with_a_note(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callstore, "MAX_STRING_CHARS", 10)
    store = CallStore(root / "traces")
    assert store.save("c1", request("x" * 50), {"text": "y" * 30})
    loaded = store.load("c1")
    assert loaded is not None
    assert loaded["request"]["messages"][0]["content"].startswith("x" * 10 + "\n[... cut: 40")
    assert loaded["cut"] == [
        "request.messages[0].content: cut from 50 to 10 chars",
        "answer.text: cut from 30 to 10 chars",
    ]


def test_a_full_store_keeps_no_more_calls(root: Path) -> None:
    store = CallStore(root / "traces", limit_bytes=200)
    assert store.save("c1", request("a" * 150), {})
    assert not store.save("c2", request("b"), {})
    assert store.load("c2") is None


def test_spans_link_to_their_parents_and_say_how_they_ended(root: Path) -> None:
    tracer = Tracer(Layout.of(root.parent), "abc123", "coordinator")
    with tracer.span("run", "run") as run:
        child = tracer.child(run.span_id)
        with child.span("iteration 1", "iteration"):
            pass
        with pytest.raises(ValueError), child.span("verify", "verify"):
            raise ValueError("boom")
    spans = {s.name: s for s in read_spans(root / "traces" / "abc123.jsonl")}
    assert spans["run"].parent_id is None
    assert spans["iteration 1"].parent_id == spans["verify"].parent_id == spans["run"].span_id
    assert (spans["iteration 1"].outcome, spans["verify"].outcome) == ("ok", "ValueError")
    assert spans["run"].duration_s >= spans["iteration 1"].duration_s


def test_call_ids_are_never_given_twice_in_a_process(root: Path) -> None:
    tracer = Tracer(Layout.of(root.parent), "abc123", "coordinator")
    ids = [tracer.new_call_id(), tracer.child("p1").new_call_id()]
    ids.append(Tracer(Layout.of(root.parent), "abc123", "coordinator").new_call_id())
    assert len(set(ids)) == 3

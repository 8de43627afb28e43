"""Best-of-N test files (issue 13), through a real worker process, a scripted tester model and
real pytest runs in the sandbox: the first wave finds a tester right only at some
temperatures and stops there; the second wave, told the first wave's errors, finds one right
only then; a tester never right has its best candidate kept, and the report says so."""

from __future__ import annotations

from typing import Any

from protocol import Task, TaskStatus, TaskStore
from protocol.tracing import Span, read_spans
from tests.agent_worker.conftest import StartTeam, Team, finish_worker, write_workspace_file

SOURCE = "def add(a, b):\n    return a + b\n"
TEST_PATH = "tests/test_calc.py"
GOOD = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
# Its own fault: a name calc does not define.
BAD_IMPORT = "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
# The code's fault, as far as running it can tell: the code's answer is not the one asserted.
WRONG_VALUE = "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 4\n"


def fenced(source: str) -> dict[str, Any]:
    return {"content": f"Here are the tests.\n```python\n{source}```\n"}


def rule(source: str, **match: Any) -> dict[str, Any]:
    return {"name": f"{source[:20]!r} {match}", "match": match, "reply": fenced(source)}


def run_tester(t: Team) -> Task:
    write_workspace_file(t.layout.workspace, "calc.py", SOURCE)
    t.assign(Task(id=1, title="tests of calc", role="tester", files=[TEST_PATH]), "tester")
    finish_worker(t.start_worker("tester", "--max-tasks", "1", role="tester"), timeout=180)
    return TaskStore(t.layout).get(1)


def spans(t: Team) -> list[Span]:
    return [s for path in t.layout.traces_dir.glob("*.jsonl") for s in read_spans(path)]


def test_the_first_wave_stops_at_the_first_candidate_whose_tests_pass(team: StartTeam) -> None:
    t = team([rule(GOOD, temperature=[0.55, 0.65]), rule(BAD_IMPORT)])
    task = run_tester(t)
    assert task.status == TaskStatus.DONE
    assert (t.layout.workspace / TEST_PATH).read_text() == GOOD
    # Asked at 0.3 (wrong), then 0.6 (right): the other two of the wave were never asked.
    assert [r.seen.temperature for r in t.server.log] == [0.3, 0.6]
    assert task.result is not None
    assert "candidate 2 (wave 1, temperature 0.6): 1 of 1 tests pass" in task.result.summary
    scratch = t.layout.root / "scratch"
    assert not scratch.exists() or not any(scratch.iterdir())  # each copy removed
    [span] = [s for s in spans(t) if s.kind == "sampling"]
    assert span.attrs["candidates"] == 2 and span.attrs["kept"] == 2 and span.attrs["passed"]


def test_the_second_wave_is_told_what_failed_and_finds_a_test(team: StartTeam) -> None:
    t = team([rule(GOOD, contains="failed with"), rule(BAD_IMPORT)])
    task = run_tester(t)
    assert task.status == TaskStatus.DONE
    assert (t.layout.workspace / TEST_PATH).read_text() == GOOD
    asked = [r.seen.temperature for r in t.server.log]
    assert asked == [0.3, 0.6, 0.8, 1.0, 0.4]  # the whole first wave, then one of the second
    told = t.server.log[4].body["messages"][-1]["content"]
    assert "cannot import name 'mul' from 'calc'" in told
    assert "cannot import name" not in t.server.log[3].body["messages"][-1]["content"]


def test_a_tester_never_right_has_its_best_candidate_kept_and_said(team: StartTeam) -> None:
    # The candidate whose failure is the code's is kept over those that fail on their own.
    t = team([rule(WRONG_VALUE, temperature=[0.85, 0.95]), rule(BAD_IMPORT)])
    task = run_tester(t)
    assert len(t.server.log) == 8  # both waves, whole
    assert (t.layout.workspace / TEST_PATH).read_text() == WRONG_VALUE
    assert task.status == TaskStatus.DONE  # verification, not the tester, judges the code
    assert task.result is not None
    summary = task.result.summary
    assert "no candidate's tests all pass; kept the best" in summary
    assert "candidate 7 (wave 2, temperature 0.9): 0 of 1 tests pass" in summary
    assert "1 the code's, 0 the test's own" in summary


def test_tests_failing_only_for_the_code_s_reasons_need_no_second_wave(team: StartTeam) -> None:
    t = team([rule(GOOD)])
    write_workspace_file(t.layout.workspace, "calc.py", "def add(a, b):\n    return a - b\n")
    t.assign(Task(id=1, title="tests of calc", role="tester", files=[TEST_PATH]), "tester")
    finish_worker(t.start_worker("tester", "--max-tasks", "1", role="tester"), timeout=180)
    assert len(t.server.log) == 4  # the first wave only: the tests are right, the code is not
    assert (t.layout.workspace / TEST_PATH).read_text() == GOOD
    log = t.layout.log_file("tester").read_text()
    assert "every failure is the code's, not the tests': no second wave" in log
    assert "candidate 4 (wave 1, temperature 1): 0 of 1 tests pass (failures: 1 the code's" in log


def test_a_fix_of_tests_shows_the_candidates_the_file_as_it_is(team: StartTeam) -> None:
    t = team([rule(GOOD)])
    write_workspace_file(t.layout.workspace, TEST_PATH, BAD_IMPORT)
    task = run_tester(t)
    assert task.status == TaskStatus.DONE
    asked = t.server.log[0].body["messages"][-1]["content"]
    assert f"{TEST_PATH} is now:" in asked and "from calc import mul" in asked

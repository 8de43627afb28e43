"""The weak-model catalogue (protocol/llm/weak_models.py), each mode driven through a whole
team run and checked from the outside. Whole runs are dear, so modes that do not get in each
other's way share one: a team whose every module's builder has a different bad habit."""

from __future__ import annotations

import pytest

from protocol import TaskStatus
from protocol.llm import weak_models as weak
from protocol.llm.weak_models import Mode
from tests.e2e.weak_team import WeakRun, criterion, module, run_weak_team

pytestmark = pytest.mark.timeout(300)

SOURCE = "def greet(name: str) -> str:\n    return f'hello {name}'\n"


def source(path: str) -> str:
    return f"# {path}\n{SOURCE}"


# --- recovered within the attempt ----------------------------------------------------------

RECOVERED = {  # module: (file, mode of its builder)
    "prose": ("prose.py", Mode.PROSE),
    "fence": ("fence.py", Mode.CODE_FENCE),
    "unknown": ("unknown.py", Mode.UNKNOWN_TOOL),
    "names": ("names.py", Mode.WRONG_ARGUMENT_NAMES),
    "cut": ("cut.py", Mode.CUT_AT_LIMIT),
    "outside": ("outside.py", Mode.OUTSIDE_FILES),
}
NOW_TEST, SAME_TEST = "tests/test_now.py", "tests/test_same.py"
NOW_BUGGY = """from datetime import datetime

from prose import greet


def test_greet_is_stamped_now() -> None:
    assert greet("a") and datetime.now() == datetime.now()
"""
SAME_BUGGY = """from prose import greet


def test_greet() -> None:
    assert greet("a") == greet("a")
"""
GOOD_TEST = """from prose import greet


def test_greet_says_hello_to_the_name() -> None:
    assert greet("a") == "hello a"
"""
RECOVERED_PLAN = {
    "summary": "greeters built by weak models",
    "modules": [
        *(module(name, path) for name, (path, _) in RECOVERED.items()),
        module("now", NOW_TEST, role="tester", depends_on=("prose",)),
        module("same", SAME_TEST, role="tester", depends_on=("prose",)),
    ],
    "dod": [
        *(criterion(f"D{i}", "import", path) for i, (path, _) in enumerate(RECOVERED.values(), 1)),
        criterion("T1", "test", NOW_TEST),
        criterion("T2", "test", SAME_TEST),
    ],
}


@pytest.fixture(scope="module")
def recovered(tmp_path_factory: pytest.TempPathFactory) -> WeakRun:
    rules = [
        weak.schema_answer("Plan", RECOVERED_PLAN, Mode.SCHEMA_MISSING_FIELD, "dod"),
        *(weak.builder(mode, path, source(path)) for path, mode in RECOVERED.values()),
        weak.tester(Mode.TEST_NOW_EQUALITY, NOW_TEST, NOW_BUGGY, GOOD_TEST),
        weak.tester(Mode.TEST_CANNOT_FAIL, SAME_TEST, SAME_BUGGY, GOOD_TEST),
    ]
    return run_weak_team(tmp_path_factory.mktemp("recovered"), rules, args=("--workers", "4"))


def built_in_one_attempt(run: WeakRun, path: str) -> None:
    task = run.task(path)
    assert (task.status, task.attempt) == (TaskStatus.DONE, 1), task.history
    assert (run.workspace / path).read_text() == source(path)


def test_a_plan_missing_its_criteria_is_asked_for_again_with_the_error(recovered: WeakRun) -> None:
    plans = [r for r in recovered.server.log if r.seen.schema_title == "Plan"]
    assert len(plans) == 2, "one repair round"
    said = str(plans[1].body["messages"][-1]["content"])
    assert "dod" in said and "Field required" in said
    assert recovered.info().status.value == "done", recovered.output
    assert recovered.status()["dod"]["criteria"]


def test_prose_instead_of_a_call_is_nudged_to_call_a_tool(recovered: WeakRun) -> None:
    built_in_one_attempt(recovered, "prose.py")
    told = recovered.told("prose.py", after=1)
    assert "no tool call" in told and "write_file" in told and "prose.py" in told


def test_a_call_written_in_a_code_fence_is_run_as_the_call(recovered: WeakRun) -> None:
    built_in_one_attempt(recovered, "fence.py")
    assert [c.tool for c in recovered.tool_calls("fence.py")] == ["write_file", "finish"]
    assert len(recovered.requests("fence.py")) == 2, "no nudge, no retry"


def test_an_unknown_tool_is_answered_with_the_tools_there_are(recovered: WeakRun) -> None:
    built_in_one_attempt(recovered, "unknown.py")
    first = recovered.tool_calls("unknown.py")[0]
    assert (first.tool, first.outcome) == ("create_file", "error")
    told = recovered.told("unknown.py", after=1)
    assert "there is no tool 'create_file'" in told and "write_file" in told


def test_a_wrong_argument_name_is_answered_with_the_error(recovered: WeakRun) -> None:
    built_in_one_attempt(recovered, "names.py")
    first = recovered.tool_calls("names.py")[0]
    assert (first.tool, first.outcome) == ("write_file", "error")
    assert "bad arguments for write_file" in recovered.told("names.py", after=1)
    assert "'file'" in recovered.told("names.py", after=1)


def test_an_answer_cut_at_the_token_limit_is_asked_again_shorter(recovered: WeakRun) -> None:
    built_in_one_attempt(recovered, "cut.py")
    assert "cut off at its cap of" in recovered.told("cut.py", after=1)
    cut = [e for e in recovered.events if e.kind == "model_call" and e.finish_reason == "length"]
    assert len(cut) == 1 and cut[0].outcome == "TruncatedAnswer"


def test_a_write_outside_the_tasks_files_is_refused(recovered: WeakRun) -> None:
    first = recovered.tool_calls("outside.py")[0]
    assert (first.tool, first.outcome) == ("write_file", "refused")
    assert "outside.py" in recovered.told("outside.py", after=1)
    assert not (recovered.workspace / "helpers_for_outside.py").exists()
    built_in_one_attempt(recovered, "outside.py")


# A tester's file is sampled (best-of-N): the weak candidate is passed over for the next one,
# whose tests pass. (With sampling off, the agent loop sends a weak test back: test_worker.py.)
def weak_candidate_passed_over(run: WeakRun, path: str, finding: str) -> None:
    assert (run.workspace / path).read_text() == GOOD_TEST
    task = run.task(path)
    assert (task.status, task.attempt) == (TaskStatus.DONE, 1), task.history
    assert task.result is not None and "candidate 2 (wave 1" in task.result.summary
    assert len(run.requests(path)) == 2, "the first candidate to pass ends the wave"
    log = run.layout.log_file(task.owner or "").read_text()
    assert "candidate 1 (wave 1, temperature 0.3)" in log and finding in log


def test_a_test_comparing_datetime_now_for_equality_is_passed_over(recovered: WeakRun) -> None:
    weak_candidate_passed_over(recovered, NOW_TEST, "datetime.now()")


def test_a_test_whose_assertion_cannot_fail_is_passed_over(recovered: WeakRun) -> None:
    weak_candidate_passed_over(recovered, SAME_TEST, "cannot fail")


# --- stopped with a reason, then retried ----------------------------------------------------

RETRIED = {
    "malformed": ("malformed.py", Mode.MALFORMED_ARGUMENTS),
    "never": ("never.py", Mode.NEVER_FINISH),
    "same": ("same.py", Mode.SAME_CALL),
}
RETRIED_PLAN = {
    "summary": "greeters built by weak models that get stuck",
    "modules": [module(name, path) for name, (path, _) in RETRIED.items()],
    "dod": [criterion(f"D{i}", "import", path) for i, (path, _) in enumerate(RETRIED.values(), 1)],
}
MAX_ROUNDS = 5  # what weak.answers' never-finishing builder is stopped by


@pytest.fixture(scope="module")
def retried(tmp_path_factory: pytest.TempPathFactory) -> WeakRun:
    rules = [
        weak.schema_answer("Plan", RETRIED_PLAN),
        *(weak.builder(mode, path, source(path)) for path, mode in RETRIED.values()),
    ]
    return run_weak_team(tmp_path_factory.mktemp("retried"), rules,
                         settings=f"[team]\nmax_rounds = {MAX_ROUNDS}\n")  # fmt: skip


def test_malformed_json_arguments_are_told_to_the_model_in_the_same_attempt(
    retried: WeakRun,
) -> None:
    told = retried.told("malformed.py", after=1)
    assert "write_file" in told and "JSON" in told and "Unterminated string" in told
    assert not retried.failures("malformed.py"), "no attempt lost"
    built_in_one_attempt(retried, "malformed.py")


def test_a_builder_that_wrote_its_file_and_never_finishes_is_finished_for_in_one_attempt(
    retried: WeakRun,
) -> None:
    task = retried.task("never.py")
    assert (task.status, task.attempt) == (TaskStatus.DONE, 1), task.history
    assert not retried.failures("never.py")
    # The write, a look at it (a review), a look nudged to finish, a look: finished for it,
    # before the round limit.
    assert len(retried.requests("never.py")) == 4 < MAX_ROUNDS
    assert "call finish now" in retried.told("never.py", after=3)
    assert task.result is not None and "finished for it" in task.result.summary
    assert (retried.workspace / "never.py").read_text() == source("never.py")


def test_the_same_call_over_and_over_is_nudged_then_stopped_and_retried(
    retried: WeakRun,
) -> None:
    task = retried.task("same.py")
    assert (task.status, task.attempt) == (TaskStatus.DONE, 2), task.history
    [failed] = retried.failures("same.py")
    assert failed.category == "no_progress"
    assert "the same call again: list_files(path=.)" in failed.note
    assert "list_files" in retried.told("same.py", after=2), "the nudge after the repeat"
    assert len(retried.requests("same.py")) == 3 + 2
    assert retried.info().status.value == "done", retried.output


# --- after verification: a repaired RCA, a fix that broke what passed ------------------------

KEPT = "VALUE = 1\n"
BROKEN = "VALUE = 2\n"
DOUBLE_BUGGY = "def double(n: int) -> int:\n    return n + n + 1\n"
ROLLBACK_PLAN = {
    "summary": "a value and a doubler",
    "modules": [module("value", "value.py"), module("double", "double.py")],
    "dod": [
        # Plain python3: were bytecode written, a same-size rollback made in the same second
        # as the bad write (the source's mtime is kept in whole seconds) would be masked by it.
        criterion("D1", "command", "python3 -c 'import value; assert value.VALUE == 1'"),
        criterion("D2", "command", "python3 -c 'import double; assert double.double(2) == 4'"),
    ],
}
RCA = {
    "whys": ["double(2) is 5", "it adds 1", "the + 1 is a slip", "it was not tested", "a slip"],
    "root_cause": "double adds one too many",
    "concrete_edits": [
        {"file": "double.py", "action": "edit", "details": "return n + n"},
        {"file": "value.py", "action": "edit", "details": "keep VALUE as it is"},
    ],
}


@pytest.fixture(scope="module")
def rolled_back(tmp_path_factory: pytest.TempPathFactory) -> WeakRun:
    fix = weak.call("edit_file", path="double.py", old="n + n + 1", new="n + n")
    rules = [
        weak.schema_answer("Plan", ROLLBACK_PLAN),
        weak.schema_answer("RcaReport", RCA, Mode.SCHEMA_WRONG_TYPE, "whys"),
        weak.fixer("double.py", fix),
        weak.breaking_fix("value.py", BROKEN),
        weak.builder(Mode.WELL, "value.py", KEPT),
        weak.builder(Mode.WELL, "double.py", DOUBLE_BUGGY),
    ]
    return run_weak_team(tmp_path_factory.mktemp("rollback"), rules)


def test_an_rca_with_a_field_of_the_wrong_type_is_asked_for_again(rolled_back: WeakRun) -> None:
    asked = [r for r in rolled_back.server.log if r.seen.schema_title == "RcaReport"]
    assert len(asked) == 2, "one repair round"
    said = str(asked[1].body["messages"][-1]["content"])
    assert "whys" in said and "list" in said
    fix = rolled_back.task("double.py")
    assert fix.edits and fix.edits[0].file == "double.py"


def test_a_fix_that_breaks_a_file_that_passed_is_rolled_back(rolled_back: WeakRun) -> None:
    assert rolled_back.done.returncode == 0, rolled_back.output
    info = rolled_back.info()
    assert (info.status.value, info.iteration) == ("done", 2)
    assert (rolled_back.workspace / "value.py").read_text() == KEPT
    assert "return n + n\n" in (rolled_back.workspace / "double.py").read_text()
    assert "rolled back value.py: the retry broke what passed" in rolled_back.coordinator_log()
    criteria = {c["id"]: c["passed"] for c in rolled_back.status()["dod"]["criteria"]}
    assert {"D1", "D2"} <= set(criteria) and all(criteria.values())

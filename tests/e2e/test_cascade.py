"""A model cascade (issue 13) through a whole team run: the build role's first model writes a
file that fails verification every time it is asked; the fix task goes to the next model of
`models.build.cascade`, whose file passes. Its answer is the one on disk, the task and the
trace say which model wrote it, and the first model was asked for the build only."""

from __future__ import annotations

import pytest

from protocol import TaskStatus
from protocol.llm import weak_models as weak
from protocol.llm.weak_models import Mode
from protocol.tracing import read_spans
from tests.e2e.weak_team import DOUBLE_BUGGY, DOUBLER_PLAN, MODEL, WeakRun, run_weak_team

pytestmark = pytest.mark.timeout(300)

STRONG = "strong"
RIGHT = "def double(n: int) -> int:\n    return 2 * n\n"
RCA = {
    "whys": ["double(2) is 5", "it adds 1", "a slip", "it was not tested", "a slip"],
    "root_cause": "double adds one too many",
    "concrete_edits": [{"file": "double.py", "action": "edit", "details": "return 2 * n"}],
}


@pytest.fixture(scope="module")
def cascaded(tmp_path_factory: pytest.TempPathFactory) -> WeakRun:
    wrong = weak.builder(Mode.WELL, "double.py", DOUBLE_BUGGY)  # every time it is asked
    right = weak.builder(Mode.WELL, "double.py", RIGHT)
    rules = [
        weak.schema_answer("Plan", DOUBLER_PLAN),
        weak.schema_answer("RcaReport", RCA),
        {**right, "match": {**right["match"], "model": STRONG}},
        {**wrong, "match": {**wrong["match"], "model": MODEL}},
    ]
    settings = f'[models.build]\ncascade = ["{MODEL}", "openai:{STRONG}"]\n'
    return run_weak_team(tmp_path_factory.mktemp("cascade"), rules, settings=settings,
                         models=(STRONG,), args=("--max-iterations", "3"))  # fmt: skip


def test_the_fix_goes_to_the_next_model_and_its_file_is_kept(cascaded: WeakRun) -> None:
    assert cascaded.done.returncode == 0, cascaded.output
    assert cascaded.info().status.value == "done", cascaded.output
    assert (cascaded.workspace / "double.py").read_text() == RIGHT
    fix = cascaded.task("double.py")
    assert (fix.cascade_step, fix.status) == (1, TaskStatus.DONE)
    assert fix.result is not None and fix.result.model == STRONG
    builds = [r.seen.model for r in cascaded.requests("double.py")]
    assert builds == [MODEL, MODEL, STRONG, STRONG], "build: write, finish; fix: write, finish"


def test_the_trace_says_which_model_wrote_the_kept_file(cascaded: WeakRun) -> None:
    spans = [s for p in cascaded.layout.traces_dir.glob("*.jsonl") for s in read_spans(p)]
    tasks = {s.attrs.get("task_id"): s for s in spans if s.kind == "task"}
    fix = cascaded.task("double.py")
    assert tasks[fix.id].attrs["model"] == STRONG and tasks[fix.id].attrs["cascade_step"] == 1
    assert tasks[1].attrs["model"] == MODEL
    assert (
        f"by {STRONG} (models.build.cascade)"
        in cascaded.layout.log_file(fix.owner or "builder-1").read_text()
    )

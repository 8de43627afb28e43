"""The parts of an iteration: RCA evidence and fix tasks, stuck-loop detection, memory,
snapshots and rollback, git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from coordinator import git, snapshots
from coordinator.memory import IterationRecord, Memory
from coordinator.rca import evidence, fix_tasks, rca_messages, report_from_evidence
from coordinator.stuck import fingerprint, is_stuck
from coordinator.verify import CriterionResult, Step, Verification, verify
from protocol import Task, TaskStatus
from protocol.plan import DodCriterion, VerificationType
from protocol.reports import RcaEdit, RcaReport
from tests.conftest import TeamDir

TASKS = [
    Task(id=1, title="models", module="models", files=["models.py"]),
    Task(id=2, title="storage", module="storage", files=["store.py"], depends_on=[1], dod=["D2"]),
    Task(id=3, title="tests", module="tests", role="tester", files=["tests/test_store.py"]),
]


def test_rca_edits_become_one_fix_task_per_owner() -> None:
    report = RcaReport(
        whys=["the test fails", "save() returns None", "it never returns the id"],
        root_cause="save() does not return the new id",
        concrete_edits=[
            RcaEdit(file="store.py", action="edit", details="return the id from save()"),
            RcaEdit(file="store.py", action="edit", details="close the file"),
            RcaEdit(file="tests/test_store.py", action="edit", details="expect an int"),
            RcaEdit(file="util.py", action="create", details="add slugify()"),
        ],
    )
    fixes = fix_tasks(report, TASKS, first_id=4)
    assert [(t.id, t.module, t.files) for t in fixes] == [
        (4, "storage", ["store.py"]),
        (5, "tests", ["tests/test_store.py"]),
        (6, "util.py", ["util.py"]),
    ]
    assert [e.details for e in fixes[0].edits] == ["return the id from save()", "close the file"]
    assert fixes[0].dod == ["D2"]
    assert fixes[1].role == "tester"
    assert all(t.depends_on == [] for t in fixes)
    assert "save() does not return the new id" in fixes[0].instructions
    # Files that failed verification go to the next model of the cascade; a new file does not.
    assert [t.cascade_step for t in fixes] == [1, 1, 0]
    again = fix_tasks(report, [*TASKS, *fixes], first_id=7)
    assert [t.cascade_step for t in again] == [2, 2, 1]


def criterion(id: str, target: str) -> DodCriterion:
    kind = VerificationType.TEST if "test" in target else VerificationType.COMMAND
    return DodCriterion(id=id, description=id, verification_type=kind, target_file=target)


def test_without_a_usable_analysis_the_files_the_failure_names_are_to_be_fixed(
    tmp_path: Path,
) -> None:
    (tmp_path / "store.py").write_text("def save(): pass\n")
    failed = Verification(
        steps=[Step("pytest", False, 'File "store.py", line 1\nE   assert None == 1')],
        criteria=[CriterionResult("D2", False, "tests failed")],
    )
    report = report_from_evidence(tmp_path, failed, TASKS, [criterion("D2", "tests")])
    assert [(e.file, e.action) for e in report.concrete_edits] == [("store.py", "edit")]
    assert "E   assert None == 1" in report.concrete_edits[0].details
    assert report.root_cause.startswith("the root-cause model gave no usable analysis")
    assert [t.module for t in fix_tasks(report, TASKS, first_id=4)] == ["storage"]


def test_without_a_usable_analysis_or_a_named_file_the_failing_criteria_targets_are_fixed(
    tmp_path: Path,
) -> None:
    failed = Verification(criteria=[CriterionResult("D1", False, "exit 1: no output")])
    report = report_from_evidence(
        tmp_path, failed, TASKS, [criterion("D1", "models.py"), criterion("D2", "store.py")]
    )
    assert [(e.file, e.action) for e in report.concrete_edits] == [("models.py", "create")]
    # A path no edit may name (over 200 characters) is not one to fix.
    deep = Task(id=9, title="deep", module="deep", files=["d/" * 120 + "x.py"])
    fallback = report_from_evidence(tmp_path, failed, [deep], [])
    assert [e.file for e in fallback.concrete_edits] == ["README.md"]


def test_evidence_has_the_failure_the_diff_and_the_files_within_budget(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    git.init_own(ws)
    (ws / "store.py").write_text("def save(x):\n    return None\n")
    git.commit_work(ws, "first")
    (ws / "store.py").write_text("def save(x):\n    pass\n")
    (ws / "test_store.py").write_text(
        "from store import save\n\ndef test_save():\n    assert save(1) == 1\n"
    )
    result = verify(ws, [])
    failed = [t.model_copy(update={"status": TaskStatus.FAILED}) for t in TASKS[1:2]]
    text = evidence(ws, result, failed, 2_000)
    assert "## Failing verification" in text
    assert "assert None == 1" in text
    assert "## Changes since the last commit" in text and "-    return None" in text
    assert "## File store.py" in text
    assert len(text) <= 2_000 * 3.5 + 200
    [system, user] = rca_messages("a store", text, ["D1"], "History: none")
    assert "five\ntimes" in system.content
    assert "keep them passing): D1" in user.content


def test_the_third_identical_failure_is_stuck() -> None:
    first = fingerprint(["D1", "D2"], "E   assert 1 == 2\nFAILED test_x.py::test_a - 0.12s")
    again = fingerprint(["D2", "D1"], "E   assert 1 == 2\nFAILED test_x.py::test_a - 0.31s")
    other = fingerprint(["D1"], "E   NameError: name 'x' is not defined")
    assert first == again != other
    assert not is_stuck([first, other, first])
    assert is_stuck([first, other, first, first])


def test_memory_survives_a_restart_and_renders_for_prompts(tmp_path: Path) -> None:
    path = tmp_path / "memory.json"
    memory = Memory.load(path)
    memory.record(
        IterationRecord(
            iteration=1,
            dod={"D1": True, "D2": False},
            root_cause="save returns None",
            edits=["store.py: return id"],
        )
    )
    memory.save(path)
    text = Memory.load(path).render()
    assert "iteration 1: D1 pass, D2 FAIL" in text
    assert "root cause found: save returns None" in text
    assert "edit tried: store.py: return id" in text


def test_a_regressed_file_is_rolled_back_from_its_snapshot(team_dir: TeamDir) -> None:
    ws = team_dir.workspace
    (ws / "models.py").write_text("GOOD = 1\n")
    assert snapshots.take(team_dir.layout, 1, ["models.py", "missing.py"]) == ["models.py"]
    (ws / "models.py").write_text("BROKEN = (\n")
    assert snapshots.changed(team_dir.layout, 1, ["models.py"]) == ["models.py"]
    assert snapshots.rollback(team_dir.layout, 1, ["models.py"]) == ["models.py"]
    assert (ws / "models.py").read_text() == "GOOD = 1\n"
    assert snapshots.rollback(team_dir.layout, 1, ["models.py"]) == []


def test_a_repository_of_its_own_keeps_state_venvs_caches_and_secrets_out(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / ".agents").mkdir(parents=True)
    (ws / ".agents" / "team.json").write_text("{}")
    (ws / "app.py").write_text("x = 1\n")
    (ws / ".venv" / "bin").mkdir(parents=True)
    (ws / ".venv" / "bin" / "python").write_text("")
    (ws / ".env").write_text("API_KEY=x\n")
    (ws / "deploy.pem").write_text("key\n")
    (ws / "__pycache__").mkdir()
    (ws / "__pycache__" / "app.pyc").write_text("")
    assert git.init_own(ws)
    assert not git.init_own(ws)
    assert git.commit_work(ws, "iteration 1") is not None
    assert git.commit_work(ws, "nothing new") is None
    tracked = subprocess.run(["git", "ls-files"], cwd=ws, capture_output=True, text=True).stdout
    assert tracked.split() == ["app.py"], "no .gitignore written: the ignores are git's own"
    exclude = (ws / ".git" / "info" / "exclude").read_text()
    assert ".agents/" in exclude and ".venv/" in exclude


def test_the_rca_evidence_withholds_the_diff_of_a_secret_file() -> None:
    from coordinator.rca import without_secrets

    diff = (
        "diff --git a/.env b/.env\n--- a/.env\n+++ b/.env\n-A=1\n+API_TOKEN=the-secret\n"
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n-x = 1\n+x = 2\n"
    )
    shown = without_secrets(diff)
    assert "the-secret" not in shown
    assert "diff --git a/.env b/.env" in shown and "withheld" in shown
    assert "+x = 2" in shown

from __future__ import annotations

from pathlib import Path

from agent_worker.prompts import FIRST_ATTEMPT, FIX_MODE, manifest, task_prompt
from protocol import FileEdit, TaskAssignment


def assignment(**changes: object) -> TaskAssignment:
    fields: dict[str, object] = {
        "task_id": 3,
        "attempt": 1,
        "title": "storage",
        "files": ["store.py"],
        "instructions": "Use models.py.",
    }
    return TaskAssignment.model_validate({**fields, **changes})


def test_the_request_starts_with_the_task_and_files_lines(tmp_path: Path) -> None:
    prompt = task_prompt(assignment(files=["store.py", "db.py"]), tmp_path, 4000)
    assert prompt.splitlines()[:2] == ["TASK 3: storage", "FILES: store.py, db.py"]
    assert FIRST_ATTEMPT in prompt


def test_a_fix_task_is_in_fix_mode_with_the_rca_edits_first(tmp_path: Path) -> None:
    (tmp_path / "store.py").write_text("def save(): ...\n")
    edits = [FileEdit(file="store.py", action="edit", details="close the file in save()")]
    prompt = task_prompt(assignment(attempt=2, context=edits), tmp_path, 4000)
    assert "Fix mode" in prompt
    assert "Mandatory" in prompt
    assert prompt.index("close the file in save()") < prompt.index("Fix mode")
    assert FIRST_ATTEMPT not in prompt


def test_a_retry_of_an_attempt_that_wrote_nothing_is_told_to_write_not_that_files_exist(
    tmp_path: Path,
) -> None:
    # SmolLM2, told on its retry that "the files exist and failed verification", echoed it.
    for edits in ([], [FileEdit(file="store.py", action="create", details="add save()")]):
        prompt = task_prompt(assignment(attempt=2, context=edits), tmp_path, 4000)
        assert FIRST_ATTEMPT in prompt and FIX_MODE not in prompt


def test_a_retry_after_a_stalled_attempt_names_what_that_attempt_wrote(tmp_path: Path) -> None:
    (tmp_path / "store.py").write_text("def save(): ...\n")
    prompt = task_prompt(assignment(attempt=2, files=["store.py", "db.py"]), tmp_path, 4000)
    assert "what it wrote is still there: store.py." in prompt
    assert "failed verification" not in prompt


def test_the_manifest_lists_files_and_what_python_files_define(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text("class Item:\n    pass\n\ndef load():\n    pass\n")
    (tmp_path / "README.md").write_text("# hi\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    listing = manifest(tmp_path)
    assert "models.py  defines: Item, load" in listing
    assert "README.md" in listing
    assert ".git" not in listing


def test_the_source_of_imported_and_named_modules_is_included(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text("class Item:\n    name: str\n")
    (tmp_path / "util.py").write_text("def helper():\n    return 1\n")
    (tmp_path / "store.py").write_text("from util import helper\n")
    prompt = task_prompt(assignment(), tmp_path, 4000)
    assert "Source of models.py:\nclass Item:" in prompt  # named in the instructions
    assert "Source of util.py:\ndef helper():" in prompt  # imported by the task's file
    assert "Source of store.py" not in prompt  # the task's own file is not context


def test_context_is_cut_to_the_budget_with_a_marker(tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text("x = 1\n" * 20_000)
    prompt = task_prompt(assignment(), tmp_path, 500)
    assert len(prompt) < 500 * 3.5 + 1_000
    assert "cut from the middle" in prompt


def test_files_named_in_instructions_outside_the_workspace_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "secret.py").write_text("TOKEN = 'do not show'\n")
    instructions = "See /etc/passwd, ../secret.py and ./missing.py."
    prompt = task_prompt(assignment(instructions=instructions), tmp_path / "ws", 4000)
    assert "root:" not in prompt
    assert "do not show" not in prompt

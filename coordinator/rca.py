"""Root-cause analysis: evidence gathered under budgets, a 5 Whys answer from the model, and
its concrete edits turned directly into fix tasks for the files' owners."""

from __future__ import annotations

import re
from pathlib import Path

from coordinator import git
from coordinator.verify import Verification, failure_lines, python_files
from protocol import FileEdit, Task
from protocol.environment import is_secret_path
from protocol.llm import ChatMessage
from protocol.llm.budget import fit_sections, truncate_diff
from protocol.plan import DodCriterion
from protocol.reports import EDIT_FILE_MAX, RcaEdit, RcaReport
from protocol.team import TeamRepository
from protocol.workspace_files import text_for_a_model

RCA_SYSTEM = """You are the root-cause analyst of a team of coding agents. A verification of
their work failed. Find the root cause on the evidence given, not on guesses: ask "why" five
times, each time of the previous answer. Then give concrete edits (file, action, details) that
fix the root cause, specific enough to be done without further thought. Do not ask to change
files for criteria that pass."""
_MENTIONED = re.compile(r"[\w./-]+\.py")


def without_secrets(diff: str) -> str:
    """The diff without the sections of secret-looking files: their content never goes to a
    model (only that they changed)."""
    kept = []
    for section in re.split(r"(?m)^(?=diff --git )", diff):
        header = section.split("\n", 1)[0]
        path = header.rsplit(" b/", 1)[-1] if header.startswith("diff --git ") else ""
        if path and is_secret_path(path):
            kept.append(f"{header}\n(a secret-looking file changed: its content is withheld)\n")
        else:
            kept.append(section)
    return "".join(kept)


def files_involved(workspace: Path, verification: Verification, tasks: list[Task]) -> list[str]:
    """Files named in the failing output, then the files of failed tasks, that exist."""
    existing = set(python_files(workspace))
    named = [m for m in _MENTIONED.findall(verification.failures()) if m in existing]
    for task in tasks:
        if task.status.value == "failed":
            named += [f for f in task.files if f in existing]
    return [f for f in dict.fromkeys(named) if not is_secret_path(f)]


def evidence(
    workspace: Path,
    verification: Verification,
    tasks: list[Task],
    budget_tokens: int,
    repository: TeamRepository | None = None,
) -> str:
    """The failing output, the diff, the files involved and a listing, fitted to the budget
    with the failures first."""
    sections = [("Failing verification", verification.failures())]
    diff = without_secrets(git.diff_since_commit(workspace, repository))
    if diff:
        sections.append(("Changes since the last commit", truncate_diff(diff, budget_tokens // 3)))
    for relative in files_involved(workspace, verification, tasks)[:6]:
        text = text_for_a_model(workspace, relative)
        if text is not None:  # a secret, a link out of the workspace, a FIFO: not shown
            sections.append((f"File {relative}", text))
    sections.append(("Files in the workspace", "\n".join(python_files(workspace))))
    fitted = fit_sections(sections, budget_tokens)
    return "\n\n".join(f"## {name}\n{text}" for name, text in fitted if text)


def rca_messages(
    task_text: str, evidence_text: str, passing: list[str], memory_text: str
) -> list[ChatMessage]:
    keep = ", ".join(passing) or "none"
    user = (
        f"The task: {task_text}\n\nCriteria that pass (keep them passing): {keep}\n\n"
        f"{memory_text}\n\n{evidence_text}"
    )
    return [ChatMessage.system(RCA_SYSTEM), ChatMessage.user(user)]


UNUSABLE = "the root-cause model gave no usable analysis"


def report_from_evidence(
    workspace: Path, verification: Verification, tasks: list[Task], dod: list[DodCriterion]
) -> RcaReport:
    """A root-cause analysis by code, for when the model's answer was cut off or fit no
    schema: each file the failing output names, or else each failing criterion's planned
    target, is to be fixed against the failure it shows. Weaker than a model's 5 Whys, but a
    retry with the evidence beats a team that stops."""
    failing = {c.id for c in verification.criteria if not c.passed}
    shown = failure_lines(verification.failures(), limit=8)
    why = "; ".join(shown)[:480] or "the verification failed"
    planned = {f for t in tasks for f in t.files}
    # The files the failure names; else the failing criteria's targets a task owns; else the
    # first planned file: each a path an edit may hold, and no secret.
    targets = [c.target_file.strip() for c in dod if c.id in failing]
    files = (
        files_involved(workspace, verification, tasks)
        or [t for t in dict.fromkeys(targets) if t in planned and not is_secret_path(t)]
        or [f for f in sorted(planned) if not is_secret_path(f)][:1]
    )
    details = f"Make the failing verification pass; it says: {why}"[:600]
    edits = [
        RcaEdit(file=f, action="edit" if (workspace / f).exists() else "create", details=details)
        for f in [f for f in files if len(f) <= EDIT_FILE_MAX][:5] or ["README.md"]
    ]
    return RcaReport(whys=[why], root_cause=f"{UNUSABLE}; fixing from the failure: {why}"[:500],
                     concrete_edits=edits)  # fmt: skip


def fix_tasks(report: RcaReport, tasks: list[Task], first_id: int) -> list[Task]:
    """One fix task per owner of the files the edits touch; a file no task owns goes to a
    new task of its own. Fix tasks depend on nothing: they run at once, in parallel."""
    owner_of: dict[str, Task] = {}
    for task in sorted(tasks, key=lambda t: t.id):  # the latest task owning a file wins
        for path in task.files:
            owner_of[path] = task
    groups: dict[str, tuple[Task | None, list[FileEdit]]] = {}
    for edit in report.concrete_edits:
        owner = owner_of.get(edit.file)
        key = owner.module or str(owner.id) if owner else edit.file
        groups.setdefault(key, (owner, []))[1].append(
            FileEdit(file=edit.file, action=edit.action, details=edit.details)
        )
    fixes = []
    for offset, (key, (owner, edits)) in enumerate(groups.items()):
        files = owner.files if owner else [edits[0].file]
        fixes.append(
            Task(
                id=first_id + offset,
                title=f"fix {key}: {report.root_cause}"[:200],
                role=owner.role if owner else "builder",
                module=owner.module if owner else key,
                files=files,
                instructions=f"Root cause: {report.root_cause}",
                dod=owner.dod if owner else [],
                edits=edits,
                # Its files failed verification: the next model of the role's cascade.
                cascade_step=owner.cascade_step + 1 if owner else 0,
            )
        )
    return fixes

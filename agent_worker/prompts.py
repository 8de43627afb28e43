"""Prompt templates, kept as data, and the workspace context they are filled with."""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

from agent_worker.paths import PathRefused, resolve
from agent_worker.progress import Stall, StallKind
from agent_worker.tools import UNLISTED_DIRS
from protocol import TaskAssignment
from protocol.llm.budget import fit_sections
from protocol.workspace_files import read_text_inside, text_for_a_model

SYSTEM = {
    "builder": """You are {name}, a builder in a team of coding agents that share one workspace.
You work on one task at a time and write only the files of your task; other agents write the
others at the same time. Use the tools: list_files, read_file, write_file, edit_file,
run_command, finish. Write complete, working code with no placeholders. Every Python file you
write is compiled at once and errors come back to you: fix them. When your files are complete,
call finish with one sentence saying what you did.""",
    "tester": """You are {name}, a tester in a team of coding agents that share one workspace.
You write tests (pytest) for the code of your task and may write only test files. Read the
source you test first. Run the tests with run_command. When they are written, call finish with
one sentence saying what they cover.""",
    "explorer": """You are {name}, an explorer in a team of coding agents. Look at the workspace
with list_files and read_file (you cannot change anything). As soon as you have looked, call
finish with one sentence on what is there; an empty workspace needs one list_files, then
finish. You will then be asked for a structured report: the files that matter, languages,
entry points, how tests run, and the conventions the code follows.""",
}

# A tester's test file asked for as candidates (agent_worker/test_sampling.py): no tools, the
# file in the answer.
SAMPLING_SYSTEM = """You are {name}, a tester in a team of coding agents. You write pytest
tests for the code of your task. Each test file you are asked for, you answer whole, in one
```python block: import only the names the source defines and assert what the code must do.
Your tests are run against the source at once."""

FIRST_ATTEMPT = "Write each of your files whole with write_file."
# Fix and retry prompts by the model's edit format (`models.<role>.edit_format`, `edit_formats`).
FIX_MODE = """The files exist and failed verification. Fix mode:
read each file first, then change it with targeted edit_file calls; rewrite a whole file only
if most of it is wrong."""
FIX_MODE_WHOLE = """The files exist and failed verification. Fix mode:
read each file first, then write it again whole with write_file, changed as asked: the
complete file, every line of it, not only the changed part."""
# A retry within the build (the last attempt stalled or broke off), not after verification.
RETRY_MODE = """An earlier attempt at this task stopped; what it wrote is still there: {written}.
Read those files first and change them with edit_file; write the others whole with write_file."""
RETRY_MODE_WHOLE = """An earlier attempt at this task stopped; what it wrote is still there:
{written}. Read those files first, then write each file whole with write_file."""
EditFormat = Literal["whole", "edit"]
RCA_EDITS = """Mandatory: the root-cause analysis asks for these changes. Make them first:
{edits}"""
REPORT_REQUEST = "Now give your exploration report as the JSON object asked for."
REPAIR_AFTER_CHECKS = """Your files do not pass their checks yet:
{failures}
Fix them, then call finish again."""
# Said for the model when its answer was cut at the answer cap: the answer itself is lost.
# The user's words (`team tell`), put into the conversation before the next turn.
GUIDANCE = "Guidance from the user, who is watching this task (follow it): {text}"
ANSWER_CUT = "(my answer was cut off at its token limit and is lost)"
NUDGES = {
    StallKind.PROSE: "You answered with text and no tool call, so nothing was done. Answer "
    "with a tool call, one of: {tools}.",
    StallKind.CUT: "Your answer was cut off at its cap of {cap} tokens and thrown away. "
    "Answer again, much shorter: one tool call, no explanation around it.",
    StallKind.REPEATED: "You made the same call again ({detail}); it gives the same answer as "
    "before. Do not repeat it: take the next step.",
    StallKind.FAILED: "Your calls failed ({detail}). Call only these tools, with the argument "
    "names their descriptions give: {tools}.",
    StallKind.LOOKING: "Every one of your files is written, and you keep looking around. If "
    "they do what the task asks, call finish now; if not, change them.",
}
NEXT_STEP_WRITE = (
    "Your FILES are {files}; not written yet: {missing}. Write them with write_file, then "
    "call finish."
)
NEXT_STEP_FINISH = "Your FILES are written ({files}): call finish, one sentence on what you did."
# The summary of a task finished for a model that wrote every file, then only looked around.
LOOKED_FINISH = "wrote {files}, then kept looking around without calling finish: finished for it"
NEXT_STEP_LOOKED = "When you have looked, call finish with one sentence saying what is there."


def nudge(
    stall: Stall, tools: Sequence[str], files: Sequence[str], written: Sequence[str], *, cap: int
) -> str:
    """The one precise instruction an agent gets after a round that got nowhere: what went
    wrong, and the next step for its FILES."""
    said = NUDGES[stall.kind].format(tools=", ".join(tools), cap=cap,
                                     detail=stall.detail.split(": ", 1)[-1][:300])  # fmt: skip
    missing = [f for f in files if f not in written]
    if not files or "write_file" not in tools:
        step = NEXT_STEP_LOOKED
    elif missing:
        step = NEXT_STEP_WRITE.format(files=", ".join(files), missing=", ".join(missing))
    else:
        step = NEXT_STEP_FINISH.format(files=", ".join(files))
    return f"{said}\n{step}"


def manifest(workspace: Path, limit: int = 300) -> str:
    """What exists: each file, and for Python files the names they define."""
    lines: list[str] = []
    for root, dirs, files in os.walk(workspace):
        dirs[:] = sorted(d for d in dirs if d not in UNLISTED_DIRS)
        for name in sorted(files):
            path = Path(root, name)
            relative = PurePosixPath(path.relative_to(workspace)).as_posix()
            lines.append(f"{relative}{_exports(path)}")
            if len(lines) >= limit:
                return "\n".join(lines) + "\n[... more files not listed ...]"
    return "\n".join(lines) or "(the workspace is empty)"


def _exports(path: Path) -> str:
    if path.suffix != ".py":
        return ""
    source = read_text_inside(path.parent, path.name)
    if source is None:
        return "  (not a regular file)"
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return "  (does not parse)"
    names = [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
    ]
    return f"  defines: {', '.join(names)}" if names else ""


def imported_sources(workspace: Path, files: list[str], instructions: str) -> list[tuple[str, str]]:
    """Sources of the workspace modules the task's files import, and of those its
    instructions name: a builder must see the interfaces it uses."""
    wanted: list[str] = []
    for relative in files:
        source = read_text_inside(workspace, relative) if relative.endswith(".py") else None
        if source is not None:
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module]
                    if isinstance(node, ast.ImportFrom) and node.module
                    else []
                )
                wanted += [m.replace(".", "/") + ".py" for m in modules]
    for token in instructions.replace(",", " ").split():
        token = token.strip("`'\"()[]:.,;")
        if token.endswith(".py"):
            wanted.append(token)
    sources = []
    for name in dict.fromkeys(wanted):
        try:  # a name from the instructions may point anywhere: stay inside the workspace
            _, relative = resolve(workspace, name)
        except PathRefused:
            continue
        source = text_for_a_model(workspace, relative)
        if relative not in files and source is not None:
            sources.append((relative, source))
    return sources


def _mode(assignment: TaskAssignment, workspace: Path, edit_format: EditFormat) -> str:
    """How to go about the files: whole writes while none of them exists (a retry of an
    attempt that wrote nothing is a first attempt still: a weak model told "the files exist"
    went looking for them); once some do, fixes as the model's edit format says."""
    written = [f for f in assignment.files if (workspace / f).is_file()]
    if not written:
        return FIRST_ATTEMPT
    if assignment.context:  # an RCA fix task: the files failed verification
        return FIX_MODE if edit_format == "edit" else FIX_MODE_WHOLE
    if assignment.attempt > 1:
        retry = RETRY_MODE if edit_format == "edit" else RETRY_MODE_WHOLE
        return retry.format(written=", ".join(written))
    return FIRST_ATTEMPT


def task_prompt(
    assignment: TaskAssignment,
    workspace: Path,
    budget_tokens: int,
    edit_format: EditFormat = "edit",
) -> str:
    """The build request: `TASK <id>: <title>` and `FILES: ...` first (DESIGN §7); a fix
    asks for whole files or targeted edits as the model's `edit_format` says."""
    head = [
        f"TASK {assignment.task_id}: {assignment.title}",
        f"FILES: {', '.join(assignment.files)}",
    ]
    if assignment.instructions:
        head += ["", assignment.instructions]
    if assignment.context:
        edits = "\n".join(f"- {e.file}: {e.action}: {e.details}" for e in assignment.context)
        head += ["", RCA_EDITS.format(edits=edits)]
    head += ["", _mode(assignment, workspace, edit_format)]
    sources = imported_sources(workspace, assignment.files, assignment.instructions)
    sections = [("Workspace files", manifest(workspace))]
    sections += [(f"Source of {name}", text) for name, text in sources]
    fitted = fit_sections(sections, budget_tokens)
    body = [f"{name}:\n{text}" for name, text in fitted if text]
    return "\n".join(head) + "\n\n" + "\n\n".join(body)

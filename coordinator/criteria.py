"""The Definition-of-Done criteria a plan is built to: the planner's own where they can be
checked, and where it gave none or gave ones that cannot be, those the plan and the workspace
imply, added by code: the planned tests pass, each planned Python module imports, each other
planned file exists. Pure: a plan and a survey in, the plan to build and what changed out."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from coordinator.survey import Survey, is_test_file
from protocol.events import short
from protocol.plan import DodCriterion, Plan, VerificationType

V = VerificationType
NOT_IMPORTED = frozenset({"setup.py", "conftest.py", "__main__.py", "noxfile.py"})


@dataclass(frozen=True)
class Completed:
    plan: Plan
    dropped: list[tuple[DodCriterion, str]] = field(default_factory=list)  # and why
    added: list[DodCriterion] = field(default_factory=list)

    def notes(self) -> list[str]:
        """What the coordinator's pane says about it, one line each."""
        lines = [f"criterion {c.id} dropped: {why}" for c, why in self.dropped]
        if self.added:
            kept = len(self.plan.dod) - len(self.added)
            why = ("none given" if not self.dropped
                   else "the plan's criteria could not be checked" if not kept
                   else "some of the plan's criteria could not be checked")  # fmt: skip
            added = ", ".join(f"{c.id} ({c.verification_type.value} {c.target_file})"
                              for c in self.added)  # fmt: skip
            lines.append(f"added the criteria the plan implies ({why}): {added}")
        return lines


def complete(plan: Plan, survey: Survey) -> Completed:
    """`plan` with its unusable criteria dropped and, when any was (or there were none),
    the implied criteria for what the remaining ones leave unchecked."""
    files = _Files(plan, survey)
    kept: list[DodCriterion] = []
    dropped: list[tuple[DodCriterion, str]] = []
    for criterion in plan.dod:
        why = unusable(criterion, files)
        if why:
            dropped.append((criterion, why))
        else:
            kept.append(criterion)
    if kept and not dropped:
        return Completed(plan)
    added = _implied(plan, files, kept)
    dod = [*kept, *added]
    return Completed(plan.model_copy(update={"dod": dod}), dropped, added)


def unusable(criterion: DodCriterion, files: _Files) -> str:
    """Why `criterion` cannot be checked on what the plan builds and the workspace has, or ""."""
    target = criterion.target_file.strip()
    if not target:
        return "its target is empty"
    kind = criterion.verification_type
    if kind == V.COMMAND:
        return ""
    path = _normal(target)
    target = short(target, 80)  # a weak model's may run to hundreds of characters
    if kind == V.FILE_EXISTS:
        return "" if files.known(path) else f"{target} is neither a planned nor an existing file"
    if kind == V.IMPORT:
        module = path.removesuffix(".py").replace(".", "/")
        if not all(part.isidentifier() for part in module.split("/")):
            return f"{target} is not a Python module name"
        candidates = (f"{module}.py", f"{module}/__init__.py")
        if any(files.known(c) for c in candidates):
            return ""
        return f"{target} is neither a planned nor an existing Python module"
    if path == "." and (files.tests or files.existing_tests):
        return ""
    if path != "." and files.known(path) and files.is_tests(path):
        return ""
    return f"{target} is not a Python test file the plan writes or the workspace has"


class _Files:
    """The planned files and those in the workspace, by normalised path."""

    def __init__(self, plan: Plan, survey: Survey) -> None:
        self.planned = [_normal(f.path) for m in plan.modules for f in m.files]
        self.tests = [
            _normal(f.path)
            for m in plan.modules
            for f in m.files
            if f.path.endswith(".py") and (is_test_file(f.path) or m.role == "tester")
        ]
        self.existing = {_normal(f) for f in survey.files}
        self.existing_tests = [_normal(f) for f in survey.test_files if f.endswith(".py")]
        self.partial = survey.truncated  # a file not in the listing may exist all the same

    def known(self, path: str) -> bool:
        """A planned or existing file, or a directory holding one."""
        every = [*self.planned, *self.existing]
        return path in every or any(_under(f, path) for f in every) or self.partial

    def is_tests(self, path: str) -> bool:
        """A test file, or a directory holding one."""
        tests = [*self.tests, *self.existing_tests]
        named = path.endswith(".py") and is_test_file(path)
        return path in tests or any(_under(t, path) for t in tests) or named


def _implied(plan: Plan, files: _Files, kept: list[DodCriterion]) -> list[DodCriterion]:
    covered = {_normal(c.target_file) for c in kept}
    tested = any(c.verification_type == V.TEST for c in kept)
    taken = {c.id for c in kept}
    found: list[tuple[VerificationType, str, str]] = []
    if files.tests and not tested:
        target = _common_target(files.tests)
        found.append((V.TEST, target, f"the planned tests pass (pytest {target})"))
    for path in dict.fromkeys(files.planned):
        if path in covered or path in files.tests:
            continue
        module = path.removesuffix(".py").replace("/", ".")
        importable = (
            path.endswith(".py")
            and PurePosixPath(path).name not in NOT_IMPORTED
            and all(part.isidentifier() for part in module.split("."))
        )
        if importable:
            found.append((V.IMPORT, path, f"{module.removesuffix('.__init__')} imports"))
        else:
            found.append((V.FILE_EXISTS, path, f"{path} exists"))
    ids = (f"A{n}" for n in range(1, 10_000) if f"A{n}" not in taken)
    return [
        DodCriterion(id=next(ids), description=d, verification_type=kind, target_file=target)
        for kind, target, d in found
    ]


def _common_target(tests: list[str]) -> str:
    """One test file, else the directory that holds them all, else the workspace."""
    unique = list(dict.fromkeys(tests))
    if len(unique) == 1:
        return unique[0]
    common = posixpath.commonpath(unique)
    return common if common and common not in unique else "."


def _normal(path: str) -> str:
    return posixpath.normpath(path.strip()).removeprefix("./") if path.strip() else ""


def _under(path: str, directory: str) -> bool:
    return directory != "." and path.startswith(directory.rstrip("/") + "/")

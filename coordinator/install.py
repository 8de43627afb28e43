"""Installing what a workspace declares, in two confined steps, so that no code a model wrote
ever runs with the network:

1. **fetch** (network, to reach the package registry): only what the registry provides, named
   by plain requirement specifiers read from the files without running any of them
   (`requirements.txt` lines, pyproject's `[project].dependencies` and
   `[build-system].requires`); `npm install --ignore-scripts`.
2. **build** (offline): the workspace's own packaging, where model-written code executes
   (`setup.py`, a pyproject build, requirement lines that point into the workspace, a
   package.json's install scripts): `pip install --no-index --no-build-isolation`,
   `npm rebuild`.

Both run in the sandbox (`protocol.sandbox`), confined to the workspace on the filesystem.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from protocol.workspace_files import read_text_inside

PYTHON_MANIFESTS = ("requirements.txt", "pyproject.toml", "setup.py")
# A valid project name that pip would take for a local archive (`pkg.zip`): never fetched.
_ARCHIVE_SUFFIXES = (
    ".zip", ".whl", ".egg", ".tar", ".gz", ".tgz", ".bz2", ".tbz", ".tbz2", ".xz", ".txz",
    ".lz", ".tlz", ".lzma", ".zst", ".7z", ".rar",
)  # fmt: skip


@dataclass(frozen=True)
class PythonInstall:
    """What installing a workspace's Python declarations takes."""

    fetch: list[str] = field(default_factory=list)  # plain specifiers, from the registry
    build: list[str] = field(default_factory=list)  # pip arguments to run offline
    problems: list[str] = field(default_factory=list)


def python_install(workspace: Path) -> PythonInstall | None:
    """The two steps for `workspace`, from its files alone; None when it declares nothing."""
    declared = [name for name in PYTHON_MANIFESTS if (workspace / name).is_file()]
    if not declared:
        return None
    fetch = ["pytest"]
    build: list[str] = []
    problems: list[str] = []
    if "requirements.txt" in declared:
        plain, local = _requirement_lines(workspace, workspace / "requirements.txt", problems)
        fetch += plain
        if local:  # lines that build something of the workspace's: offline
            build += ["-r", "requirements.txt"]
    if "pyproject.toml" in declared or "setup.py" in declared:
        fetch += ["setuptools", "wheel", *_pyproject_requirements(workspace, problems)]
        build += ["-e", "."]
    return PythonInstall(list(dict.fromkeys(fetch)), build, problems)


def _requirement_lines(
    workspace: Path, path: Path, problems: list[str], seen: frozenset[Path] = frozenset()
) -> tuple[list[str], bool]:
    """The plain specifiers of a requirements file (following `-r` inside the workspace), and
    whether any line is something else (a path, a URL, `-e`), which only the offline step
    may act on."""
    plain: list[str] = []
    local = False
    text = read_text_inside(workspace, path.relative_to(workspace))
    if text is None:
        problems.append(f"{path.name} not read: not a regular file in the workspace")
        return plain, local
    lines = text.splitlines()
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            nested = (path.parent / line.split(None, 1)[1]).resolve()
            if nested.is_relative_to(workspace.resolve()) and nested not in seen:
                more, more_local = _requirement_lines(
                    workspace, nested, problems, seen | {path.resolve()}
                )
                plain += more
                local = local or more_local
            continue
        if line.startswith("-"):  # -e, --index-url, -c ...: not fetched from what it says
            local = True
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            local = True  # a path or a URL
            continue
        if requirement.url or _looks_like_a_file(requirement.name):
            local = True
        else:
            plain.append(str(requirement))
    return plain, local


def _pyproject_requirements(workspace: Path, problems: list[str]) -> list[str]:
    text = read_text_inside(workspace, "pyproject.toml")
    if text is None:
        return []
    try:
        data = tomllib.loads(text)
    except ValueError as exc:
        problems.append(f"pyproject.toml is not valid TOML: {exc}")
        return []
    declared = [
        *_list_of(data, "project", "dependencies"),
        *_list_of(data, "build-system", "requires"),
    ]
    found = []
    for entry in declared:
        try:
            requirement = Requirement(str(entry))
        except InvalidRequirement:
            problems.append(f"pyproject.toml: {entry!r} is not a requirement")
            continue
        if not requirement.url and not _looks_like_a_file(requirement.name):
            found.append(str(requirement))
    return found


def _list_of(data: dict[str, object], table: str, key: str) -> list[object]:
    section = data.get(table)
    value = section.get(key) if isinstance(section, dict) else None
    return value if isinstance(value, list) else []


def _looks_like_a_file(name: str) -> bool:
    return name.lower().endswith(_ARCHIVE_SUFFIXES)

"""Best-of-N test files, the decisions (issue 13): which temperatures a wave samples at, what
a candidate's answer holds, what running its tests found (whose fault each failure is), and
which candidate wins. Pure functions; test_sampling.py does the asking and the running."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from protocol.llm import ToolCall

DIGEST_CHARS = 1_500  # of the first wave's failures, in each second-wave prompt


class Owner(StrEnum):
    """Whose fault a failing test is: the test's own (it imports a name that does not exist,
    calls the code wrongly, compares a clock reading) or the code under test's."""

    TEST = "test"
    CODE = "code"


@dataclass(frozen=True)
class Failure:
    test: str
    owner: Owner
    detail: str  # the failure's own lines, for the second wave and the report


@dataclass(frozen=True)
class TestRun:
    """What running one candidate's tests found."""

    __test__ = False  # not a test class, for pytest

    passed: int = 0
    failures: tuple[Failure, ...] = ()
    output: str = ""

    @property
    def total(self) -> int:
        return self.passed + len(self.failures)

    @property
    def all_pass(self) -> bool:
        return self.total > 0 and not self.failures

    def count(self, owner: Owner) -> int:
        return sum(1 for f in self.failures if f.owner == owner)


@dataclass(frozen=True)
class Candidate:
    number: int  # 1-based, over both waves
    wave: int
    temperature: float
    content: str | None  # None: the answer held no file
    run: TestRun = field(default_factory=TestRun)
    weak: str = ""  # a weak-test finding of agent_worker.assertions: the test's own fault
    model: str = ""

    @property
    def wins(self) -> bool:
        return self.content is not None and self.run.all_pass and not self.weak

    @property
    def test_faults(self) -> int:
        none_ran = self.content is not None and self.run.total == 0
        return self.run.count(Owner.TEST) + (1 if self.weak else 0) + (1 if none_ran else 0)

    def describe(self) -> str:
        head = f"candidate {self.number} (wave {self.wave}, temperature {self.temperature:g})"
        if self.content is None:
            return f"{head}: no file in the answer"
        run = self.run
        said = f"{head}: {run.passed} of {run.total} tests pass"
        faults = [f"{run.count(Owner.CODE)} the code's", f"{self.test_faults} the test's own"]
        if run.failures or self.test_faults:
            said += f" (failures: {', '.join(faults)})"
        return said + (f"; {self.weak}" if self.weak else "")


def module_names(paths: Sequence[str]) -> frozenset[str]:
    """The names Python imports the `.py` files among `paths` by (`pkg/mod.py`: `pkg.mod`)."""
    names = set()
    for path in paths:
        if path.endswith(".py"):
            dotted = PurePosixPath(path).with_suffix("").as_posix().replace("/", ".")
            names.add(dotted.removesuffix(".__init__"))
    return frozenset(names)


def only_the_code_fails(candidates: Sequence[Candidate]) -> bool:
    """Whether the best candidate's tests ran and every failure of theirs is the code's: then
    the tests look right and a second wave, told the failures, has nothing of its own to
    mend (verification and the root-cause analysis go after the code)."""
    kept = best(candidates)
    return kept is not None and kept.run.total > 0 and kept.test_faults == 0


def temperatures(count: int, base: Sequence[float]) -> list[float]:
    """`count` temperatures from `base`, in order; beyond it, the same again a little
    warmer, so that no two candidates of a wave ask alike."""
    return [round(base[i % len(base)] + 0.05 * (i // len(base)), 2) for i in range(count)]


def rank(candidate: Candidate) -> tuple[int, int, int, int, int]:
    """The order of preference, best first when sorted: a winner; an answer with a file;
    fewer failures of the test's own; more tests passing; the earlier candidate."""
    return (
        0 if candidate.wins else 1,
        0 if candidate.content is not None else 1,
        candidate.test_faults,
        -candidate.run.passed,
        candidate.number,
    )


def best(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate to keep: None when no answer held a file."""
    with_file = [c for c in candidates if c.content is not None]
    return min(with_file, key=rank) if with_file else None


def error_digest(candidates: Sequence[Candidate], limit: int = DIGEST_CHARS) -> str:
    """What went wrong with the candidates, said once each, for the next wave's prompt."""
    lines: list[str] = []
    for candidate in candidates:
        if candidate.content is None:
            lines.append("- an answer held no file: answer with the file in one ```python block")
        if candidate.weak:
            lines.append(f"- {candidate.weak}")
        if candidate.content is not None and candidate.run.total == 0:
            lines.append(f"- no test ran: {_first_lines(candidate.run.output, 3)}")
        lines += [f"- {f.test}: {f.detail}" for f in candidate.run.failures]
    text = "\n".join(dict.fromkeys(lines))
    return text if len(text) <= limit else text[:limit] + "\n[...]"


# --- what an answer holds --------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_file(text: str, calls: Sequence[ToolCall], path: str) -> str | None:
    """The whole file the answer gives for `path`: a write_file call for it (native, or
    written as JSON in a fence), else its longest ```python block, else the answer itself
    when it is Python with a test in it. None when it holds no file."""
    for call in calls:
        content = _written(call.name, call.arguments, path)
        if content is not None:
            return content
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    for lang, body in blocks:
        if lang == "json":
            try:
                found = json.loads(body)
            except ValueError:
                continue
            if isinstance(found, dict):
                arguments = found.get("arguments")
                name = str(found.get("name", "write_file"))
                content = _written(name, arguments if isinstance(arguments, dict) else {}, path)
                if content is not None:
                    return content
    code = [body for lang, body in blocks if lang in ("", "python", "py", "python3")]
    if code:
        return _ended(max(code, key=len))
    if "def test" in text and _parses(text):
        return _ended(text.strip())
    return None


def _written(name: str, arguments: dict[str, Any], path: str) -> str | None:
    content = arguments.get("content")
    target = str(arguments.get("path", path)).removeprefix("./")
    if name == "write_file" and isinstance(content, str) and target == path:
        return content
    return None


def _parses(text: str) -> bool:
    try:
        compile(text, "<answer>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _ended(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


# --- what running the tests found -----------------------------------------------------------

_FRAME = re.compile(r"^\s*(\S+?\.py):(\d+): in ", re.MULTILINE)
_UNITTEST_FRAME = re.compile(r'File "([^"]+)", line (\d+), in ')
_EXCEPTION = re.compile(r"^(?:E\s+)?([A-Za-z_][\w.]*(?:Error|Exception)|Failed):", re.MULTILINE)
# Raised in the test's own lines, these say the test is wrong, not the code: a name that does
# not exist, the code called with the wrong arguments, a missing fixture.
_TEST_MISTAKES = frozenset(
    [
        "ImportError",
        "ModuleNotFoundError",
        "NameError",
        "AttributeError",
        "TypeError",
        "SyntaxError",
        "IndentationError",
        "UnboundLocalError",
    ]
)


_NO_MODULE = re.compile(r"No module named '([\w.]+)'")


def failure_owner(
    test_path: str, message: str, text: str, planned: frozenset[str] = frozenset()
) -> Owner:
    """Whose fault one failure is, from pytest's report of it (`--tb=short`): the code's when
    the exception was raised in another file or it is an assertion (the code answered
    wrongly), or when the module it imports is one the plan has yet to build (`planned`:
    module names); the test's own for a collection or set-up error and for a mistake raised
    in the test's lines (see `_TEST_MISTAKES`)."""
    missing = _NO_MODULE.search(text) or _NO_MODULE.search(message)
    if missing and missing.group(1) in planned:
        return Owner.CODE  # not written yet: another builder's file
    if message == "collection failure" or "fixture '" in text:
        return Owner.TEST
    frames = [path for path, _ in _FRAME.findall(text)]
    if frames:
        last = frames[-1]
        in_library = "site-packages" in last or "/lib/python" in last
        if not in_library and PurePosixPath(last).name != PurePosixPath(test_path).name:
            return Owner.CODE  # raised in the code under test
    found = _EXCEPTION.search(message) or _EXCEPTION.search(text)
    kind = found.group(1).rsplit(".", 1)[-1] if found else ""
    if kind in _TEST_MISTAKES:
        return Owner.TEST
    return Owner.CODE  # an assertion, `DID NOT RAISE`, or another error of the code's


def parse_junit(
    xml_text: str, test_path: str, output: str = "", planned: frozenset[str] = frozenset()
) -> TestRun:
    """pytest's --junitxml report of one test file."""
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError:
        return TestRun(output=output)
    passed, failures = 0, []
    for case in root.iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            if case.find("skipped") is None:
                passed += 1
            continue
        message = problem.get("message", "")
        text = problem.text or ""
        name = case.get("name", "") or test_path
        owner = failure_owner(test_path, message, text, planned)
        failures.append(Failure(name, owner, _detail(message, text)))
    return TestRun(passed, tuple(failures), output)


_RAN = re.compile(r"^Ran (\d+) tests?", re.MULTILINE)
_UNITTEST_FAIL = re.compile(r"^(FAIL|ERROR): (\S+) .*?\n-+\n(.*?)(?=^=+$|^-+$)", re.S | re.M)


def parse_unittest(output: str, test_path: str, planned: frozenset[str] = frozenset()) -> TestRun:
    """`python -m unittest -v`'s report, where pytest is not there."""
    ran = _RAN.search(output)
    total = int(ran.group(1)) if ran else 0
    failures = []
    for _kind, name, text in _UNITTEST_FAIL.findall(output):
        last = text.strip().splitlines()[-1] if text.strip() else ""
        frames = _UNITTEST_FRAME.sub(r"\1:\2: in ", text)
        owner = failure_owner(test_path, last, frames, planned)
        failures.append(Failure(name, owner, last[:300]))
    if not ran and "Error" in output:  # the module did not import: nothing ran
        return TestRun(0, (), output)
    return TestRun(max(total - len(failures), 0), tuple(failures), output)


def _detail(message: str, text: str) -> str:
    lines = [line[4:].rstrip() for line in text.splitlines() if line.startswith("E   ")]
    said = "; ".join(line for line in lines if line.strip())[:300]
    if said:
        return said
    return message.splitlines()[0][:300] if message.strip() else "failed"


def _first_lines(text: str, count: int) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[:count])[:300]

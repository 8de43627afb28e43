"""The decisions of best-of-N test files (agent_worker/candidates.py): what an answer holds,
whose fault a failure is, which candidate is kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent_worker.candidates import (
    Candidate,
    Failure,
    Owner,
    TestRun,
    best,
    error_digest,
    extract_file,
    failure_owner,
    module_names,
    only_the_code_fails,
    parse_junit,
    parse_unittest,
    temperatures,
)
from agent_worker.fix_sampling import FixCandidate, best_fix, fix_temperature
from protocol.llm import ToolCall

PATH = "tests/test_calc.py"
SOURCE = "def test_x():\n    assert 1 == 1\n"


def test_temperatures_follow_the_wave_and_grow_warmer_past_it() -> None:
    assert temperatures(4, (0.3, 0.6, 0.8, 1.0)) == [0.3, 0.6, 0.8, 1.0]
    assert temperatures(2, (0.3, 0.6, 0.8, 1.0)) == [0.3, 0.6]
    assert temperatures(5, (0.3, 0.6)) == [0.3, 0.6, 0.35, 0.65, 0.4]


@pytest.mark.parametrize(
    "text",
    [
        f"Here:\n```python\n{SOURCE}```\nThat is all.",
        f"```\n{SOURCE}```",
        f"```py\n{SOURCE}",  # the closing fence cut off
        SOURCE,  # bare Python with a test in it
        "```json\n" + json.dumps({"name": "write_file",
                                  "arguments": {"path": PATH, "content": SOURCE}}) + "\n```",
    ],
)  # fmt: skip
def test_the_file_is_found_in_the_shapes_models_answer_in(text: str) -> None:
    assert extract_file(text, [], PATH) == SOURCE


def test_a_write_file_call_for_the_path_is_the_file_and_prose_is_none() -> None:
    call = ToolCall(id="1", name="write_file", arguments={"path": f"./{PATH}", "content": "x=1"})
    other = ToolCall(id="2", name="write_file", arguments={"path": "app.py", "content": "y=1"})
    assert extract_file("", [other, call], PATH) == "x=1"
    assert extract_file("I would write tests for add().", [], PATH) is None
    assert extract_file("", [other], PATH) is None


def test_the_longest_python_block_is_the_file() -> None:
    text = f"Run it with:\n```\npytest\n```\nThe file:\n```python\n{SOURCE}```"
    assert extract_file(text, [], PATH) == SOURCE


def run_pytest(tmp_path: Path, source: str, test: str) -> TestRun:
    (tmp_path / "calc.py").write_text(source)
    (tmp_path / "test_calc.py").write_text(test)
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider",
                    f"--junitxml={junit}", "test_calc.py"], cwd=tmp_path,
                   capture_output=True, check=False)  # fmt: skip
    return parse_junit(junit.read_text(), "test_calc.py")


def test_each_failure_is_the_code_s_or_the_test_s_own(tmp_path: Path) -> None:
    source = "def add(a, b):\n    return a - b\n\n\ndef boom():\n    raise ValueError('bad')\n"
    test = (
        "import pytest\nfrom calc import add, boom\n\n\n"
        "def test_add():\n    assert add(1, 2) == 3\n\n\n"  # the code's: wrong answer
        "def test_boom():\n    boom()\n\n\n"  # the code's: raised in calc.py
        "def test_raises():\n    with pytest.raises(KeyError):\n        add(1, 1)\n\n\n"
        "def test_call():\n    add(1)\n\n\n"  # its own: called wrongly
        "def test_name():\n    assert mul(1, 1) == 1\n\n\n"  # its own: no such name
        "def test_fixture(nothing):\n    pass\n\n\n"  # its own: no such fixture
        "def test_ok():\n    assert add(2, 0) == 2\n"
    )
    run = run_pytest(tmp_path, source, test)
    owners = {f.test: f.owner for f in run.failures}
    assert owners == {
        "test_add": Owner.CODE,
        "test_boom": Owner.CODE,
        "test_raises": Owner.CODE,
        "test_call": Owner.TEST,
        "test_name": Owner.TEST,
        "test_fixture": Owner.TEST,
    }
    assert run.passed == 1 and run.total == 7
    assert {f.test: f.detail for f in run.failures}["test_boom"] == "ValueError: bad"


def test_a_test_file_that_does_not_import_is_its_own_fault(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "x = 1\n", "from calc import mul\n\n\ndef test_x():\n    pass\n")
    [failure] = run.failures
    assert failure.owner == Owner.TEST and "cannot import name 'mul'" in failure.detail
    assert run.passed == 0 and not run.all_pass


def test_failure_owner_reads_a_frame_in_a_library_as_the_test_s_call() -> None:
    text = (
        "test_calc.py:3: in test_x\n    json.loads('{')\n"
        "/usr/lib/python3.11/json/__init__.py:346: in loads\nE   TypeError: x"
    )
    assert failure_owner("test_calc.py", "TypeError: x", text) == Owner.TEST


def test_unittest_output_is_read_where_pytest_is_missing() -> None:
    output = """test_a (test_calc.T.test_a) ... ok
test_b (test_calc.T.test_b) ... FAIL
test_c (test_calc.T.test_c) ... ERROR

======================================================================
ERROR: test_c (test_calc.T.test_c)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/w/test_calc.py", line 9, in test_c
    mul(1, 2)
NameError: name 'mul' is not defined

======================================================================
FAIL: test_b (test_calc.T.test_b)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/w/test_calc.py", line 6, in test_b
    self.assertEqual(add(1, 2), 4)
AssertionError: 3 != 4

----------------------------------------------------------------------
Ran 3 tests in 0.001s

FAILED (failures=1, errors=1)
"""
    run = parse_unittest(output, "test_calc.py")
    assert run.passed == 1 and run.total == 3
    assert {f.test: f.owner for f in run.failures} == {"test_c": Owner.TEST, "test_b": Owner.CODE}


def candidate(number: int, *failures: Owner, passed: int = 0, weak: str = "") -> Candidate:
    run = TestRun(passed, tuple(Failure(f"t{i}", o, f"{o} failed") for i, o in enumerate(failures)))
    return Candidate(number, 1, 0.3, "x", run, weak)


def test_the_best_candidate_fails_for_the_code_s_reasons_and_passes_most() -> None:
    own = candidate(1, Owner.TEST, passed=5)
    code = candidate(2, Owner.CODE, passed=1)
    more = candidate(3, Owner.CODE, passed=3)
    weak = candidate(4, passed=6, weak="WEAK TEST")
    empty = Candidate(5, 1, 0.3, None)
    assert best([own, code, more, weak, empty]) == more
    assert best([empty]) is None
    assert not weak.wins and candidate(6, passed=2).wins
    assert not Candidate(7, 1, 0.3, "x").wins  # no test ran: no winner
    assert best([Candidate(7, 1, 0.3, "x"), code]) == code


def test_the_digest_says_each_failure_once_and_is_bounded() -> None:
    twice = [candidate(1, Owner.TEST), candidate(2, Owner.TEST), Candidate(3, 1, 0.3, None)]
    digest = error_digest(twice)
    assert digest.count("test failed") == 1 and "held no file" in digest
    many = [candidate(i, *[Owner.CODE] * 40) for i in range(3)]
    assert len(error_digest(many, limit=200)) <= 210


def test_a_module_the_plan_has_yet_to_build_is_the_code_s_fault_not_the_test_s() -> None:
    text = (
        "test_calc.py:1: in <module>\n    import store\n"
        "E   ModuleNotFoundError: No module named 'store'"
    )
    assert failure_owner("test_calc.py", "collection failure", text) == Owner.TEST
    planned = module_names(["store.py", "pkg/util.py", "pkg/__init__.py", "README.md"])
    assert planned == {"store", "pkg.util", "pkg"}
    assert failure_owner("test_calc.py", "collection failure", text, planned) == Owner.CODE


def test_a_second_wave_is_asked_only_when_the_tests_fail_of_their_own() -> None:
    assert only_the_code_fails([candidate(1, Owner.CODE), candidate(2, Owner.TEST)])
    assert not only_the_code_fails([candidate(1, Owner.TEST, Owner.CODE)])
    assert not only_the_code_fails([Candidate(1, 1, 0.3, "x")])  # no test ran
    assert not only_the_code_fails([Candidate(1, 1, 0.3, None)])


def test_the_fix_kept_breaks_nothing_then_passes_most() -> None:
    def fix(number: int, passing: str, broken: str = "", failed: str = "") -> FixCandidate:
        return FixCandidate(number, fix_temperature(number), frozenset(passing.split()),
                            frozenset(broken.split()), {}, failed)  # fmt: skip

    breaking = fix(1, "D1 D3", broken="D2")
    harmless = fix(2, "D2")
    better = fix(3, "D2 D3")
    assert best_fix([breaking, harmless]) == harmless
    assert best_fix([breaking, harmless, better]) == better
    assert best_fix([fix(1, "", failed="no finish"), breaking]) == breaking
    assert best_fix([fix(1, "", failed="no finish")]) is None
    assert [fix_temperature(n) for n in (1, 2, 3, 9)] == [0.2, 0.6, 0.9, 1.0]
    assert breaking.describe(3) == "fix 1 (temperature 0.2): 2 of 3 criteria pass, breaks D2"

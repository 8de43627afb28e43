"""The assertion guard reads a test file's assertions with `ast` and names the weak ones."""

from __future__ import annotations

import pytest

from agent_worker.assertions import assertion_check, is_test_file, weak_assertions


def problems(body: str) -> list[str]:
    return [f.problem for f in weak_assertions(body)]


@pytest.mark.parametrize(
    "assertion",
    [
        "assert stamp() == datetime.now()",
        "assert greet('a') and datetime.now() == datetime.now()",
        "assert datetime.datetime.now() != made.at",
        "assert item.created.date() == date.today()",
        "assert int(time.time()) == stamp()",
        "self.assertEqual(record.at, datetime.utcnow())",
    ],
)
def test_a_clock_reading_compared_for_equality_is_named(assertion: str) -> None:
    [problem] = problems(assertion)
    assert "for equality" in problem and "by timing" in problem
    assert any(c in problem for c in ("datetime.now()", "date.today()", "time.time()",
                                      "datetime.datetime.now()", "datetime.utcnow()"))  # fmt: skip


def test_a_clock_imported_by_name_is_recognised() -> None:
    [problem] = problems("from time import monotonic as tick\nassert tick() == started\n")
    assert "tick()" in problem


@pytest.mark.parametrize(
    "assertion",
    [
        "assert greet('a') == greet('a')",
        "assert result == result",
        "assert len(items) <= len(items)",
        "assert True",
        "assert 1",
        "assert 'greet works'",
        "assert (greet('a') == 'hello a', 'greets')",
        "assert greet('a') == 'hello a' or True",
        "self.assertTrue(True)",
        "self.assertEqual(greet('a'), greet('a'))",
    ],
)
def test_an_assertion_that_holds_whatever_the_code_does_cannot_fail(assertion: str) -> None:
    [problem] = problems(assertion)
    assert "cannot fail" in problem


@pytest.mark.parametrize(
    "assertion",
    [
        "assert greet('a') == 'hello a'",
        "assert datetime.now() >= started",
        "assert abs(time.time() - started) < 1",
        "assert made.at == FIXED_TIME",
        "assert instance() is instance()",  # a singleton's test: can fail
        "assert greet('a') != greet('b')",
        "assert result is not None",
        "assert not items",
        "self.assertEqual(greet('a'), 'hello a')",
        "from datetime import time\nassert time(12) == noon",
    ],
)
def test_an_assertion_that_can_fail_on_its_merits_is_left_alone(assertion: str) -> None:
    assert problems(assertion) == []


@pytest.mark.parametrize(
    "assertion", ["assert 100 + 200 == 210", "assert 2 * 3 == 6", "assert 'a' in 'abc'"]
)
def test_an_assertion_of_constants_only_tests_no_code(assertion: str) -> None:
    [problem] = problems(assertion)
    assert "tests no code" in problem


def test_assert_false_marking_a_path_not_to_be_reached_is_left_alone() -> None:
    assert problems("try:\n    greet(None)\n    assert False\nexcept TypeError:\n    pass") == []


def test_every_weak_assertion_is_named_in_line_order() -> None:
    source = "def test_a():\n    assert x == x\n\n\ndef test_b():\n    assert True\n"
    assert [f.line for f in weak_assertions(source)] == [2, 6]


def test_a_file_that_does_not_parse_has_none() -> None:
    assert weak_assertions("def test(:\n    assert True\n") == []


def test_the_check_reads_python_test_files_only() -> None:
    weak = "def test_x() -> None:\n    assert True\n"
    assert assertion_check("app.py", weak) is None
    assert assertion_check("tests/notes.txt", weak) is None
    failure = assertion_check("tests/test_x.py", weak)
    assert failure is not None and failure.line == 2
    told = failure.for_model(weak)
    assert told.startswith("WEAK TEST in tests/test_x.py, line 2: `assert True` cannot fail")
    assert ">>>    2 |     assert True" in told and "hint: a test must fail" in told


@pytest.mark.parametrize(
    ("path", "expected"),
    [("tests/test_a.py", True), ("test_a.py", True), ("pkg/a_test.py", True),
     ("conftest.py", True), ("tests/helpers.py", True), ("app.py", False),
     ("pkg/testing.py", False)],
)  # fmt: skip
def test_test_files_are_known_by_name_or_place(path: str, expected: bool) -> None:
    assert is_test_file(path) is expected

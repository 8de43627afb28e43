"""Error classes for `team trace export`: from the typed label where there is one, else from
what pytest and Python printed (real outputs, as they look)."""

from __future__ import annotations

import pytest

from coordinator.classify import ErrorClass, classify, note_category

PYTEST_IMPORT = """\
==================================== ERRORS ====================================
____________________ ERROR collecting tests/test_store.py _____________________
ImportError while importing test module '/w/tests/test_store.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_store.py:2: in <module>
    from store import count_open
E   ModuleNotFoundError: No module named 'store'
=========================== short test summary info ============================
ERROR tests/test_store.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
1 error in 0.05s
"""
PYTEST_ASSERT = """\
F                                                                        [100%]
=================================== FAILURES ===================================
__________________ test_count_open_counts_the_items_not_done ___________________

    def test_count_open_counts_the_items_not_done() -> None:
        items = [Item("a"), Item("b", done=True), Item("c")]
>       assert count_open(items) == 2
E       assert 1 == 2
E        +  where 1 = count_open([Item(name='a', done=False), Item(name='b', done=True)])

tests/test_store.py:7: AssertionError
=========================== short test summary info ============================
FAILED tests/test_store.py::test_count_open_counts_the_items_not_done - assert 1 == 2
1 failed in 0.03s
"""
PYTEST_ASSERT_SHORT = """\
tests/test_store.py:7: in test_count_open_counts_the_items_not_done
    assert count_open(items) == 2
E   assert 1 == 2
FAILED tests/test_store.py::test_count_open_counts_the_items_not_done - assert 1 == 2
"""
NAME_TRACEBACK = """\
Traceback (most recent call last):
  File "/w/cli.py", line 12, in <module>
    main()
  File "/w/cli.py", line 9, in main
    print(count_open(load()))
          ^^^^^^^^^^
NameError: name 'count_open' is not defined
"""
SYNTAX = """\
  File "store.py", line 4
    def count_open(items: list[Item]) -> int
                                            ^
SyntaxError: expected ':'
"""
INDENTATION = """\
Sorry: IndentationError: unexpected indent (store.py, line 5)
"""
PYTEST_TYPE = """\
    def test_add():
>       add_item(store, "milk", 3)
E       TypeError: add_item() takes 2 positional arguments but 3 were given

tests/test_store.py:11: TypeError
FAILED tests/test_store.py::test_add - TypeError: add_item() takes 2 positional arguments...
"""
PYTEST_ATTRIBUTE = """\
E       AttributeError: 'Item' object has no attribute 'title'
tests/test_models.py:8: AttributeError
"""
TIMED_OUT = "tests failed:\nthe command timed out after 120 s (pytest -q)\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PYTEST_IMPORT, ErrorClass.IMPORT_ERROR),
        (PYTEST_ASSERT, ErrorClass.ASSERTION),
        (PYTEST_ASSERT_SHORT, ErrorClass.ASSERTION),
        (NAME_TRACEBACK, ErrorClass.NAME_ERROR),
        (SYNTAX, ErrorClass.SYNTAX_ERROR),
        (INDENTATION, ErrorClass.SYNTAX_ERROR),
        (PYTEST_TYPE, ErrorClass.TYPE_ERROR),
        (PYTEST_ATTRIBUTE, ErrorClass.ATTRIBUTE_ERROR),
        (TIMED_OUT, ErrorClass.TIMEOUT),
        ("D3 failed: README.md does not exist", ErrorClass.OTHER),
    ],
)
def test_test_and_traceback_output_is_classified_by_what_it_says(
    text: str, expected: ErrorClass
) -> None:
    assert classify(text) == expected


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("TruncatedAnswer", ErrorClass.TRUNCATED),
        ("BadAnswer", ErrorClass.TOOL_FORMAT),
        ("ContextOverflow", ErrorClass.CONTEXT_OVERFLOW),
        ("ServerUnreachable", ErrorClass.MODEL_UNREACHABLE),
        ("ModelTimeout", ErrorClass.TIMEOUT),
        ("model_unreachable", ErrorClass.MODEL_UNREACHABLE),
        ("budget", ErrorClass.BUDGET),
        ("timeout", ErrorClass.TIMEOUT),
        ("no_progress", ErrorClass.NO_PROGRESS),
        ("NoProgress", ErrorClass.NO_PROGRESS),
    ],
)
def test_a_typed_label_wins_over_the_text(outcome: str, expected: ErrorClass) -> None:
    # The text says an assertion, but the call's own error type is what ended it.
    assert classify(PYTEST_ASSERT, outcome) == expected


def test_a_lint_failure_is_the_error_its_output_names_or_else_lint() -> None:
    checks = "files fail their checks: store.py: line 4: SyntaxError: expected ':'"
    assert classify(checks, "lint") == ErrorClass.SYNTAX_ERROR
    assert classify("files fail their checks: store.py: missing", "lint") == ErrorClass.LINT
    assert classify("the model answered with no tool call", "tool") == ErrorClass.TOOL_FORMAT


def test_the_category_of_a_failed_task_is_the_prefix_of_its_note() -> None:
    assert note_category("lint: files fail their checks: store.py") == "lint"
    assert note_category("model_unreachable: cannot reach the ollama server") == (
        "model_unreachable"
    )
    assert note_category("builder-storage died") == ""
    assert note_category("retry: not a category") == ""

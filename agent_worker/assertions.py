"""The assertion guard: a test whose assertion cannot tell working code from broken code is
sent back in the same turn, like a lint error. Read with `ast`, never run: an assertion that
compares a clock reading (`datetime.now()`, `time.time()`) for equality passes or fails by
timing, one that holds whatever the code does (`assert True`, the same expression on both
sides of `==`) cannot fail, and one of constants only (`assert 100 + 200 == 210`) tests nothing."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import PurePosixPath

from agent_worker.lint import LintFailure

DATETIME_CLOCKS = frozenset({"now", "utcnow", "today"})  # datetime.now(), date.today()
DATETIME_TYPES = frozenset({"datetime", "date"})
TIME_CLOCKS = frozenset({"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
                         "perf_counter_ns"})  # fmt: skip
EQUALITY = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)
ALWAYS_TRUE_WHEN_SAME = (ast.Eq, ast.Is, ast.LtE, ast.GtE)  # `x == x`, `x <= x`
UNITTEST_EQUALITY = frozenset({"assertEqual", "assertEquals", "assertNotEqual", "assertIs",
                               "assertIsNot"})  # fmt: skip
UNITTEST_TRUTH = frozenset({"assertTrue", "assert_"})
HINT = (
    "a test must fail when the code is wrong: compare the result with a value written out "
    "by hand, and pass a fixed time into the code (or check a range) instead of reading the clock"
)


@dataclass(frozen=True)
class WeakAssertion:
    line: int
    problem: str  # what is wrong, naming the expression as written


def is_test_file(relative: str) -> bool:
    """A test file by its name (`test_*.py`, `*_test.py`, `conftest.py`) or place (`tests/`)."""
    path = PurePosixPath(relative)
    named = path.name.startswith("test_") or path.name.endswith("_test.py")
    return named or path.name == "conftest.py" or path.parts[:1] in (("tests",), ("test",))


def assertion_check(relative: str, source: str) -> LintFailure | None:
    """The weak assertions of a Python test file, as one failure for the model; None when
    there are none, or the file is not a Python test file."""
    if PurePosixPath(relative).suffix != ".py" or not is_test_file(relative):
        return None
    found = weak_assertions(source)
    if not found:
        return None
    also = "".join(f"; line {f.line}: {f.problem}" for f in found[1:])
    return LintFailure(relative, found[0].line, found[0].problem + also, "WEAK TEST", HINT)


def weak_assertions(source: str) -> list[WeakAssertion]:
    """Every assertion in `source` that compares a clock reading for equality or cannot fail,
    in line order. A file that does not parse has none (the compile check reports it)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    clocks = _time_imports(tree)
    found = []
    for node in ast.walk(tree):
        for line, checked in _asserted(node):
            problem = _problem(checked, clocks)
            if problem:
                found.append(WeakAssertion(line, problem))
    return sorted(found, key=lambda f: f.line)


def _asserted(node: ast.AST) -> list[tuple[int, ast.expr]]:
    """What `node` asserts: an `assert`'s test, or a unittest `assertEqual(a, b)` as `a == b`."""
    if isinstance(node, ast.Assert):
        return [(node.lineno, node.test)]
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return []
    name, args = node.func.attr, node.args
    if name in UNITTEST_EQUALITY and len(args) >= 2:
        op: ast.cmpop = ast.NotEq() if "Not" in name else ast.Eq()
        return [(node.lineno, ast.Compare(left=args[0], ops=[op], comparators=[args[1]]))]
    if name in UNITTEST_TRUTH and args:
        return [(node.lineno, args[0])]
    return []


def _problem(test: ast.expr, clocks: set[str]) -> str | None:
    if _always_true(test):
        return f"`assert {ast.unparse(test)}` cannot fail: it holds whatever the code does"
    constants_only = not any(
        isinstance(n, ast.Name | ast.Attribute | ast.Call) for n in ast.walk(test)
    )
    if constants_only and not isinstance(test, ast.Constant):  # `assert False` marks a path
        # SmolLM2's tests: `assert 100 + 200 == 210`, constants only (issue 13's real run).
        return (
            f"`assert {ast.unparse(test)}` tests no code: it has only constants, so it "
            "passes or fails whatever the code does"
        )
    if (
        isinstance(test, ast.BoolOp)
        and isinstance(test.op, ast.Or)
        and any(map(_always_true, test.values))
    ):
        return f"`assert {ast.unparse(test)}` cannot fail: one side of `or` is always true"
    for compare in (n for n in ast.walk(test) if isinstance(n, ast.Compare)):
        operands = [compare.left, *compare.comparators]
        for op, left, right in zip(compare.ops, operands, operands[1:], strict=False):
            clock = _clock_call(left, clocks) or _clock_call(right, clocks)
            if clock and isinstance(op, EQUALITY):
                return (
                    f"`{ast.unparse(compare)}` compares {clock} for equality: the clock moves "
                    "between two readings, so the test passes or fails by timing"
                )
            if not clock and _same(left, right) and _holds_for_same(op, left):
                return (
                    f"`{ast.unparse(compare)}` cannot fail: both sides are the same "
                    "expression, so it holds whatever the code does"
                )
    return None


def _always_true(test: ast.expr) -> bool:
    """A literal that is true whatever runs: `True`, `1`, `"text"`, `(x, "message")`."""
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, ast.Tuple | ast.List | ast.Set):
        return bool(test.elts)
    if isinstance(test, ast.Dict):
        return bool(test.keys)
    return False


def _same(left: ast.expr, right: ast.expr) -> bool:
    return ast.dump(left) == ast.dump(right)


def _holds_for_same(op: ast.cmpop, side: ast.expr) -> bool:
    """`x == x` always holds; `f() is f()` does not (a cache or a singleton is what it tests)."""
    calls = any(isinstance(n, ast.Call) for n in ast.walk(side))
    return isinstance(op, ALWAYS_TRUE_WHEN_SAME) and not (isinstance(op, ast.Is) and calls)


def _clock_call(node: ast.expr, clocks: set[str]) -> str | None:
    """The clock read anywhere in `node`, as written (`datetime.now()`, `time.time()`)."""
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        func = call.func
        if isinstance(func, ast.Name) and func.id in clocks:
            return f"{func.id}()"
        if not isinstance(func, ast.Attribute):
            continue
        owner = func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
        datetime_clock = func.attr in DATETIME_CLOCKS and owner_name in DATETIME_TYPES
        if datetime_clock or (func.attr in TIME_CLOCKS and owner_name == "time"):
            return f"{ast.unparse(func)}()"
    return None


def _time_imports(tree: ast.Module) -> set[str]:
    """The names a clock of the `time` module is called by after `from time import ...`."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "time"
        for alias in node.names
        if alias.name in TIME_CLOCKS
    }

"""What kind of error ended a model call, a task attempt or a verification: one class per
failure, for `team trace export`. A pure function: the typed label where there is one (a model
call's error type, a failed task's category), else the text of test and traceback output,
which is external output that nothing but matching can read."""

from __future__ import annotations

import re
from enum import StrEnum

from protocol import ErrorCategory


class ErrorClass(StrEnum):
    IMPORT_ERROR = "import_error"
    NAME_ERROR = "name_error"
    SYNTAX_ERROR = "syntax_error"
    ASSERTION = "assertion"
    TYPE_ERROR = "type_error"
    ATTRIBUTE_ERROR = "attribute_error"
    TIMEOUT = "timeout"
    TOOL_FORMAT = "tool_format"
    TRUNCATED = "truncated"
    CONTEXT_OVERFLOW = "context_overflow"
    MODEL_UNREACHABLE = "model_unreachable"
    LINT = "lint"
    BUDGET = "budget"
    NO_PROGRESS = "no_progress"  # nudged, and still prose, cut answers or the same call
    OTHER = "other"


E = ErrorClass
# Typed labels that say it all: a model call's error type name (ModelCallEnded.outcome), a
# loop's exception name, or a failed task's category (ErrorCategory, the prefix of its note).
_BY_LABEL: dict[str, ErrorClass] = {
    "TruncatedAnswer": E.TRUNCATED,
    "BadAnswer": E.TOOL_FORMAT,
    "ContextOverflow": E.CONTEXT_OVERFLOW,
    "ServerUnreachable": E.MODEL_UNREACHABLE,
    "ModelTimeout": E.TIMEOUT,
    "OutOfTime": E.TIMEOUT,
    "OutOfRounds": E.TIMEOUT,
    "OutOfTokens": E.BUDGET,
    "NoProgress": E.NO_PROGRESS,
    "model_unreachable": E.MODEL_UNREACHABLE,
    "timeout": E.TIMEOUT,
    "budget": E.BUDGET,
    "no_progress": E.NO_PROGRESS,
}
# Labels that name a family of failures: the text says which one, else this class.
_DEFAULT_FOR_LABEL: dict[str, ErrorClass] = {"lint": E.LINT, "tool": E.TOOL_FORMAT}

# In order: an error that stops the code from loading hides the rest; the exception that
# names a mistake comes before a timeout, which comes before our own loop's words.
_TEXT_RULES: list[tuple[ErrorClass, re.Pattern[str]]] = [
    (E.SYNTAX_ERROR, re.compile(r"\b(SyntaxError|IndentationError|TabError)\b")),
    (E.IMPORT_ERROR, re.compile(r"\b(ModuleNotFoundError|ImportError)\b")),
    (E.NAME_ERROR, re.compile(r"\b(UnboundLocalError|NameError)\b")),
    (E.TYPE_ERROR, re.compile(r"\bTypeError\b")),
    (E.ATTRIBUTE_ERROR, re.compile(r"\bAttributeError\b")),
    (E.ASSERTION, re.compile(r"\bAssertionError\b|^E\s+assert\b", re.MULTILINE)),
    (E.TIMEOUT, re.compile(r"\btimed out\b|\bTimeoutExpired\b|\bTimeoutError\b", re.I)),
    (E.TRUNCATED, re.compile(r"\bTruncatedAnswer\b")),
    (E.CONTEXT_OVERFLOW, re.compile(r"\bContextOverflow\b|context (window|length)", re.I)),
    (E.MODEL_UNREACHABLE, re.compile(r"\bServerUnreachable\b|cannot reach the .* server")),
    (E.TOOL_FORMAT, re.compile(r"\bBadAnswer\b|no (usable )?tool call|did not parse", re.I)),
    (E.BUDGET, re.compile(r"\btoken cap\b|\bOutOfTokens\b")),
    (E.LINT, re.compile(r"files fail their checks|\bruff\b")),
]


def classify(text: str, outcome: str = "") -> ErrorClass:
    """The class of one failure. `outcome` is its typed label when it has one (a model
    call's error type such as "TruncatedAnswer", or a failed task's category such as
    "lint"); `text` is what it printed (pytest's output, a traceback, the error message)."""
    if outcome in _BY_LABEL:
        return _BY_LABEL[outcome]
    for error_class, pattern in _TEXT_RULES:
        if pattern.search(text):
            return error_class
    return _DEFAULT_FOR_LABEL.get(outcome, E.OTHER)


def note_category(note: str) -> str:
    """The category a failed task's note starts with ("lint: files fail ..." -> "lint"), or ""
    for a note written otherwise (the coordinator's "builder-x died")."""
    head, sep, _ = note.partition(": ")
    return head if sep and head in _CATEGORIES else ""


_CATEGORIES = frozenset(c.value for c in ErrorCategory)

"""Splitting a shell command line into words for the rails, with shlex (no shell runs): simple
commands at `;`, `&&`, `||`, `|`, `&`, newlines and parentheses; redirections and their
targets; options and operands."""

from __future__ import annotations

import shlex
from collections.abc import Iterator

SEPARATORS = {";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "\n"}
REDIRECTS = {">", ">>", ">|", "&>", "&>>", "<", "<<", "<<<", ">&", "<&", "<>"}
KEYWORDS = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "for",
    "in",
    "case",
    "esac",
    "{",
    "}",
    "!",
    "function",
    "select",
    "time",
    "coproc",
}


def simple_commands(command: str) -> Iterator[tuple[list[str], str]]:
    """(words, the separator before them) for each simple command; redirections stay in."""
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: judge the raw words
        tokens = command.split()
    words: list[str] = []
    before = ""
    for token in tokens:
        if token in SEPARATORS or (set(token) <= set(";&|()") and token not in REDIRECTS):
            if words:
                yield words, before
            words, before = [], token
        else:
            words.append(token)
    if words:
        yield words, before


def flags(words: list[str]) -> set[str]:
    """`-rf` -> {-r, -f}; long options as they are."""
    flags: set[str] = set()
    for word in words:
        if word.startswith("--"):
            flags.add(word)
        elif word.startswith("-") and len(word) > 1:
            flags.update(f"-{letter}" for letter in word[1:])
    return flags


def operands(words: list[str]) -> list[str]:
    """The words that are not options."""
    return [w for w in words if not w.startswith("-")]


def without_redirections(words: list[str]) -> tuple[list[str], list[str]]:
    """The words without redirections, and the targets written to."""
    kept: list[str] = []
    targets: list[str] = []
    skip_next = False
    for i, word in enumerate(words):
        if skip_next:
            skip_next = False
            continue
        if word in REDIRECTS:
            if word.startswith((">", "&")) and i + 1 < len(words):
                targets.append(words[i + 1])
            skip_next = True
            if kept and kept[-1].isdigit():  # the descriptor of `2>` or `exec 3>`
                kept.pop()
            continue
        kept.append(word)
    return kept, targets

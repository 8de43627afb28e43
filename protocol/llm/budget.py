"""Context budgets for prompts sent to local LLMs: estimate tokens, cut text to fit.

Token counts are estimates from the character count alone, so no tokenizer is needed. Every
cut leaves a marker line saying what was removed, so the model knows the text is incomplete,
and every function that cuts promises `estimate_tokens(result) <= max_tokens`, marker included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

CHARS_PER_TOKEN: float = 3.5
"""Characters per token: a conservative estimate for code and English (real ratios are ~4)."""

MIN_TRUNCATE_TOKENS = 30
"""The smallest budget `truncate_head_tail` cuts to; below it, a cut text is mostly marker."""

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat template spends on each message (role, separators) beyond its content."""


def estimate_tokens(text: str) -> int:
    """Estimated tokens in `text`: ceil(len(text) / CHARS_PER_TOKEN), so 0 for ""."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_message_tokens(messages: Sequence[Mapping[str, object]]) -> int:
    """Estimated tokens of a chat request's messages.

    Each message counts its `content` (absent or None counts as ""), its `tool_calls` as sorted
    JSON when they are present and non-empty (estimated separately from the content), and
    MESSAGE_OVERHEAD_TOKENS. Tool calls must be JSON-serialisable, or TypeError is raised.
    """
    total = 0
    for message in messages:
        total += estimate_tokens(str(message.get("content") or ""))
        tool_calls = message.get("tool_calls")
        if tool_calls:
            total += estimate_tokens(json.dumps(tool_calls, sort_keys=True))
        total += MESSAGE_OVERHEAD_TOKENS
    return total


def _max_chars(tokens: int) -> int:
    """The longest text length whose estimate is at most `tokens` (0 for a negative budget)."""
    return max(math.floor(tokens * CHARS_PER_TOKEN), 0)


def _split_lines(text: str) -> list[str]:
    """`text` split after each "\\n" only: `splitlines` would also split on \\r, \\f and more."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def _with_line(text: str, line: str) -> str:
    """`text` followed by `line` as a line of its own, ending in a newline."""
    separator = "\n" if text and not text.endswith("\n") else ""
    return f"{text}{separator}{line}\n"


# --- head and tail ---------------------------------------------------------------------------


def _middle_marker(middle: str) -> str:
    """The marker line (without its newline) describing the removed `middle`."""
    # A partly cut line counts as a line: the count says how many lines the reader lost part of.
    lines = middle.count("\n") + (0 if middle.endswith("\n") else 1)
    return (
        f"[... {lines} lines ({len(middle)} characters, about {estimate_tokens(middle)} tokens)"
        " cut from the middle ...]"
    )


def _cut_head(text: str, size: int) -> str:
    """The first at most `size` characters, ending after a newline if one is in their last 20%."""
    newline = text.rfind("\n", max(size - size // 5 - 1, 0), size)
    return text[: newline + 1] if newline >= 0 else text[:size]


def _cut_tail(text: str, size: int) -> str:
    """The last at most `size` characters, starting a line if one starts in their first 20%."""
    start = len(text) - size
    newline = text.find("\n", max(start - 1, 0), start + size // 5)
    return text[newline + 1 :] if newline >= 0 else text[start:]


def truncate_head_tail(text: str, max_tokens: int, *, head_share: float = 0.6) -> str:
    """`text` if it fits in `max_tokens`, else its head and tail around a marker line.

    The marker, `[... {n} lines ({c} characters, about {t} tokens) cut from the middle ...]`,
    describes exactly the removed middle; `head_share` of the kept characters go to the head.
    Each cut falls on a line boundary when one lies in the last 20% of the kept part (the
    first 20% for the tail), else mid-line. The result, marker included, fits in `max_tokens`.

    Raises ValueError if `head_share` is outside [0, 1], or if the text must be cut and
    `max_tokens` is under MIN_TRUNCATE_TOKENS: such a budget cannot hold a useful cut.
    """
    if not 0.0 <= head_share <= 1.0:
        raise ValueError(f"head_share must be between 0 and 1, not {head_share}")
    if estimate_tokens(text) <= max_tokens:
        return text
    if max_tokens < MIN_TRUNCATE_TOKENS:
        raise ValueError(
            f"cannot cut a text to {max_tokens} tokens, the minimum is {MIN_TRUNCATE_TOKENS}"
        )
    # Reserve room for the longest marker this cut could need (no middle has more lines or
    # characters than the whole text), plus a newline before and after it.
    kept = _max_chars(max_tokens) - len(_middle_marker(text)) - 2
    if kept < 0:
        raise ValueError(f"{max_tokens} tokens cannot hold the marker for this text")
    head = _cut_head(text, math.floor(kept * head_share))
    # The tail also gets what a newline cut left unused in the head.
    tail = _cut_tail(text, kept - len(head))
    marker = _middle_marker(text[len(head) : len(text) - len(tail)])
    return _with_line(head, marker) + tail


# --- diffs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileDiff:
    path: str
    header: str
    hunks: tuple[str, ...]


@dataclass(frozen=True)
class _Selection:
    kept: str
    cut_hunks: int
    cut_paths: list[str]


def _header_value(header: list[str], prefix: str) -> str | None:
    """What follows `prefix` on the first header line starting with it, minus any timestamp."""
    for line in header:
        if line.startswith(prefix):
            # Plain `diff -u` appends "\t<timestamp>" to the file names.
            return line[len(prefix) :].rstrip("\r\n").split("\t")[0]
    return None


def _file_path(header: list[str]) -> str:
    """The path a file diff changes: its new name, or its old one if the file was deleted."""
    for name in (_header_value(header, "+++ "), _header_value(header, "--- ")):
        if name is not None and name != "/dev/null":
            return name[2:] if name.startswith(("a/", "b/")) else name
    # Binary and mode-only changes have no ---/+++ lines: "diff --git a/x b/x" names the file.
    names = _header_value(header, "diff --git ")
    return "(unknown file)" if names is None else names.rpartition(" b/")[2]


def _parse_file(lines: list[str]) -> _FileDiff:
    """One file's diff: header lines up to the first "@@", then one hunk per "@@" line."""
    # Hunk body lines start with " ", "+", "-" or "\\", so a line starting "@@" opens a hunk.
    starts = [i for i, line in enumerate(lines) if line.startswith("@@")]
    header = lines[: starts[0]] if starts else lines
    hunks = tuple("".join(lines[start:end]) for start, end in pairwise([*starts, len(lines)]))
    return _FileDiff(_file_path(header), "".join(header), hunks)


def _parse_diff(diff: str) -> tuple[str, list[_FileDiff]]:
    """The text before the first file, and the files; without `diff --git`, one file."""
    lines = _split_lines(diff)
    starts = [i for i, line in enumerate(lines) if line.startswith("diff --git ")] or [0]
    files = [_parse_file(lines[start:end]) for start, end in pairwise([*starts, len(lines)])]
    return "".join(lines[: starts[0]]), files


def _select(preamble: str, files: list[_FileDiff], room: int) -> _Selection:
    """Keep, in order, every header and hunk that still fits in `room` characters (first fit).

    A hunk that does not fit is skipped and later, smaller ones are still tried; a file's hunks
    are only kept after its header.
    """
    kept = [preamble] if len(preamble) <= room else []
    used = len(preamble) if kept else 0
    cut_hunks = 0
    cut_paths: list[str] = []
    for file in files:
        lost = len(file.hunks)
        header_fits = used + len(file.header) <= room
        if header_fits:
            kept.append(file.header)
            used += len(file.header)
            for hunk in file.hunks:
                if used + len(hunk) <= room:
                    kept.append(hunk)
                    used += len(hunk)
                    lost -= 1
        if lost or not header_fits:
            cut_hunks += lost
            cut_paths.append(file.path)
    return _Selection("".join(kept), cut_hunks, cut_paths)


def _diff_marker(cut_hunks: int, paths: list[str], listed: int) -> str:
    """The marker naming the first `listed` of `paths` and counting the rest."""
    names = paths[:listed]
    if listed < len(paths):
        names = [*names, f"{len(paths) - listed} more"]
    return (
        f"[... {cut_hunks} hunks in {len(paths)} files cut to fit the budget:"
        f" {', '.join(names)} ...]"
    )


def _fit_marker(cut_hunks: int, paths: list[str], room: int) -> str:
    """The marker naming as many of `paths`, in order, as fit in `room` characters.

    The caller makes sure the marker naming none of them fits.
    """
    # Each named path costs its length plus ", "; "{n} more" never grows as more are named.
    spare = room - len(_diff_marker(cut_hunks, paths, 0))
    listed = 0
    for path in paths:
        spare -= len(path) + 2
        if spare < 0:
            break
        listed += 1
    return _diff_marker(cut_hunks, paths, listed)


def truncate_diff(diff: str, max_tokens: int) -> str:
    """`diff` if it fits in `max_tokens`, else whole hunks of it and a marker line.

    Files are walked in order. A file's header lines (`diff --git`, `index`, `---`, `+++` ...)
    are kept if they fit, then each of its hunks that fits, first fit: a hunk that does not fit
    is dropped whole and later hunks are still tried. A file whose header fits but none of
    whose hunks do is still listed by its header. Text before the first `diff --git` line is a
    preamble, kept if it fits; a diff without `diff --git` lines is one file named by its
    `+++` line (`---` for a deletion). The marker line that ends the result is
    `[... {k} hunks in {f} files cut to fit the budget: {paths} ...]`, naming each file that
    lost hunks (or, for a file without hunks, its header) in diff order. If naming them all
    would not fit, it names the first ones that do and then "{n} more".

    The result, marker included, fits in `max_tokens`. Raises ValueError if even the marker
    naming no file cannot fit (budgets under about 20 tokens).
    """
    if estimate_tokens(diff) <= max_tokens:
        return diff
    budget = _max_chars(max_tokens)
    preamble, files = _parse_diff(diff)
    # The marker's size depends on what is cut, which depends on the room left for content:
    # reserve what the last attempt's marker needed until one fits. The reserve grows on every
    # failed attempt, so this ends.
    reserve = 0
    while reserve <= budget:
        selection = _select(preamble, files, budget - reserve)
        paths = selection.cut_paths
        result = _with_line(selection.kept, _diff_marker(selection.cut_hunks, paths, len(paths)))
        if len(result) <= budget:
            return result
        reserve = len(result) - len(selection.kept)
    # Naming every file that lost hunks would not fit: reserve the marker naming none of them
    # (no count can exceed the diff's totals), then name as many as fit.
    all_paths = [file.path for file in files]
    reserve = len(_diff_marker(sum(len(file.hunks) for file in files), all_paths, 0)) + 2
    if reserve > budget:
        raise ValueError(f"{max_tokens} tokens cannot hold the marker for this diff")
    selection = _select(preamble, files, budget - reserve)
    room = budget - len(selection.kept) - 2
    return _with_line(selection.kept, _fit_marker(selection.cut_hunks, selection.cut_paths, room))


# --- sections --------------------------------------------------------------------------------


def _shares(sizes: list[int], budget: int) -> list[int]:
    """Token shares for sections of `sizes` (in priority order) that together exceed `budget`.

    Sections no larger than an equal share of what is left keep their size, repeatedly; the rest
    share what is left equally, the most important taking the remainder. While that share is
    under MIN_TRUNCATE_TOKENS, the least important of them gets 0 and the rest share again.
    """
    shares = list(sizes)
    large = list(range(len(sizes)))
    left = budget
    while large:
        share, remainder = divmod(left, len(large))
        small = [i for i in large if sizes[i] <= share]
        if small:
            left -= sum(sizes[i] for i in small)
            large = [i for i in large if sizes[i] > share]
        elif share < MIN_TRUNCATE_TOKENS:
            shares[large.pop()] = 0
        else:
            for rank, i in enumerate(large):
                shares[i] = share + (1 if rank < remainder else 0)
            break
    return shares


def fit_sections(sections: Sequence[tuple[str, str]], max_tokens: int) -> list[tuple[str, str]]:
    """The (name, text) sections, texts cut so their estimated tokens sum to at most `max_tokens`.

    Sections come in priority order, most important first. If all fit, all are returned whole.
    Otherwise sections no larger than an equal share of the budget keep their text whole (and
    the share is recomputed without them until no more qualify), and the larger ones share the
    rest equally, cut by `truncate_head_tail`; the most important get any tokens left by the
    division. A larger section whose share would be under MIN_TRUNCATE_TOKENS (30) becomes ""
    with no marker, least important first, and its share goes to the others. Names are kept.

    Raises ValueError if `max_tokens` is negative.
    """
    if max_tokens < 0:
        raise ValueError(f"max_tokens must not be negative, not {max_tokens}")
    sizes = [estimate_tokens(text) for _, text in sections]
    if sum(sizes) <= max_tokens:
        return list(sections)
    shares = _shares(sizes, max_tokens)
    return [
        (name, truncate_head_tail(text, share) if share else "")
        for (name, text), share in zip(sections, shares, strict=True)
    ]

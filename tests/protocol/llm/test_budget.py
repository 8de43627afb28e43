from __future__ import annotations

import json
import random
import re

import pytest

from protocol.llm.budget import (
    CHARS_PER_TOKEN,
    MIN_TRUNCATE_TOKENS,
    estimate_message_tokens,
    estimate_tokens,
    fit_sections,
    truncate_diff,
    truncate_head_tail,
)

MIDDLE_MARKER = re.compile(
    r"^\[\.\.\. (\d+) lines \((\d+) characters, about (\d+) tokens\) cut from the middle \.\.\.\]$",
    re.MULTILINE,
)
DIFF_MARKER = re.compile(
    r"\[\.\.\. (\d+) hunks in (\d+) files cut to fit the budget: (.*) \.\.\.\]\n\Z"
)


def numbered_lines(count: int, width: int = 20) -> str:
    return "".join(f"line {n:05d} ".ljust(width - 1, "x") + "\n" for n in range(count))


def split_around_marker(result: str) -> tuple[str, re.Match[str], str]:
    """The head before the marker line (minus the newline ending it), the marker, the tail."""
    markers = list(MIDDLE_MARKER.finditer(result))
    assert len(markers) == 1
    marker = markers[0]
    return result[: marker.start()], marker, result[marker.end() + 1 :]


# --- estimates -------------------------------------------------------------------------------


def test_token_estimates_round_up_characters_over_three_and_a_half() -> None:
    assert CHARS_PER_TOKEN == 3.5
    assert estimate_tokens("") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("x" * 7) == 2
    assert estimate_tokens("x" * 8) == 3


def test_message_estimates_add_content_tool_calls_and_four_tokens_per_message() -> None:
    calls = [{"id": "1", "function": {"name": "read", "arguments": '{"path": "a.py"}'}}]
    messages: list[dict[str, object]] = [
        {"role": "system", "content": "x" * 35},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "content": "y" * 7, "tool_calls": []},
        {"role": "user"},
    ]
    expected = 10 + estimate_tokens(json.dumps(calls, sort_keys=True)) + 2 + 0 + 4 * 4
    assert estimate_message_tokens(messages) == expected
    assert estimate_message_tokens([]) == 0


def test_message_estimates_stringify_non_string_content() -> None:
    assert estimate_message_tokens([{"content": 1234567}]) == 2 + 4


# --- truncate_head_tail ----------------------------------------------------------------------


def test_a_text_that_fits_is_returned_unchanged() -> None:
    text = "x" * 35
    assert truncate_head_tail(text, 10) is text
    assert truncate_head_tail("", 0) == ""
    # Even a budget too small to cut to is fine when nothing needs cutting.
    assert truncate_head_tail("short", 2) == "short"


def test_the_marker_describes_exactly_the_removed_middle() -> None:
    text = numbered_lines(200)
    result = truncate_head_tail(text, 300)
    head, marker, tail = split_around_marker(result)
    middle = text[len(head) : len(text) - len(tail)]
    assert head + middle + tail == text
    assert int(marker[1]) == middle.count("\n") == len(middle.splitlines())
    assert int(marker[2]) == len(middle)
    assert int(marker[3]) == estimate_tokens(middle)


def test_cuts_fall_on_line_boundaries_when_lines_are_short() -> None:
    text = numbered_lines(500, width=30)
    original_lines = set(text.splitlines())
    # From 150 tokens on, the last 20% of the tail (8% of what is kept) spans a whole line.
    for budget in range(150, 2000, 37):
        result = truncate_head_tail(text, budget)
        head, _, tail = split_around_marker(result)
        assert head.endswith("\n") or head == ""
        for line in (head + tail).splitlines():
            assert line in original_lines


def test_a_text_without_newlines_is_cut_mid_line_with_the_marker_on_its_own_line() -> None:
    text = "".join(chr(ord("a") + n % 26) for n in range(5000))
    result = truncate_head_tail(text, 100)
    first, marker_line, tail = result.split("\n")
    marker = MIDDLE_MARKER.fullmatch(marker_line)
    assert marker is not None
    assert first and tail
    assert text.startswith(first) and text.endswith(tail)
    assert int(marker[1]) == 1
    assert int(marker[2]) == len(text) - len(first) - len(tail)


def test_head_share_splits_the_kept_characters_between_head_and_tail() -> None:
    text = "z" * 10_000
    head, _, tail = split_around_marker(truncate_head_tail(text, 400, head_share=0.6))
    head = head.removesuffix("\n")
    assert len(head) == pytest.approx(1.5 * len(tail), abs=2)
    only_tail = truncate_head_tail(text, 400, head_share=0.0)
    assert MIDDLE_MARKER.match(only_tail)
    head, _, tail = split_around_marker(truncate_head_tail(text, 400, head_share=1.0))
    assert tail == "" and len(head) > 1000


def test_the_result_never_exceeds_the_budget() -> None:
    rng = random.Random(7)
    texts = [
        numbered_lines(300),
        "x" * 3000,
        "\n" * 900,
        "ab\n" * 700 + "no final newline",
        "".join("y" * rng.randint(0, 300) + "\n" for _ in range(200)),
    ]
    for text in texts:
        # Every tight budget, where the marker is most of the result; then a sample.
        budgets = [*range(MIN_TRUNCATE_TOKENS, 150), *range(150, estimate_tokens(text) + 5, 7)]
        for budget in budgets:
            for head_share in (0.0, 0.25, 0.6, 1.0):
                result = truncate_head_tail(text, budget, head_share=head_share)
                assert estimate_tokens(result) <= budget
                if result != text:
                    head, _, tail = split_around_marker(result)
                    assert text.startswith(head.removesuffix("\n")) and text.endswith(tail)


def test_a_budget_under_the_minimum_is_refused_when_the_text_must_be_cut() -> None:
    with pytest.raises(ValueError, match="minimum"):
        truncate_head_tail("x" * 1000, MIN_TRUNCATE_TOKENS - 1)


@pytest.mark.parametrize("head_share", [-0.1, 1.5])
def test_a_head_share_outside_zero_to_one_is_refused(head_share: float) -> None:
    with pytest.raises(ValueError, match="head_share"):
        truncate_head_tail("x", 100, head_share=head_share)


# --- truncate_diff ---------------------------------------------------------------------------


def make_hunk(path: str, number: int, body_lines: int) -> str:
    """A hunk whose every line is unique to (path, number), so a partial copy is detectable."""
    start = number * 100 + 1
    lines = [f"@@ -{start},{body_lines} +{start},{body_lines} @@ def f{number}():\n"]
    for n in range(body_lines):
        sign = " -+"[n % 3]
        lines.append(f"{sign}    value_{path}_{number}_{n} = compute({n})\n")
    return "".join(lines)


def make_header(path: str) -> str:
    return (
        f"diff --git a/{path} b/{path}\nindex 1234567..89abcde 100644\n--- a/{path}\n+++ b/{path}\n"
    )


def make_diff(files: dict[str, list[int]]) -> tuple[str, list[str]]:
    """A git diff of `files` (path: body size of each hunk) and its pieces in order."""
    pieces: list[str] = []
    for path, sizes in files.items():
        pieces.append(make_header(path))
        pieces.extend(make_hunk(path, number, size) for number, size in enumerate(sizes))
    return "".join(pieces), pieces


def kept_body(result: str) -> str:
    marker = DIFF_MARKER.search(result)
    assert marker is not None
    return result[: marker.start()]


def assert_whole_pieces(result: str, pieces: list[str]) -> None:
    """The result before its marker is some of `pieces`, in order, each whole."""
    rest = kept_body(result)
    for piece in pieces:
        if rest.startswith(piece):
            rest = rest[len(piece) :]
        else:
            hunk_lines = piece.splitlines()[1:] if piece.startswith("@@") else []
            assert not any(line in result for line in hunk_lines)
    assert rest == ""


def marker_of(result: str) -> tuple[int, int, str]:
    marker = DIFF_MARKER.search(result)
    assert marker is not None
    return int(marker[1]), int(marker[2]), marker[3]


def test_a_diff_that_fits_is_returned_unchanged() -> None:
    diff, _ = make_diff({"a.py": [5, 5], "b.py": [3]})
    assert truncate_diff(diff, estimate_tokens(diff)) is diff


def test_a_cut_diff_keeps_only_whole_hunks_within_the_budget() -> None:
    diff, pieces = make_diff({"a.py": [4, 30, 2, 12], "b/c.py": [7, 1], "d.md": [25, 3, 9]})
    for budget in range(20, estimate_tokens(diff) + 3):
        try:
            result = truncate_diff(diff, budget)
        except ValueError:
            assert budget < MIN_TRUNCATE_TOKENS
            continue
        assert estimate_tokens(result) <= budget
        if result != diff:
            assert_whole_pieces(result, pieces)
            cut_hunks, cut_files, _ = marker_of(result)
            kept_hunks = kept_body(result).count("\n@@ ")
            assert kept_hunks + cut_hunks == 9
            assert cut_files >= 1


def test_the_marker_counts_cut_hunks_and_names_the_files_that_lost_them() -> None:
    diff, pieces = make_diff({"a.py": [3, 3], "big.py": [3, 400, 400], "c.py": [3]})
    budget = estimate_tokens(diff) - 2 * estimate_tokens(make_hunk("big.py", 1, 400)) + 40
    result = truncate_diff(diff, budget)
    assert_whole_pieces(result, pieces)
    assert marker_of(result) == (2, 1, "big.py")
    assert make_hunk("big.py", 0, 3) in result
    assert make_hunk("c.py", 0, 3) in result


def test_a_hunk_too_big_to_fit_is_skipped_and_later_smaller_hunks_are_kept() -> None:
    diff, pieces = make_diff({"a.py": [500, 2], "b.py": [2]})
    result = truncate_diff(diff, 200)
    assert_whole_pieces(result, pieces)
    assert make_hunk("a.py", 0, 500) not in result
    assert make_hunk("a.py", 1, 2) in result
    assert make_hunk("b.py", 0, 2) in result
    assert marker_of(result) == (1, 1, "a.py")


def test_a_file_whose_hunks_do_not_fit_is_still_listed_by_its_header() -> None:
    diff, _ = make_diff({"one.py": [300], "two.py": [300, 200]})
    result = truncate_diff(diff, 120)
    assert result == make_header("one.py") + make_header("two.py") + (
        "[... 3 hunks in 2 files cut to fit the budget: one.py, two.py ...]\n"
    )


def test_headers_that_do_not_fit_are_dropped_and_their_files_named() -> None:
    diff, pieces = make_diff({f"pkg/module_{n}.py": [40] for n in range(6)})
    result = truncate_diff(diff, 120)
    assert estimate_tokens(result) <= 120
    assert_whole_pieces(result, pieces)
    cut_hunks, cut_files, names = marker_of(result)
    assert (cut_hunks, cut_files) == (6, 6)
    assert names == ", ".join(f"pkg/module_{n}.py" for n in range(6))
    assert result.startswith(make_header("pkg/module_0.py"))
    assert make_header("pkg/module_5.py") not in result


def test_a_file_without_hunks_that_is_dropped_is_named_in_the_marker() -> None:
    binary = "diff --git a/logo.png b/logo.png\nindex 1..2 100644\nBinary files differ\n"
    diff, _ = make_diff({"a.py": [200]})
    result = truncate_diff(diff + binary, estimate_tokens(make_header("a.py")) + 25)
    assert result.startswith(make_header("a.py"))
    assert marker_of(result) == (1, 2, "a.py, logo.png")


def test_a_marker_too_long_to_name_every_file_names_the_first_and_counts_the_rest() -> None:
    diff, pieces = make_diff(
        {f"src/deeply/nested/package/module_{n:03d}.py": [20] for n in range(300)}
    )
    result = truncate_diff(diff, 400)
    assert estimate_tokens(result) <= 400
    assert_whole_pieces(result, pieces)
    cut_hunks, cut_files, names = marker_of(result)
    *named, more = names.split(", ")
    assert named == [f"src/deeply/nested/package/module_{n:03d}.py" for n in range(len(named))]
    assert more == f"{cut_files - len(named)} more"
    assert cut_hunks == cut_files == 300 - kept_body(result).count("\n@@ ")


def test_a_budget_too_small_for_the_marker_is_refused() -> None:
    diff, _ = make_diff({"a.py": [50]})
    with pytest.raises(ValueError, match="marker"):
        truncate_diff(diff, 10)


def test_a_preamble_before_the_first_file_is_kept_when_it_fits() -> None:
    preamble = "commit 0123abcd\nAuthor: builder\n\n    Add the thing\n\n"
    diff, pieces = make_diff({"a.py": [3], "b.py": [300]})
    result = truncate_diff(preamble + diff, 150)
    assert result.startswith(preamble + make_header("a.py") + make_hunk("a.py", 0, 3))
    assert_whole_pieces(result, [preamble, *pieces])
    assert marker_of(result) == (1, 1, "b.py")


def test_a_diff_without_git_headers_is_one_file_named_by_its_plus_plus_plus_line() -> None:
    header = "--- a/src/app.py\n+++ b/src/app.py\n"
    hunks = [make_hunk("app", 0, 3), make_hunk("app", 1, 300), make_hunk("app", 2, 4)]
    result = truncate_diff(header + "".join(hunks), 120)
    assert result == header + hunks[0] + hunks[2] + (
        "[... 1 hunks in 1 files cut to fit the budget: src/app.py ...]\n"
    )


def test_plain_diff_timestamps_and_deleted_files_give_the_right_path() -> None:
    plain = "--- old/x.c\t2024-05-01 10:00:00\n+++ new/x.c\t2024-05-02 10:00:00\n"
    assert marker_of(truncate_diff(plain + make_hunk("x", 0, 300), 60))[2] == "new/x.c"
    deleted = (
        "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n"
    )
    assert marker_of(truncate_diff(deleted + make_hunk("g", 0, 300), 60))[2] == "gone.py"


def test_a_diff_without_a_final_newline_still_gets_the_marker_on_its_own_line() -> None:
    diff, _ = make_diff({"a.py": [300], "b.py": [2]})
    result = truncate_diff(diff.removesuffix("\n"), 150)
    assert result.endswith("compute(1)\n[... 1 hunks in 1 files cut to fit the budget: a.py ...]\n")


def test_random_diffs_stay_within_budget_and_keep_only_whole_hunks() -> None:
    rng = random.Random(11)
    for _ in range(40):
        files = {
            f"dir{n}/file_{n}.py": [rng.randint(1, 80) for _ in range(rng.randint(0, 4))]
            for n in range(rng.randint(1, 8))
        }
        diff, pieces = make_diff(files)
        for budget in sorted({rng.randint(20, estimate_tokens(diff) + 10) for _ in range(30)}):
            try:
                result = truncate_diff(diff, budget)
            except ValueError:
                assert budget < MIN_TRUNCATE_TOKENS
                continue
            assert estimate_tokens(result) <= budget
            if result != diff:
                assert_whole_pieces(result, pieces)


# --- fit_sections ----------------------------------------------------------------------------


def test_sections_that_fit_are_returned_whole() -> None:
    sections = [("task", "a" * 70), ("diff", "b" * 70)]
    assert fit_sections(sections, 40) == sections


def test_small_sections_stay_whole_and_large_ones_share_the_rest_equally() -> None:
    small = "s" * 70  # 20 tokens
    large = numbered_lines(200)
    result = fit_sections([("small", small), ("one", large), ("two", large)], 220)
    assert [name for name, _ in result] == ["small", "one", "two"]
    assert result[0][1] == small
    for _, text in result[1:]:
        assert MIDDLE_MARKER.search(text)
        assert 80 <= estimate_tokens(text) <= 100
    assert sum(estimate_tokens(text) for _, text in result) <= 220


def test_shares_are_recomputed_until_no_more_sections_fit_whole() -> None:
    # An equal third of 240 is 80: only "a" fits it. Without "a" the rest share 90 each,
    # which "b" fits whole, leaving "c" the 90 tokens left.
    a, b, c = "a" * 210, "b" * 315, numbered_lines(300)
    result = fit_sections([("a", a), ("b", b), ("c", c)], 240)
    assert result[0] == ("a", a)
    assert result[1] == ("b", b)
    assert 80 <= estimate_tokens(result[2][1]) <= 90


def test_when_shares_are_too_thin_the_least_important_sections_are_emptied_first() -> None:
    large = numbered_lines(100)
    # Shares of 50 // 3 = 16, then 50 // 2 = 25, are both under 30 tokens.
    result = fit_sections([("first", large), ("second", large), ("third", large)], 50)
    assert result[1:] == [("second", ""), ("third", "")]
    assert MIDDLE_MARKER.search(result[0][1])
    assert 40 <= estimate_tokens(result[0][1]) <= 50
    # 70 // 3 = 23 is too thin, but 70 // 2 = 35 is not: only the last is emptied.
    result = fit_sections([("first", large), ("second", large), ("third", large)], 70)
    assert result[2] == ("third", "")
    assert all(MIDDLE_MARKER.search(text) for _, text in result[:2])


def test_a_section_whose_share_is_under_thirty_tokens_becomes_empty_without_a_marker() -> None:
    result = fit_sections([("only", "x" * 1000)], MIN_TRUNCATE_TOKENS - 1)
    assert result == [("only", "")]


def test_more_important_sections_never_get_less_than_equally_large_later_ones() -> None:
    text = "q" * 5000
    for budget in range(60, 400, 7):
        sizes = [estimate_tokens(t) for _, t in fit_sections([("a", text), ("b", text)], budget)]
        assert sizes[0] >= sizes[1]


def test_fitted_sections_never_exceed_the_budget() -> None:
    rng = random.Random(3)
    for _ in range(300):
        sections = [
            (f"s{n}", numbered_lines(rng.randint(0, 60), width=rng.randint(5, 60)))
            for n in range(rng.randint(0, 6))
        ]
        budget = rng.randint(0, 700)
        result = fit_sections(sections, budget)
        assert [name for name, _ in result] == [name for name, _ in sections]
        assert sum(estimate_tokens(text) for _, text in result) <= budget
        for (_, original), (_, text) in zip(sections, result, strict=True):
            assert text in (original, "") or MIDDLE_MARKER.search(text)


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        fit_sections([("a", "x")], -1)

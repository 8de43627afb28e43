"""Whether an agent gets anywhere: pure functions over its rounds."""

from __future__ import annotations

from typing import Any

from agent_worker.progress import Call, Round, StallKind, stall_of, trailing_stalls


def calls(*made: tuple[str, dict[str, Any], str]) -> tuple[Call, ...]:
    return tuple(Call.of(name, arguments, outcome) for name, arguments, outcome in made)


READ_A = ("read_file", {"path": "a.py"}, "ok")
LIST = ("list_files", {"path": "."}, "ok")
WRITE_A = ("write_file", {"path": "a.py", "content": "x = 1\n"}, "ok")


def rounds(*each: tuple[Call, ...] | None) -> list[Round]:
    """One round per argument: its calls, or None for a cut answer."""
    return [Round(i, cut=True) if c is None else Round(i, c) for i, c in enumerate(each, 1)]


def kind(*each: tuple[Call, ...] | None) -> StallKind | None:
    stall = stall_of(rounds(*each))
    return stall.kind if stall else None


def test_a_round_without_calls_is_prose_and_a_cut_answer_is_cut() -> None:
    assert kind(()) == StallKind.PROSE
    assert kind(calls(READ_A), None) == StallKind.CUT


def test_a_new_call_is_progress_and_the_same_call_again_is_not() -> None:
    assert kind(calls(READ_A)) is None
    assert kind(calls(READ_A), calls(LIST)) is None
    assert kind(calls(READ_A), calls(READ_A)) == StallKind.REPEATED


def test_arguments_in_another_order_are_the_same_call() -> None:
    one = ("read_file", {"path": "a.py", "start": 1}, "ok")
    other = ("read_file", {"start": 1, "path": "a.py"}, "ok")
    assert kind(calls(one), calls(other)) == StallKind.REPEATED


def test_a_loop_of_two_calls_repeats_even_when_not_back_to_back() -> None:
    assert kind(calls(LIST), calls(READ_A), calls(LIST)) == StallKind.REPEATED


def test_reading_again_after_a_write_is_progress_but_the_same_write_again_is_not() -> None:
    assert kind(calls(READ_A), calls(WRITE_A), calls(READ_A)) is None
    assert kind(calls(WRITE_A), calls(WRITE_A)) == StallKind.REPEATED


def test_only_failing_calls_stall_and_one_good_call_among_them_does_not() -> None:
    unknown = ("open_file", {"path": "a.py"}, "error")
    refused = ("write_file", {"path": "/etc/x", "content": ""}, "refused")
    assert kind(calls(unknown, refused)) == StallKind.FAILED
    assert kind(calls(unknown, READ_A)) is None


def test_the_stalls_counted_are_those_since_the_last_progress() -> None:
    history = rounds((), calls(READ_A), (), None)
    assert [s.kind for s in trailing_stalls(history)] == [StallKind.PROSE, StallKind.CUT]
    assert [s.round for s in trailing_stalls(history)] == [3, 4]
    assert trailing_stalls(rounds((), calls(READ_A))) == []


def test_looking_around_once_every_file_is_written_stalls_from_the_second_look() -> None:
    done = Round(1, calls(WRITE_A), all_written=True)
    look = Round(2, calls(LIST), all_written=True)
    again = Round(3, calls(("read_file", {"path": "a.py", "start": 2}, "ok")), all_written=True)
    assert stall_of([done, look]) is None, "one look at what it wrote is a review"
    stall = stall_of([done, look, again])
    assert stall is not None and stall.kind == StallKind.LOOKING
    assert "all its files are written" in stall.detail
    # Before every file is written, looking around is work.
    assert (
        stall_of([Round(1, calls(WRITE_A)), Round(2, calls(LIST)), Round(3, calls(READ_A))]) is None
    )
    # Running the tests after writing is work too.
    run = Round(3, calls(("run_command", {"command": "pytest"}, "ok")), all_written=True)
    assert stall_of([done, look, run]) is None

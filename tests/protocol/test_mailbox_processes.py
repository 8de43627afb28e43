"""The mailbox between real processes: many senders at once, and kill -9 at random instants."""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TeamDir
from tests.processes import finish, kill9, start, wait_for_line

PROCS = Path(__file__).parent / "procs"


@dataclass
class Outcome:
    """What a run left behind, read back from the logs and the inbox."""

    sent: list[str]
    effects: list[list[str]]
    bad: list[str]
    pending: list[str]
    redeliveries: int
    unflagged_calls: Counter[str]

    def problems(self) -> list[str]:
        """Everything that breaks exactly-once, in-order, whole delivery; empty when all is well."""
        found = []
        handled = [e[1] for e in self.effects]
        counts = Counter(handled)
        duplicated = sorted(mid for mid, n in counts.items() if n > 1)
        if duplicated:
            found.append(f"{len(duplicated)} handled twice, e.g. {duplicated[:3]}")
        lost = sorted(set(self.sent) - set(handled))
        if lost:
            found.append(f"{len(lost)} sent but never handled, e.g. {lost[:3]}")
        torn = [e[1] for e in self.effects if e[4] != "whole"]
        if torn:
            found.append(f"{len(torn)} handled half-written, e.g. {torn[:3]}")
        if self.bad:
            found.append(f"{len(self.bad)} quarantined, e.g. {self.bad[:3]}")
        if self.pending:
            found.append(f"{len(self.pending)} still waiting in new/")
        twice = [mid for mid, n in self.unflagged_calls.items() if n > 1]
        if twice:
            found.append(f"{len(twice)} given to a handler twice unflagged, e.g. {twice[:3]}")
        by_sender: dict[str, list[int]] = defaultdict(list)
        for effect in self.effects:
            by_sender[effect[2]].append(int(effect[3]))
        for sender, indexes in by_sender.items():
            if indexes != sorted(indexes):
                found.append(f"{sender}'s messages were handled out of order")
        return found


def read_outcome(team: TeamDir, sent_logs: list[Path], effects: Path) -> Outcome:
    sent = [line for log in sent_logs if log.exists() for line in log.read_text().split()]
    lines = effects.read_text().splitlines() if effects.exists() else []
    inbox = team.layout.inbox("worker")
    bad = [name for name in os.listdir(inbox.bad) if not name.endswith(".reason")]
    calls_file = Path(f"{effects}.calls")
    calls = (
        [line.split(" ") for line in calls_file.read_text().splitlines()]
        if calls_file.exists()
        else []
    )
    redeliveries = sum(1 for _, flag in calls if flag == "1")
    unflagged = Counter(message_id for message_id, flag in calls if flag == "0")
    effect_rows = [line.split(" ") for line in lines]
    return Outcome(sent, effect_rows, bad, os.listdir(inbox.new), redeliveries, unflagged)


def drain(team: TeamDir, effects: Path) -> None:
    """Run a receiver until the inbox stays empty for a second."""
    proc = start(PROCS / "receiver.py", team.workspace, team.team_id, "worker", effects, 1.0)
    finish(proc)


def test_eight_senders_times_500_messages_are_each_handled_once_in_order(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    # It stops by itself once the inbox has been empty for 3 s.
    receiver = start(
        PROCS / "receiver.py", team_dir.workspace, team_dir.team_id, "worker", effects, 3.0
    )
    wait_for_line(receiver, "started")
    logs = [tmp_path / f"sent-{n}.log" for n in range(8)]
    senders = [
        start(
            PROCS / "sender.py",
            team_dir.workspace,
            team_dir.team_id,
            f"s{n}",
            "worker",
            500,
            0,
            log,
        )
        for n, log in enumerate(logs)
    ]
    for sender in senders:
        finish(sender)
    finish(receiver)

    outcome = read_outcome(team_dir, logs, effects)
    assert len(outcome.sent) == 4000
    assert outcome.problems() == []
    assert outcome.redeliveries == 0
    assert len(outcome.effects) == 4000


def crash_rounds(team: TeamDir, tmp_path: Path, rounds: int, *, naive: bool, seed: int) -> Outcome:
    """Each round starts a sender and kills it with -9 at a random instant while it sends;
    the receiver is killed at a random instant too, and restarted. Returns what is left after
    a final drain."""
    rng = random.Random(seed)
    effects = tmp_path / "effects.log"
    sent_log = tmp_path / "sent.log"
    receiver = None
    for round_no in range(rounds):
        if receiver is None:
            receiver = start(PROCS / "receiver.py", team.workspace, team.team_id, "worker", effects)
            wait_for_line(receiver, "started")
        extra = ("--naive",) if naive else ()
        sender = start(
            PROCS / "sender.py", team.workspace, team.team_id, "s", "worker", 400,
            round_no * 1000, sent_log, *extra,
        )  # fmt: skip
        wait_for_line(sender, "started")
        kills = [(rng.uniform(0.0, 0.08), sender), (rng.uniform(0.0, 0.08), receiver)]
        began = time.monotonic()
        for at, proc in sorted(kills, key=lambda k: k[0]):
            time.sleep(max(0.0, began + at - time.monotonic()))
            kill9(proc)
        receiver = None
    drain(team, effects)
    return read_outcome(team, [sent_log], effects)


def test_kill_9_of_sender_and_receiver_loses_duplicates_and_tears_nothing(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    outcome = crash_rounds(team_dir, tmp_path, 50, naive=False, seed=1)
    print(f"sent {len(outcome.sent)}, redelivered after a crash {outcome.redeliveries}")
    assert 0 < len(outcome.sent) < 50 * 400, "the senders were not killed while sending"
    assert outcome.problems() == []
    # Each receiver kill can interrupt at most one handler: at most one redelivery per kill.
    assert outcome.redeliveries <= 50
    # Some kills must have landed between a handler's effect and its commit.
    assert outcome.redeliveries > 0, "no kill landed inside a handler: the test proved little"


def test_the_crash_harness_catches_a_naive_sender(team_dir: TeamDir, tmp_path: Path) -> None:
    """Negative control: writing straight into new/ must make the same harness fail."""
    outcome = crash_rounds(team_dir, tmp_path, 10, naive=True, seed=2)
    problems = outcome.problems()
    print("the harness found:", problems)
    assert problems, "the harness did not notice torn or lost messages from a naive sender"


pytestmark = pytest.mark.timeout(240)

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from protocol import (
    Delivery,
    Guidance,
    InboxBusy,
    Mailbox,
    MessageTooLarge,
    ProgressUpdate,
    Receiver,
    ShutdownRequest,
    UnknownRecipient,
    list_inbox,
    make_message,
)
from protocol.mailbox import MessageName
from tests.conftest import TeamDir
from tests.processes import finish, start, wait_for_line

PROCS = Path(__file__).parent / "procs"


def update(team: TeamDir, n: int, sender: str = "user", recipient: str = "worker"):  # type: ignore[no-untyped-def]
    return make_message(
        ProgressUpdate(task_id=1, phase="step", detail=str(n)),
        team=team.team_id,
        sender=sender,
        recipient=recipient,
    )


class Recorder:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)

    @property
    def details(self) -> list[str]:
        return [d.message.payload.detail for d in self.deliveries]  # type: ignore[union-attr]


def receive_all(team: TeamDir, agent: str = "worker") -> Recorder:
    recorder = Recorder()
    with Receiver(team.layout, team.team_id, agent, recorder, watch=False) as receiver:
        receiver.process_pending()
    return recorder


def test_send_puts_a_numbered_file_in_new(team_dir: TeamDir) -> None:
    message = update(team_dir, 0)
    delivered = team_dir.mailbox().send(message)
    assert delivered.path.parent == team_dir.layout.inbox("worker").new
    name = MessageName.parse(delivered.path.name)
    assert name == MessageName(1, "user", message.id)
    assert os.listdir(team_dir.layout.inbox("worker").tmp) == []


def test_messages_are_handled_in_delivery_order_and_moved_to_cur(team_dir: TeamDir) -> None:
    for n in range(25):
        team_dir.mailbox().send(update(team_dir, n))
    recorder = receive_all(team_dir)
    assert recorder.details == [str(n) for n in range(25)]
    assert [d.seq for d in recorder.deliveries] == list(range(1, 26))
    inbox = team_dir.layout.inbox("worker")
    assert os.listdir(inbox.new) == []
    assert len(os.listdir(inbox.cur)) == 25


def test_a_handled_message_is_not_handled_again_by_the_next_receiver(team_dir: TeamDir) -> None:
    team_dir.mailbox().send(update(team_dir, 1))
    assert len(receive_all(team_dir).deliveries) == 1
    assert receive_all(team_dir).deliveries == []


def test_the_same_message_id_sent_twice_is_handled_once(team_dir: TeamDir) -> None:
    message = update(team_dir, 1)
    team_dir.mailbox().send(message)
    assert len(receive_all(team_dir).deliveries) == 1
    team_dir.mailbox().send(message)  # a sender that retried after a crash
    assert receive_all(team_dir).deliveries == []
    [bad] = list_inbox(team_dir.layout, "worker", states=("bad",), team=team_dir.team_id)
    assert bad.problem is not None and "duplicate" in bad.problem


def test_sending_to_an_agent_without_an_inbox_is_an_error(team_dir: TeamDir) -> None:
    with pytest.raises(UnknownRecipient, match=r"no inbox for agent 'ghost'.*coordinator"):
        team_dir.mailbox().send(update(team_dir, 1, recipient="ghost"))


def test_an_oversized_message_is_refused_before_it_is_written(team_dir: TeamDir) -> None:
    big = make_message(
        ProgressUpdate(task_id=1, phase="x", detail="y" * 2_000_000),
        team=team_dir.team_id,
        sender="user",
        recipient="worker",
    )
    with pytest.raises(MessageTooLarge, match="limit"):
        team_dir.mailbox().send(big)
    assert os.listdir(team_dir.layout.inbox("worker").new) == []


def test_a_second_receiver_on_the_same_inbox_is_refused(team_dir: TeamDir) -> None:
    with (
        Receiver(team_dir.layout, team_dir.team_id, "worker", Recorder(), watch=False),
        pytest.raises(InboxBusy, match="worker"),
        Receiver(team_dir.layout, team_dir.team_id, "worker", Recorder(), watch=False),
    ):
        pass


def test_a_crash_inside_the_handler_redelivers_with_the_flag_set(team_dir: TeamDir) -> None:
    team_dir.mailbox().send(update(team_dir, 1))

    class Crash(BaseException):
        """Stands for the process dying mid-handler: not an Exception, so not quarantined."""

    def dying(delivery: Delivery) -> None:
        assert not delivery.redelivered
        raise Crash

    with (
        pytest.raises(Crash),
        Receiver(team_dir.layout, team_dir.team_id, "worker", dying, watch=False) as receiver,
    ):
        receiver.process_pending()
    [again] = receive_all(team_dir).deliveries
    assert again.redelivered


def test_a_handler_error_quarantines_the_message_and_is_raised(team_dir: TeamDir) -> None:
    team_dir.mailbox().send(update(team_dir, 1))
    team_dir.mailbox().send(update(team_dir, 2))

    def failing(delivery: Delivery) -> None:
        raise RuntimeError("handler bug")

    with (
        pytest.raises(RuntimeError),
        Receiver(team_dir.layout, team_dir.team_id, "worker", failing, watch=False) as receiver,
    ):
        receiver.process_pending()
    [bad] = list_inbox(team_dir.layout, "worker", states=("bad",), team=team_dir.team_id)
    assert bad.problem == "handler failed: RuntimeError: handler bug"
    assert receive_all(team_dir).details == ["2"]


def test_serve_wakes_on_a_new_message_without_waiting_for_the_poll(team_dir: TeamDir) -> None:
    recorder = Recorder()
    stop = threading.Event()
    got_one = threading.Event()

    def handler(delivery: Delivery) -> None:
        recorder(delivery)
        got_one.set()
        stop.set()

    with Receiver(
        team_dir.layout, team_dir.team_id, "worker", handler, poll_interval=60
    ) as receiver:
        thread = threading.Thread(target=receiver.serve, args=(stop,))
        thread.start()
        team_dir.mailbox().send(update(team_dir, 7))
        # With a 60 s poll, only the watchdog wake-up can deliver it within the deadline.
        assert got_one.wait(10)
        thread.join(10)
    assert recorder.details == ["7"]


def test_serve_stops_after_max_messages_and_after_max_idle(team_dir: TeamDir) -> None:
    for n in range(5):
        team_dir.mailbox().send(update(team_dir, n))
    recorder = Recorder()
    with Receiver(team_dir.layout, team_dir.team_id, "worker", recorder) as receiver:
        assert receiver.serve(max_messages=3) == 3
        assert receiver.serve(max_idle=0.2) == 2
    assert recorder.details == ["0", "1", "2", "3", "4"]


def test_stale_temp_files_of_a_crashed_sender_are_cleaned_up(team_dir: TeamDir) -> None:
    tmp = team_dir.layout.inbox("worker").tmp
    stale = tmp / ".tmp-crashed.part"
    stale.write_text('{"half": ')
    os.utime(stale, (0, 0))
    fresh = tmp / ".tmp-sending.part"
    fresh.write_text("{")
    receive_all(team_dir)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a sender that is still writing


def test_a_damaged_sequence_counter_never_reuses_a_number(team_dir: TeamDir) -> None:
    mailbox = team_dir.mailbox()
    for n in range(3):
        mailbox.send(update(team_dir, n))
    team_dir.layout.inbox("worker").seq.write_text("garbage")
    assert mailbox.send(update(team_dir, 3)).seq == 4
    Path(team_dir.layout.inbox("worker").seq).unlink()
    assert mailbox.send(update(team_dir, 4)).seq == 5


def test_a_message_for_another_team_cannot_be_sent(team_dir: TeamDir) -> None:
    message = make_message(
        ShutdownRequest(reason="x"), team="other", sender="user", recipient="worker"
    )
    with pytest.raises(ValueError, match="team 'other'"):
        team_dir.mailbox().send(message)


def test_a_crash_between_linking_into_cur_and_unlinking_from_new_is_finished_quietly(
    team_dir: TeamDir,
) -> None:
    delivered = team_dir.mailbox().send(update(team_dir, 1))
    inbox = team_dir.layout.inbox("worker")
    os.link(delivered.path, inbox.cur / delivered.path.name)  # the commit happened, then a crash

    recorder = receive_all(team_dir)
    assert recorder.deliveries == [], "already handled: the handler is not called again"
    assert os.listdir(inbox.new) == []
    assert os.listdir(inbox.bad) == []
    assert os.listdir(inbox.cur) == [delivered.path.name]


def test_threads_sharing_one_mailbox_get_distinct_sequence_numbers(team_dir: TeamDir) -> None:
    mailbox = Mailbox(team_dir.layout, team_dir.team_id, fsync=False)
    seqs: list[int] = []

    def send_many(thread: int) -> None:
        for n in range(150):
            seqs.append(mailbox.send(update(team_dir, thread * 1000 + n)).seq)

    threads = [threading.Thread(target=send_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(1, 601))


def test_a_large_backlog_with_a_concurrent_sender_is_handled_in_order(
    team_dir: TeamDir, tmp_path: Path
) -> None:
    """A directory listing taken while files arrive can show N+1 without N (readdir walks a
    hash order); the receiver must never act on such a listing."""
    mailbox = Mailbox(team_dir.layout, team_dir.team_id, fsync=False)
    for n in range(20000):  # a directory that once held many files stays slow to list
        mailbox.send(update(team_dir, n))
    with Receiver(team_dir.layout, team_dir.team_id, "worker", Recorder(), watch=False) as r:
        r.process_pending(max_messages=17000)
    sender = start(PROCS / "sender.py", team_dir.workspace, team_dir.team_id, "late", "worker",
                   3000, 0, tmp_path / "sent.log", "--no-fsync")  # fmt: skip
    wait_for_line(sender, "started")
    recorder = Recorder()

    with Receiver(team_dir.layout, team_dir.team_id, "worker", recorder, watch=False) as r:
        while sender.poll() is None:
            r.process_pending()
        finish(sender)
        r.process_pending()
    seqs = [d.seq for d in recorder.deliveries]
    assert len(seqs) == 6000
    assert seqs == sorted(seqs)


def test_a_receiver_moves_a_lagging_counter_past_the_numbers_on_disk(team_dir: TeamDir) -> None:
    for n in range(5):
        team_dir.mailbox().send(update(team_dir, n))
    team_dir.layout.inbox("worker").seq.write_text("2\n")  # as if a power loss undid writes
    receive_all(team_dir)
    assert team_dir.mailbox().send(update(team_dir, 5)).seq == 6


def test_the_sender_of_a_message_whose_handler_failed_is_told(team_dir: TeamDir) -> None:
    team_dir.mailbox().send(update(team_dir, 1, sender="coordinator"))

    def failing(delivery: Delivery) -> None:
        raise RuntimeError("disk full")

    with (
        pytest.raises(RuntimeError),
        Receiver(team_dir.layout, team_dir.team_id, "worker", failing, watch=False) as receiver,
    ):
        receiver.process_pending()
    [report] = list_inbox(team_dir.layout, "coordinator", team=team_dir.team_id)
    assert report.message is not None
    assert "handler failed: RuntimeError: disk full" in report.message.payload.message  # type: ignore[union-attr]


def test_take_handles_the_wanted_messages_ahead_of_their_turn_and_serve_the_rest(
    team_dir: TeamDir,
) -> None:
    told = make_message(Guidance(text="use pathlib"), team=team_dir.team_id, sender="user",
                        recipient="worker")  # fmt: skip
    for message in (update(team_dir, 1), told, update(team_dir, 2)):
        team_dir.mailbox().send(message)
    bad = team_dir.layout.inbox("worker").new / "9.user.x.json"
    bad.write_text("not json")
    recorder = Recorder()
    with Receiver(team_dir.layout, team_dir.team_id, "worker", recorder, watch=False) as receiver:
        assert receiver.take(lambda m: m.type == "guidance") == [told]
        assert receiver.take(lambda m: m.type == "guidance") == []  # taken once
        assert bad.exists()  # a bad file is for serve to judge
        receiver.process_pending()
    assert recorder.details == ["1", "2"]
    assert [e.message for e in list_inbox(team_dir.layout, "worker", states=("cur",),
                                          team=team_dir.team_id)][1] == told  # fmt: skip
    assert receive_all(team_dir).deliveries == []  # nothing handled twice by the next one

"""The shared-memory reload board, across threads and forked processes like gunicorn's workers."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator

import pytest

from demo_app.reload_board import PAYLOAD_CAPACITY, PayloadTooLargeError, ReloadBoard


@pytest.fixture
def board() -> Iterator[ReloadBoard]:
    created = ReloadBoard.create()
    yield created
    created.close()


def run_in_child(work: Callable[[], None]) -> int:
    """Fork like gunicorn does, run ``work`` in the child, return the child's pid."""
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            work()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_publish_moves_the_generation_only_for_a_new_version(board: ReloadBoard) -> None:
    assert board.published().generation == 0
    assert board.published().version is None
    assert board.publish("aaaa", {"app.yaml": b"a"}) == 1
    assert board.publish("aaaa", {"app.yaml": b"a"}) == 1
    assert board.publish("bbbb", {"app.yaml": b"b"}) == 2
    assert board.published().version == "bbbb"


def test_the_published_file_set_comes_back_byte_for_byte(board: ReloadBoard) -> None:
    assert board.published_set().files == {}
    files = {"app.yaml": b"greeting: hi\n", "empty.txt": b"", "bin.dat": bytes(range(256)) * 10, "\u00e9.json": b"{}"}
    board.publish("v1", files)
    published = board.published_set()
    assert (published.generation, published.version, published.files) == (1, "v1", files)
    board.publish("v2", {"app.yaml": b"short"})
    assert board.published_set().files == {"app.yaml": b"short"}  # nothing left over from the longer set


def test_a_set_too_large_to_share_is_refused(board: ReloadBoard) -> None:
    with pytest.raises(PayloadTooLargeError):
        board.publish("huge", {"big.txt": b"x" * (PAYLOAD_CAPACITY + 1)})
    assert board.published().generation == 0


def test_a_worker_forked_before_the_publish_sees_it(board: ReloadBoard) -> None:
    read_end, write_end = os.pipe()

    def child() -> None:
        os.close(write_end)
        os.read(read_end, 1)  # wait until the parent published
        assert board.published_set().files == {"app.yaml": b"parent"}
        board.publish("from-child", {"app.yaml": b"child"})

    pid = run_in_child(child)
    os.close(read_end)
    board.publish("from-parent", {"app.yaml": b"parent"})
    os.write(write_end, b"x")
    os.close(write_end)
    assert wait_child(pid) == 0
    assert board.published().version == "from-child"
    assert board.published().generation == 2


def test_reload_counters_are_exact_across_processes_and_threads(board: ReloadBoard) -> None:
    def count_in_one_thread(times: int) -> None:
        for _ in range(times):
            board.count_reload(ok=True)

    def count(times: int) -> None:
        threads = [threading.Thread(target=count_in_one_thread, args=(times,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    children = [run_in_child(lambda: count(300)) for _ in range(3)]
    count(300)
    assert [wait_child(pid) for pid in children] == [0, 0, 0]
    assert board.reload_counts() == {"ok": 4 * 4 * 300, "refused": 0}


def test_workers_report_requests_in_flight_and_version_per_pid(board: ReloadBoard) -> None:
    me = os.getpid()
    read_end, write_end = os.pipe()

    def child() -> None:
        board.request_started(os.getpid())
        board.set_worker_version(os.getpid(), "child-version")
        os.write(write_end, b"x")
        signal.pause()  # stay alive (in flight) until killed

    pid = run_in_child(child)
    assert os.read(read_end, 1) == b"x"
    board.request_started(me)
    board.request_started(me)
    board.request_finished(me)
    board.set_worker_version(me, "parent-version")
    workers = board.workers()
    assert workers[me].requests_in_flight == 1
    assert workers[me].config_version == "parent-version"
    assert workers[pid].requests_in_flight == 1
    assert workers[pid].config_version == "child-version"
    os.kill(pid, signal.SIGKILL)
    wait_child(pid)
    assert pid not in board.workers()  # a dead worker's slot is not reported ...
    board.release(pid)  # ... and gunicorn's child_exit hook frees it for the next worker
    assert set(board.workers()) == {me}
    os.close(read_end)
    os.close(write_end)


def test_a_killed_worker_holding_the_lock_cannot_wedge_the_others(board: ReloadBoard) -> None:
    read_end, write_end = os.pipe()

    def child() -> None:
        with board.serialize_reloads():
            os.write(write_end, b"x")
            signal.pause()  # hold the lock until SIGKILLed, like a worker killed mid-reload

    pid = run_in_child(child)
    assert os.read(read_end, 1) == b"x"
    os.kill(pid, signal.SIGKILL)
    wait_child(pid)

    def reload_after_kill() -> None:
        with board.serialize_reloads():
            board.publish("after-kill", {})

    thread = threading.Thread(target=reload_after_kill, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the dead worker's lock was never released"
    assert board.published().version == "after-kill"
    os.close(read_end)
    os.close(write_end)


def test_slots_run_out_gracefully() -> None:
    small = ReloadBoard.create(capacity=1)
    try:
        assert small.register_worker(os.getpid())
        pid = run_in_child(lambda: os._exit(0 if not small.register_worker(os.getpid()) else 1))
        assert wait_child(pid) == 0
    finally:
        small.close()

"""Debounce: a burst becomes one sync after a quiet period, and a trickle cannot postpone it forever."""

from __future__ import annotations

import threading
import time

from config_sidecar.debounce import Debouncer


def test_nothing_pending_times_out_with_none() -> None:
    assert Debouncer(quiet=0.01, max_wait=1).wait(0.05) is None


def test_a_burst_settles_once_and_reports_its_first_event() -> None:
    debouncer = Debouncer(quiet=0.05, max_wait=5)
    first = time.monotonic()
    for _ in range(20):
        debouncer.poke()
    detected = debouncer.wait(10)
    assert detected is not None
    assert first <= detected <= time.monotonic()
    assert not debouncer.pending()
    assert debouncer.wait(0.1) is None  # the burst was consumed: one sync, not twenty


def test_quiet_period_restarts_with_every_event() -> None:
    debouncer = Debouncer(quiet=1.0, max_wait=30)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.02):
            debouncer.poke()

    debouncer.poke()
    thread = threading.Thread(target=trickle)
    thread.start()
    try:
        assert debouncer.wait(0.5) is None  # events every 20 ms never leave a second of quiet
    finally:
        stop.set()
        thread.join()
    assert debouncer.wait(10) is not None  # once the trickle stops, the quiet period elapses


def test_max_wait_bounds_a_continuous_trickle() -> None:
    debouncer = Debouncer(quiet=60, max_wait=0.2)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.01):
            debouncer.poke()

    thread = threading.Thread(target=trickle)
    debouncer.poke()
    thread.start()
    try:
        # Not None within 30 s can only be max_wait's doing: the quiet period alone would take 60 s.
        assert debouncer.wait(30) is not None
    finally:
        stop.set()
        thread.join()


def test_close_wakes_a_waiter() -> None:
    debouncer = Debouncer(quiet=0.01, max_wait=1)
    result: list[float | None] = []
    thread = threading.Thread(target=lambda: result.append(debouncer.wait(60)))
    thread.start()
    debouncer.close()
    thread.join(10)
    assert not thread.is_alive()
    assert result == [None]


def test_a_commit_after_a_quiet_spell_is_due_at_once_and_a_burst_of_commits_coalesces() -> None:
    debouncer = Debouncer(quiet=60, max_wait=120)  # without the leading edge nothing would be due for a minute
    debouncer.poke(commit=True)
    assert debouncer.wait(30) is not None
    for _ in range(10):  # more swaps right after: trailing edge, they wait for the quiet period
        debouncer.poke(commit=True)
    assert debouncer.wait(0.2) is None
    assert debouncer.pending()


def test_an_ordinary_event_never_skips_the_quiet_period() -> None:
    debouncer = Debouncer(quiet=60, max_wait=120)
    debouncer.poke()
    assert debouncer.wait(0.2) is None  # a half-saved file must not be read early

from __future__ import annotations

import io
import json
import logging
import random
import signal

import pytest

from sidecar_common.backoff import Backoff
from sidecar_common.jsonlog import configure_logging
from sidecar_common.shutdown import GracefulShutdown


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(initial=0.1, maximum=1.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(d <= 1.0 for d in delays)
    assert delays[-1] >= 0.5  # reached the cap's half-range
    b.reset()
    assert b.next_delay() <= 0.1


def test_backoff_survives_days_of_retries() -> None:
    b = Backoff(initial=0.1, maximum=30.0)
    for _ in range(5000):
        delay = b.next_delay()
    assert 15.0 <= delay <= 30.0


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=0)


def test_sigterm_sets_stop_event() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    shutdown = GracefulShutdown()
    try:
        shutdown.install((signal.SIGTERM,))
        signal.raise_signal(signal.SIGTERM)
        assert shutdown.stop.is_set()
        assert shutdown.signal_name == "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_json_logging_has_stable_keys_and_extra_fields() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("demo", "INFO", stream)
        logging.getLogger("x.y").info("published %s", "v1", extra={"version": "v1"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    doc = json.loads(stream.getvalue())
    assert {"time", "level", "logger", "msg"} <= doc.keys()
    assert (doc["level"], doc["logger"], doc["msg"], doc["version"], doc["service"]) == (
        "info",
        "x.y",
        "published v1",
        "v1",
        "demo",
    )

from __future__ import annotations

import io
import json
import logging
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sidecar_common.admin_settings import admin_port_setting, log_level_setting
from sidecar_common.backoff import Backoff
from sidecar_common.heartbeat import MISSED_BEATS, Heartbeat
from sidecar_common.jsonlog import configure_logging
from sidecar_common.lifecycle import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    StartupError,
    run_service,
)
from sidecar_common.settings import SettingsError
from sidecar_common.shutdown import GracefulShutdown
from tests.support import FakeClock


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


class FakeService:
    """A service that records its lifecycle calls and fails where told to."""

    def __init__(self, fail_start: Exception | None = None, fail_run: Exception | None = None) -> None:
        self.calls: list[str] = []
        self.fail_start = fail_start
        self.fail_run = fail_run

    def start(self) -> None:
        self.calls.append("start")
        if self.fail_start is not None:
            raise self.fail_start

    def run(self, stop: threading.Event) -> None:
        self.calls.append("run")
        if self.fail_run is not None:
            raise self.fail_run
        signal.raise_signal(signal.SIGTERM)  # what the kubelet sends
        assert stop.wait(5)

    def close(self) -> None:
        self.calls.append("close")


@dataclass(frozen=True)
class DemoSettings:
    log_level: str = log_level_setting()
    admin_port: int = admin_port_setting(8081, "probes")


@pytest.fixture
def restore_process_state() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def run(service: FakeService, environ: dict[str, str] | None = None, build_error: Exception | None = None) -> int:
    def build(settings: DemoSettings) -> FakeService:
        if build_error is not None:
            raise build_error
        return service

    return run_service("demo", DemoSettings, build, description="demo", argv=[], environ=environ or {})


@pytest.mark.usefixtures("restore_process_state")
@pytest.mark.parametrize(
    ("service", "build_error", "code", "message"),
    [
        (FakeService(), None, EXIT_OK, ""),
        (FakeService(fail_run=RuntimeError("bug")), None, EXIT_FAILED, ""),
        (FakeService(), SettingsError("EXPORTER_CONFIG", "line 3: bad"), EXIT_CONFIG, "demo: configuration error: "),
        (FakeService(StartupError("ADMIN_PORT", "0.0.0.0:8081: in use")), None, EXIT_UNAVAILABLE, "demo: cannot start"),
    ],
    ids=["clean-stop", "crash-while-running", "bad-config-file", "port-taken"],
)
def test_one_exit_code_per_failure_class(
    service: FakeService, build_error: Exception | None, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(service, build_error=build_error) == code
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert len(err.splitlines()) == (1 if message else 0)
    if build_error is None:
        assert service.calls[-1] == "close"  # released whatever happened


@pytest.mark.usefixtures("restore_process_state")
def test_a_bad_variable_exits_2_with_one_line_before_anything_is_built(capsys: pytest.CaptureFixture[str]) -> None:
    service = FakeService()
    with pytest.raises(SystemExit) as caught:
        run(service, {"LOG_LEVEL": "verbose"})
    assert caught.value.code == EXIT_CONFIG
    assert capsys.readouterr().err.strip() == (
        "demo: configuration error: LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'VERBOSE'"
    )
    assert service.calls == []


@pytest.mark.usefixtures("restore_process_state")
@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (None, 7, ""),
        (
            SettingsError("CONFIG_SOURCE_DIR", "app.yaml: bad"),
            EXIT_CONFIG,
            "demo: configuration error: CONFIG_SOURCE_DIR",
        ),
        (StartupError("CONFIG_TARGET_DIR", "read-only"), EXIT_UNAVAILABLE, "demo: cannot start: CONFIG_TARGET_DIR"),
    ],
    ids=["own-exit-code", "bad-config", "unusable-path"],
)
def test_a_command_fails_like_the_service(
    error: Exception | None, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command (a oneshot sync, a check) ends with its own code, or with the service's one line and code."""
    service = FakeService()

    def command(settings: DemoSettings, args: object) -> int:
        if error is not None:
            raise error
        return 7

    assert (
        run_service(
            "demo", DemoSettings, lambda s: service, description="demo", argv=[], environ={}, run_command=command
        )
        == code
    )
    err = capsys.readouterr().err
    assert err.startswith(line)
    assert len(err.splitlines()) == (1 if line else 0)
    assert service.calls == [], "a command does not run the service"


@pytest.mark.usefixtures("restore_process_state")
def test_sighup_asks_a_reloadable_service_to_reload() -> None:
    class ReloadingService(FakeService):
        reloads = 0

        def request_reload(self) -> None:
            self.reloads += 1

        def run(self, stop: threading.Event) -> None:
            signal.raise_signal(signal.SIGHUP)
            super().run(stop)

    service = ReloadingService()
    assert run(service) == EXIT_OK
    assert service.reloads == 1


def test_heartbeat_is_dead_after_three_missed_beats_of_its_own_interval() -> None:
    clock = FakeClock()
    beat = Heartbeat("worker", interval=2.0, clock=clock)
    assert not beat.alive()  # no beat yet
    beat.beat()
    clock.advance(2.0 * MISSED_BEATS)
    assert beat.alive()
    clock.advance(0.01)
    assert not beat.alive()
    with pytest.raises(ValueError, match="interval"):
        Heartbeat("worker", interval=0)

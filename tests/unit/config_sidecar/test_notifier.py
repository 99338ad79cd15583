"""The reload notifier and the HTTP reloader: retries, supersession, acknowledgement of the exact version."""

from __future__ import annotations

import random
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from config_sidecar.http_reload import HttpReloader
from config_sidecar.metrics import SidecarMetrics
from config_sidecar.notifier import ReloadError, ReloadNotifier, ReloadRequest
from config_sidecar.status import SyncState
from sidecar_common import Backoff, Heartbeat
from tests.support import free_tcp_port, wait_until
from tests.support.http_stub import HttpStub, Reply, json_reply


class ScriptedReloader:
    """Answers from a script: a version string acknowledges, an exception fails; then repeats the last."""

    def __init__(self, *answers: str | ReloadError) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    def describe(self) -> str:
        return "scripted"

    def reload(self, request: ReloadRequest) -> str:
        self.gate.wait(10)
        self.sent.append(request.version)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, ReloadError):
            raise answer
        return request.version if answer == "echo" else answer


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def state(registry: CollectorRegistry) -> SyncState:
    return SyncState(SidecarMetrics(registry), reload_mode="http")


def start_notifier(reloader: ScriptedReloader, state: SyncState) -> ReloadNotifier:
    backoff = Backoff(0.01, 0.05, rng=random.Random(7))
    notifier = ReloadNotifier(reloader, state, backoff, Heartbeat("n", 5), beat_interval=0.2)
    notifier.start()
    return notifier


def test_retries_with_backoff_until_acknowledged(state: SyncState, registry: CollectorRegistry) -> None:
    reloader = ScriptedReloader(ReloadError("refused"), ReloadError("refused"), "echo")
    notifier = start_notifier(reloader, state)
    try:
        notifier.submit(ReloadRequest("v1", ("app.yaml",), detected_at=None))
        wait_until(lambda: state.applied_version() == "v1", 10)
    finally:
        notifier.close()
    assert reloader.sent == ["v1", "v1", "v1"]
    assert registry.get_sample_value("config_sidecar_reload_attempts_total") == 3
    assert registry.get_sample_value("config_sidecar_reload_failures_total") == 2
    assert notifier.pending() is None


def test_a_wrong_version_in_the_answer_is_not_an_acknowledgement(
    state: SyncState, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    reloader = ScriptedReloader("old-version", "echo")
    notifier = start_notifier(reloader, state)
    try:
        notifier.submit(ReloadRequest("v2"))
        wait_until(lambda: state.applied_version() == "v2", 10)
    finally:
        notifier.close()
    assert reloader.sent == ["v2", "v2"]
    assert registry.get_sample_value("config_sidecar_reload_failures_total") == 1
    assert "app acknowledged version 'old-version', expected 'v2'" in caplog.text


def test_only_the_newest_pending_version_is_sent(state: SyncState) -> None:
    reloader = ScriptedReloader("echo")
    reloader.gate.clear()  # hold the first request in flight
    notifier = start_notifier(reloader, state)
    try:
        notifier.submit(ReloadRequest("v1"))
        wait_until(lambda: notifier.pending() is not None, 5)
        for version in ("v2", "v3", "v4"):
            notifier.submit(ReloadRequest(version))
        reloader.gate.set()
        wait_until(lambda: state.applied_version() == "v4", 10)
    finally:
        notifier.close()
    assert reloader.sent in (["v1", "v4"], ["v4"])  # v2 and v3 were superseded before being sent


def test_an_answer_with_the_newer_pending_version_completes_it(state: SyncState) -> None:
    """The app re-read the dir after v2 was published while v1's request was in flight."""
    reloader = ScriptedReloader("v2")
    reloader.gate.clear()
    notifier = start_notifier(reloader, state)
    try:
        notifier.submit(ReloadRequest("v1"))
        wait_until(lambda: len(reloader.sent) == 0 and notifier.pending() is not None, 5)
        notifier.submit(ReloadRequest("v2"))
        reloader.gate.set()
        wait_until(lambda: state.applied_version() == "v2", 10)
    finally:
        notifier.close()
    assert notifier.pending() is None


def test_a_newer_version_cuts_the_backoff_of_a_refused_one_short(state: SyncState) -> None:
    """The app refused v1 and the sidecar backs off for a minute; the fix, v2, must not wait for that."""
    reloader = ScriptedReloader(ReloadError("HTTP 422: app.yaml: line 1: bad"), "echo")
    backoff = Backoff(60, 60)
    notifier = ReloadNotifier(reloader, state, backoff, Heartbeat("n", 5), beat_interval=0.2)
    notifier.start()
    try:
        notifier.submit(ReloadRequest("v1"))
        wait_until(lambda: backoff.attempt == 1, 10, message="v1 refused, backing off")
        notifier.submit(ReloadRequest("v2"))
        wait_until(lambda: state.applied_version() == "v2", 10, message="v2 sent at once")
    finally:
        notifier.close()
    assert reloader.sent == ["v1", "v2"]
    assert backoff.attempt == 0
    assert state.snapshot()["reload"]["pending"] is None


def test_propagation_is_observed_from_detection(state: SyncState) -> None:
    notifier = start_notifier(ScriptedReloader("echo"), state)
    try:
        notifier.submit(ReloadRequest("v1", detected_at=time.monotonic() - 2.0))
        wait_until(lambda: state.applied_version() == "v1", 10)
    finally:
        notifier.close()
    histogram = {s.name: s.value for m in state.metrics.propagation.collect() for s in m.samples}
    assert histogram["config_sidecar_propagation_seconds_count"] == 1
    assert histogram["config_sidecar_propagation_seconds_sum"] >= 2.0


# --- HttpReloader against a real socket -------------------------------------------------------------


def test_http_reload_posts_version_and_changed_keys(http_stub: HttpStub) -> None:
    http_stub.answer(json_reply({"version": "abc", "previous": None, "changed": True, "loaded_at": "x"}))
    assert HttpReloader(http_stub.url + "/-/reload", timeout=5).reload(ReloadRequest("abc", ("app.yaml",))) == "abc"
    (request,) = http_stub.requests
    assert (request.method, request.path) == ("POST", "/-/reload")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"version": "abc", "changed": ["app.yaml"]}


@pytest.mark.parametrize(
    ("status", "body", "reason_part"),
    [
        (422, b'{"error": "invalid config", "detail": "app.yaml: line 3: bad", "version": null}', "app.yaml: line 3"),
        (503, b"starting", "HTTP 503: starting"),
        (200, b"ok", "without a JSON body"),
        (200, b'{"status": "ok"}', "without a version"),
    ],
)
def test_http_reload_failures_carry_the_reason(http_stub: HttpStub, status: int, body: bytes, reason_part: str) -> None:
    http_stub.answer(Reply(status, body))
    with pytest.raises(ReloadError) as info:
        HttpReloader(http_stub.url, timeout=5).reload(ReloadRequest("v"))
    assert reason_part in info.value.reason


def test_http_reload_without_verification_takes_any_2xx(http_stub: HttpStub) -> None:
    http_stub.answer(Reply(204))
    assert HttpReloader(http_stub.url, timeout=5, verify_version=False).reload(ReloadRequest("v9")) == "v9"


def test_http_reload_refused_and_timeout() -> None:
    refused = f"http://127.0.0.1:{free_tcp_port()}/-/reload"
    with pytest.raises(ReloadError, match="connection refused"):
        HttpReloader(refused, timeout=2).reload(ReloadRequest("v"))

    silent = HttpStub(Reply(delay=30))  # answers long after the reloader gave up
    with silent, pytest.raises(ReloadError, match=r"no answer within 0\.3s"):
        HttpReloader(silent.url, timeout=0.3).reload(ReloadRequest("v"))

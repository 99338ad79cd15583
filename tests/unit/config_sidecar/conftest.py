"""Fixtures for the config sidecar: a kubelet volume, a fake app answering /-/reload, a running sidecar."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from config_sidecar.app import ConfigSidecar
from config_sidecar.settings import Settings
from sidecar_common import content_version, read_config_files
from tests.support import free_tcp_port, wait_until
from tests.support.http_stub import HttpStub, Reply, Request, json_reply
from tests.support.kubelet import KubeletVolume


@pytest.fixture
def volume(tmp_path: Path) -> KubeletVolume:
    return KubeletVolume(tmp_path / "source")


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "target"


class FakeApp:
    """The app's ``POST /-/reload`` contract: re-read the config dir, answer with the version it now has.

    ``refuse(True)`` stops listening so connections are refused, like an app that is still
    starting; ``refuse(False)`` listens again on the same port.
    """

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.answer_status = 200
        self.stub = HttpStub(self._reload, port=free_tcp_port())

    @property
    def url(self) -> str:
        return self.stub.url + "/-/reload"

    @property
    def reloads(self) -> list[dict[str, Any]]:
        return [request.json() for request in self.stub.requests]

    def refuse(self, refusing: bool) -> None:
        if refusing:
            self.stub.stop()
        else:
            self.stub.start()

    def _reload(self, request: Request) -> Reply:
        if self.answer_status != 200:
            invalid = {"error": "invalid config", "detail": "app.yaml: line 1: nope", "version": None}
            return json_reply(invalid, self.answer_status)
        try:
            version: str | None = content_version(read_config_files(self.config_dir))
        except OSError:
            version = None
        return json_reply({"version": version, "previous": None, "changed": True, "loaded_at": "now"})


@pytest.fixture
def fake_app(target: Path) -> Iterator[FakeApp]:
    app = FakeApp(target)
    with app.stub:
        yield app


def fast_settings(source: Path, target: Path, **overrides: Any) -> Settings:
    """Settings for an in-process sidecar: loopback admin on a free port, short periods."""
    values: dict[str, Any] = {
        "source_dir": source,
        "target_dir": target,
        "reload_url": "",
        "admin_host": "127.0.0.1",
        "admin_port": 0,
        "debounce_seconds": 0.05,
        "debounce_max_seconds": 1.0,
        "heartbeat_seconds": 0.5,
        "reload_backoff_seconds": 0.05,
        "reload_backoff_max_seconds": 0.5,
        "reload_timeout_seconds": 2.0,
    }
    values.update(overrides)
    settings = Settings(**values)
    settings.validate()
    return settings


class RunningSidecar:
    """An in-process sidecar with helpers to read its admin endpoints."""

    def __init__(self, sidecar: ConfigSidecar) -> None:
        self.sidecar = sidecar

    @property
    def admin_url(self) -> str:
        assert self.sidecar.admin is not None
        return f"http://127.0.0.1:{self.sidecar.admin.port}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.admin_url + path, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def status(self) -> dict[str, Any]:
        code, body = self.get("/status")
        assert code == 200
        return json.loads(body)  # type: ignore[no-any-return]

    def metric(self, name: str, **labels: str) -> float:
        value = self.sidecar.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def published(self) -> int:
        return int(self.metric("config_sidecar_syncs_total", result="published"))

    def wait_published(self, version: str, timeout: float = 15.0) -> dict[str, Any]:
        return self._wait_for("published", version, timeout)

    def wait_applied(self, version: str, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until the app acknowledged ``version``; return that /status."""
        return self._wait_for("applied", version, timeout)

    def _wait_for(self, stage: str, version: str, timeout: float) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.status())[stage]["version"] == version and s, timeout, message=f"{stage} {version}"
        )


@pytest.fixture
def start_sidecar() -> Iterator[Callable[[Settings], RunningSidecar]]:
    started: list[ConfigSidecar] = []

    def start(settings: Settings) -> RunningSidecar:
        sidecar = ConfigSidecar(settings, CollectorRegistry())
        sidecar.start()
        started.append(sidecar)
        return RunningSidecar(sidecar)

    yield start
    for sidecar in started:
        sidecar.close()


@pytest.fixture
def make_settings(volume: KubeletVolume, target: Path) -> Callable[..., Settings]:
    """Build fast settings for the volume and target of this test; keyword arguments override fields."""

    def make(**overrides: Any) -> Settings:
        return fast_settings(volume.directory, target, **overrides)

    return make

"""The whole exporter in-process on real sockets: UDP in, HTTP out, probes, reloads, graceful stop."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from metrics_exporter.service import Exporter
from metrics_exporter.settings import Settings
from sidecar_common import SettingsError, load_settings
from tests.support import wait_until
from tests.support.http_stub import HttpStub, Reply
from tests.unit.exporter.conftest import Samples, samples_of, value

MAPPING_V1 = """
mappings:
  - match: orders.*
    name: orders_total
    labels: {kind: "$1"}
"""
MAPPING_V2 = """
mappings:
  - match: orders.*
    name: shop_orders_total
    labels: {kind: "$1"}
"""


def http(port: int, path: str, method: str = "GET", headers: Mapping[str, str] | None = None) -> tuple[int, bytes, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


StartExporter = Callable[..., Exporter]
StopExporter = Callable[[Exporter], None]


@pytest.fixture
def running() -> dict[Exporter, tuple[threading.Event, threading.Thread]]:
    return {}


@pytest.fixture
def stop_exporter(running: dict[Exporter, tuple[threading.Event, threading.Thread]]) -> StopExporter:
    """What run_service does on SIGTERM: set the stop event, let run() return, close()."""

    def stop(exporter: Exporter) -> None:
        event, thread = running.pop(exporter)
        event.set()
        thread.join(10)
        exporter.close()

    return stop


@pytest.fixture
def start_exporter(
    tmp_path: Path,
    running: dict[Exporter, tuple[threading.Event, threading.Thread]],
    stop_exporter: StopExporter,
) -> Iterator[StartExporter]:
    def start(mapping: str | None = MAPPING_V1, **env: str) -> Exporter:
        environ = {
            "ADMIN_HOST": "127.0.0.1",
            "ADMIN_PORT": "0",
            "CONTROL_PORT": "0",
            "STATSD_HOST": "127.0.0.1",
            "STATSD_PORT": "0",
            "EXPORTER_JSON_URL": "",
            **env,
        }
        if mapping is not None:
            path = tmp_path / "mapping.yaml"
            path.write_text(mapping)
            environ["EXPORTER_CONFIG"] = str(path)
        exporter = Exporter(load_settings(Settings, environ))
        exporter.start()
        stop = threading.Event()
        thread = threading.Thread(target=exporter.run, args=(stop,), daemon=True)
        thread.start()
        running[exporter] = (stop, thread)
        wait_until(exporter.ready, timeout=10, message="exporter ready")
        return exporter

    yield start
    for exporter in list(running):
        stop_exporter(exporter)


def reload(exporter: Exporter) -> tuple[int, bytes, Any]:
    """POST /-/reload where it is served: the loopback control port."""
    assert exporter.admin.control_port is not None
    return http(exporter.admin.control_port, "/-/reload", method="POST")


def send(exporter: Exporter, *packets: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            sock.sendto(packet, ("127.0.0.1", exporter.receiver.port))


def scrape(exporter: Exporter, headers: Mapping[str, str] | None = None) -> Samples:
    status, body, _ = http(exporter.admin.port, "/metrics", headers=headers)
    assert status == 200
    return samples_of(body.decode())


def scrape_until(exporter: Exporter, ready: Callable[[Samples], bool], message: str) -> Samples:
    """Scrape until ``ready`` holds (UDP delivery is asynchronous) and return that scrape."""
    last: list[Samples] = []

    def check() -> bool:
        last[:] = [scrape(exporter)]
        return ready(last[0])

    wait_until(check, message=message)
    return last[0]


def test_statsd_packets_show_up_on_metrics(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    send(exporter, b"orders.book:1|c", b"orders.book:2|c\norders.pen:1|c", b"garbage")
    # A scrape reads the series and the self-metrics one after the other, and a packet can be
    # ingested in between (even between two series): wait until one scrape shows every line.
    found = scrape_until(
        exporter,
        lambda s: (
            value(s, "exporter_statsd_lines_total") == 4
            and value(s, "orders_total", kind="book") == 3
            and value(s, "orders_total", kind="pen") == 1
        ),
        "four lines counted and their series summed (book 3, pen 1)",
    )
    assert value(found, "exporter_statsd_packets_total") == 3
    assert value(found, "exporter_statsd_parse_errors_total", reason="missing_value") == 1
    assert value(found, "exporter_source_up", source="statsd") == 1
    assert ("exporter_source_up", frozenset({("source", "json")})) not in found  # EXPORTER_JSON_URL is empty
    assert value(found, "process_resident_memory_bytes") is not None


def test_huge_and_non_utf8_packets_are_counted_and_the_exporter_keeps_going(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    send(exporter, b"big:" + b"9" * 65000 + b"|c", b"\xff\xfe\xfd:1|c", b"orders.ok:1|c")
    found = scrape_until(exporter, lambda s: value(s, "orders_total", kind="ok") == 1, "the good packet counted")
    assert value(found, "exporter_statsd_parse_errors_total", reason="invalid_utf8") == 1
    # 65,000 digits overflow a float: the line is refused, not exported as +Inf.
    assert value(found, "exporter_statsd_parse_errors_total", reason="invalid_value") == 1
    assert value(found, "big_total") is None
    assert http(exporter.admin.port, "/livez")[0] == 200


def test_probes(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    assert http(exporter.admin.port, "/livez")[0] == 200
    assert http(exporter.admin.port, "/readyz")[0] == 200


def test_metrics_negotiates_openmetrics_and_gzip(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    send(exporter, b"orders.book:1|c", b"lat:5|ms|#route:/x", b"temp:3|g", b"users:a|s")
    scrape_until(exporter, lambda s: value(s, "exporter_statsd_lines_total") == 4, "lines received")
    status, body, headers = http(
        exporter.admin.port,
        "/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"},
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body).decode()
    # The strict OpenMetrics parser accepts every family (counters, histogram, gauges, info-less page).
    families = {family.name: family.type for family in openmetrics_families(text)}
    assert families["orders"] == "counter"
    assert families["lat_seconds"] == "histogram"
    assert families["temp"] == "gauge"
    assert families["exporter_source_up"] == "gauge"


def test_reload_good_then_bad_then_good(start_exporter: StartExporter, tmp_path: Path) -> None:
    exporter = start_exporter()
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING_V2)
    status, body, _ = reload(exporter)
    assert status == 200
    assert json.loads(body)["changed"] is True
    send(exporter, b"orders.book:1|c")
    wait_until(lambda: value(scrape(exporter), "shop_orders_total", kind="book") == 1, message="new mapping used")

    mapping.write_text("mappings: [{match: orders.*, name: 'broken name'}]")
    status, body, _ = reload(exporter)
    assert status == 422
    answer = json.loads(body)
    assert answer["error"] == "invalid config"
    assert "mappings[0].name" in answer["detail"]
    send(exporter, b"orders.pen:1|c")
    found = scrape_until(exporter, lambda s: value(s, "shop_orders_total", kind="pen") == 1, "the running mapping kept")
    assert value(found, "exporter_config_last_reload_successful") == 0
    assert value(found, "exporter_config_reloads_total", result="failure") == 1

    mapping.write_text(MAPPING_V2)
    assert reload(exporter)[0] == 200
    found = scrape(exporter)
    assert value(found, "exporter_config_last_reload_successful") == 1
    assert value(found, "exporter_config_reloads_total", result="success") == 2
    # Reloading the same content keeps the series (only a real mapping change starts afresh).
    assert value(found, "shop_orders_total", kind="pen") == 1


def test_a_sighup_style_request_reloads_from_the_main_loop(start_exporter: StartExporter, tmp_path: Path) -> None:
    exporter = start_exporter()
    (tmp_path / "mapping.yaml").write_text(MAPPING_V2)
    exporter.request_reload()  # what SIGHUP does
    wait_until(lambda: exporter.reloader.status().successes == 1, message="reload from the main loop")
    assert exporter.reloader.config.mappings[0].name is not None
    assert exporter.reloader.config.mappings[0].name.text == "shop_orders_total"


def test_a_reload_that_fails_unexpectedly_does_not_stop_the_exporter(
    start_exporter: StartExporter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = start_exporter()

    def broken(trigger: str) -> None:
        raise RuntimeError("a bug in the reload path")

    monkeypatch.setattr(exporter.reloader, "reload", broken)
    exporter.request_reload()
    wait_until(
        lambda: any(record.getMessage().startswith("mapping reload failed") for record in caplog.records),
        message="the failed reload logged",
    )
    assert http(exporter.admin.port, "/readyz")[0] == 200


def test_reload_is_served_on_the_loopback_control_port_only(start_exporter: StartExporter) -> None:
    exporter = start_exporter()
    status, body, headers = http(exporter.admin.port, "/-/reload", method="POST")
    assert (status, headers["Content-Type"]) == (404, "application/json")
    assert json.loads(body) == {"error": "not found", "detail": "/-/reload"}
    assert exporter.reloader.status().successes == 0
    assert reload(exporter)[0] == 200
    assert exporter.reloader.status().successes == 1
    assert http(exporter.admin.control_port or 0, "/metrics")[0] == 404, "the control port serves only control"


def test_stop_closes_every_port(start_exporter: StartExporter, stop_exporter: StopExporter) -> None:
    exporter = start_exporter()
    udp_port, http_port, control_port = exporter.receiver.port, exporter.admin.port, exporter.admin.control_port
    stop_exporter(exporter)
    assert not exporter.receiver.bound
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", udp_port))  # free again
    for port in (http_port, control_port):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port or 0))  # free again
    exporter.close()  # idempotent


def test_the_scrape_timeout_header_reaches_the_json_source(start_exporter: StartExporter, http_stub: HttpStub) -> None:
    http_stub.answer(Reply(delay=30))  # the app's /stats is stuck
    exporter = start_exporter(
        EXPORTER_JSON_URL=f"{http_stub.url}/stats",
        EXPORTER_JSON_TIMEOUT_SECONDS="25",
        EXPORTER_SCRAPE_TIMEOUT_MARGIN_SECONDS="0.2",
    )
    started = time.monotonic()
    found = scrape(exporter, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})
    elapsed = time.monotonic() - started
    assert value(found, "exporter_source_up", source="json") == 0
    assert value(found, "exporter_source_up", source="statsd") == 1
    # Functional bound: without the header the exporter would have waited the configured 25 s.
    assert elapsed < 15


def test_an_invalid_mapping_at_start_is_a_configuration_error_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mappings: [{match: a, name: hits, type: counter}]")
    environ = {
        "EXPORTER_CONFIG": str(path),
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": "0",
        "CONTROL_PORT": "0",
        "STATSD_PORT": "0",
        "STATSD_HOST": "127.0.0.1",
    }
    exporter = Exporter(load_settings(Settings, environ))  # builds: nothing is read or bound yet
    with pytest.raises(SettingsError, match="must end with _total") as caught:
        exporter.start()
    exporter.close()
    assert caught.value.variable == "EXPORTER_CONFIG"
    assert not exporter.receiver.bound


def test_the_older_port_name_is_still_read() -> None:
    assert load_settings(Settings, {"EXPORTER_PORT": "9200"}).admin_port == 9200
    assert load_settings(Settings, {"EXPORTER_PORT": "9200", "ADMIN_PORT": "9300"}).admin_port == 9300
    with pytest.raises(SettingsError) as caught:
        load_settings(Settings, {"EXPORTER_PORT": "http"})
    assert caught.value.variable == "EXPORTER_PORT", "the error names the variable that is set"

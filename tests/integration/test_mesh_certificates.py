"""Certificates and a real Envoy: never a plaintext fallback, rotation with no failed request.

Missing or expired certificates at start: the proxy opens no port (not ready),
logs one clear JSON line naming the file, keeps checking, and starts Envoy by
itself once usable certificates are swapped in. A rotation (re-issue, kubelet
``..data`` swap) under a client loop costs no request, and afterwards the peer
presents the new certificate.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.mesh_pod import API, WEB, MeshProxy, Pki, StartApp, StartProxy, get, peer_serial, tls_get
from tests.support import wait_until

WAITING = "not starting Envoy"


def port_closed(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def waiting_lines(proxy: MeshProxy) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in proxy.process.output().splitlines() if line.startswith('{"')]
    return [line for line in lines if str(line.get("msg", "")).startswith(WAITING)]


def assert_waits_without_listening(proxy: MeshProxy, file: Path, reason: str) -> None:
    """One error line naming ``file``, repeated checks at DEBUG, and no port open meanwhile."""
    proxy.process.wait_for(lambda: len(waiting_lines(proxy)) == 1, "the waiting line", timeout=15)
    proxy.process.wait_for(lambda: proxy.process.output().count('"still waiting') >= 3, "re-checks", timeout=15)
    (line,) = waiting_lines(proxy)
    assert line["level"] == "error"
    assert line["file"] == str(file)
    assert reason in str(line["reason"])
    for port in (proxy.inbound_port, proxy.outbound_port, proxy.stats_port, proxy.admin_port):
        assert port_closed(port), f"port {port} is open while the certificates are unusable"
    assert proxy.process.running()


@pytest.mark.parametrize("case", ["missing", "expired"])
def test_unusable_certificates_keep_envoy_down_until_fixed(
    tmp_path: Path, pki: Pki, start_app: StartApp, proxies: list[MeshProxy], case: str
) -> None:
    app = start_app("api")
    proxy = MeshProxy(tmp_path, "api", app_port=app.port, LOG_LEVEL="DEBUG")
    if case == "expired":
        pki.issue(API, proxy.cert_dir, validity=timedelta(hours=1), now=datetime.now(UTC) - timedelta(hours=3))
    proxies.append(proxy.start(wait=False))

    assert_waits_without_listening(proxy, proxy.cert_dir / "tls.crt", case)

    pid = proxy.pid
    pki.issue(API, proxy.cert_dir)  # the fix: a (re-)issue, swapped in kubelet-style
    proxy.wait_ready()  # after the fix
    assert proxy.pid == pid  # the wrapper exec'd Envoy in place
    assert len(waiting_lines(proxy)) == 1
    status, _ = tls_get(proxy.inbound_port, "/api/greeting", pki.client_context(WEB))
    assert status == 200


def test_rotation_under_a_client_loop_fails_no_request(
    tmp_path: Path, pki: Pki, start_app: StartApp, start_proxy: StartProxy, proxies: list[MeshProxy]
) -> None:
    api = MeshProxy(tmp_path, "api", app_port=start_app("api").port)
    old = pki.issue(API, api.cert_dir)
    proxies.append(api.start())
    web = start_proxy("web", WEB, upstream_ports=(api.inbound_port,))
    web_context = pki.client_context(WEB)
    assert peer_serial(api.inbound_port, web_context) == old.serial

    stop = threading.Event()
    outcomes: dict[str, list[int]] = {"direct": [], "mesh": []}
    failures: list[str] = []

    def loop(kind: str) -> None:
        while not stop.is_set():
            try:
                if kind == "direct":  # a new TLS handshake with the api proxy every time
                    status, _ = tls_get(api.inbound_port, "/api/greeting", web_context)
                else:  # through web's proxy (its pooled mTLS connections, re-established as needed)
                    status, _ = get(web.outbound_port, "/api/greeting")
                outcomes[kind].append(status)
            except OSError as exc:
                failures.append(f"{kind}: {exc!r}")

    threads = [threading.Thread(target=loop, args=(kind,)) for kind in outcomes]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: all(len(v) >= 20 for v in outcomes.values()), timeout=20, message="loops running")
        updates = api.stat(f"listener.127.0.0.1_{api.inbound_port}.server_ssl_socket_factory.ssl_context_update_by_sds")
        new_api = pki.issue(API, api.cert_dir)
        pki.issue(WEB, web.cert_dir)
        wait_until(
            lambda: peer_serial(api.inbound_port, web_context) == new_api.serial,
            timeout=10,
            message="the api proxy presents the new certificate",
        )
        counted = {kind: len(v) for kind, v in outcomes.items()}
        wait_until(lambda: all(len(outcomes[k]) >= counted[k] + 20 for k in outcomes), timeout=20, message="more")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    assert {status for v in outcomes.values() for status in v} == {200}
    assert api.stat(f"listener.127.0.0.1_{api.inbound_port}.server_ssl_socket_factory.ssl_context_update_by_sds") > (
        updates
    )
    assert new_api.serial != old.serial

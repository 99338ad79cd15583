"""The inbound side of a real Envoy: mTLS only, RBAC on the peer's SPIFFE ID and the path; 9903's two paths.

The api pod's proxy admits only web's identity (signed by the lab CA) and only
on /api/: plaintext, a TLS client without a certificate and a certificate from
another CA never reach the app; a valid identity that is not web's and web on
an ops path get 403 from Envoy. The stats port serves /ready and
/stats/prometheus and nothing else of the admin interface.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from tests.integration.mesh_pod import API, WEB, MeshProxy, Pki, StartApp, StartProxy, get, spiffe, tls_get
from tests.support.http_stub import HttpStub


@pytest.fixture
def api(start_app: StartApp, start_proxy: StartProxy) -> tuple[MeshProxy, HttpStub]:
    app = start_app("api")
    return start_proxy("api", API, app_port=app.port), app


def handshake_refused(port: int, context: ssl.SSLContext) -> bool:
    """True if no HTTP answer comes back: the handshake or the first read fails."""
    try:
        tls_get(port, "/api/greeting", context)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    return False


def test_plaintext_to_the_inbound_port_gets_no_answer(api: tuple[MeshProxy, HttpStub]) -> None:
    proxy, app = api
    with socket.create_connection(("127.0.0.1", proxy.inbound_port), timeout=5) as sock:
        sock.sendall(b"GET /api/greeting HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP/"), answer
    assert len(app.requests) == 0


def test_tls_without_a_client_certificate_is_refused(api: tuple[MeshProxy, HttpStub], pki: Pki) -> None:
    proxy, app = api
    assert handshake_refused(proxy.inbound_port, pki.client_context(None))
    assert len(app.requests) == 0
    assert proxy.stat(f"listener.127.0.0.1_{proxy.inbound_port}.ssl.fail_verify_no_cert") >= 1


def test_a_certificate_from_another_ca_is_refused(api: tuple[MeshProxy, HttpStub], pki: Pki, tmp_path: Path) -> None:
    proxy, app = api
    stranger = Pki(tmp_path / "other-pki")  # same SPIFFE ID, wrong signer
    context = stranger.client_context(WEB, trust=pki.directory / "ca" / "ca.crt")
    assert handshake_refused(proxy.inbound_port, context)
    assert len(app.requests) == 0
    assert proxy.stat(f"listener.127.0.0.1_{proxy.inbound_port}.ssl.fail_verify_error") >= 1


def test_web_identity_is_admitted_and_the_app_sees_who_called(api: tuple[MeshProxy, HttpStub], pki: Pki) -> None:
    proxy, app = api
    status, _ = tls_get(proxy.inbound_port, "/api/greeting", pki.client_context(WEB))
    assert status == 200
    assert len(app.requests) == 1
    assert f"URI={spiffe(WEB)}" in app.requests[-1].headers["x-forwarded-client-cert"]


def test_a_valid_identity_that_is_not_web_gets_403(api: tuple[MeshProxy, HttpStub], pki: Pki) -> None:
    proxy, app = api
    status, _ = tls_get(proxy.inbound_port, "/api/greeting", pki.client_context("intruder"))
    assert status == 403
    assert len(app.requests) == 0
    assert proxy.stat("http.inbound.rbac.denied") == 1


@pytest.mark.parametrize("path", ["/stats", "/-/reload", "/livez", "/readyz", "/api/../stats", "//stats", "/API/x"])
def test_web_on_an_ops_path_gets_403(api: tuple[MeshProxy, HttpStub], pki: Pki, path: str) -> None:
    proxy, app = api
    status, _ = tls_get(proxy.inbound_port, path, pki.client_context(WEB))
    assert status == 403
    assert len(app.requests) == 0


def test_the_stats_port_serves_only_ready_and_prometheus(api: tuple[MeshProxy, HttpStub]) -> None:
    proxy, _ = api
    assert get(proxy.stats_port, "/ready")[0] == 200
    status, body = get(proxy.stats_port, "/stats/prometheus")
    assert status == 200
    assert b"envoy_server_live" in body
    for path, method in [
        ("/quitquitquit", "POST"),
        ("/quitquitquit", "GET"),
        ("/stats", "GET"),
        ("/config_dump", "GET"),
        ("/certs", "GET"),
        ("/logging?level=trace", "POST"),
        ("/ready", "POST"),
        ("/", "GET"),
    ]:
        status, body = get(proxy.stats_port, path, method=method)
        assert status == 404, (path, method, body)
    assert proxy.process.running(), "Envoy must survive /quitquitquit on 9903"
    assert get(proxy.stats_port, "/ready")[0] == 200


def test_a_pod_without_an_upstream_answers_503_on_its_outbound_side(api: tuple[MeshProxy, HttpStub]) -> None:
    proxy, app = api
    assert proxy.env["MESH_UPSTREAM_ADDRESSES"] == ""
    status, _ = get(proxy.outbound_port, "/api/greeting")
    assert status == 503
    assert len(app.requests) == 0

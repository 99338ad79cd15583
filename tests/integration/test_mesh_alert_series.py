"""The mesh alert rule reads series a real Envoy exposes, and they follow a certificate rotation.

promtool's unit tests (tests/manifests/promtool/) feed the rule series written by hand; this
holds those names and labels to the real thing: the pinned Envoy behind the mesh proxy,
scraped on its stats port at /stats/prometheus, the way Prometheus scrapes it in kind
(components/observability, the PodMonitor of components/prometheus-operator).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from tests.integration.mesh_pod import API, WEB, MeshProxy, Pki, StartApp, StartProxy, get
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s" / "components" / "observability" / "rules" / "sidecar-lab.rules.yml"
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
EXPIRY = "envoy_listener_ssl_certificate_expiration_unix_time_seconds"


def scrape(proxy: MeshProxy) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample on the proxy's stats port, as Prometheus reads them."""
    status, body = get(proxy.stats_port, "/stats/prometheus")
    assert status == 200
    samples = []
    for line in body.decode().splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
            samples.append((match["name"], labels, float(match["value"])))
    return samples


def expiry(proxy: MeshProxy, certificate: str) -> set[float]:
    return {
        value
        for name, labels, value in scrape(proxy)
        if name == EXPIRY and labels["envoy_tls_certificate"] == certificate
    }


def test_every_envoy_series_the_alert_rules_read_is_exposed(start_app: StartApp, start_proxy: StartProxy) -> None:
    api = start_proxy("api", API, app_port=start_app("api").port)
    web = start_proxy("web", WEB, upstream_ports=(api.inbound_port,))
    assert get(web.outbound_port, "/api/greeting")[0] == 200

    # Every envoy_* word of the rules: a series name, or a label of one (envoy_tls_certificate).
    used = set(re.findall(r"\benvoy_[a-z0-9_]+", RULES.read_text()))
    assert {EXPIRY, "envoy_tls_certificate"} <= used
    for proxy in (api, web):
        samples = scrape(proxy)
        exposed = {name for name, _, _ in samples} | {label for _, labels, _ in samples for label in labels}
        assert used <= exposed, f"{proxy.name}: not exposed by Envoy: {sorted(used - exposed)}"
        # The rule groups by this label: the pod's own certificate and the CA it trusts.
        certificates = {labels["envoy_tls_certificate"] for name, labels, _ in scrape(proxy) if name == EXPIRY}
        assert certificates == {"workload", "peer"}, proxy.name


def test_the_expiry_the_alert_reads_follows_a_rotation_in_the_same_envoy(
    tmp_path: Path, pki: Pki, start_app: StartApp, proxies: list[MeshProxy]
) -> None:
    api = MeshProxy(tmp_path, "api", app_port=start_app("api").port)
    short = pki.issue(API, api.cert_dir, validity=timedelta(hours=1))
    proxies.append(api.start())
    assert expiry(api, "workload") == {short.certificate.not_valid_after_utc.timestamp()}
    pid = api.pid

    # What scripts/mesh-certs.sh does in kind: a new certificate, swapped in kubelet-style.
    rotated = pki.issue(API, api.cert_dir, validity=timedelta(days=7))
    renewed = rotated.certificate.not_valid_after_utc.timestamp()
    wait_until(lambda: expiry(api, "workload") == {renewed}, timeout=10, message="the gauge shows the new certificate")
    assert api.pid == pid
    assert expiry(api, "peer") == {pki.authority.certificate.not_valid_after_utc.timestamp()}

"""Prometheus configs and alert rules, checked by the real promtool (Debian's prometheus package)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.manifests.rendering import K8S
from tests.support.tools import require_tool

OBSERVABILITY = K8S / "components" / "observability"
RULES = OBSERVABILITY / "rules" / "sidecar-lab.rules.yml"
CENTRAL_CONFIG = OBSERVABILITY / "prometheus" / "prometheus.yml"
AGENT_CONFIG = K8S / "components" / "prometheus-agent" / "agent.yml"
PROMETHEUS_RULE = K8S / "components" / "prometheus-operator" / "prometheusrule.yaml"
RULE_TESTS = Path(__file__).parent / "promtool" / "sidecar-lab.rules.test.yml"
# kubernetes_sd_config fields (Prometheus 3 configuration reference) and the roles.
KUBERNETES_SD_FIELDS = {
    "api_server",
    "role",
    "kubeconfig_file",
    "namespaces",
    "selectors",
    "attach_metadata",
    "basic_auth",
    "authorization",
    "oauth2",
    "tls_config",
    "proxy_url",
    "follow_redirects",
    "enable_http2",
}
KUBERNETES_SD_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = require_tool("promtool", "it checks the Prometheus configs and alert rules")
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool_check():
    assert_ok(promtool("check", "rules", RULES))


def test_alert_rules_fire_on_the_series_they_are_about():
    assert_ok(promtool("test", "rules", RULE_TESTS))


@pytest.mark.parametrize(
    ("threshold", "loosened", "alert"),
    [
        ("> 1048576", "> 104857600", "SidecarLabLogShippingLagging"),
        ("< 86400", "< 3600", "SidecarLabMeshCertificateExpiring"),
    ],
)
def test_rule_tests_fail_when_an_alert_changes(tmp_path, threshold, loosened, alert):
    # The unit tests above must be able to fail: loosen one threshold and they do.
    assert RULES.read_text().count(threshold) == 1
    rules = RULES.read_text().replace(threshold, loosened)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(rules)
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tests["rule_files"] = [str(tmp_path / "rules" / RULES.name)]
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", tmp_path / "test.yml")
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr


def test_prometheus_rule_carries_exactly_the_rules_file(tmp_path):
    prometheus_rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    groups = prometheus_rule["spec"]["groups"]
    assert groups == yaml.safe_load(RULES.read_text())["groups"], (
        "k8s/components/prometheus-operator/prometheusrule.yaml drifted from the rules file"
    )
    extracted = tmp_path / "prometheusrule.rules.yml"
    extracted.write_text(yaml.safe_dump({"groups": groups}))
    assert_ok(promtool("check", "rules", extracted))


def test_agent_config_passes_promtool_in_agent_mode():
    assert_ok(promtool("check", "config", "--agent", AGENT_CONFIG))


def test_agent_scrapes_the_pod_over_localhost_only():
    config = yaml.safe_load(AGENT_CONFIG.read_text())
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    assert targets == {"localhost:9102", "localhost:8081", "localhost:8082", "localhost:9090"}
    assert [w["url"] for w in config["remote_write"]] == ["http://prometheus:9090/api/v1/write"]


def test_central_config_passes_promtool(tmp_path):
    """Debian's promtool is built without Kubernetes discovery: check that block by hand,
    swap it for file discovery, and let promtool check everything else (relabel rules too)."""
    config = yaml.safe_load(CENTRAL_CONFIG.read_text())
    (tmp_path / "targets.json").write_text("[]")
    for job in config["scrape_configs"]:
        for sd in job.pop("kubernetes_sd_configs", []):
            assert set(sd) <= KUBERNETES_SD_FIELDS, set(sd) - KUBERNETES_SD_FIELDS
            assert sd["role"] in KUBERNETES_SD_ROLES
            assert set(sd.get("namespaces", {})) <= {"names", "own_namespace"}
            job.setdefault("file_sd_configs", []).append({"files": [str(tmp_path / "targets.json")]})
    config["rule_files"] = [str(RULES)]
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config))
    assert_ok(promtool("check", "config", checked))


def test_central_prometheus_enables_what_the_agent_needs():
    deployment = next(
        doc
        for doc in yaml.safe_load_all((OBSERVABILITY / "prometheus" / "prometheus.yaml").read_text())
        if doc["kind"] == "Deployment"
    )
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--web.enable-remote-write-receiver" in args


@pytest.mark.parametrize(
    "expression",
    [
        'http_requests_total{status=~"5.."}',
        "log_sidecar_lag_bytes",
        "config_sidecar_drift",
        'up{container="exporter"}',
        "envoy_listener_ssl_certificate_expiration_unix_time_seconds",
    ],
)
def test_rules_watch_the_contract_metrics(expression):
    assert expression in RULES.read_text()

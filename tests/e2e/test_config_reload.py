"""Editing the bind-mounted config reloads the running app; a broken edit is refused (the first workshop exercise).

The tests edit only the throwaway copy that the CI override bind-mounts (E2E_CONFIG_SOURCE),
never the repository's ./config, and put the original file back afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sidecar_common import content_version, read_config_files
from tests.e2e.config_edits import APP_CONFIG, RELOAD_TIMEOUT_SECONDS, app_config, write_atomically
from tests.e2e.stack import HTTP_TIMEOUT_SECONDS, Stack
from tests.support import wait_until


def sidecar_counter(stack: Stack, name: str, **labels: str) -> float:
    """A counter of the config sidecar's /metrics (0 before its first increment)."""
    text = requests.get(f"{stack.config_sidecar}/metrics", timeout=HTTP_TIMEOUT_SECONDS).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{name}_total" and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_editing_the_mounted_config_reloads_the_running_app(stack: Stack, config_source: Path) -> None:
    before = app_config(stack)
    document = yaml.safe_load((config_source / APP_CONFIG).read_text())
    greeting = f"Hello from the e2e test {uuid.uuid4().hex[:8]}"
    document["greeting"] = greeting

    write_atomically(config_source / APP_CONFIG, yaml.safe_dump(document, sort_keys=False))
    expected_version = content_version(read_config_files(config_source))

    def reloaded() -> dict[str, Any] | None:
        body = app_config(stack)
        return body if body["version"] == expected_version else None

    after = wait_until(
        reloaded, timeout=RELOAD_TIMEOUT_SECONDS, interval=0.5, message=f"the app serving version {expected_version}"
    )
    assert after is not None
    assert after["version"] != before["version"]
    assert after["config"]["greeting"] == greeting
    served = stack.app_json("/api/greeting")
    assert served["greeting"] == greeting
    assert served["config_version"] == expected_version


def test_invalid_config_is_refused_and_the_app_keeps_the_last_good_one(stack: Stack, config_source: Path) -> None:
    good_version = app_config(stack)["version"]
    invalid_before = sidecar_counter(stack, "config_sidecar_syncs", result="invalid")

    write_atomically(config_source / APP_CONFIG, "greeting: [this list is never closed\n")

    wait_until(
        lambda: sidecar_counter(stack, "config_sidecar_syncs", result="invalid") > invalid_before,
        timeout=RELOAD_TIMEOUT_SECONDS,
        interval=0.5,
        message="the config sidecar refusing the broken app.yaml",
    )
    assert app_config(stack)["version"] == good_version
    assert stack.app_get("/readyz").status == 200

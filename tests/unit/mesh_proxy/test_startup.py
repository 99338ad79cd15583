"""The start-up checks in-process: a bad policy is judged once per content, a fixed one at once."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mesh_proxy import ca, cert_dir, startup
from mesh_proxy.check import PolicyProblem, check_policy
from tests.unit.mesh_proxy.conftest import ROOT, settings


def test_an_unchanged_policy_is_not_validated_again(
    tmp_path: Path, envoy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    authority = ca.create_authority(tmp_path / "ca", timedelta(days=1), datetime.now(UTC))
    workload = ca.issue(authority, ca.spiffe_id("ns", "sa"), timedelta(hours=1), datetime.now(UTC))
    cert_dir.publish(tmp_path / "certs", workload)
    shutil.copytree(ROOT / "config" / "mesh", tmp_path / "policy" / "mesh")
    routes = tmp_path / "policy" / "mesh" / "routes.yaml"
    routes.write_text(routes.read_text().replace("num_retries: 2", "num_retries: 20"))
    calls: list[Path] = []

    def counting(*args: object, **kwargs: object) -> PolicyProblem | None:
        calls.append(routes)
        return check_policy(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(startup, "check_policy", counting)
    proxy = startup.Startup(
        settings(
            MESH_CERT_DIR=str(tmp_path / "certs"),
            MESH_POLICY_DIR=str(tmp_path / "policy"),
            MESH_RUN_DIR=str(tmp_path / "run"),
            MESH_ACCESS_LOG="",
            MESH_UPSTREAM_ADDRESSES="127.0.0.1:8443",
        ),
        envoy,
    )
    proxy.prepare()
    first = proxy.problem()
    assert isinstance(first, PolicyProblem)
    assert "num_retries: 20" in first.reason
    assert proxy.problem() == first
    assert len(calls) == 1
    routes.write_text(routes.read_text().replace("num_retries: 20", "num_retries: 2"))
    assert proxy.problem() is None
    assert len(calls) == 2
    assert [f"{e.ip}:{e.port}" for e in proxy.endpoints] == ["127.0.0.1:8443"]

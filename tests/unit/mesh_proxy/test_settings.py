"""Settings: bad values are refused naming the variable, before anything starts."""

from __future__ import annotations

import pytest

from sidecar_common import SettingsError
from tests.unit.mesh_proxy.conftest import settings


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MESH_INBOUND_PORT": "70000"}, "MESH_INBOUND_PORT"),
        ({"MESH_STATS_PORT": "8443"}, "MESH_STATS_PORT"),
        ({"MESH_APP_HOST": "localhost"}, "MESH_APP_HOST"),
        ({"MESH_UPSTREAM_ADDRESSES": "demo-app"}, "MESH_UPSTREAM_ADDRESSES"),
        ({"MESH_UPSTREAM_PRINCIPAL": "demo-app"}, "MESH_UPSTREAM_PRINCIPAL"),
        ({"MESH_ALLOWED_PRINCIPALS": "spiffe://lab/web,web"}, "MESH_ALLOWED_PRINCIPALS"),
        ({"MESH_ALLOWED_PATH_PREFIXES": "api/"}, "MESH_ALLOWED_PATH_PREFIXES"),
        ({"MESH_ACCESS_LOG": "envoy.log"}, "MESH_ACCESS_LOG"),
        ({"MESH_CONCURRENCY": "0"}, "MESH_CONCURRENCY"),
        ({"MESH_RETRY_SECONDS": "0"}, "MESH_RETRY_SECONDS"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings(**env)
    assert raised.value.variable == variable


def test_upstream_addresses_accept_names_ips_and_ipv6() -> None:
    parsed = settings(MESH_UPSTREAM_ADDRESSES="demo-app:8443, 10.0.0.7:8443,[::1]:9443")
    assert parsed.upstream_addresses == ("demo-app:8443", "10.0.0.7:8443", "[::1]:9443")


def test_an_empty_principal_list_is_allowed_and_means_nobody() -> None:
    assert settings(MESH_ALLOWED_PRINCIPALS="").allowed_principals == ()


def test_no_upstream_is_allowed_for_a_pod_that_calls_none() -> None:
    assert settings(MESH_UPSTREAM_ADDRESSES="").upstream_addresses == ()

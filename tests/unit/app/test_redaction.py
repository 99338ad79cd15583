"""Secret-looking keys are hidden at any depth before config leaves the app."""

from __future__ import annotations

from typing import Any

import pytest

from demo_app.redaction import REDACTED, is_secret_key, redact


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "secret",
        "client-secret",
        "token",
        "auth.token",
        "api_key",
        "API-Key",
        "apikey",
        "credentials",
        "private_key",
        "privateKey",
        "passwd",
    ],
)
def test_secret_looking_keys_are_recognised(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["greeting", "name", "host", "features", "latency_ms", "keyboard"])
def test_ordinary_keys_are_left_alone(key: str) -> None:
    assert not is_secret_key(key)


def test_redaction_reaches_nested_maps_and_lists_without_touching_the_input() -> None:
    config: dict[str, Any] = {
        "database": {"host": "db", "password": "hunter2"},
        "clients": [{"name": "a", "api_key": "k1"}, {"name": "b", "tokens": ["t1", "t2"]}],
        "secret": {"nested": "whole subtree"},
    }
    assert redact(config) == {
        "database": {"host": "db", "password": REDACTED},
        "clients": [{"name": "a", "api_key": REDACTED}, {"name": "b", "tokens": REDACTED}],
        "secret": REDACTED,
    }
    assert config["database"]["password"] == "hunter2"

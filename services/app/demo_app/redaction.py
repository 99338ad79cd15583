"""Hide the values of secret-looking keys before config leaves the app (/api/config)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"
# Matched anywhere in the key after lower-casing and dropping separators, so db_password,
# API-Key, auth.token, privateKey and client_credentials are all caught. A false positive
# (token_ttl) only hides a harmless value; a false negative would leak a secret.
SECRET_WORDS = ("password", "passwd", "secret", "token", "apikey", "credential", "privatekey")
_SEPARATORS = re.compile(r"[-_.\s]")


def is_secret_key(key: str) -> bool:
    """Tell whether a key's name suggests its value is a secret."""
    normalized = _SEPARATORS.sub("", key.lower())
    return any(word in normalized for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """Return a plain copy of ``value`` with every secret-looking key's value replaced, at any depth."""
    if isinstance(value, Mapping):
        return {key: REDACTED if is_secret_key(str(key)) else redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value

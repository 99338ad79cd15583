"""Optional authentication: HTTP basic and ``ApiKey`` headers, refused with Elasticsearch's 401 body."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

from . import errors

_CHALLENGES = ['Basic realm="security" charset="UTF-8"', "ApiKey"]


@dataclass(frozen=True)
class Credentials:
    """What the emulator accepts; with neither basic credentials nor an API key, everything is allowed."""

    username: str | None = None
    password: str | None = None
    api_key: str | None = None

    @property
    def required(self) -> bool:
        return self.username is not None or self.api_key is not None

    def describe(self) -> str:
        """Say which schemes are on, without revealing any secret."""
        schemes = [name for name, on in (("basic", self.username is not None), ("api_key", self.api_key)) if on]
        return "+".join(schemes) or "none"

    def check(self, authorization: str | None, path: str) -> dict[str, Any] | None:
        """Return None if ``authorization`` is accepted, else the 401 body to answer with.

        ``api_key`` matches the token after ``ApiKey `` as sent, or its base64 decoding (``id:key``).
        """
        if not self.required:
            return None
        if not authorization:
            return _unauthorized(f"missing authentication credentials for REST request [{path}]")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() == "basic" and self.username is not None:
            try:
                user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return _unauthorized(f"unable to authenticate user for REST request [{path}]")
            if _same(user, self.username) and _same(password, self.password or ""):
                return None
            return _unauthorized(f"unable to authenticate user [{user}] for REST request [{path}]")
        if scheme.lower() == "apikey" and self.api_key is not None:
            if _same(token, self.api_key) or _same(_b64decode(token), self.api_key):
                return None
            return _unauthorized("unable to authenticate with provided credentials and anonymous access is not allowed")
        return _unauthorized(f"unable to authenticate with the [{scheme}] scheme for REST request [{path}]")


def _same(given: str, expected: str) -> bool:
    """Compare secrets in constant time (as bytes, so non-ASCII input cannot raise)."""
    return hmac.compare_digest(given.encode(), expected.encode())


def _b64decode(token: str) -> str:
    try:
        return base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _unauthorized(reason: str) -> dict[str, Any]:
    return errors.request_error(
        401, errors.cause("security_exception", reason, header={"WWW-Authenticate": list(_CHALLENGES)})
    )


def challenge_headers() -> list[tuple[str, str]]:
    """The ``WWW-Authenticate`` headers a 401 carries."""
    return [("WWW-Authenticate", challenge) for challenge in _CHALLENGES]

"""Deterministic document ids: the same bytes of the same file always get the same ``_id``.

With ``op_type: create`` Elasticsearch refuses a second document with a known
``_id`` (409 conflict). A batch resent after a crash therefore cannot create
duplicates, which turns at-least-once shipping into exactly-once storage.
"""

from __future__ import annotations

import base64
import hashlib

KEY_LENGTH = 16  # base64url characters: 96 bits, so two files never share a key by chance


def file_key(inode: int, generation: int, fingerprint: str) -> str:
    """Name one generation of one file's content, stable across restarts.

    The device number is left out on purpose: it can change when a volume is
    remounted, while the inode and the first bytes of the file do not. The
    generation changes when the file is truncated or its inode is reused, so
    the new content never collides with ids already stored.
    """
    digest = hashlib.sha1(f"{inode}:{generation}:{fingerprint}".encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode()[:KEY_LENGTH]


def document_id(key: str, offset: int) -> str:
    """Return the ``_id`` of the record that starts at byte ``offset`` of the file ``key`` names."""
    # "." is not a base64url character, so key and offset can always be told apart; the
    # readable offset lets an operator find the source line of any document.
    return f"{key}.{offset}"


def parse_document_id(doc_id: str) -> tuple[str, int]:
    """Split an id made by :func:`document_id` back into (key, offset)."""
    key, _, offset = doc_id.rpartition(".")
    if len(key) != KEY_LENGTH or not offset.isdigit():
        raise ValueError(f"not a log-sidecar document id: {doc_id!r}")
    return key, int(offset)

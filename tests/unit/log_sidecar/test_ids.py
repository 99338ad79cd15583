"""Document ids are deterministic per file generation and offset, and never collide across them."""

from __future__ import annotations

import pytest

from log_sidecar.ids import KEY_LENGTH, document_id, file_key, parse_document_id


def test_the_same_file_and_offset_always_get_the_same_id() -> None:
    assert document_id(file_key(42, 0, "abc"), 1234) == document_id(file_key(42, 0, "abc"), 1234)


@pytest.mark.parametrize(
    "other",
    [file_key(43, 0, "abc"), file_key(42, 1, "abc"), file_key(42, 0, "abd")],
    ids=["other inode", "next generation", "other content"],
)
def test_another_file_or_generation_gets_other_ids(other: str) -> None:
    assert other != file_key(42, 0, "abc")
    assert document_id(other, 0) != document_id(file_key(42, 0, "abc"), 0)


def test_ids_are_url_safe_and_parse_back() -> None:
    key = file_key(42, 0, "abc")
    assert len(key) == KEY_LENGTH
    doc_id = document_id(key, 987654321)
    assert all(c.isalnum() or c in "-_." for c in doc_id)
    assert parse_document_id(doc_id) == (key, 987654321)
    with pytest.raises(ValueError):
        parse_document_id("not-an-id")


def test_ids_of_one_file_are_unique_per_offset() -> None:
    key = file_key(1, 0, "x")
    assert len({document_id(key, offset) for offset in range(10_000)}) == 10_000

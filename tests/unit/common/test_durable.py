from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sidecar_common.durable import replace_file, write_file


def test_write_file_sets_the_mode_after_writing(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    write_file(path, b"s3cret", 0o400)
    assert path.read_bytes() == b"s3cret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_write_file_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_file(path, b"one")
    with pytest.raises(FileExistsError):
        write_file(path, b"two")
    write_file(path, b"three", replace_existing=True)
    assert path.read_bytes() == b"three"


def test_replace_file_swaps_content_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    replace_file(path, b'{"v": 1}')
    replace_file(path, b'{"v": 2}')
    assert path.read_bytes() == b'{"v": 2}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.json"]

from __future__ import annotations

import os
from pathlib import Path

from sidecar_common.config_version import content_version, read_config_files


def test_version_depends_on_names_and_contents_not_order() -> None:
    a = content_version({"a.yaml": b"x: 1\n", "b.json": b"{}"})
    assert a == content_version({"b.json": b"{}", "a.yaml": b"x: 1\n"})
    assert a != content_version({"a.yaml": b"x: 2\n", "b.json": b"{}"})
    assert a != content_version({"c.yaml": b"x: 1\n", "b.json": b"{}"})
    # Length framing: moving bytes between name and content changes the version.
    assert content_version({"ab": b"c"}) != content_version({"a": b"bc"})


def test_reads_one_version_through_data_symlink(tmp_path: Path) -> None:
    version_dir = tmp_path / "..2026_11_26_09_00_00.1"
    version_dir.mkdir()
    (version_dir / "app.yaml").write_text("greeting: hi\n")
    os.symlink(version_dir.name, tmp_path / "..data")
    os.symlink("..data/app.yaml", tmp_path / "app.yaml")
    assert read_config_files(tmp_path) == {"app.yaml": b"greeting: hi\n"}


def test_plain_directory_skips_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("a: 1\n")
    (tmp_path / ".app.yaml.swp").write_text("junk")
    (tmp_path / "sub").mkdir()
    assert read_config_files(tmp_path) == {"app.yaml": b"a: 1\n"}

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


def test_nested_files_are_named_by_their_relative_path(tmp_path: Path) -> None:
    (tmp_path / "mesh" / "policy").mkdir(parents=True)
    (tmp_path / "app.yaml").write_text("a: 1\n")
    (tmp_path / "mesh" / "routes.yaml").write_text("r: 1\n")
    (tmp_path / "mesh" / "policy" / "rbac.yaml").write_text("p: 1\n")
    (tmp_path / "mesh" / ".cache").mkdir()  # a hidden part hides everything below it
    (tmp_path / "mesh" / ".cache" / "x.yaml").write_text("hidden")
    (tmp_path / "empty").mkdir()  # contributes nothing, as a ConfigMap cannot hold an empty directory
    assert read_config_files(tmp_path) == {
        "app.yaml": b"a: 1\n",
        "mesh/policy/rbac.yaml": b"p: 1\n",
        "mesh/routes.yaml": b"r: 1\n",
    }


def test_the_relative_path_is_part_of_the_version() -> None:
    flat = content_version({"app.yaml": b"a: 1\n"})
    assert content_version({"conf.d/app.yaml": b"a: 1\n"}) != flat  # moved into a subdirectory
    assert content_version({"conf.d/app.yaml": b"a: 1\n"}) != content_version({"conf.e/app.yaml": b"a: 1\n"})


def test_nested_files_are_read_through_one_data_resolution(tmp_path: Path) -> None:
    version_dir = tmp_path / "..2026_11_26_09_00_00.1"
    (version_dir / "mesh").mkdir(parents=True)
    (version_dir / "mesh" / "routes.yaml").write_text("r: 1\n")
    os.symlink(version_dir.name, tmp_path / "..data")
    os.symlink("..data/mesh", tmp_path / "mesh")
    assert read_config_files(tmp_path) == {"mesh/routes.yaml": b"r: 1\n"}


def test_a_symlink_loop_in_a_plain_directory_ends(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.yaml").write_text("a: 1\n")
    os.symlink("..", tmp_path / "conf.d" / "up")  # conf.d/up -> the config directory itself
    os.symlink("conf.d", tmp_path / "alias")  # a second name for a directory is read under both names
    assert read_config_files(tmp_path) == {"alias/a.yaml": b"a: 1\n", "conf.d/a.yaml": b"a: 1\n"}

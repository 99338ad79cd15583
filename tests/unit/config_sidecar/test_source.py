"""Reading one consistent source set from a kubelet volume or a plain directory."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from config_sidecar.settings import DEFAULT_IGNORE_PATTERNS
from config_sidecar.source import NameFilter, SourceMissingError, SourceReader
from tests.support.kubelet import KeyToPath, KubeletVolume, Source


@pytest.fixture
def name_filter() -> NameFilter:
    return NameFilter(DEFAULT_IGNORE_PATTERNS)


def test_kubelet_volume_is_read_through_data_with_modes(volume: KubeletVolume, name_filter: NameFilter) -> None:
    volume.write({"app.yaml": "greeting: hi\n", "token": "t0k3n"}, modes={"token": 0o400})
    config = SourceReader(volume.directory, name_filter).read()
    assert config.layout == "kubelet"
    assert config.contents == {"app.yaml": b"greeting: hi\n", "token": b"t0k3n"}
    assert config.files["token"].mode == 0o400
    assert config.files["app.yaml"].mode == 0o644


def test_plain_directory_skips_hidden_and_editor_files(tmp_path: Path, name_filter: NameFilter) -> None:
    for name in ("app.yaml", ".app.yaml.swp", "app.yaml~", "#app.yaml#", "4913", "notes.tmp", ".hidden"):
        (tmp_path / name).write_text(name)
    (tmp_path / "empty-subdir").mkdir()
    config = SourceReader(tmp_path, name_filter).read()
    assert config.layout == "plain"
    assert sorted(config.files) == ["app.yaml"]
    assert sorted(config.skipped) == sorted(["#app.yaml#", "4913", "app.yaml~", "notes.tmp"])


def test_missing_directory_raises_source_missing(tmp_path: Path, name_filter: NameFilter) -> None:
    with pytest.raises(SourceMissingError) as info:
        SourceReader(tmp_path / "nope", name_filter).read()
    assert info.value.directory == tmp_path / "nope"


@pytest.mark.parametrize(
    "names",
    [
        [f"key{i}.yaml" for i in range(5)],
        ["top.yaml", "conf.d/a.yaml", "conf.d/deep/b.yaml", "mesh/routes.yaml"],  # nested items
    ],
)
def test_reads_during_kubelet_swaps_are_never_mixed(
    volume: KubeletVolume, name_filter: NameFilter, names: list[str]
) -> None:
    volume.write(dict.fromkeys(names, "v: 0\n"))
    reader = SourceReader(volume.directory, name_filter, attempts=50)
    done = threading.Event()

    def swap() -> None:
        for number in range(1, 150):
            volume.write(dict.fromkeys(names, f"v: {number}\n"))
        done.set()

    writer = threading.Thread(target=swap)
    writer.start()
    reads = 0
    while not done.is_set():
        config = reader.read()
        assert sorted(config.files) == sorted(names)
        assert len(set(config.contents.values())) == 1, "one read must return one version"
        reads += 1
    writer.join()
    assert reads > 0


def test_relevant_names_are_config_names_and_the_data_swap(name_filter: NameFilter) -> None:
    assert name_filter.is_relevant("..data")
    assert name_filter.is_relevant("app.yaml")
    assert not name_filter.is_relevant("..data_tmp")
    assert not name_filter.is_relevant("..2024_01_01_00_00_00.123")
    assert not name_filter.is_relevant(".app.yaml.swp")
    assert not name_filter.is_relevant("app.yaml.tmp")


def test_changed_names_lists_added_modified_and_removed(volume: KubeletVolume, name_filter: NameFilter) -> None:
    reader = SourceReader(volume.directory, name_filter)
    volume.write({"a": "1", "b": "2", "c": "3"})
    before = reader.read()
    volume.write({"a": "1", "b": "changed", "d": "4"})
    after = reader.read()
    assert after.changed_names(before) == ["b", "c", "d"]
    assert after.changed_names(None) == ["a", "b", "d"]


def test_a_mode_change_alone_changes_the_fingerprint_not_the_version(
    volume: KubeletVolume, name_filter: NameFilter
) -> None:
    reader = SourceReader(volume.directory, name_filter)
    volume.write({"token": "x"}, modes={"token": 0o644})
    before = reader.read()
    volume.write({"token": "x"}, modes={"token": 0o400})
    after = reader.read()
    assert after.version == before.version
    assert after.fingerprint != before.fingerprint


def test_symlinked_file_in_a_plain_directory_is_read(tmp_path: Path, name_filter: NameFilter) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("a: 1\n")
    source = tmp_path / "src"
    source.mkdir()
    os.symlink(elsewhere, source / "app.yaml")
    assert SourceReader(source, name_filter).read().contents == {"app.yaml": b"a: 1\n"}


def test_nested_items_of_a_kubelet_volume_are_read_by_relative_path(
    volume: KubeletVolume, name_filter: NameFilter
) -> None:
    data = {"app": "greeting: hi\n", "routes": "r: 1\n", "key": "k3y"}
    items = [
        KeyToPath("app", "app.yaml"),
        KeyToPath("routes", "mesh/routes.yaml"),
        KeyToPath("key", "tls/a/key", 0o400),
    ]
    volume.write_sources([Source(data, items)])
    config = SourceReader(volume.directory, name_filter).read()
    assert config.layout == "kubelet"
    assert config.contents == {"app.yaml": b"greeting: hi\n", "mesh/routes.yaml": b"r: 1\n", "tls/a/key": b"k3y"}
    assert config.files["tls/a/key"].mode == 0o400
    assert config.skipped == ()


def test_a_plain_directory_with_subdirectories_is_read_whole(tmp_path: Path, name_filter: NameFilter) -> None:
    (tmp_path / "mesh" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "app.yaml").write_text("a: 1\n")
    (tmp_path / "mesh" / "routes.yaml").write_text("r: 1\n")
    (tmp_path / "mesh" / "routes.yaml~").write_text("backup")
    (tmp_path / "mesh" / ".routes.yaml.swp").write_text("swap")
    (tmp_path / "mesh" / "deep" / "x.json").write_text("{}")
    config = SourceReader(tmp_path, name_filter).read()
    assert config.contents == {"app.yaml": b"a: 1\n", "mesh/deep/x.json": b"{}", "mesh/routes.yaml": b"r: 1\n"}
    assert config.skipped == ("mesh/routes.yaml~",)  # editor files are named by their relative path too


def test_a_nested_change_is_a_changed_name_and_a_new_version(volume: KubeletVolume, name_filter: NameFilter) -> None:
    reader = SourceReader(volume.directory, name_filter)
    volume.write({"app.yaml": "a", "mesh/routes.yaml": "r1", "mesh/clusters.yaml": "c"})
    before = reader.read()
    volume.write({"app.yaml": "a", "mesh/routes.yaml": "r2"})
    after = reader.read()
    assert after.changed_names(before) == ["mesh/clusters.yaml", "mesh/routes.yaml"]
    assert after.version != before.version

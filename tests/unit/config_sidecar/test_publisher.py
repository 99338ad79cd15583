"""Atomic publishing into the target directory, kubelet style."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from config_sidecar.publisher import Publisher, PublishError
from config_sidecar.source import ConfigFile, ConfigSet
from sidecar_common import content_version, read_config_files, snapshot_root


def config_set(files: dict[str, str], modes: dict[str, int] | None = None) -> ConfigSet:
    modes = modes or {}
    return ConfigSet({name: ConfigFile(text.encode(), modes.get(name, 0o644)) for name, text in files.items()})


def version_dirs(target: Path) -> list[str]:
    return sorted(p.name for p in target.iterdir() if p.name.startswith("..2"))


def test_layout_is_the_kubelet_layout(target: Path) -> None:
    result = Publisher(target).publish(config_set({"app.yaml": "a: 1\n", "extra.txt": "x"}))
    assert os.readlink(target / "..data") == result.directory.name
    assert result.directory.name.startswith("..")
    assert os.readlink(target / "app.yaml") == "..data/app.yaml"
    assert os.readlink(target / "extra.txt") == "..data/extra.txt"
    assert not (target / "..data_tmp").exists()
    assert read_config_files(target) == {"app.yaml": b"a: 1\n", "extra.txt": b"x"}
    assert result.version == content_version(read_config_files(target))


def test_modes_are_kept_and_deleted_keys_lose_their_links(target: Path) -> None:
    publisher = Publisher(target)
    publisher.publish(config_set({"app.yaml": "a", "secret": "s"}, {"secret": 0o400}))
    assert (target / "secret").stat().st_mode & 0o777 == 0o400
    publisher.publish(config_set({"app.yaml": "b"}))
    assert not os.path.lexists(target / "secret")
    assert sorted(n for n in os.listdir(target) if not n.startswith(".")) == ["app.yaml"]


def test_old_versions_are_removed_keeping_only_the_previous(target: Path) -> None:
    publisher = Publisher(target)
    dirs = [publisher.publish(config_set({"app.yaml": f"n: {n}"})).directory.name for n in range(5)]
    assert version_dirs(target) == sorted(dirs[-2:])
    kubelet_like = Publisher(target, keep_previous=False)
    last = kubelet_like.publish(config_set({"app.yaml": "n: last"})).directory.name
    assert version_dirs(target) == [last]


def test_files_of_others_in_the_target_are_left_alone(target: Path) -> None:
    target.mkdir()
    (target / "README").write_text("not ours")
    os.symlink("/etc/hostname", target / "foreign-link")
    Publisher(target).publish(config_set({"app.yaml": "a"}))
    Publisher(target).publish(config_set({"other.yaml": "b"}))
    assert (target / "README").read_text() == "not ours"
    assert os.readlink(target / "foreign-link") == "/etc/hostname"


def test_a_plain_file_in_the_way_is_replaced_by_the_link(target: Path) -> None:
    target.mkdir()
    (target / "app.yaml").write_text("stale copy")
    Publisher(target).publish(config_set({"app.yaml": "fresh"}))
    assert os.readlink(target / "app.yaml") == "..data/app.yaml"
    assert (target / "app.yaml").read_text() == "fresh"


def test_published_reads_back_what_is_there(target: Path) -> None:
    publisher = Publisher(target)
    assert publisher.published() is None
    config = config_set({"app.yaml": "a: 1\n", "s": "x"}, {"s": 0o400})
    publisher.publish(config)
    again = Publisher(target).published()
    assert again is not None
    assert again.fingerprint == config.fingerprint


def test_publish_failure_leaves_the_previous_version_in_place(target: Path) -> None:
    publisher = Publisher(target)
    publisher.publish(config_set({"app.yaml": "good"}))
    broken = ConfigSet({"app.yaml": ConfigFile(b"new"), "n" * 300: ConfigFile(b"x")})  # name too long
    with pytest.raises(PublishError, match="File name too long"):
        publisher.publish(broken)
    assert read_config_files(target) == {"app.yaml": b"good"}
    assert len(version_dirs(target)) == 1  # the half-written version was removed


def test_unwritable_target_raises_publish_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PublishError) as info:
        Publisher(blocker / "target").publish(config_set({"a": "b"}))
    assert info.value.directory == blocker / "target"


def test_writes_nothing_outside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "target"
    before = set(tmp_path.iterdir())
    Publisher(target).publish(config_set({"app.yaml": "a"}))
    assert set(tmp_path.iterdir()) - before == {target}


@pytest.mark.parametrize(
    "names",
    [
        [f"file{i}.yaml" for i in range(4)],
        ["app.yaml", "mesh/routes.yaml", "mesh/clusters.yaml", "conf.d/deep/x.yaml"],
    ],
    ids=["flat", "nested"],
)
def test_reader_in_a_tight_loop_never_sees_two_versions(target: Path, names: list[str]) -> None:
    """Every file carries its version number; 200 publishes race a reader that never stops."""
    publisher = Publisher(target)
    publisher.publish(config_set({name: f"version: 0\nname: {name}\n" for name in names}))
    stop = threading.Event()
    mixed: list[dict[str, bytes]] = []
    torn_live: list[set[str]] = []
    reads = [0, 0]  # complete reads, reads that lost a race with the cleanup of an old version

    def read_loop() -> None:
        while not stop.is_set():
            time.sleep(0)  # yield the GIL each turn, or the publisher thread crawls; still thousands of reads
            root = snapshot_root(target)
            try:
                files = read_config_files(target)
            except FileNotFoundError:
                reads[1] += 1  # a version two publishes old was deleted under a descheduled reader
                continue
            versions = {content.split(b"\n", 1)[0] for content in files.values()}
            if len(versions) > 1:
                mixed.append(files)
            if set(files) != set(names):
                if root.exists():
                    torn_live.append(set(files))
                else:
                    reads[1] += 1
                continue
            reads[0] += 1

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for number in range(1, 201):
            publisher.publish(config_set({name: f"version: {number}\nname: {name}\n" for name in names}))
    finally:
        stop.set()
        reader.join(10)
    assert not mixed, f"a read mixed versions: {mixed[0]}"
    assert not torn_live, f"a read saw an incomplete set of a live version: {torn_live[0]}"
    assert reads[0] > 200, f"the reader must really race the publisher, read only {reads[0]} times"
    assert read_config_files(target)[names[0]].startswith(b"version: 200\n")


def test_nested_names_are_published_kubelet_style_and_byte_exact(target: Path) -> None:
    blob = bytes(range(256)) * 4  # not text, not UTF-8: must arrive unchanged
    config = ConfigSet(
        {
            "app.yaml": ConfigFile(b"a: 1\n"),
            "mesh/routes.yaml": ConfigFile(b"routes: []\n"),
            "mesh/clusters.yaml": ConfigFile(b"clusters: []\n"),
            "tls/certs/ca.bin": ConfigFile(blob, 0o400),
        }
    )
    result = Publisher(target).publish(config)
    assert sorted(n for n in os.listdir(target) if not n.startswith(".")) == ["app.yaml", "mesh", "tls"]
    assert os.readlink(target / "mesh") == "..data/mesh"  # one link per first path part, like kubelet
    assert os.readlink(target / "tls") == "..data/tls"
    assert (target / "mesh" / "routes.yaml").read_bytes() == b"routes: []\n"
    assert (target / "tls" / "certs" / "ca.bin").read_bytes() == blob
    assert (result.directory / "tls" / "certs" / "ca.bin").stat().st_mode & 0o777 == 0o400
    assert (result.directory / "tls").stat().st_mode & 0o777 == 0o755
    assert (result.directory / "tls" / "certs").stat().st_mode & 0o777 == 0o755
    assert read_config_files(target) == config.contents
    assert content_version(read_config_files(target)) == result.version == config.version  # the app's hash


def test_nested_changes_and_removals_swap_data_and_follow_kubelet(target: Path) -> None:
    publisher = Publisher(target)
    first = publisher.publish(config_set({"app.yaml": "a", "mesh/routes.yaml": "r1", "mesh/clusters.yaml": "c"}))
    changed = publisher.publish(config_set({"app.yaml": "a", "mesh/routes.yaml": "r2", "mesh/clusters.yaml": "c"}))
    assert os.readlink(target / "..data") == changed.directory.name != first.directory.name
    assert (target / "mesh" / "routes.yaml").read_text() == "r2"

    publisher.publish(config_set({"app.yaml": "a", "mesh/routes.yaml": "r2"}))  # one nested item removed
    assert os.readlink(target / "mesh") == "..data/mesh"  # still needed by routes.yaml
    assert sorted(os.listdir(target / "mesh")) == ["routes.yaml"]
    assert not (target / "mesh" / "clusters.yaml").exists()

    publisher.publish(config_set({"app.yaml": "a"}))  # the last one below mesh/ removed
    assert not os.path.lexists(target / "mesh")
    assert read_config_files(target) == {"app.yaml": b"a"}


def test_a_key_can_become_a_directory_and_back(target: Path) -> None:
    publisher = Publisher(target)
    publisher.publish(config_set({"conf.d": "a flat key"}))
    publisher.publish(config_set({"conf.d/app.yaml": "now nested"}))
    assert os.readlink(target / "conf.d") == "..data/conf.d"
    assert read_config_files(target) == {"conf.d/app.yaml": b"now nested"}
    publisher.publish(config_set({"conf.d": "flat again"}))
    assert (target / "conf.d").read_text() == "flat again"


def test_restored_nested_set_reads_back_with_the_same_fingerprint(target: Path) -> None:
    config = config_set({"app.yaml": "a", "mesh/routes.yaml": "r", "s/token": "t"}, {"s/token": 0o400})
    Publisher(target).publish(config)
    again = Publisher(target).published()
    assert again is not None
    assert again.fingerprint == config.fingerprint


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", "mesh//x", "mesh/.hidden", "./app.yaml", ""])
def test_names_that_could_escape_or_hide_are_refused(target: Path, name: str) -> None:
    publisher = Publisher(target)
    publisher.publish(config_set({"app.yaml": "good"}))
    with pytest.raises(PublishError, match="not a relative path"):
        publisher.publish(config_set({"app.yaml": "new", name: "x"}))
    assert read_config_files(target) == {"app.yaml": b"good"}
    assert len(version_dirs(target)) == 1

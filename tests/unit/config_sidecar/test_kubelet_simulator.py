"""The kubelet AtomicWriter simulator the tests rely on must produce kubelet's layout."""

from __future__ import annotations

import os

import pytest

from sidecar_common import read_config_files
from tests.support.kubelet import KeyToPath, KubeletVolume, Source, project


def test_layout_after_updates(volume: KubeletVolume) -> None:
    first = volume.write({"app.yaml": "a: 1\n", "gone": "x"})
    second = volume.write({"app.yaml": "a: 2\n", "new": "y"}, modes={"new": 0o400})
    entries = sorted(os.listdir(volume.directory))
    assert entries == sorted(["..data", second.name, "app.yaml", "new"])
    assert not first.exists()  # the old version is deleted at once, as kubelet does
    assert os.readlink(volume.directory / "..data") == second.name
    assert os.readlink(volume.directory / "new") == "..data/new"
    assert (second / "new").stat().st_mode & 0o777 == 0o400
    assert read_config_files(volume.directory) == {"app.yaml": b"a: 2\n", "new": b"y"}
    assert second.name.startswith("..")
    assert second.stat().st_mode & 0o777 == 0o755


def test_refuses_keys_kubelet_would_not_write(volume: KubeletVolume) -> None:
    with pytest.raises(ValueError):
        volume.write({"..data": "x"})


def test_nested_items_get_one_visible_link_per_first_path_part(volume: KubeletVolume) -> None:
    # items: [{key: app, path: conf.d/app.yaml}, {key: db, path: conf.d/db/pool.yaml}, {key: top, path: top.yaml}]
    data_dir = volume.write({"conf.d/app.yaml": "a: 1\n", "conf.d/db/pool.yaml": "size: 2\n", "top.yaml": "t: 1\n"})
    visible = sorted(n for n in os.listdir(volume.directory) if not n.startswith(".."))
    assert visible == ["conf.d", "top.yaml"]
    assert os.readlink(volume.directory / "conf.d") == "..data/conf.d"
    assert (volume.directory / "conf.d" / "db" / "pool.yaml").read_text() == "size: 2\n"
    assert (data_dir / "conf.d").stat().st_mode & 0o777 == 0o755
    assert (data_dir / "conf.d" / "db").stat().st_mode & 0o777 == 0o755
    assert read_config_files(volume.directory) == {
        "conf.d/app.yaml": b"a: 1\n",
        "conf.d/db/pool.yaml": b"size: 2\n",
        "top.yaml": b"t: 1\n",
    }


def test_a_removed_nested_item_keeps_its_link_while_a_sibling_needs_it(volume: KubeletVolume) -> None:
    volume.write({"conf.d/a.yaml": "a\n", "conf.d/b.yaml": "b\n", "top.yaml": "t\n"})
    volume.write({"conf.d/b.yaml": "b\n", "top.yaml": "t\n"})
    assert os.readlink(volume.directory / "conf.d") == "..data/conf.d"
    assert sorted(os.listdir(volume.directory / "conf.d")) == ["b.yaml"]
    volume.write({"top.yaml": "t\n"})
    assert not os.path.lexists(volume.directory / "conf.d")  # the last item below conf.d took the link along


def test_projected_sources_share_one_directory_and_one_data_link(volume: KubeletVolume) -> None:
    config_map = Source({"app.yaml": "greeting: hi\n", "routes": "r\n"}, [KeyToPath("routes", "mesh/routes.yaml")])
    secret = Source({"token": "t0k3n"}, [KeyToPath("token", "secrets/token", mode=0o400)])
    downward = Source({"labels": 'app="demo"\n'})
    data_dir = volume.write_sources([config_map, secret, downward])
    assert sorted(n for n in os.listdir(volume.directory) if not n.startswith("..")) == ["labels", "mesh", "secrets"]
    assert sorted(n for n in os.listdir(volume.directory) if n.startswith("..")) == sorted(["..data", data_dir.name])
    assert (data_dir / "secrets" / "token").stat().st_mode & 0o777 == 0o400
    assert (data_dir / "labels").stat().st_mode & 0o777 == 0o644
    # Only listed keys are projected: app.yaml is not.
    assert read_config_files(volume.directory) == {
        "labels": b'app="demo"\n',
        "mesh/routes.yaml": b"r\n",
        "secrets/token": b"t0k3n",
    }


def test_projection_follows_kubelet_merge_rules() -> None:
    files, modes = project([Source({"a": "first"}), Source({"a": "second"})], default_mode=0o440)
    assert files == {"a": "second"}  # a later source replaces a key's file
    assert modes == {"a": 0o440}
    with pytest.raises(ValueError, match="conflicting duplicate paths"):
        project([Source({"x": "1"}, [KeyToPath("x", "p")]), Source({"y": "2"}, [KeyToPath("y", "p")])])
    with pytest.raises(ValueError, match="not found"):
        project([Source({"x": "1"}, [KeyToPath("missing", "p")])])


@pytest.mark.parametrize("path", ["/abs", "a/../b", "..x/y", "", "a//b", "./a"])
def test_refuses_paths_kubelet_would_not_write(volume: KubeletVolume, path: str) -> None:
    with pytest.raises(ValueError):
        volume.write({path: "x"})


def test_a_dotfile_key_is_written_like_kubelet_does(volume: KubeletVolume) -> None:
    volume.write({".env": "A=1\n", "conf.d/.hidden": "h", "app.yaml": "a: 1\n"})
    assert os.readlink(volume.directory / ".env") == "..data/.env"
    assert read_config_files(volume.directory) == {"app.yaml": b"a: 1\n"}  # dotfiles are never config

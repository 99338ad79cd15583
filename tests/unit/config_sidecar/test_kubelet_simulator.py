"""The kubelet AtomicWriter simulator the tests rely on must produce kubelet's layout."""

from __future__ import annotations

import os

import pytest

from sidecar_common import read_config_files
from tests.support.kubelet import KubeletVolume


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
    with pytest.raises(ValueError):
        volume.write({"mesh/../app.yaml": "x"})


def test_nested_item_paths_get_one_visible_link_for_their_directory(volume: KubeletVolume) -> None:
    """ConfigMap ``items`` with ``path: mesh/routes.yaml``: kubelet links ``mesh -> ..data/mesh``."""
    volume.write({"app.yaml": "a: 1\n", "mesh/routes.yaml": "r: 1\n", "mesh/clusters.yaml": "c: 1\n"})
    second = volume.write({"app.yaml": "a: 1\n", "mesh/routes.yaml": "r: 2\n"})
    assert sorted(os.listdir(volume.directory)) == sorted(["..data", second.name, "app.yaml", "mesh"])
    assert os.readlink(volume.directory / "mesh") == "..data/mesh"
    assert (volume.directory / "mesh" / "routes.yaml").read_text() == "r: 2\n"
    assert not (volume.directory / "mesh" / "clusters.yaml").exists()
    volume.write({"app.yaml": "a: 1\n"})
    assert not (volume.directory / "mesh").exists()  # the last item under mesh/ is gone, and so is the link

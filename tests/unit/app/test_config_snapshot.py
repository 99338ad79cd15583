"""Loading the config directory into one immutable, versioned snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo_app.config_snapshot import ConfigInvalidError, ConfigMissingError, load_snapshot, thaw
from sidecar_common import content_version, read_config_files
from tests.support.kubelet import KubeletVolume
from tests.unit.app.doubles import publish


def test_version_is_the_shared_content_hash_over_every_visible_file(tmp_path: Path) -> None:
    publish(tmp_path, {"app.yaml": "greeting: hi\n", "notes.txt": "not parsed", "flags.json": "[1, 2]"})
    snapshot = load_snapshot(tmp_path)
    assert snapshot.version == content_version(read_config_files(tmp_path))
    assert snapshot.other_files == ("notes.txt",)
    assert thaw(snapshot.documents["flags.json"]) == [1, 2]
    publish(tmp_path, {"app.yaml": "greeting: hi\n", "notes.txt": "edited, still not parsed", "flags.json": "[1, 2]"})
    assert load_snapshot(tmp_path).version != snapshot.version


def test_plain_directory_without_kubelet_layout_loads_too(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("greeting: plain\n")
    (tmp_path / ".hidden.yaml").write_text("{{{ ignored: hidden files are not config")
    assert load_snapshot(tmp_path).app.greeting == "plain"


def test_snapshot_cannot_be_changed_after_loading(tmp_path: Path) -> None:
    publish(tmp_path, {"app.yaml": "greeting: hi\nfeatures:\n  beta: true\nlist: [1, {a: 2}]\n"})
    snapshot = load_snapshot(tmp_path)
    with pytest.raises(TypeError):
        snapshot.app.features["beta"] = False  # type: ignore[index]
    with pytest.raises(TypeError):
        snapshot.documents["app.yaml"]["list"][1]["a"] = 3
    with pytest.raises(AttributeError):
        snapshot.version = "other"  # type: ignore[misc]


def test_yaml_only_values_become_json_compatible(tmp_path: Path) -> None:
    publish(
        tmp_path,
        {"app.yaml": "greeting: hi\nwhen: 2024-05-01\nratio: .inf\n1: numeric key\nblob: !!binary aGk=\n"},
    )
    document = thaw(load_snapshot(tmp_path).documents["app.yaml"])
    assert json.loads(json.dumps(document)) == {
        "greeting": "hi",
        "when": "2024-05-01",
        "ratio": "inf",
        "1": "numeric key",
        "blob": "aGk=",
    }


@pytest.mark.parametrize(
    ("files", "detail"),
    [
        ({"app.yaml": "greeting: hi\n  bad: indent\n"}, "app.yaml: line 2: "),
        ({"app.yaml": "greeting: hi\n", "x.json": "NaN"}, "x.json: NaN is not valid JSON"),
        ({"app.yaml": "greeting: hi\n", "x.json": b'{"a": "\xff"}'}, "x.json: "),
        ({"app.yaml": b"greeting: \xff\xfe\n"}, "app.yaml: "),
        ({"app.yaml": "greeting: hi\nfeatures: [a]\n"}, "app.yaml: line 2: features must be a mapping"),
        ({"app.yaml": "greeting: " + "x" * 501 + "\n"}, "app.yaml: line 1: greeting is longer than 500"),
        ({"app.yaml": "greeting: hi\nchaos: 5\n"}, "app.yaml: line 2: chaos must be a mapping"),
        ({"app.yaml": "greeting: hi\nchaos:\n  latency_ms: 10001\n"}, "app.yaml: line 3: chaos.latency_ms"),
        ({"app.yaml": "greeting: hi\nchaos:\n  error_rate: true\n"}, "app.yaml: line 3: chaos.error_rate"),
        # Well-formed YAML whose value PyYAML cannot construct: a plain ValueError inside the loader.
        ({"app.yaml": "greeting: hi\nwhen: 2024-02-30\n"}, "app.yaml: invalid value: day is out of range"),
        ({"app.yaml": "greeting: hi\nbig: " + "9" * 5000 + "\n"}, "app.yaml: invalid value: "),
    ],
)
def test_invalid_files_are_refused_naming_file_and_line(tmp_path: Path, files: dict[str, str], detail: str) -> None:
    publish(tmp_path, files)
    with pytest.raises(ConfigInvalidError) as caught:
        load_snapshot(tmp_path)
    assert caught.value.detail.startswith(detail), caught.value.detail


def test_missing_directory_or_app_yaml_is_reported_as_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigMissingError, match="does not exist"):
        load_snapshot(tmp_path / "absent")
    publish(tmp_path, {"other.yaml": "a: 1\n"})
    with pytest.raises(ConfigMissingError, match=r"app\.yaml: not found"):
        load_snapshot(tmp_path)


def test_chaos_and_features_are_read_with_defaults(tmp_path: Path) -> None:
    publish(tmp_path, {"app.yaml": "greeting: hi\nchaos:\n  latency_ms: 20\n  error_rate: 1\n"})
    app = load_snapshot(tmp_path).app
    assert (app.latency_ms, app.error_rate, dict(app.features)) == (20, 1.0, {})


def test_nested_files_count_in_the_version_but_are_never_parsed(tmp_path: Path) -> None:
    # The mesh proxy's policy rides in the same ConfigMap (items[].path: mesh/...); it is Envoy's to read.
    volume = KubeletVolume(tmp_path / "config")
    volume.write(
        {
            "app.yaml": "greeting: top level\n",
            "mesh/routes.yaml": "routes: [ !ignore not for the app\n",  # would not parse as the app's YAML
            "mesh/app.yaml": "greeting: 42\n",  # not the app's app.yaml: never checked or used
        }
    )
    snapshot = load_snapshot(volume.directory)
    assert snapshot.app.greeting == "top level"
    assert snapshot.version == content_version(read_config_files(volume.directory))
    assert set(snapshot.files) == {"app.yaml", "mesh/app.yaml", "mesh/routes.yaml"}
    assert sorted(snapshot.documents) == ["app.yaml"]
    assert snapshot.other_files == ("mesh/app.yaml", "mesh/routes.yaml")

    volume.write({"app.yaml": "greeting: top level\n", "mesh/routes.yaml": "routes: []\n"})
    assert load_snapshot(volume.directory).version != snapshot.version  # a nested change is a new version

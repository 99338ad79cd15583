"""The command line: --help, oneshot exit codes, bad settings, kubelet-swap, SIGTERM."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from config_sidecar.settings import Settings
from sidecar_common import EXIT_CONFIG, EXIT_UNAVAILABLE, SettingsError, load_settings, read_config_files
from tests.support import ServiceProcess, free_tcp_port, wait_until
from tests.support.kubelet import KubeletVolume


def run_module(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "config_sidecar", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_help_lists_every_variable_and_the_subcommand() -> None:
    result = run_module("--help")
    assert result.returncode == 0
    for field in dataclasses.fields(Settings):
        assert field.metadata["env"] in result.stdout
    assert "kubelet-swap" in result.stdout


def test_oneshot_publishes_and_exits_zero_then_nonzero_on_an_invalid_source(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "src")
    volume.write({"app.yaml": "greeting: init\n"})
    env = {
        "CONFIG_SOURCE_DIR": str(volume.directory),
        "CONFIG_TARGET_DIR": str(tmp_path / "dst"),
        "CONFIG_ONESHOT": "true",
        "CONFIG_RELOAD_URL": f"http://127.0.0.1:{free_tcp_port()}/-/reload",  # nobody listens: must not wait
        "ADMIN_PORT": str(free_tcp_port()),
    }
    ok = run_module(env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert read_config_files(tmp_path / "dst") == {"app.yaml": b"greeting: init\n"}

    volume.write({"app.yaml": "greeting: init\nbroken: [\n"})
    bad = run_module(env=env)
    assert bad.returncode == EXIT_CONFIG, "an invalid source is a configuration error: fix the ConfigMap"
    assert bad.stderr.strip().count("\n") == 0, "one line"
    assert bad.stderr.startswith(
        "config-sidecar: configuration error: CONFIG_SOURCE_DIR: invalid config: app.yaml: line 3:"
    )
    assert read_config_files(tmp_path / "dst") == {"app.yaml": b"greeting: init\n"}  # last good kept

    missing = run_module(env={**env, "CONFIG_SOURCE_DIR": str(tmp_path / "absent")})
    assert missing.returncode == EXIT_UNAVAILABLE
    assert missing.stderr.startswith("config-sidecar: cannot start: CONFIG_SOURCE_DIR: ")
    assert "does not exist" in missing.stderr


def test_bad_variable_exits_2_naming_it() -> None:
    result = run_module(env={"CONFIG_RESYNC_SECONDS": "soon"})
    assert result.returncode == 2
    assert "CONFIG_RESYNC_SECONDS" in result.stderr


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"CONFIG_RELOAD_SIGNAL": "SIGNOPE", "CONFIG_RELOAD_PROCESS": "x"}, "CONFIG_RELOAD_SIGNAL"),
        ({"CONFIG_RELOAD_SIGNAL": "HUP"}, "CONFIG_RELOAD_PROCESS"),
        ({"CONFIG_SOURCE_DIR": "/a", "CONFIG_TARGET_DIR": "/a/b"}, "CONFIG_TARGET_DIR"),
        ({"CONFIG_RELOAD_URL": "localhost:8080"}, "CONFIG_RELOAD_URL"),
        ({"CONFIG_RESYNC_SECONDS": "0"}, "CONFIG_RESYNC_SECONDS"),
        ({"CONFIG_SCHEMAS": "app.yaml"}, "CONFIG_SCHEMAS"),
        ({"CONFIG_SCHEMAS": "=/s.json"}, "CONFIG_SCHEMAS"),
        ({"CONFIG_SCHEMAS": "../app.yaml=/s.json"}, "CONFIG_SCHEMAS"),
        ({"CONFIG_SCHEMAS": "mesh/..data/routes.yaml=/s.json"}, "CONFIG_SCHEMAS"),
        ({"CONFIG_SCHEMAS": "a.yaml=/s.json,a.yaml=/t.json"}, "CONFIG_SCHEMAS"),
        ({"CONFIG_SCHEMAS": "app.yaml=/t.json", "CONFIG_SCHEMA_FILE": "/s.json"}, "CONFIG_SCHEMAS"),
        ({"CONFIG_SCHEMA_FILE": "/s.json", "CONFIG_SCHEMA_TARGET": "/etc/app.yaml"}, "CONFIG_SCHEMA_TARGET"),
    ],
)
def test_settings_that_cannot_work_are_refused(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(Settings, environ)
    assert info.value.variable == variable


def test_schema_pairs_and_the_single_schema_combine() -> None:
    settings = load_settings(
        Settings,
        {
            "CONFIG_SCHEMAS": " mesh/routes.yaml = /s/mesh.json , mesh/clusters.yaml=/s/mesh.json,",
            "CONFIG_SCHEMA_FILE": "/s/app.json",
        },
    )
    assert settings.schema_map() == {
        "app.yaml": (Path("/s/app.json"), "CONFIG_SCHEMA_FILE"),
        "mesh/routes.yaml": (Path("/s/mesh.json"), "CONFIG_SCHEMAS"),
        "mesh/clusters.yaml": (Path("/s/mesh.json"), "CONFIG_SCHEMAS"),
    }
    # CONFIG_SCHEMA_TARGET means nothing without CONFIG_SCHEMA_FILE.
    assert load_settings(Settings, {"CONFIG_SCHEMA_TARGET": "x.yaml"}).schema_map() == {}


def test_bad_schema_in_the_pairs_exits_2_naming_the_pairs(tmp_path: Path) -> None:
    schema = tmp_path / "mesh.json"
    schema.write_text('{"type": 12}')
    result = run_module(env={"CONFIG_SCHEMAS": f"mesh/routes.yaml={schema}", "CONFIG_ONESHOT": "true"})
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.startswith("config-sidecar: configuration error: CONFIG_SCHEMAS: ")
    assert "not a valid JSON Schema" in result.stderr


def test_bad_schema_file_exits_2(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text("{not: [json")
    result = run_module(env={"CONFIG_SCHEMA_FILE": str(schema), "CONFIG_ONESHOT": "true"})
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.startswith("config-sidecar: configuration error: CONFIG_SCHEMA_FILE: ")
    assert result.stderr.strip().count("\n") == 0, "one line"


def test_kubelet_swap_subcommand_updates_like_kubelet(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "app.yaml").write_text("greeting: one\n")
    (plain / "app.yaml~").write_text("editor backup")
    volume = tmp_path / "volume"

    first = run_module("kubelet-swap", "--from", str(plain), "--to", str(volume))
    assert first.returncode == 0, first.stderr
    old_dir = os.readlink(volume / "..data")
    assert os.readlink(volume / "app.yaml") == "..data/app.yaml"

    (plain / "app.yaml").write_text("greeting: two\n")
    second = run_module("kubelet-swap", "--from", str(plain), "--to", str(volume))
    assert second.returncode == 0, second.stderr
    assert os.readlink(volume / "..data") != old_dir
    assert not (volume / old_dir).exists()
    assert read_config_files(volume) == {"app.yaml": b"greeting: two\n"}

    again = run_module("kubelet-swap", "--from", str(plain), "--to", str(volume))
    assert "unchanged" in again.stdout


def test_kubelet_swap_copies_nested_plain_directories(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "mesh").mkdir(parents=True)
    (plain / "app.yaml").write_text("greeting: one\n")
    (plain / "mesh" / "routes.yaml").write_text("routes: [a]\n")
    (plain / "mesh" / "routes.yaml~").write_text("editor backup")
    volume = tmp_path / "volume"

    first = run_module("kubelet-swap", "--from", str(plain), "--to", str(volume))
    assert first.returncode == 0, first.stderr
    assert os.readlink(volume / "mesh") == "..data/mesh"  # kubelet's link for the first path part
    assert read_config_files(volume) == {"app.yaml": b"greeting: one\n", "mesh/routes.yaml": b"routes: [a]\n"}

    old_dir = os.readlink(volume / "..data")
    (plain / "mesh" / "routes.yaml").unlink()
    (plain / "mesh" / "clusters.yaml").write_text("clusters: []\n")
    second = run_module("kubelet-swap", "--from", str(plain), "--to", str(volume))
    assert second.returncode == 0, second.stderr
    assert os.readlink(volume / "..data") != old_dir
    assert not (volume / old_dir).exists()
    assert read_config_files(volume) == {"app.yaml": b"greeting: one\n", "mesh/clusters.yaml": b"clusters: []\n"}


def test_sigterm_stops_the_sidecar_cleanly(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "src")
    volume.write({"app.yaml": "greeting: hi\n"})
    port = free_tcp_port()
    env = {
        "CONFIG_SOURCE_DIR": str(volume.directory),
        "CONFIG_TARGET_DIR": str(tmp_path / "dst"),
        "CONFIG_RELOAD_URL": "",
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(port),
    }
    proc = ServiceProcess.python_module("config_sidecar", env, tmp_path / "sidecar.log").start()
    try:
        wait_until(lambda: (tmp_path / "dst" / "..data").is_symlink(), 20, message="first publish")
        proc.signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.output()
        assert "config sidecar stopped" in proc.output()
    finally:
        proc.stop()

"""The running sidecar, in-process, against a kubelet-style volume and a fake app: what a user sees."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from config_sidecar.publisher import Publisher, PublishError, PublishResult
from config_sidecar.settings import Settings
from config_sidecar.source import ConfigFile, ConfigSet, NameFilter
from config_sidecar.sync import SyncResult
from config_sidecar.watcher import DirectoryWatcher
from sidecar_common import content_version, read_config_files
from tests.support import wait_until
from tests.support.kubelet import KeyToPath, KubeletVolume, Source
from tests.unit.config_sidecar.conftest import FakeApp, RunningSidecar, fast_settings

StartSidecar = Callable[[Settings], RunningSidecar]
MakeSettings = Callable[..., Settings]


def version_of(files: dict[str, str]) -> str:
    return content_version({name: content.encode() for name, content in files.items()})


def published_files(target: Path) -> dict[str, str]:
    return {name: content.decode() for name, content in read_config_files(target).items()}


def test_update_is_published_and_acknowledged_by_the_app(
    volume: KubeletVolume, target: Path, fake_app: FakeApp, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    first = {"app.yaml": "greeting: one\n"}
    volume.write(first)
    sidecar = start_sidecar(make_settings(reload_url=fake_app.url))
    sidecar.wait_published(version_of(first))
    sidecar.wait_applied(version_of(first))

    second = {"app.yaml": "greeting: two\n"}
    volume.write(second)
    status = sidecar.wait_published(version_of(second))

    assert published_files(target) == second
    assert (target / "app.yaml").read_text() == "greeting: two\n"  # the visible name shows it too
    assert status["published"]["changed"] == ["app.yaml"]
    sidecar.wait_applied(version_of(second))
    assert fake_app.reloads[-1] == {"version": version_of(second), "changed": ["app.yaml"]}
    assert sidecar.status()["drift"]["drifting"] is False
    assert sidecar.metric("config_sidecar_drift") == 0
    assert sidecar.metric("config_sidecar_applied_version_info", version=version_of(second)) == 1
    assert sidecar.metric("config_sidecar_published_version_info", version=version_of(first)) == 0  # replaced
    assert sidecar.metric("config_sidecar_propagation_seconds_count") >= 2


def test_added_and_deleted_keys_appear_and_disappear(
    volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    volume.write({"app.yaml": "greeting: a\n"})
    sidecar = start_sidecar(make_settings())
    sidecar.wait_published(version_of({"app.yaml": "greeting: a\n"}))

    with_extra = {"app.yaml": "greeting: a\n", "features.json": '{"beta": true}'}
    volume.write(with_extra)
    status = sidecar.wait_published(version_of(with_extra))
    assert status["published"]["changed"] == ["features.json"]
    assert os.readlink(target / "features.json") == "..data/features.json"
    assert json.loads((target / "features.json").read_text()) == {"beta": True}

    without = {"features.json": '{"beta": true}'}
    volume.write(without)
    status = sidecar.wait_published(version_of(without))
    assert status["published"]["changed"] == ["app.yaml"]
    assert not os.path.lexists(target / "app.yaml")  # no dangling link left behind
    assert published_files(target) == without


def test_burst_of_updates_converges_to_the_last_without_publishing_each(
    volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    volume.write({"app.yaml": "greeting: start\n"})
    # A quiet period long enough that the 50 swaps below count as one burst even on a busy machine.
    sidecar = start_sidecar(make_settings(debounce_seconds=0.4, debounce_max_seconds=10.0))
    sidecar.wait_published(version_of({"app.yaml": "greeting: start\n"}))
    before = sidecar.published()

    for number in range(50):
        volume.write({"app.yaml": f"greeting: update {number}\n"})
    last = {"app.yaml": "greeting: update 49\n"}
    sidecar.wait_published(version_of(last))

    assert published_files(target) == last
    assert sidecar.published() - before <= 5, "a burst must be debounced, not published update by update"


def test_invalid_yaml_keeps_the_last_good_set_and_reports_file_and_line(
    volume: KubeletVolume, target: Path, fake_app: FakeApp, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    good = {"app.yaml": "greeting: good\nchaos:\n  latency_ms: 5\n"}
    volume.write(good)
    sidecar = start_sidecar(make_settings(reload_url=fake_app.url))
    sidecar.wait_published(version_of(good))

    volume.write({"app.yaml": "greeting: bad\nchaos:\n  latency_ms: [5\n", "other.txt": "x"})
    status = wait_until(lambda: (s := sidecar.status())["last_error"] and s, 15, message="the error in /status")

    assert status["last_error"]["stage"] == "validate"
    assert status["last_error"]["file"] == "app.yaml"
    assert status["last_error"]["line"] == 4
    assert "flow sequence" in status["last_error"]["reason"]
    assert status["published"]["version"] == version_of(good)
    assert published_files(target) == good  # the app keeps running the last good version
    assert sidecar.metric("config_sidecar_validation_failures_total") == 1
    assert sidecar.metric("config_sidecar_syncs_total", result="invalid") >= 1
    assert "latency_ms" not in json.dumps(status)  # no file contents in /status

    fixed = {"app.yaml": "greeting: fixed\n"}
    volume.write(fixed)
    status = sidecar.wait_published(version_of(fixed))
    assert status["last_error"] is None


def test_schema_violation_is_refused_with_file_line_and_rule(
    tmp_path: Path, volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    schema = tmp_path / "app.schema.json"
    schema.write_text(
        json.dumps(
            {
                "type": "object",
                "required": ["greeting"],
                "properties": {
                    "greeting": {"type": "string"},
                    "chaos": {"type": "object", "properties": {"error_rate": {"type": "number", "maximum": 1}}},
                },
            }
        )
    )
    good = {"app.yaml": "greeting: hi\nchaos:\n  error_rate: 0.5\n"}
    volume.write(good)
    sidecar = start_sidecar(make_settings(schema_file=schema))
    sidecar.wait_published(version_of(good))

    volume.write({"app.yaml": "greeting: hi\nchaos:\n  error_rate: 7.25\n"})
    status = wait_until(lambda: (s := sidecar.status())["last_error"] and s, 15, message="the schema error")

    assert status["last_error"]["file"] == "app.yaml"
    assert status["last_error"]["line"] == 3
    assert "chaos.error_rate" in status["last_error"]["reason"]
    assert "maximum" in status["last_error"]["reason"]
    assert "7.25" not in json.dumps(status)
    assert published_files(target) == good


MESH_SCHEMA = Path(__file__).resolve().parents[3] / "services" / "mesh-proxy" / "schemas" / "mesh-policy.schema.json"
# web's policy: the lab's knobs carry "# abort" and "# delay" markers.
SHIPPED_MESH = Path(__file__).resolve().parents[3] / "deploy" / "compose" / "web" / "config" / "mesh"


def test_each_file_has_its_own_schema_and_a_bad_mesh_policy_is_never_published(
    tmp_path: Path, volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    app_schema = tmp_path / "app.schema.json"
    app_schema.write_text(json.dumps({"type": "object", "required": ["greeting"]}))
    schemas = (
        ("app.yaml", app_schema),
        ("mesh/routes.yaml", MESH_SCHEMA),
        ("mesh/clusters.yaml", MESH_SCHEMA),
    )
    routes = (SHIPPED_MESH / "routes.yaml").read_text()
    clusters = (SHIPPED_MESH / "clusters.yaml").read_text()
    good = {"app.yaml": "greeting: hi\n", "mesh/routes.yaml": routes, "mesh/clusters.yaml": clusters}
    volume.write(good)
    sidecar = start_sidecar(make_settings(schemas=schemas))
    sidecar.wait_published(version_of(good))

    # 50 % aborts parse and fit: published. 150 % does not fit the mesh schema: refused, the 50 % stays.
    fifty = {
        **good,
        "mesh/routes.yaml": routes.replace(
            "numerator: 0, denominator: HUNDRED}  # abort", "numerator: 50, denominator: HUNDRED}  # abort"
        ),
    }
    assert fifty != good
    volume.write(fifty)
    sidecar.wait_published(version_of(fifty))
    bad = {
        **good,
        "mesh/routes.yaml": routes.replace(
            "numerator: 0, denominator: HUNDRED}  # abort", "numerator: 150, denominator: HUNDRED}  # abort"
        ),
    }
    volume.write(bad)
    status = wait_until(lambda: (s := sidecar.status())["last_error"] and s, 15, message="the mesh schema error")

    assert status["last_error"]["file"] == "mesh/routes.yaml"
    assert "numerator: violates maximum 100" in status["last_error"]["reason"]
    assert (
        status["last_error"]["line"]
        == routes.splitlines().index(next(line for line in routes.splitlines() if "# abort" in line)) + 1
    )
    assert published_files(target) == fifty
    assert sidecar.metric("config_sidecar_refused_files", file="mesh/routes.yaml") == 1
    assert sidecar.metric("config_sidecar_refused_files", file="app.yaml") == 0

    volume.write(good)
    sidecar.wait_published(version_of(good))
    assert sidecar.metric("config_sidecar_refused_files", file="mesh/routes.yaml") == 0
    assert (
        sidecar.sidecar.registry.get_sample_value("config_sidecar_refused_files", {"file": "mesh/routes.yaml"}) is None
    )


def test_source_missing_at_start_is_published_once_it_appears(
    tmp_path: Path, target: Path, start_sidecar: StartSidecar
) -> None:
    late = KubeletVolume(tmp_path / "late-source")
    sidecar = start_sidecar(fast_settings(late.directory, target))
    status = wait_until(lambda: (s := sidecar.status())["last_error"] and s, 15, message="missing source reported")
    assert status["last_error"]["stage"] == "read"
    assert "does not exist" in status["last_error"]["reason"]
    assert sidecar.get("/readyz")[0] == 503

    files = {"app.yaml": "greeting: late\n"}
    late.write(files)
    sidecar.wait_published(version_of(files))
    assert sidecar.get("/readyz")[0] == 200
    assert published_files(target) == files
    assert sidecar.status()["watch"]["watching"] is True


def test_app_down_while_notifying_retries_until_the_newest_version_is_acknowledged(
    volume: KubeletVolume, target: Path, fake_app: FakeApp, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    fake_app.refuse(True)  # the app is still starting: connection refused
    first = {"app.yaml": "greeting: first\n"}
    volume.write(first)
    sidecar = start_sidecar(make_settings(reload_url=fake_app.url))
    sidecar.wait_published(version_of(first))
    wait_until(lambda: sidecar.metric("config_sidecar_reload_failures_total") >= 2, 15, message="retries")
    status = sidecar.status()
    assert status["applied"]["version"] is None
    assert status["drift"]["drifting"] is True
    assert "connection refused" in status["reload"]["last_error"]["reason"]
    assert sidecar.metric("config_sidecar_drift") == 1

    newest = {"app.yaml": "greeting: newest\n"}
    volume.write(newest)
    sidecar.wait_published(version_of(newest))
    fake_app.refuse(False)

    sidecar.wait_applied(version_of(newest))
    assert sidecar.metric("config_sidecar_drift") == 0
    assert fake_app.reloads, "the app must have been told"
    assert {r["version"] for r in fake_app.reloads} == {version_of(newest)}  # the superseded one is never sent
    assert sidecar.metric("config_sidecar_reload_attempts_total") > sidecar.metric(
        "config_sidecar_reload_failures_total"
    )


def test_app_refusing_the_config_keeps_retrying_and_shows_its_reason(
    volume: KubeletVolume, fake_app: FakeApp, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    fake_app.answer_status = 422
    volume.write({"app.yaml": "greeting: x\n"})
    sidecar = start_sidecar(make_settings(reload_url=fake_app.url))
    wait_until(lambda: len(fake_app.reloads) >= 2, 15, message="retried after a 422")
    reason = sidecar.status()["reload"]["last_error"]["reason"]
    assert "422" in reason
    assert "app.yaml: line 1" in reason
    fake_app.answer_status = 200
    sidecar.wait_applied(version_of({"app.yaml": "greeting: x\n"}))


@pytest.mark.parametrize("save", ["in place", "write and rename"])
def test_plain_directory_edits_are_published(
    save: str, tmp_path: Path, target: Path, start_sidecar: StartSidecar
) -> None:
    source = tmp_path / "plain"
    source.mkdir()
    (source / "app.yaml").write_text("greeting: before\n")
    (source / ".app.yaml.swp").write_bytes(b"\0vim swap")
    sidecar = start_sidecar(fast_settings(source, target))
    sidecar.wait_published(version_of({"app.yaml": "greeting: before\n"}))

    if save == "in place":
        with (source / "app.yaml").open("w") as handle:
            handle.write("greeting: after\n")
    else:
        (source / "app.yaml.tmp").write_text("greeting: after\n")
        os.replace(source / "app.yaml.tmp", source / "app.yaml")
    status = sidecar.wait_published(version_of({"app.yaml": "greeting: after\n"}))

    assert published_files(target) == {"app.yaml": "greeting: after\n"}
    assert status["source"]["layout"] == "plain"
    assert sorted(os.listdir(target)) == sorted(["app.yaml", "..data", *[p.name for p in target.glob("..2*")]])


def test_secret_file_mode_is_kept(
    volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    files = {"app.yaml": "greeting: hi\n", "db-password": "hunter2"}
    volume.write(files, modes={"db-password": 0o400})
    sidecar = start_sidecar(make_settings())
    sidecar.wait_published(version_of(files))

    assert (target / "db-password").stat().st_mode & 0o777 == 0o400
    assert (target / "app.yaml").stat().st_mode & 0o777 == 0o644
    assert "hunter2" not in json.dumps(sidecar.status())


def test_unchanged_content_publishes_and_reloads_nothing(
    volume: KubeletVolume, target: Path, fake_app: FakeApp, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    files = {"app.yaml": "greeting: same\n"}
    volume.write(files)
    sidecar = start_sidecar(make_settings(reload_url=fake_app.url))
    sidecar.wait_published(version_of(files))
    sidecar.wait_applied(version_of(files))
    data_before = os.readlink(target / "..data")
    reloads_before = len(fake_app.reloads)
    unchanged_before = sidecar.metric("config_sidecar_syncs_total", result="unchanged")

    volume.write(files)  # a swap to a new ..<timestamp> dir with identical content

    wait_until(
        lambda: sidecar.metric("config_sidecar_syncs_total", result="unchanged") > unchanged_before,
        15,
        message="the swap was looked at",
    )
    assert sidecar.published() == 1
    assert os.readlink(target / "..data") == data_before
    assert len(fake_app.reloads) == reloads_before


def test_restart_adopts_the_published_set_and_confirms_it_with_the_app(
    volume: KubeletVolume, target: Path, fake_app: FakeApp, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    files = {"app.yaml": "greeting: kept\n"}
    volume.write(files)
    first = start_sidecar(make_settings())  # no reload URL: as if it died before telling the app
    first.wait_published(version_of(files))
    first.sidecar.close()
    data = os.readlink(target / "..data")

    second = start_sidecar(make_settings(reload_url=fake_app.url))
    second.wait_applied(version_of(files))
    wait_until(lambda: second.metric("config_sidecar_syncs_total", result="unchanged") >= 1, 15, message="1st pass")
    assert second.published() == 0
    assert os.readlink(target / "..data") == data
    assert second.get("/readyz")[0] == 200


def test_restart_after_a_crash_mid_publish_repairs_the_links_without_publishing_again(
    volume: KubeletVolume,
    target: Path,
    make_settings: MakeSettings,
    start_sidecar: StartSidecar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def config_set(files: dict[str, str]) -> ConfigSet:
        return ConfigSet({name: ConfigFile(text.encode()) for name, text in files.items()})

    Publisher(target).publish(config_set({"app.yaml": "greeting: a\n", "gone.yaml": "x: 1\n"}))
    new = {"app.yaml": "greeting: b\n", "added.yaml": "y: 2\n"}
    crashing = Publisher(target)
    monkeypatch.setattr(crashing, "_update_visible_links", lambda names: None)  # died right after the swap
    crashing.publish(config_set(new))
    stray = target / "..2020_01_01_00_00_00.000000000"  # died before a swap, another time
    stray.mkdir()
    (stray / "app.yaml").write_text("greeting: half-written\n")
    data = os.readlink(target / "..data")
    volume.write(new)

    sidecar = start_sidecar(make_settings())
    wait_until(lambda: sidecar.metric("config_sidecar_syncs_total", result="unchanged") >= 1, 15, message="1st pass")

    assert sidecar.published() == 0
    assert os.readlink(target / "..data") == data
    assert sorted(n for n in os.listdir(target) if not n.startswith(".")) == ["added.yaml", "app.yaml"]
    assert (target / "added.yaml").read_text() == "y: 2\n"
    assert not stray.exists()


def test_readyz_only_after_the_first_publish(
    volume: KubeletVolume, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    volume.write({"app.yaml": "greeting: [unclosed\n"})
    sidecar = start_sidecar(make_settings())
    wait_until(lambda: sidecar.metric("config_sidecar_syncs_total", result="invalid") >= 1, 15)
    assert sidecar.get("/readyz")[0] == 503
    assert sidecar.get("/livez")[0] == 200  # invalid input is not a dead sidecar

    volume.write({"app.yaml": "greeting: ok\n"})
    wait_until(lambda: sidecar.get("/readyz")[0] == 200, 15, message="ready after the first publish")


def test_livez_turns_red_when_the_sync_loop_hangs_and_green_again_after(
    volume: KubeletVolume, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    volume.write({"app.yaml": "greeting: a\n"})
    sidecar = start_sidecar(make_settings(heartbeat_seconds=0.2))
    sidecar.wait_published(version_of({"app.yaml": "greeting: a\n"}))
    assert sidecar.get("/livez")[0] == 200

    release = threading.Event()
    syncer = sidecar.sidecar.syncer
    real_sync = syncer.sync

    def hanging_sync(trigger: str, detected_at: float | None = None) -> SyncResult:
        release.wait(30)  # e.g. a read stuck on a dead network filesystem
        return real_sync(trigger, detected_at)

    syncer.sync = hanging_sync  # type: ignore[method-assign]
    volume.write({"app.yaml": "greeting: b\n"})

    wait_until(lambda: sidecar.get("/livez")[0] == 503, 15, message="/livez red")
    assert "config-watcher" in json.loads(sidecar.get("/livez")[1])["stale_heartbeats"]
    release.set()
    wait_until(lambda: sidecar.get("/livez")[0] == 200, 15, message="/livez green again")


class _LoopKiller(BaseException):
    """Stands for whatever could end the watcher thread despite its catch-all."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_livez_turns_red_when_the_sync_loop_dies(
    volume: KubeletVolume, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    volume.write({"app.yaml": "greeting: a\n"})
    sidecar = start_sidecar(make_settings(heartbeat_seconds=0.2))
    sidecar.wait_published(version_of({"app.yaml": "greeting: a\n"}))

    def dying_sync(trigger: str, detected_at: float | None = None) -> SyncResult:
        raise _LoopKiller

    sidecar.sidecar.syncer.sync = dying_sync  # type: ignore[method-assign]
    volume.write({"app.yaml": "greeting: b\n"})

    wait_until(lambda: sidecar.get("/livez")[0] == 503, 15, message="/livez red after the loop died")
    assert sidecar.sidecar.loop.thread is not None
    assert not sidecar.sidecar.loop.thread.is_alive()
    assert sidecar.get("/status")[0] == 200  # the admin port itself still answers


def test_periodic_resync_alone_picks_up_changes(
    volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    volume.write({"app.yaml": "greeting: a\n"})
    sidecar = start_sidecar(make_settings(watch=False, resync_seconds=0.3))
    sidecar.wait_published(version_of({"app.yaml": "greeting: a\n"}))
    assert sidecar.status()["watch"]["inotify"] is False

    volume.write({"app.yaml": "greeting: b\n"})
    sidecar.wait_published(version_of({"app.yaml": "greeting: b\n"}))


def test_a_publish_that_fails_after_an_event_is_retried_before_the_next_resync(
    volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    volume.write({"app.yaml": "greeting: a\n"})
    sidecar = start_sidecar(make_settings(resync_seconds=3600))
    sidecar.wait_published(version_of({"app.yaml": "greeting: a\n"}))
    publisher = sidecar.sidecar.syncer.publisher
    real_publish = publisher.publish
    failures = [0]

    def full_disk_once(config: ConfigSet) -> PublishResult:
        if failures[0] == 0:
            failures[0] += 1
            raise PublishError(target, "No space left on device")
        return real_publish(config)

    publisher.publish = full_disk_once  # type: ignore[method-assign]
    volume.write({"app.yaml": "greeting: b\n"})

    sidecar.wait_published(version_of({"app.yaml": "greeting: b\n"}))
    assert failures[0] == 1
    assert sidecar.metric("config_sidecar_syncs_total", result="error") == 1
    assert published_files(target) == {"app.yaml": "greeting: b\n"}


def test_sync_result_of_a_set_is_stable_across_resyncs(
    volume: KubeletVolume, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    """A refused version is re-stated on every resync but counted as a validation failure once."""
    volume.write({"app.yaml": "greeting: [\n"})
    sidecar = start_sidecar(make_settings(resync_seconds=0.2))
    wait_until(lambda: sidecar.metric("config_sidecar_syncs_total", result="invalid") >= 3, 15)
    assert sidecar.metric("config_sidecar_validation_failures_total") == 1
    assert sidecar.status()["last_error"]["file"] == "app.yaml"


def test_config_set_version_matches_the_shared_definition() -> None:
    files = {"a.yaml": b"x: 1\n", "b.txt": b"\x00\x01"}
    config = ConfigSet({name: ConfigFile(content) for name, content in files.items()})
    assert config.version == content_version(files)


def test_a_replaced_source_directory_is_watched_again(
    tmp_path: Path, target: Path, start_sidecar: StartSidecar
) -> None:
    source = tmp_path / "plain"
    source.mkdir()
    (source / "app.yaml").write_text("greeting: one\n")
    sidecar = start_sidecar(fast_settings(source, target))  # re-hash every 30 s: only the watch can be this quick
    sidecar.wait_published(version_of({"app.yaml": "greeting: one\n"}))

    shutil.rmtree(source)  # e.g. a bind mount replaced by a new directory
    source.mkdir()
    (source / "app.yaml").write_text("greeting: two\n")
    sidecar.wait_published(version_of({"app.yaml": "greeting: two\n"}))
    (source / "app.yaml").write_text("greeting: three\n")  # events from the new directory arrive
    sidecar.wait_published(version_of({"app.yaml": "greeting: three\n"}))


def test_nested_items_are_published_changed_and_removed_and_acknowledged(
    volume: KubeletVolume, target: Path, fake_app: FakeApp, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    # The app's ConfigMap carries the mesh proxy's policy as nested items (items[].path: mesh/...).
    data = {"app.yaml": "greeting: hi\n", "routes": "routes: [a]\n", "clusters": "clusters: [x]\n"}
    items = [
        KeyToPath("app.yaml", "app.yaml"),
        KeyToPath("routes", "mesh/routes.yaml"),
        KeyToPath("clusters", "mesh/clusters.yaml"),
    ]
    volume.write_sources([Source(data, items)])
    first = {"app.yaml": "greeting: hi\n", "mesh/routes.yaml": "routes: [a]\n", "mesh/clusters.yaml": "clusters: [x]\n"}
    sidecar = start_sidecar(make_settings(reload_url=fake_app.url, resync_seconds=3600))
    sidecar.wait_published(version_of(first))
    sidecar.wait_applied(version_of(first))
    assert published_files(target) == first
    assert os.readlink(target / "mesh") == "..data/mesh"
    assert (target / "mesh" / "routes.yaml").read_text() == "routes: [a]\n"

    # A watcher on the target's root (Envoy's watched_directory) sees a nested change as the ..data swap.
    envoy_events: list[bool] = []
    envoy = DirectoryWatcher(target, NameFilter(()), envoy_events.append)
    assert envoy.ensure() is True
    try:
        data_before = os.readlink(target / "..data")
        second = {**first, "mesh/routes.yaml": "routes: [a, b]\n"}
        volume.write_sources([Source({**data, "routes": "routes: [a, b]\n"}, items)])
        status = sidecar.wait_published(version_of(second))
        assert status["published"]["changed"] == ["mesh/routes.yaml"]
        assert os.readlink(target / "..data") != data_before
        wait_until(lambda: True in envoy_events, message="no ..data swap seen at the target's root")
    finally:
        envoy.stop()
    assert (target / "mesh" / "routes.yaml").read_text() == "routes: [a, b]\n"
    sidecar.wait_applied(version_of(second))
    assert fake_app.reloads[-1] == {"version": version_of(second), "changed": ["mesh/routes.yaml"]}

    third = {"app.yaml": "greeting: hi\n"}
    volume.write(third)  # the mesh items removed from the ConfigMap
    status = sidecar.wait_published(version_of(third))
    assert status["published"]["changed"] == ["mesh/clusters.yaml", "mesh/routes.yaml"]
    assert not os.path.lexists(target / "mesh")
    assert published_files(target) == third


def test_a_broken_nested_file_is_refused_by_its_path(
    volume: KubeletVolume, target: Path, make_settings: MakeSettings, start_sidecar: StartSidecar
) -> None:
    good = {"app.yaml": "greeting: hi\n", "mesh/routes.yaml": "routes: []\n"}
    volume.write(good)
    sidecar = start_sidecar(make_settings())
    sidecar.wait_published(version_of(good))

    volume.write({"app.yaml": "greeting: hi\n", "mesh/routes.yaml": "routes: [\n"})
    status = wait_until(lambda: (s := sidecar.status())["last_error"] and s, 15, message="the error in /status")
    assert (status["last_error"]["file"], status["last_error"]["line"]) == ("mesh/routes.yaml", 2)
    assert published_files(target) == good


def test_plain_subdirectories_are_watched_and_published(
    tmp_path: Path, target: Path, start_sidecar: StartSidecar
) -> None:
    # compose's bind mount of ./config with a mesh/ directory; no resync during the test, so only the watch finds it.
    source = tmp_path / "plain"
    (source / "mesh").mkdir(parents=True)
    (source / "app.yaml").write_text("greeting: hi\n")
    (source / "mesh" / "routes.yaml").write_text("routes: []\n")
    sidecar = start_sidecar(fast_settings(source, target, resync_seconds=3600))
    first = {"app.yaml": "greeting: hi\n", "mesh/routes.yaml": "routes: []\n"}
    sidecar.wait_published(version_of(first))

    (source / "mesh" / "routes.yaml").write_text("routes: [a]\n")
    second = {**first, "mesh/routes.yaml": "routes: [a]\n"}
    sidecar.wait_published(version_of(second))

    (source / "conf.d" / "deep").mkdir(parents=True)
    (source / "conf.d" / "deep" / "x.json").write_text("{}")
    third = {**second, "conf.d/deep/x.json": "{}"}
    sidecar.wait_published(version_of(third))
    assert published_files(target) == third
    assert sidecar.status()["source"]["layout"] == "plain"

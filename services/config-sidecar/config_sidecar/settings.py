"""The config sidecar's settings, read once from the environment into a frozen dataclass."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from sidecar_common import SettingsError, admin_host_setting, admin_port_setting, log_level_setting, setting

# Editors leave these next to the real file while saving (vim's swap files and its
# "4913" writability probe, emacs autosaves, "~" backups); they are never config.
DEFAULT_IGNORE_PATTERNS = ("*~", "*.swp", "*.swo", "*.swx", "*.tmp", "#*#", "4913")


def parse_schema_pairs(raw: str) -> tuple[tuple[str, Path], ...]:
    """Parse "app.yaml=/s/app.schema.json,mesh/routes.yaml=/s/mesh.json" into (target, schema) pairs."""
    pairs: list[tuple[str, Path]] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        target, equals, schema = (s.strip() for s in part.partition("="))
        if not equals or not target or not schema:
            raise ValueError(f"{part!r} is not TARGET=SCHEMA_FILE")
        problem = target_problem(target)
        if problem:
            raise ValueError(problem)
        if target in (seen for seen, _ in pairs):
            raise ValueError(f"{target} is named twice")
        pairs.append((target, Path(schema)))
    return tuple(pairs)


def target_problem(target: str) -> str | None:
    """Why ``target`` cannot name a config file (the sidecar's names: relative, `/`-separated, none hidden)."""
    if target.startswith("/") or any(part in ("", ".", "..") or part.startswith(".") for part in target.split("/")):
        return f"{target!r} is not a relative path inside the config source"
    return None


@dataclass(frozen=True)
class Settings:
    """Everything the sidecar reads from its environment."""

    source_dir: Path = setting(
        "CONFIG_SOURCE_DIR", Path("/config-source"), "directory to watch: a ConfigMap/Secret volume or a plain dir"
    )
    target_dir: Path = setting(
        "CONFIG_TARGET_DIR", Path("/etc/app/config"), "directory to publish into (the app's APP_CONFIG_DIR)"
    )
    reload_url: str = setting(
        "CONFIG_RELOAD_URL",
        "http://localhost:8079/-/reload",
        "URL to POST after a publish (the app's loopback control port); empty = no HTTP reload",
    )
    reload_verify: bool = setting(
        "CONFIG_RELOAD_VERIFY",
        True,
        "count a reload as applied only if the 2xx body's version equals the published one",
    )
    reload_timeout_seconds: float = setting(
        "CONFIG_RELOAD_TIMEOUT_SECONDS", 5.0, "timeout of one reload request", exclusive_minimum=0
    )
    reload_backoff_seconds: float = setting(
        "CONFIG_RELOAD_BACKOFF_SECONDS", 0.1, "first retry delay of a reload", exclusive_minimum=0
    )
    reload_backoff_max_seconds: float = setting(
        "CONFIG_RELOAD_BACKOFF_MAX_SECONDS", 10.0, "longest retry delay of a reload (exponential, jittered)"
    )
    reload_signal: str | None = setting(
        "CONFIG_RELOAD_SIGNAL", None, "signal to send instead of the HTTP reload, e.g. SIGHUP (unset = HTTP)"
    )
    reload_process: str | None = setting(
        "CONFIG_RELOAD_PROCESS", None, "program name to signal (comm, argv[0], script or -m module); shared PID ns"
    )
    schemas: tuple[tuple[str, Path], ...] | None = setting(
        "CONFIG_SCHEMAS",
        None,
        "comma-separated TARGET=SCHEMA_FILE pairs: each file (a relative path, must be present) fits its own schema",
        parse=parse_schema_pairs,
    )
    schema_file: Path | None = setting(
        "CONFIG_SCHEMA_FILE", None, "one JSON Schema (JSON or YAML) for every file in CONFIG_SCHEMA_TARGET"
    )
    schema_targets: tuple[str, ...] = setting(
        "CONFIG_SCHEMA_TARGET", ("app.yaml",), "comma-separated files CONFIG_SCHEMA_FILE applies to (must be present)"
    )
    resync_seconds: float = setting(
        "CONFIG_RESYNC_SECONDS",
        30.0,
        "full content re-hash period; catches missed events and inotify overflow",
        exclusive_minimum=0,
    )
    watch: bool = setting("CONFIG_WATCH", True, "watch the source dir with inotify; false = periodic re-hash only")
    debounce_seconds: float = setting(
        "CONFIG_DEBOUNCE_SECONDS",
        0.05,
        "quiet period after the last change event (a ..data swap syncs at once)",
        minimum=0,
    )
    debounce_max_seconds: float = setting(
        "CONFIG_DEBOUNCE_MAX_SECONDS",
        1.0,
        "sync at the latest this long after the first event of a burst",
        exclusive_minimum=0,
    )
    ignore_patterns: tuple[str, ...] = setting(
        "CONFIG_IGNORE_PATTERNS", DEFAULT_IGNORE_PATTERNS, "comma-separated globs of editor temp files to skip"
    )
    oneshot: bool = setting("CONFIG_ONESHOT", False, "sync once and exit (init container); never sends a reload")
    heartbeat_seconds: float = setting(
        "CONFIG_HEARTBEAT_SECONDS",
        5.0,
        "the sync loop beats at least this often; /livez fails after 3 misses",
        exclusive_minimum=0,
    )
    log_level: str = log_level_setting()
    admin_host: str = admin_host_setting()
    admin_port: int = admin_port_setting(8081, "/livez, /readyz, /status and /metrics")

    def validate(self) -> None:
        """Reject combinations that parse but cannot work, naming the variable (ranges are declared above)."""
        if self.reload_backoff_max_seconds < self.reload_backoff_seconds:
            raise SettingsError("CONFIG_RELOAD_BACKOFF_MAX_SECONDS", "must be >= CONFIG_RELOAD_BACKOFF_SECONDS")
        if self.reload_url and not self.reload_url.startswith(("http://", "https://")):
            raise SettingsError("CONFIG_RELOAD_URL", "must be an http:// or https:// URL (or empty)")
        if self.reload_signal:
            try:
                parse_signal(self.reload_signal)
            except ValueError as exc:
                raise SettingsError("CONFIG_RELOAD_SIGNAL", str(exc)) from None
            if not self.reload_process:
                raise SettingsError("CONFIG_RELOAD_PROCESS", "is required when CONFIG_RELOAD_SIGNAL is set")
        self.schema_map()  # raises on a target named twice
        source, target = self.source_dir.absolute(), self.target_dir.absolute()
        if source == target or source in target.parents or target in source.parents:
            raise SettingsError("CONFIG_TARGET_DIR", "must not be CONFIG_SOURCE_DIR, inside it, or contain it")

    def schema_map(self) -> dict[str, tuple[Path, str]]:
        """Each schema target -> (its schema file, the variable that named it), from both ways of naming them.

        CONFIG_SCHEMA_FILE + CONFIG_SCHEMA_TARGET is one schema for a list of files (what a pod
        with one config file needs); CONFIG_SCHEMAS gives each file its own (the app's
        ``app.yaml`` and the mesh proxy's ``mesh/routes.yaml`` in one ConfigMap). A file named
        by both would have two schemas: refused, so which one applies is never a guess.
        """
        targets: dict[str, tuple[Path, str]] = {}
        if self.schema_file is not None:
            for target in self.schema_targets:
                problem = target_problem(target)
                if problem:
                    raise SettingsError("CONFIG_SCHEMA_TARGET", problem)
                targets[target] = (self.schema_file, "CONFIG_SCHEMA_FILE")
        for target, path in self.schemas or ():
            if target in targets:
                raise SettingsError(
                    "CONFIG_SCHEMAS", f"{target} already has a schema ({targets[target][1]}): name each file once"
                )
            targets[target] = (path, "CONFIG_SCHEMAS")
        return targets

    @property
    def reload_mode(self) -> str:
        """How the app is told: "signal", "http" or "none" (the app watches files itself)."""
        if self.reload_signal:
            return "signal"
        return "http" if self.reload_url else "none"


def parse_signal(name: str) -> signal.Signals:
    """Turn "SIGHUP", "HUP" or "1" into a signal, or raise ValueError."""
    raw = name.strip().upper()
    if raw.isdigit():
        return signal.Signals(int(raw))
    try:
        return signal.Signals[raw if raw.startswith("SIG") else f"SIG{raw}"]
    except KeyError:
        raise ValueError(f"unknown signal {name!r}") from None

"""One immutable, versioned snapshot of the config directory, and the rules that refuse a bad one."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from sidecar_common import content_version, read_config_files

APP_CONFIG_FILE = "app.yaml"
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
MAX_LATENCY_MS = 10_000
MAX_GREETING_LENGTH = 500
# A publish (the sidecar's or kubelet's) deletes the previous versioned dir right after the
# ``..data`` swap; a reader that resolved ``..data`` just before may find its files gone. Re-reading
# resolves ``..data`` again and gets the new, complete version.
READ_ATTEMPTS = 3


class ConfigError(Exception):
    """The config directory cannot become a snapshot; ``detail`` says which file, line and why."""

    def __init__(self, file: str, reason: str, line: int | None = None) -> None:
        self.file = file
        self.reason = reason
        self.line = line
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        where = f"{self.file}: line {self.line}: " if self.line is not None else f"{self.file}: "
        return where + self.reason


class ConfigMissingError(ConfigError):
    """There is no app.yaml (yet): at start, the config sidecar may not have published."""


class ConfigInvalidError(ConfigError):
    """A file does not parse, or app.yaml has a value the app cannot use."""


@dataclass(frozen=True)
class AppConfig:
    """The values of app.yaml the app itself acts on, with their defaults."""

    greeting: str = "Hello"
    latency_ms: int = 0
    error_rate: float = 0.0
    features: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def effective(self) -> dict[str, Any]:
        return {
            "greeting": self.greeting,
            "chaos": {"latency_ms": self.latency_ms, "error_rate": self.error_rate},
            "features": thaw(self.features),
        }


@dataclass(frozen=True)
class ConfigSnapshot:
    """Everything read from the config directory at one moment, never changed afterwards."""

    version: str
    loaded_at: dt.datetime
    app: AppConfig
    documents: Mapping[str, Any]  # parsed top-level YAML/JSON files by name, deeply read-only
    other_files: tuple[str, ...]  # files that count in the version but are not parsed (nested ones too)
    files: Mapping[str, bytes]  # the raw set the version is computed from, as published to other workers

    @property
    def loaded_at_iso(self) -> str:
        return iso_timestamp(self.loaded_at)


def iso_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def load_snapshot(directory: Path, now: Callable[[], dt.datetime] = _utc_now) -> ConfigSnapshot:
    """Read, parse and check every file of ``directory``; raise ConfigError to refuse the set."""
    files = _read_consistently(directory)
    if APP_CONFIG_FILE not in files:
        raise ConfigMissingError(APP_CONFIG_FILE, f"not found in {directory}")
    return parse_snapshot(files, now)


def parse_snapshot(files: Mapping[str, bytes], now: Callable[[], dt.datetime] = _utc_now) -> ConfigSnapshot:
    """Parse and check a file set (read from the directory, or as another worker published it)."""
    if APP_CONFIG_FILE not in files:
        raise ConfigMissingError(APP_CONFIG_FILE, "not in the config set")
    documents: dict[str, Any] = {}
    other_files: list[str] = []
    app_config = AppConfig()
    for name, content in sorted(files.items()):
        if "/" in name:
            # A subdirectory (``mesh/routes.yaml``) belongs to another consumer, such as the mesh proxy:
            # it counts in the version, so the app acknowledges the set it was given, but is not parsed.
            other_files.append(name)
        elif name.endswith(YAML_SUFFIXES):
            node, document = _parse_yaml(name, content)
            if name == APP_CONFIG_FILE:
                app_config = _app_config(document, node)
            documents[name] = document
        elif name.endswith(JSON_SUFFIXES):
            documents[name] = _parse_json(name, content)
        else:
            other_files.append(name)
    return ConfigSnapshot(
        version=content_version(files),
        loaded_at=now(),
        app=app_config,
        documents=MappingProxyType(documents),
        other_files=tuple(other_files),
        files=MappingProxyType(dict(files)),
    )


def _read_consistently(directory: Path) -> dict[str, bytes]:
    last_error: OSError | None = None
    for _ in range(READ_ATTEMPTS):
        try:
            return read_config_files(directory)
        except FileNotFoundError as exc:
            if not directory.is_dir():
                raise ConfigMissingError(APP_CONFIG_FILE, f"config directory {directory} does not exist") from None
            last_error = exc  # a publish swapped versions under us: read again
        except OSError as exc:
            raise ConfigInvalidError(str(directory), f"cannot read: {exc.strerror or exc}") from None
    raise ConfigInvalidError(str(directory), f"kept changing while being read: {last_error}")


def _parse_yaml(name: str, content: bytes) -> tuple[yaml.Node | None, Any]:
    """Parse one YAML document, keeping its node tree so later errors can name a line."""
    try:
        loader = yaml.SafeLoader(content)  # already decodes: a bad encoding fails here
        try:
            node = loader.get_single_node()
            document = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise ConfigInvalidError(name, reason, mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as exc:  # e.g. bytes that are not UTF-8
        raise ConfigInvalidError(name, f"invalid YAML: {exc}") from None
    except ValueError as exc:
        # PyYAML's constructors raise plain ValueErrors for well-formed YAML with an impossible
        # value: a date like 2024-02-30, an integer beyond Python's 4300-digit conversion limit.
        raise ConfigInvalidError(name, f"invalid value: {exc}") from None
    except RecursionError:
        raise ConfigInvalidError(name, "nested too deeply") from None
    return node, _frozen(name, document)


def _parse_json(name: str, content: bytes) -> Any:
    try:
        document = json.loads(content, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigInvalidError(name, exc.msg, exc.lineno) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigInvalidError(name, str(exc)) from None
    except RecursionError:
        raise ConfigInvalidError(name, "nested too deeply") from None
    return _frozen(name, document)


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _frozen(name: str, value: Any) -> Any:
    """Make a parsed value JSON-compatible and read-only, so a snapshot can never change."""
    if isinstance(value, Mapping):
        return MappingProxyType({_key(k): _frozen(name, v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(name, item) for item in value)
    if isinstance(value, set | frozenset):  # YAML !!set
        return tuple(sorted(_key(item) for item in value))
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # YAML .inf / .nan have no JSON form
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):  # YAML !!binary
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ConfigInvalidError(name, f"unsupported value of type {type(value).__name__}")


def _key(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key, default=str)


def thaw(value: Any) -> Any:
    """Return a plain, mutable JSON-compatible copy of a frozen value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


def _app_config(document: Any, node: yaml.Node | None) -> AppConfig:
    def refuse(path: tuple[str, ...], reason: str) -> ConfigInvalidError:
        line = _line_of(node, path)
        return ConfigInvalidError(APP_CONFIG_FILE, reason, line)

    if document is None:
        raise refuse((), "is empty; expected a mapping with at least `greeting`")
    if not isinstance(document, Mapping):
        raise refuse((), f"expected a mapping at the top level, got {_type_name(document)}")

    greeting = document.get("greeting", AppConfig.greeting)
    if not isinstance(greeting, str) or not greeting.strip():
        raise refuse(("greeting",), f"greeting must be a non-empty string, got {_type_name(greeting)}")
    if len(greeting) > MAX_GREETING_LENGTH:
        raise refuse(("greeting",), f"greeting is longer than {MAX_GREETING_LENGTH} characters")

    chaos = document.get("chaos", MappingProxyType({}))
    if chaos is None:
        chaos = MappingProxyType({})
    if not isinstance(chaos, Mapping):
        raise refuse(("chaos",), f"chaos must be a mapping, got {_type_name(chaos)}")
    latency_ms = chaos.get("latency_ms", 0)
    if isinstance(latency_ms, bool) or not isinstance(latency_ms, int) or not 0 <= latency_ms <= MAX_LATENCY_MS:
        raise refuse(("chaos", "latency_ms"), f"chaos.latency_ms must be an integer 0-{MAX_LATENCY_MS}")
    error_rate = chaos.get("error_rate", 0.0)
    if isinstance(error_rate, bool) or not isinstance(error_rate, int | float) or not 0 <= error_rate <= 1:
        raise refuse(("chaos", "error_rate"), "chaos.error_rate must be a number from 0 to 1")

    features = document.get("features", MappingProxyType({}))
    if features is None:
        features = MappingProxyType({})
    if not isinstance(features, Mapping):
        raise refuse(("features",), f"features must be a mapping, got {_type_name(features)}")
    return AppConfig(greeting=greeting, latency_ms=latency_ms, error_rate=float(error_rate), features=features)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, tuple):
        return "a list"
    return type(value).__name__


def _line_of(node: yaml.Node | None, path: tuple[str, ...]) -> int | None:
    """Find the 1-based line of the value at ``path`` (or of its deepest existing parent)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                node = value_node
                line = value_node.start_mark.line + 1
                break
        else:
            break
    return line

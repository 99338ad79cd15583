"""Load and validate the mapping file (statsd ``mappings:`` and ``json:`` rules) into an immutable config.

Everything that can be checked before a single line arrives is checked here —
unknown keys (a typo like ``lables``), invalid names and label names, captures a
template refers to but the match cannot produce, counter names without
``_total`` — so a bad file is refused at start or at reload with a message
naming the file, the rule and the reason, and the running mapping stays.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from metrics_exporter.json_source import JsonMetricType, JsonRule
from metrics_exporter.jsonpath import JsonPath, JsonPathError
from metrics_exporter.mapping import (
    DEFAULT_TYPE,
    Action,
    Defaults,
    MappingRule,
    MatchMetricType,
    MatchType,
    MetricType,
    glob_to_regex,
    name_problem,
)
from metrics_exporter.names import HISTOGRAM_RESERVED_LABELS, is_valid_label_name, is_valid_metric_name
from metrics_exporter.templates import Template, check_references

DEFAULT_MAPPING_RESOURCE = "default_mapping.yaml"
BUILT_IN = "<built-in default mapping>"

_TOP_KEYS = frozenset({"defaults", "mappings", "json"})
_DEFAULTS_KEYS = frozenset({"ttl", "buckets", "match_type"})
_RULE_KEYS = frozenset(
    {"match", "match_type", "match_metric_type", "name", "type", "labels", "help", "buckets", "scale", "ttl", "action"}
)
_JSON_KEYS = frozenset({"name", "path", "type", "help", "labels", "value_map"})
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h))+\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """The mapping file cannot be used; ``str()`` is ``<file>: <where>: <reason>``."""

    def __init__(self, source: str, location: str, reason: str) -> None:
        super().__init__(f"{source}: {location}: {reason}" if location else f"{source}: {reason}")
        self.source = source
        self.location = location
        self.reason = reason


@dataclass(frozen=True)
class ExporterConfig:
    source: str
    digest: str
    defaults: Defaults
    mappings: tuple[MappingRule, ...]
    json_rules: tuple[JsonRule, ...]


def default_mapping_text() -> str:
    return resources.files("metrics_exporter").joinpath(DEFAULT_MAPPING_RESOURCE).read_text(encoding="utf-8")


def load_config(path: Path | None) -> ExporterConfig:
    """Read ``path`` (or the built-in default mapping when None) and validate it."""
    if path is None:
        return parse_config(default_mapping_text(), BUILT_IN)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "", "not UTF-8 text") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str) -> ExporterConfig:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, where, f"invalid YAML: {problem}") from None
    except ValueError as exc:  # well-formed YAML PyYAML cannot construct: 2024-02-30, a 5000-digit integer
        raise ConfigError(source, "", f"invalid value: {exc}") from None
    except RecursionError:
        raise ConfigError(source, "", "nested too deeply") from None
    if document is None:
        document = {}
    reader = _Reader(source)
    top = reader.mapping(document, "", _TOP_KEYS)
    defaults = reader.defaults(top.get("defaults", {}))
    mappings = tuple(
        reader.rule(raw, f"mappings[{index}]", defaults)
        for index, raw in enumerate(reader.sequence(top.get("mappings", []), "mappings"))
    )
    json_rules = tuple(
        reader.json_rule(raw, f"json[{index}]")
        for index, raw in enumerate(reader.sequence(top.get("json", []), "json"))
    )
    reader.check_json_names(json_rules, mappings)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return ExporterConfig(source, digest, defaults, mappings, json_rules)


def parse_duration(raw: Any) -> float:
    """Seconds from a number or a Go-style duration (``90s``, ``1m30s``, ``500ms``); raises ValueError."""
    if isinstance(raw, bool):
        raise ValueError("expected seconds or a duration like 5m")
    if isinstance(raw, int | float):
        seconds = float(raw)
    elif isinstance(raw, str) and _DURATION.match(raw.strip()):
        seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(raw))
    else:
        raise ValueError(f"expected seconds or a duration like 5m, got {raw!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a finite duration >= 0, got {raw!r}")
    return seconds


class _Reader:
    """Typed accessors that raise ConfigError with the location of the problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, location: str, reason: str) -> ConfigError:
        return ConfigError(self.source, location, reason)

    def mapping(self, raw: Any, location: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(location, f"expected a mapping, got {type(raw).__name__}")
        unknown = sorted(str(key) for key in raw if key not in allowed)
        if unknown:
            raise self.fail(location, f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
        return raw

    def sequence(self, raw: Any, location: str) -> list[Any]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise self.fail(location, f"expected a list, got {type(raw).__name__}")
        return raw

    def text(self, raw: Any, location: str) -> str:
        if not isinstance(raw, str) or not raw:
            raise self.fail(location, "expected a non-empty string")
        return raw

    def choice(self, raw: Any, location: str, enum: type[Any]) -> Any:
        try:
            return enum(raw)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise self.fail(location, f"{raw!r} is not one of {allowed}") from None

    def duration(self, raw: Any, location: str) -> float:
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise self.fail(location, str(exc)) from None

    def number(self, raw: Any, location: str) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise self.fail(location, f"expected a finite number, got {raw!r}")
        return float(raw)

    def buckets(self, raw: Any, location: str) -> tuple[float, ...]:
        values = tuple(self.number(item, f"{location}[{i}]") for i, item in enumerate(self.sequence(raw, location)))
        if not values:
            raise self.fail(location, "needs at least one bucket")
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise self.fail(location, "buckets must be strictly increasing")
        return values

    def labels(
        self, raw: Any, location: str, positional: int, named: frozenset[str], histogram: bool
    ) -> tuple[tuple[str, Template], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise self.fail(location, "expected a mapping of label name to value template")
        labels = []
        for name, value in raw.items():
            where = f"{location}.{name}"
            if not isinstance(name, str) or not is_valid_label_name(name):
                raise self.fail(where, f"{name!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)")
            if histogram and name in HISTOGRAM_RESERVED_LABELS:
                raise self.fail(where, f"{name!r} is reserved for histogram buckets")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise self.fail(where, "expected a string")
            template = Template(str(value))
            problem = check_references(template, positional, named)
            if problem:
                raise self.fail(where, problem)
            labels.append((name, template))
        return tuple(labels)

    def defaults(self, raw: Any) -> Defaults:
        section = self.mapping(raw or {}, "defaults", _DEFAULTS_KEYS)
        base = Defaults()
        return Defaults(
            ttl=self.duration(section["ttl"], "defaults.ttl") if "ttl" in section else base.ttl,
            buckets=self.buckets(section["buckets"], "defaults.buckets") if "buckets" in section else base.buckets,
            match_type=self.choice(section.get("match_type", base.match_type.value), "defaults.match_type", MatchType),
        )

    def rule(self, raw: Any, location: str, defaults: Defaults) -> MappingRule:
        section = self.mapping(raw, location, _RULE_KEYS)
        match = self.text(section.get("match"), f"{location}.match")
        match_type: MatchType = self.choice(
            section.get("match_type", defaults.match_type.value), f"{location}.match_type", MatchType
        )
        if match_type is MatchType.GLOB:
            pattern = glob_to_regex(match)
        else:
            try:
                pattern = re.compile(match)
            except re.error as exc:
                raise self.fail(f"{location}.match", f"invalid regex: {exc}") from None
        positional = pattern.groups
        named = frozenset(pattern.groupindex)
        action: Action = self.choice(section.get("action", Action.MAP.value), f"{location}.action", Action)
        match_metric_type: MatchMetricType | None = (
            self.choice(section["match_metric_type"], f"{location}.match_metric_type", MatchMetricType)
            if "match_metric_type" in section
            else None
        )
        metric_type: MetricType | None = (
            self.choice(section["type"], f"{location}.type", MetricType) if "type" in section else None
        )
        name: Template | None = None
        if action is Action.MAP:
            name = Template(self.text(section.get("name"), f"{location}.name"))
            problem = check_references(name, positional, named)
            if problem:
                raise self.fail(f"{location}.name", problem)
            self._check_static_name(name, metric_type, match_metric_type, positional, f"{location}.name")
        help_text = section.get("help", "")
        if not isinstance(help_text, str):
            raise self.fail(f"{location}.help", "expected a string")
        static_type = metric_type or (DEFAULT_TYPE[match_metric_type] if match_metric_type else None)
        return MappingRule(
            match=match,
            pattern=pattern,
            match_type=match_type,
            match_metric_type=match_metric_type,
            action=action,
            name=name,
            metric_type=metric_type,
            labels=self.labels(
                section.get("labels"),
                f"{location}.labels",
                positional,
                named,
                histogram=static_type is MetricType.HISTOGRAM,
            ),
            help=help_text,
            buckets=self.buckets(section["buckets"], f"{location}.buckets") if "buckets" in section else None,
            scale=self.number(section["scale"], f"{location}.scale") if "scale" in section else None,
            ttl=self.duration(section["ttl"], f"{location}.ttl") if "ttl" in section else None,
        )

    def _check_static_name(
        self,
        name: Template,
        metric_type: MetricType | None,
        match_metric_type: MatchMetricType | None,
        positional: int,
        location: str,
    ) -> None:
        """Validate the name as far as the file allows: captures filled with a placeholder."""
        sample = name.expand(["x"] * positional, _Placeholders())
        static_type = metric_type or (DEFAULT_TYPE[match_metric_type] if match_metric_type else None)
        if static_type is None:
            if not is_valid_metric_name(sample):
                raise self.fail(location, f"{name.text!r} does not make a valid metric name")
            return
        problem = name_problem(sample, static_type)
        if problem:
            raise self.fail(location, problem)

    def json_rule(self, raw: Any, location: str) -> JsonRule:
        section = self.mapping(raw, location, _JSON_KEYS)
        name = self.text(section.get("name"), f"{location}.name")
        try:
            path = JsonPath.parse(self.text(section.get("path"), f"{location}.path"))
        except JsonPathError as exc:
            raise self.fail(f"{location}.path", str(exc)) from None
        metric_type: JsonMetricType = self.choice(
            section.get("type", JsonMetricType.GAUGE.value), f"{location}.type", JsonMetricType
        )
        if metric_type is JsonMetricType.INFO:
            if not is_valid_metric_name(name) or not name.endswith("_info") or name.startswith("exporter_"):
                raise self.fail(f"{location}.name", f"info metric {name!r} must be a valid name ending with _info")
        else:
            static = MetricType.COUNTER if metric_type is JsonMetricType.COUNTER else MetricType.GAUGE
            problem = name_problem(name, static)
            if problem:
                raise self.fail(f"{location}.name", problem)
        help_text = section.get("help", "")
        if not isinstance(help_text, str):
            raise self.fail(f"{location}.help", "expected a string")
        value_map: dict[str, float] = {}
        raw_map = section.get("value_map") or {}
        if not isinstance(raw_map, dict):
            raise self.fail(f"{location}.value_map", "expected a mapping of JSON value to number")
        for key, number in raw_map.items():
            text_key = ("true" if key else "false") if isinstance(key, bool) else str(key)
            value_map[text_key] = self.number(number, f"{location}.value_map.{text_key}")
        labels = self.labels(
            section.get("labels"), f"{location}.labels", path.wildcards, frozenset({"value"}), histogram=False
        )
        return JsonRule(name, path, metric_type, help_text, labels, value_map)

    def check_json_names(self, json_rules: tuple[JsonRule, ...], mappings: tuple[MappingRule, ...]) -> None:
        """Refuse a JSON rule named like a statsd rule (name suffix rules already keep JSON types apart)."""
        statsd_names = {rule.name.text for rule in mappings if rule.name is not None and rule.name.is_constant}
        for index, rule in enumerate(json_rules):
            if rule.name in statsd_names:
                raise self.fail(f"json[{index}].name", f"{rule.name!r} is also a statsd mapping's name")


class _Placeholders(Mapping[str, str]):
    """Named captures all read as ``x`` when a name template is checked before any match exists."""

    def __getitem__(self, key: str) -> str:
        return "x"

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0

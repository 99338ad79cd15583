"""Check a config set before it is published: every file parses, each schema target fits its own schema.

YAML (``.yaml``/``.yml``) and JSON (``.json``) files must parse; other files are
opaque bytes. Each file that has a JSON Schema (CONFIG_SCHEMAS, or
CONFIG_SCHEMA_FILE for the files in CONFIG_SCHEMA_TARGET) must be present and
every document in it must satisfy its schema: the app's ``app.yaml`` its own,
the mesh proxy's ``mesh/routes.yaml`` the mesh policy's. Errors name the file,
the line and the reason, and never quote a value (it may be a secret).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaViolation
    from jsonschema.protocols import Validator as SchemaChecker

logger = logging.getLogger(__name__)

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
# libyaml's loader is ~10x faster; the pure-Python one is the fallback, same results.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_REASON = 200


@dataclass(frozen=True)
class ConfigError:
    """Why one file of a set was refused; ``line`` is 1-based, None when unknown."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}: line {self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason}


class SchemaLoadError(Exception):
    """The schema file is missing, does not parse, or is not a valid JSON Schema."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def load_schema(path: Path) -> SchemaChecker:
    """Read a JSON Schema from a JSON or YAML file and build its checker."""
    try:
        schema = yaml.load(path.read_bytes(), Loader=_SafeLoader)  # noqa: S506 - a safe loader
    except OSError as exc:
        raise SchemaLoadError(path, exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        raise SchemaLoadError(path, f"does not parse: {_yaml_problem(exc)}") from None
    if not isinstance(schema, dict):
        raise SchemaLoadError(path, "must be a JSON object")
    # Imported here, not at module top: jsonschema and its dependencies cost ~4 MiB of
    # RSS, paid only by sidecars that actually configure a schema.
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    checker_class = validator_for(schema)
    try:
        checker_class.check_schema(schema)
    except SchemaError as exc:
        raise SchemaLoadError(path, f"is not a valid JSON Schema: {exc.message}") from None
    checker: SchemaChecker = checker_class(schema)
    return checker


@dataclass(frozen=True)
class TargetSchema:
    """The schema one config file must satisfy, and the variable that said so (named when the file is missing)."""

    checker: SchemaChecker
    declared_by: str = "CONFIG_SCHEMAS"


class Validator:
    """Validate a whole config set; an empty error list means it may be published."""

    def __init__(self, schemas: Mapping[str, TargetSchema] | None = None) -> None:
        self.schemas = dict(schemas or {})

    def validate(self, files: Mapping[str, bytes]) -> list[ConfigError]:
        errors: list[ConfigError] = []
        parsed: dict[str, list[Any]] = {}
        for name in sorted(files):
            error, documents = parse_file(name, files[name])
            if error is not None:
                errors.append(error)
            elif documents is not None:
                parsed[name] = documents
        for target in sorted(self.schemas):
            rule = self.schemas[target]
            if target not in files:
                errors.append(ConfigError(target, None, f"missing, but {rule.declared_by} gives it a schema"))
            elif target in parsed:
                errors.extend(self._check_schema(rule.checker, target, files[target], parsed[target]))
        return errors

    @staticmethod
    def _check_schema(checker: SchemaChecker, name: str, content: bytes, documents: list[Any]) -> list[ConfigError]:
        errors = []
        for index, document in enumerate(documents or [None]):
            for violation in checker.iter_errors(document):
                path = list(violation.absolute_path)
                errors.append(ConfigError(name, _line_of(content, index, path), _describe_violation(violation, path)))
        return sorted(errors, key=lambda e: (e.line or 0, e.reason))  # in file order, as a reader fixes them


def parse_file(name: str, content: bytes) -> tuple[ConfigError | None, list[Any] | None]:
    """Parse by extension; return (error, documents), documents None for opaque files."""
    lower = name.lower()
    if lower.endswith(YAML_SUFFIXES):
        try:
            return None, list(yaml.load_all(content, Loader=_SafeLoader))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            return ConfigError(name, mark.line + 1 if mark else None, _yaml_problem(exc)), None
        except yaml.YAMLError as exc:  # e.g. a byte sequence that is not UTF-8
            return ConfigError(name, None, _yaml_problem(exc)), None
        except (ValueError, TypeError, AttributeError, OverflowError, RecursionError) as exc:
            # SafeLoader's constructors raise plain Python errors for tagged or impossible values
            # (`2024-02-30`, `!!float abc`, `!!timestamp x`); their messages quote the value.
            return ConfigError(name, None, _unbuildable(exc)), None
    if lower.endswith(JSON_SUFFIXES):
        try:
            return None, [json.loads(content)]
        except json.JSONDecodeError as exc:
            return ConfigError(name, exc.lineno, exc.msg), None
        except UnicodeDecodeError as exc:
            return ConfigError(name, None, f"not UTF-8 (byte {exc.start})"), None
        except (ValueError, RecursionError) as exc:  # an integer over the digit limit; nesting too deep
            return ConfigError(name, None, _unbuildable(exc)), None
    return None, None


def _unbuildable(exc: BaseException) -> str:
    """Name a value the parser could not build, without the exception's message (it quotes the value)."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"a value cannot be built ({type(exc).__name__})"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's description of the problem, without the quoted source line it may add."""
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        return "; ".join(parts)[:_MAX_REASON] or "invalid YAML"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"not UTF-8 (byte {exc.position})"
    return type(exc).__name__


def _describe_violation(violation: SchemaViolation, path: Sequence[Any]) -> str:
    """Say which rule failed where, without the instance value (jsonschema's message quotes it)."""
    where = ".".join(str(part) for part in path) or "(document)"
    rule = str(violation.validator)
    if rule in ("required", "additionalProperties", "dependentRequired", "propertyNames"):
        # These messages name keys only, which the schema author chose; safe to show.
        return f"{where}: {violation.message}"[:_MAX_REASON]
    expected = json.dumps(violation.validator_value, default=str, sort_keys=True)
    if len(expected) > 60:
        expected = expected[:57] + "..."
    return f"{where}: violates {rule} {expected}"[:_MAX_REASON]


def _line_of(content: bytes, document_index: int, path: Iterable[Any]) -> int | None:
    """Find the 1-based line of ``path`` in the YAML/JSON text, or of its nearest parent."""
    try:
        nodes = list(yaml.compose_all(content, Loader=_SafeLoader))
    except yaml.YAMLError:
        return None
    if document_index >= len(nodes) or nodes[document_index] is None:
        return None
    node: yaml.Node = nodes[document_index]
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1

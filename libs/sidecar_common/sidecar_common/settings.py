"""Typed settings read once from the environment.

A service declares a frozen dataclass whose fields are made with :func:`setting`;
:func:`load_settings` parses every variable by the field's annotation and raises
:class:`SettingsError` naming the first bad variable, and :func:`parse_cli` turns
that into a one-line message and a non-zero exit, with ``--help`` listing every
variable and its default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A variable is missing or has a value that does not parse."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Rules:
    """What a parsed value must satisfy; declared with the field, checked by ``load_settings``."""

    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` breaks a rule, in words for the one-line error, or None."""
        if value is None:
            return None
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}, got {value!r}"
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            return f"must be > {self.exclusive_minimum:g}, got {value!r}"
        return None


def setting(
    env: str,
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    secret: bool = False,
    parse: Callable[[str], Any] | None = None,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: float | None = None,
    aliases: tuple[str, ...] = (),
) -> Any:
    """Declare a settings field read from the environment variable ``env``.

    ``choices``, ``minimum``, ``maximum`` and ``exclusive_minimum`` are checked after
    parsing, so every service refuses a bad value with the same words. ``aliases`` are
    older names still accepted when ``env`` itself is unset.
    """
    rules = Rules(choices, minimum, maximum, exclusive_minimum)
    metadata = {"env": env, "help": help, "secret": secret, "parse": parse, "rules": rules, "aliases": aliases}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple or frozenset for collection defaults")
    return dataclasses.field(default=default, metadata=metadata)


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}, got {raw!r}")


def _parser_for(annotation: Any) -> tuple[Callable[[str], Any], bool]:
    """Return (parser, optional) for a field annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        parser, _ = _parser_for(inner[0])
        return parser, True
    if annotation is bool:
        return _parse_bool, False
    if annotation is int:
        return int, False
    if annotation is float:
        return float, False
    if annotation is Path:
        return Path, False
    if annotation is str:
        return str, False
    if origin is tuple:
        return (lambda raw: tuple(part.strip() for part in raw.split(",") if part.strip())), False
    raise TypeError(f"unsupported settings type {annotation!r}")


def load_settings(cls: type[T], environ: Mapping[str, str]) -> T:
    """Build ``cls`` from ``environ``; raise SettingsError naming the bad variable."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = field.metadata.get("env")
        if name is None:
            continue
        name, raw = _lookup(name, field.metadata.get("aliases", ()), environ)
        if raw is None:
            if field.default is dataclasses.MISSING:
                raise SettingsError(name, "is required")
            continue
        custom = field.metadata.get("parse")
        parser, optional = _parser_for(hints[field.name])
        if optional and raw.strip() == "":
            values[field.name] = None
            continue
        try:
            value = (custom or parser)(raw)
        except (ValueError, TypeError) as exc:
            if field.metadata.get("secret"):  # the parser's message may quote the value
                raise SettingsError(name, "invalid value (not shown: secret)") from None
            raise SettingsError(name, f"invalid value {raw!r}: {exc}") from None
        rules: Rules | None = field.metadata.get("rules")
        problem = rules.problem(value) if rules is not None else None
        if problem is not None:
            raise SettingsError(name, "invalid value (not shown: secret)" if field.metadata.get("secret") else problem)
        values[field.name] = value
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate()
    return instance


def _lookup(name: str, aliases: Sequence[str], environ: Mapping[str, str]) -> tuple[str, str | None]:
    """The variable that is set (``name`` first, then its older names) and its raw value."""
    for candidate in (name, *aliases):
        raw = environ.get(candidate)
        if raw is not None:
            return candidate, raw
    return name, None


def describe_settings(cls: type[Any]) -> str:
    """Render a table of every variable with its default and meaning, for --help."""
    rows = []
    for field in dataclasses.fields(cls):
        name = field.metadata.get("env")
        if name is None:
            continue
        default = field.default
        if default is dataclasses.MISSING:
            shown = "(required)"
        elif default is None:
            shown = "(unset)"
        elif default == "":
            shown = "(empty)"
        elif isinstance(default, bool):
            shown = "true" if default else "false"
        elif isinstance(default, tuple):
            shown = ",".join(str(part) for part in default)
        else:
            shown = str(default)
        help_text = field.metadata.get("help", "")
        if field.metadata.get("aliases"):
            help_text += f" (also read as {', '.join(field.metadata['aliases'])})"
        rows.append((name, shown, help_text))
    width = max((len(r[0]) for r in rows), default=0)
    dwidth = max((len(r[1]) for r in rows), default=0)
    lines = [f"  {n:<{width}}  {d:<{dwidth}}  {h}".rstrip() for n, d, h in rows]
    return "environment variables (default):\n" + "\n".join(lines)


def parse_cli(
    cls: type[T],
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    configure: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[T, argparse.Namespace]:
    """Parse argv (only --help and any extra options) and the environment.

    A bad variable exits with status 2 and one line on stderr naming it.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=describe_settings(cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if configure is not None:
        configure(parser)
    args = parser.parse_args(argv)

    try:
        settings = load_settings(cls, os.environ if environ is None else environ)
    except SettingsError as exc:
        print(f"{prog}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings, args

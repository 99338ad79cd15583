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


def setting(
    env: str,
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    secret: bool = False,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """Declare a settings field read from the environment variable ``env``."""
    metadata = {"env": env, "help": help, "secret": secret, "parse": parse}
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
        raw = environ.get(name)
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
            values[field.name] = (custom or parser)(raw)
        except (ValueError, TypeError) as exc:
            if field.metadata.get("secret"):  # the parser's message may quote the value
                raise SettingsError(name, "invalid value (not shown: secret)") from None
            raise SettingsError(name, f"invalid value {raw!r}: {exc}") from None
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        validate()
    return instance


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
        rows.append((name, shown, field.metadata.get("help", "")))
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

"""What a checked block's output must show: a substring, a regex, or a JSON field.

One expectation per directive line::

    expect: TEXT             TEXT occurs in the output
    expect-not: TEXT         TEXT does not occur
    expect-re: REGEX         Python regex, searched with MULTILINE
    expect-json: PATH        the field exists and is not null
    expect-json: PATH OP V   OP is ==, != (V a JSON literal), ~ (V a regex on the value),
                             or >, >=, <, <= (V a number)

PATH is jq-like: ``.config.version``, ``.workers[0]``, ``.["log.level"]``. The
JSON is the whole output, or else its last line that parses as JSON (so a block
may print progress before a final ``curl``).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_PATH_STEP = re.compile(r'\.(?P<key>[A-Za-z_][\w-]*)|\[(?P<index>-?\d+)\]|\.?\[(?P<quoted>"(?:[^"\\]|\\.)*")\]')
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_MISSING = object()


@dataclass(frozen=True)
class Expectation:
    """One line of a check directive, able to say why an output fails it."""

    kind: str  # expect, expect-not, expect-re, expect-json
    argument: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.argument}"

    @property
    def is_textual(self) -> bool:
        """Text expectations also apply to the sample output shown to readers."""
        return self.kind != "expect-json"

    def failure(self, output: str) -> str | None:
        """None when ``output`` satisfies this expectation, else why not."""
        if self.kind == "expect":
            return None if self.argument in output else f"{self.argument!r} not in the output"
        if self.kind == "expect-not":
            return f"{self.argument!r} is in the output" if self.argument in output else None
        if self.kind == "expect-re":
            found = re.search(self.argument, output, re.MULTILINE)
            return None if found else f"no match for /{self.argument}/"
        return _json_failure(self.argument, output)


def parse_expectation(line: str) -> Expectation:
    """Parse ``kind: argument``; raise ValueError naming what is wrong."""
    kind, sep, argument = line.partition(":")
    kind, argument = kind.strip(), argument.strip()
    if not sep or kind not in {"expect", "expect-not", "expect-re", "expect-json"}:
        raise ValueError(f"unknown directive line {line!r} (expect, expect-not, expect-re, expect-json, exit)")
    if not argument:
        raise ValueError(f"{kind} needs an argument")
    if kind == "expect-re":
        try:
            re.compile(argument)
        except re.error as exc:
            raise ValueError(f"bad regex in {line!r}: {exc}") from None
    if kind == "expect-json":
        path, op, value = split_json_expectation(argument)
        parse_path(path)
        if op in ("==", "!="):
            try:
                json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"{line!r}: {value!r} is not a JSON literal (quote strings)") from None
        elif op in _COMPARISONS:
            float(value)
    return Expectation(kind, argument)


def split_json_expectation(argument: str) -> tuple[str, str, str]:
    """Split ``PATH [OP VALUE]`` into its three parts (OP and VALUE empty for "exists")."""
    parts = argument.split(None, 2)
    if len(parts) == 1:
        return parts[0], "", ""
    if len(parts) == 3 and parts[1] in ("==", "!=", "~", *_COMPARISONS):
        return parts[0], parts[1], parts[2]
    raise ValueError(f"expect-json wants PATH or PATH OP VALUE, got {argument!r}")


def parse_path(path: str) -> list[str | int]:
    """Turn ``.a.b[0].["c.d"]`` into ``["a", "b", 0, "c.d"]``."""
    steps: list[str | int] = []
    position = 0
    if path == ".":
        return steps
    while position < len(path):
        match = _PATH_STEP.match(path, position)
        if match is None:
            raise ValueError(f"bad JSON path {path!r} at {path[position:]!r}")
        if match["key"] is not None:
            steps.append(match["key"])
        elif match["index"] is not None:
            steps.append(int(match["index"]))
        else:
            steps.append(json.loads(match["quoted"]))
        position = match.end()
    return steps


def find_json(output: str) -> Any:
    """The output as JSON, or its last line that is JSON; raise ValueError if none is."""
    try:
        return json.loads(output)
    except json.JSONDecodeError:
        pass
    for line in reversed(output.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    raise ValueError("the output has no JSON")


def _lookup(document: Any, steps: list[str | int]) -> Any:
    value = document
    for step in steps:
        in_list = isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value)
        in_dict = isinstance(step, str) and isinstance(value, dict) and step in value
        if not (in_list or in_dict):
            return _MISSING
        value = value[step]
    return value


def _json_failure(argument: str, output: str) -> str | None:
    path, op, expected = split_json_expectation(argument)
    try:
        document = find_json(output)
    except ValueError as exc:
        return str(exc)
    value = _lookup(document, parse_path(path))
    if value is _MISSING:
        return f"{path} is missing"
    shown = json.dumps(value)
    if op == "":
        return None if value is not None else f"{path} is null"
    if op == "==":
        return None if value == json.loads(expected) else f"{path} is {shown}, not {expected}"
    if op == "!=":
        return None if value != json.loads(expected) else f"{path} is {shown}"
    if op == "~":
        text = value if isinstance(value, str) else json.dumps(value)
        return None if re.search(expected, text) else f"{path} is {shown}, no match for /{expected}/"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"{path} is {shown}, not a number"
    return None if _COMPARISONS[op](value, float(expected)) else f"{path} is {shown}, not {op} {expected}"

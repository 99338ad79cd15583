"""The small JSONPath subset the JSON rules use, where every wildcard captures the key it matched.

Supported: ``$`` (the document), ``.key``, ``['key']`` / ``["key"]``, ``[N]`` (list index),
and the wildcards ``.*`` / ``[*]`` over an object's values or a list's items. Each
wildcard captures the map key (or list index) it matched, in order, so a rule
can turn ``$.workers.*.requests_in_flight`` into a ``worker="<key>"`` label —
json_exporter's most requested feature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r"""
      \.(?P<star>\*)
    | \[\*\]
    | \.(?P<key>[^.\[\]]+)
    | \[(?P<index>-?\d+)\]
    | \['(?P<single>[^']*)'\]
    | \["(?P<double>[^"]*)"\]
    """,
    re.VERBOSE,
)


class JsonPathError(ValueError):
    """A path that does not parse, with the position of the problem."""

    def __init__(self, path: str, position: int, reason: str) -> None:
        super().__init__(f"{path!r} at position {position}: {reason}")
        self.path = path
        self.position = position
        self.reason = reason


@dataclass(frozen=True)
class _Key:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Wildcard:
    pass


_Step = _Key | _Index | _Wildcard


@dataclass(frozen=True)
class Match:
    """A value found by a path and the keys its wildcards matched (``$1``, ``$2`` ...)."""

    captures: tuple[str, ...]
    value: Any


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[_Step, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        if not text.startswith("$"):
            raise JsonPathError(text, 0, "must start with $")
        steps: list[_Step] = []
        position = 1
        while position < len(text):
            token = _TOKEN.match(text, position)
            if token is None:
                raise JsonPathError(text, position, "expected .key, .*, [N], ['key'] or [*]")
            groups = token.groupdict()
            if groups["star"] is not None or token.group(0) == "[*]":
                steps.append(_Wildcard())
            elif groups["key"] is not None:
                steps.append(_Key(groups["key"]))
            elif groups["index"] is not None:
                steps.append(_Index(int(groups["index"])))
            else:
                steps.append(_Key(groups["single"] if groups["single"] is not None else groups["double"]))
            position = token.end()
        return cls(text, tuple(steps))

    @property
    def wildcards(self) -> int:
        return sum(isinstance(step, _Wildcard) for step in self.steps)

    def find(self, document: Any) -> list[Match]:
        """Every value the path reaches in ``document``, in document order; none is not an error here."""
        matches = [Match((), document)]
        for step in self.steps:
            matches = [found for match in matches for found in _advance(step, match)]
        return matches


def _advance(step: _Step, match: Match) -> list[Match]:
    value = match.value
    if isinstance(step, _Key):
        if isinstance(value, dict) and step.name in value:
            return [Match(match.captures, value[step.name])]
        return []
    if isinstance(step, _Index):
        if isinstance(value, list) and -len(value) <= step.index < len(value):
            return [Match(match.captures, value[step.index])]
        return []
    if isinstance(value, dict):
        return [Match((*match.captures, str(key)), item) for key, item in value.items()]
    if isinstance(value, list):
        return [Match((*match.captures, str(index)), item) for index, item in enumerate(value)]
    return []

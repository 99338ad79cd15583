"""``filter_path``: keep only the listed parts of a response, as shippers ask for (``items.*.status``).

Paths are compiled into a tree once per request, so filtering a 5,000-item bulk response costs
a couple of dictionary lookups per item. ``*`` in a segment is a glob over one key; ``**``
matches any depth. Objects and arrays left empty disappear, as in Elasticsearch. Negative
filters (``-path``) are not supported.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

EMPTY = object()  # what filtering leaves of a value nothing was kept of


@dataclass
class PathNode:
    """What to keep below one object: everything, or the children named (exactly or by glob)."""

    keep_all: bool = False
    exact: dict[str, PathNode] = field(default_factory=dict)
    globs: list[tuple[str, PathNode]] = field(default_factory=list)
    deep: list[list[str]] = field(default_factory=list)  # remaining paths under a ``**``
    # child() per key, memoised: a bulk response repeats the same few keys thousands of times.
    _children: dict[str, PathNode | None] = field(default_factory=dict, repr=False, compare=False)

    def add(self, path: list[str]) -> None:
        if self.keep_all:
            return
        if not path:
            self.keep_all, self.exact, self.globs, self.deep = True, {}, [], []
            return
        head, rest = path[0], path[1:]
        if head == "**":
            self.deep.append(rest)
            return
        if "*" in head or "?" in head:
            for pattern, child in self.globs:
                if pattern == head:
                    child.add(rest)
                    return
            child = PathNode()
            child.add(rest)
            self.globs.append((head, child))
            return
        self.exact.setdefault(head, PathNode()).add(rest)

    def child(self, key: str) -> PathNode | None:
        """The node for ``key``'s value: the union of every pattern that matches it, or None."""
        try:
            return self._children[key]
        except KeyError:
            found = self._children[key] = self._match(key)
            return found

    def _match(self, key: str) -> PathNode | None:
        matches = [node for pattern, node in self.globs if pattern == "*" or fnmatch.fnmatchcase(key, pattern)]
        exact = self.exact.get(key)
        if exact is not None:
            matches.append(exact)
        if self.deep:
            deep = PathNode()
            for rest in self.deep:
                deep.add(["**", *rest])  # ``**`` may swallow this key and more
                if rest and (rest[0] == key or fnmatch.fnmatchcase(key, rest[0])):
                    deep.add(rest[1:])  # or stop right here
            matches.append(deep)
        if not matches:
            return None
        if len(matches) == 1:
            return matches[0]
        union = PathNode()
        for node in matches:
            union.merge(node)
        return union

    def merge(self, other: PathNode) -> None:
        if other.keep_all:
            self.add([])
            return
        for key, node in other.exact.items():
            self.exact.setdefault(key, PathNode()).merge(node)
        self.globs.extend(other.globs)
        self.deep.extend(other.deep)


def parse_filter_path(value: str) -> PathNode:
    """Compile ``a.b,items.*.error`` into a tree of what to keep."""
    root = PathNode()
    for part in value.split(","):
        if part.strip():
            root.add(part.strip().split("."))
    return root


def apply_filter_path(value: Any, paths: PathNode) -> Any:
    """Return ``value`` reduced to ``paths``; an empty result is ``{}``."""
    kept = filter_value(value, paths)
    return {} if kept is EMPTY else kept


def filter_value(value: Any, node: PathNode) -> Any:
    """Return what ``node`` keeps of ``value``, or ``EMPTY``."""
    if node.keep_all:
        return value
    if isinstance(value, list):
        kept_items = [kept for item in value if (kept := filter_value(item, node)) is not EMPTY]
        return kept_items if kept_items else EMPTY
    if not isinstance(value, dict):
        return EMPTY
    result: dict[str, Any] = {}
    if not node.globs and not node.deep:  # the common case: look up only the names asked for
        for key, child in node.exact.items():
            if key in value and (kept := filter_value(value[key], child)) is not EMPTY:
                result[key] = kept
    else:
        for key, item in value.items():
            child_node = node.child(key)
            if child_node is not None and (kept := filter_value(item, child_node)) is not EMPTY:
                result[key] = kept
    return result if result else EMPTY

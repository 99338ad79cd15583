"""Name and label templates: ``$1``, ``${1}``, ``$name`` and ``${name}`` filled in from a rule's captures."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_]\w*|\d+)\}|(\d+)|([A-Za-z_]\w*))")


@dataclass(frozen=True)
class Template:
    """A string with references to captures; a template without references is a constant."""

    text: str

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(next(g for g in m.groups() if g) for m in _REFERENCE.finditer(self.text))

    @property
    def is_constant(self) -> bool:
        return not self.references

    def expand(self, groups: Sequence[str], named: Mapping[str, str]) -> str:
        """Fill in ``$N`` from ``groups`` (1-based) and ``$name`` from ``named``; unknown references stay empty."""

        def replace(match: re.Match[str]) -> str:
            ref = next(g for g in match.groups() if g)
            if ref.isdigit():
                index = int(ref) - 1
                return groups[index] if 0 <= index < len(groups) else ""
            return named.get(ref, "")

        return _REFERENCE.sub(replace, self.text)


def check_references(template: Template, positional: int, named: frozenset[str]) -> str | None:
    """Return why ``template`` refers to a capture that cannot exist, or None when it is fine."""
    for ref in template.references:
        if ref.isdigit():
            if not 1 <= int(ref) <= positional:
                return f"${ref} refers to capture {ref} but the match has {positional}"
        elif ref not in named:
            known = ", ".join(sorted(named)) or "none"
            return f"${ref} is not a named capture (known: {known})"
    return None

"""Index names: Elasticsearch's validity rules and the two ways of selecting indices by pattern."""

from __future__ import annotations

import fnmatch
from functools import lru_cache

# Characters Elasticsearch refuses in index names (Strings.INVALID_FILENAME_CHARS).
_INVALID_CHARS = ("\\", "/", "*", "?", '"', "<", ">", "|", " ", ",")
_MAX_BYTES = 255


@lru_cache(maxsize=1024)
def index_name_problem(name: str) -> str | None:
    """Return why Elasticsearch would refuse to create index ``name``, or None if it is valid."""
    if not name:
        return "must not be empty"
    if any(char in name for char in _INVALID_CHARS):
        return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    if len(name.encode()) > _MAX_BYTES:
        return f"index name is too long, ({len(name.encode())} > {_MAX_BYTES})"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    if name != name.lower():
        return "must be lowercase"
    return None


def _has_wildcard(part: str) -> bool:
    return any(char in part for char in "*?[")


def matches_selector(name: str, selector: str | None) -> bool:
    """Tell whether ``name`` is picked by the emulator's own selector (a prefix or glob, comma-separated).

    Tests ask for "the documents of ``logs-app``" without knowing the date suffix the
    shipper appended, so a plain word selects every index starting with it.
    """
    if selector is None or selector in ("", "*", "_all"):
        return True
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        if _has_wildcard(part):
            if fnmatch.fnmatchcase(name, part):
                return True
        elif name.startswith(part):
            return True
    return False


def resolve_expression(expression: str, existing: list[str]) -> tuple[list[str], list[str]]:
    """Resolve an index expression the way Elasticsearch's search/count APIs do.

    Returns (matched names, concrete names that do not exist). Wildcards may match
    nothing; a concrete name that does not exist is an error for the caller to report.
    """
    if expression in ("", "_all", "*"):
        return sorted(existing), []
    matched: list[str] = []
    missing: list[str] = []
    for part in expression.split(","):
        part = part.strip()
        if not part:
            continue
        if _has_wildcard(part):
            matched.extend(name for name in existing if fnmatch.fnmatchcase(name, part) and name not in matched)
        elif part in existing:
            if part not in matched:
                matched.append(part)
        else:
            missing.append(part)
    return matched, missing

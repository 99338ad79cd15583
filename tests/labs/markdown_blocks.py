"""Find the command blocks of a lab and the check directives in front of them.

The convention (docs/workshop/README.md, "How the labs are tested"): every
fenced command block (bash, sh, shell, console, zsh) carries an HTML comment
right before it, either ``<!-- no-check: why -->`` or a check directive::

    <!-- check: local eventually=20
    expect: "greeting"
    expect-json: .version ~ ^[0-9a-f]{16}$
    -->

A fenced ``text`` block right after a checked block is its sample output, shown
to readers; its text must satisfy the same text expectations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.labs.expectations import Expectation, parse_expectation

COMMAND_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "zsh"})
TARGETS = frozenset({"local", "local-es", "compose", "offline"})
OPTIONS = {"eventually": float, "timeout": float, "needs": str}
DEFAULT_TIMEOUT_SECONDS = 60.0

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_DIRECTIVE = re.compile(r"<!--\s*(?P<kind>check|no-check)\s*:(?P<body>.*?)-->", re.DOTALL)


class LabFormatError(ValueError):
    """A lab breaks the convention: an unmarked command block or a malformed directive."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Fence:
    """A fenced code block: where it starts, its info string and its text."""

    line: int  # 1-based line of the opening fence
    end_line: int  # 1-based line of the closing fence
    info: str
    text: str

    @property
    def language(self) -> str:
        return self.info.split()[0].lower() if self.info.split() else ""


@dataclass(frozen=True)
class CheckedBlock:
    """A command block a test runs, with what its output must show."""

    path: Path
    line: int
    target: str
    script: str
    expectations: tuple[Expectation, ...] = ()
    exit_status: int = 0
    eventually: float = 0.0  # re-run until the expectations hold, for at most this many seconds
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    needs: tuple[str, ...] = ()  # commands that must be installed (e.g. kubectl), else the block is skipped
    sample: str | None = None  # the ```text block shown to readers after it

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass(frozen=True)
class Lab:
    """One lab file: its checked blocks in document order and how many were waived."""

    path: Path
    blocks: tuple[CheckedBlock, ...]
    unchecked: tuple[tuple[int, str], ...] = field(default=())  # (line, reason) of each no-check block

    def targets(self) -> set[str]:
        return {block.target for block in self.blocks}


def find_fences(text: str) -> list[Fence]:
    """Return every fenced code block; content lines lose the fence's indentation (lists indent them)."""
    fences: list[Fence] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        indent, marker = len(match["indent"]), match["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(marker):
            line = lines[end]
            body.append(line[indent:] if line[:indent].strip() == "" else line)
            end += 1
        fences.append(Fence(index + 1, end + 1, match["info"].strip(), "\n".join(body) + "\n"))
        index = end + 1
    return fences


def _directive_before(lines: list[str], fence_line: int) -> tuple[str, str, int] | None:
    """The HTML comment directly above a fence (blank lines allowed): (kind, body, its first line)."""
    end = fence_line - 2  # 0-based index of the line above the fence
    while end >= 0 and lines[end].strip() == "":
        end -= 1
    if end < 0 or not lines[end].strip().endswith("-->"):
        return None
    start = end
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    if start < 0:
        return None
    match = _DIRECTIVE.search("\n".join(lines[start : end + 1]))
    if match is None:
        return None
    return match["kind"], match["body"], start + 1


def _parse_check(path: Path, line: int, body: str, fence: Fence, sample: str | None) -> CheckedBlock:
    header, *rest = body.strip().splitlines() or [""]
    words = header.split()
    if not words or words[0] not in TARGETS:
        raise LabFormatError(path, line, f"check needs a target, one of {sorted(TARGETS)}; got {header!r}")
    options: dict[str, float | str] = {}
    for word in words[1:]:
        key, _, value = word.partition("=")
        if key not in OPTIONS or not value:
            raise LabFormatError(path, line, f"unknown check option {word!r}; known: {sorted(OPTIONS)} (key=value)")
        try:
            options[key] = OPTIONS[key](value)
        except ValueError:
            raise LabFormatError(path, line, f"{key} needs a number, got {value!r}") from None
    expectations: list[Expectation] = []
    exit_status = 0
    for offset, raw in enumerate(rest, start=1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("exit:"):
            try:
                exit_status = int(text.removeprefix("exit:").strip())
            except ValueError:
                raise LabFormatError(path, line + offset, f"exit needs an integer: {text!r}") from None
            continue
        try:
            expectations.append(parse_expectation(text))
        except ValueError as exc:
            raise LabFormatError(path, line + offset, str(exc)) from None
    return CheckedBlock(
        path=path,
        line=fence.line,
        target=words[0],
        script=fence.text,
        expectations=tuple(expectations),
        exit_status=exit_status,
        eventually=float(options.get("eventually", 0.0)),
        timeout=float(options.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
        needs=tuple(str(options.get("needs", "")).split(",")) if "needs" in options else (),
        sample=sample,
    )


def parse_lab(path: Path, text: str | None = None) -> Lab:
    """Parse one lab; raise LabFormatError on the first block that breaks the convention."""
    text = path.read_text() if text is None else text
    lines = text.splitlines()
    fences = find_fences(text)
    blocks: list[CheckedBlock] = []
    unchecked: list[tuple[int, str]] = []
    for position, fence in enumerate(fences):
        directive = _directive_before(lines, fence.line)
        is_command = fence.language in COMMAND_LANGUAGES
        if directive is None:
            if is_command:
                raise LabFormatError(
                    path, fence.line, "command block without <!-- check: ... --> or <!-- no-check: why --> before it"
                )
            continue
        kind, body, directive_line = directive
        if not is_command:
            raise LabFormatError(path, directive_line, f"{kind} directive before a {fence.language or 'plain'} block")
        if kind == "no-check":
            if not body.strip():
                raise LabFormatError(path, directive_line, "no-check needs a reason")
            unchecked.append((fence.line, body.strip()))
            continue
        following = fences[position + 1] if position + 1 < len(fences) else None
        between = lines[fence.end_line : following.line - 1] if following else []
        sample = None
        if following is not None and following.language == "text" and all(not s.strip() for s in between):
            sample = following.text
        blocks.append(_parse_check(path, directive_line, body, fence, sample))
    return Lab(path, tuple(blocks), tuple(unchecked))

"""Find the files a repository's docs and comments cite, and say which of them do not exist.

Four kinds of citation:

- relative Markdown links (``[text](path#anchor)``, images, reference definitions) in
  every ``*.md``: the target exists inside the repository and, for a Markdown target, so
  does the heading its anchor names (GitHub's heading ids);
- repository paths: a token that starts with a top-level directory (``k8s/base/``,
  ``services/*/Dockerfile``), globs included;
- Markdown files (``README.md``): next to the citing file, in one of its
  parent directories or at the root;
- Python files (``statsd/parser.py`` in a module map): the same, or the tail of some
  file's path in the repository.

Paths and file names are read from Markdown prose and inline code, from comments and
docstrings of code (Python, shell, make, YAML, TOML, Dockerfiles) and from JSON schema
descriptions. Fenced code blocks are left out (the labs' commands create files the
reader makes), and so are the generated directories that .gitignore names.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import tokenize
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

# Never descended into: tools' caches and environments, not the project's files.
SKIPPED_DIRECTORIES = frozenset(
    {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
)
HASH_COMMENT_SUFFIXES = frozenset({".sh", ".mk", ".yml", ".yaml", ".toml", ".cfg", ".ini", ".conf", ".txt"})
HASH_COMMENT_NAMES = frozenset({"Makefile", "Dockerfile", ".env", ".gitignore", ".dockerignore", "run"})
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)((?:(?!\1).)+?)\1")
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+(?:\([^()\s]*\))?)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")
# Characters that make a match the tail of a longer path or URL (`/x/services/a`, `http://`).
NOT_AFTER = r"(?<![\w./@$~%:-])"
MARKDOWN_FILE = re.compile(NOT_AFTER + r"([\w.][\w./-]*[\w-]\.md)\b")
PYTHON_FILE = re.compile(NOT_AFTER + r"([\w.][\w./-]*[\w-]\.py)\b")
# `kubectl logs deploy/demo-app`: a Deployment, not the deploy/ directory.
KUBECTL_RESOURCE = re.compile(r"\bkubectl\b.*\bdeploy/")
# `98,065 docs/s`: a rate, not the docs/ directory.
RATE = re.compile(r"^\w+/s$")


@dataclass(frozen=True)
class Citation:
    """One cited path: the citing file, the line, and the path as written."""

    source: Path
    line: int
    text: str


@dataclass(frozen=True)
class Broken:
    """A citation that does not resolve, and why."""

    citation: Citation
    problem: str
    root: Path

    def __str__(self) -> str:
        where = self.citation.source.relative_to(self.root)
        return f"{where}:{self.citation.line}: {self.citation.text} ({self.problem})"


class Repository:
    """The files of one checkout and the citations in them."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @cached_property
    def generated_directories(self) -> tuple[str, ...]:
        """Directories .gitignore names (``/bench/results/``, ``build/``): made by running things."""
        gitignore = self.root / ".gitignore"
        lines = gitignore.read_text().splitlines() if gitignore.is_file() else []
        return tuple(line.strip() for line in lines if re.fullmatch(r"/?[\w./-]+/", line.strip()))

    def is_generated(self, relative: str) -> bool:
        """True for a path in a generated directory (``/x/`` only at the root, ``x/`` at any depth)."""
        path = f"/{relative.rstrip('/')}/"
        return any(
            path.startswith(pattern) if pattern.startswith("/") else f"/{pattern}" in path
            for pattern in self.generated_directories
        )

    @cached_property
    def files(self) -> tuple[Path, ...]:
        found = []
        for directory, subdirectories, names in os.walk(self.root):
            subdirectories[:] = [
                name for name in subdirectories if name not in SKIPPED_DIRECTORIES and not name.endswith(".egg-info")
            ]
            for name in names:
                path = Path(directory) / name
                if not self.is_generated(path.relative_to(self.root).as_posix()) and path.is_file():
                    found.append(path)
        return tuple(sorted(found))

    @cached_property
    def path_token(self) -> re.Pattern[str]:
        """A token that starts with one of the repository's top-level directories."""
        directories = sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name not in SKIPPED_DIRECTORIES)
        return re.compile(NOT_AFTER + r"((?:" + "|".join(map(re.escape, directories)) + r")/[\w.*/-]*)")

    @cached_property
    def relative_names(self) -> tuple[str, ...]:
        return tuple(p.relative_to(self.root).as_posix() for p in self.files)

    def broken_links(self, markdown: Path) -> list[Broken]:
        return [
            Broken(citation, problem, self.root)
            for citation in markdown_links(markdown)
            if (problem := self.link_problem(citation))
        ]

    def broken_paths(self, path: Path) -> list[Broken]:
        return [
            Broken(citation, problem, self.root)
            for citation in self.cited_paths(path)
            if (problem := self.path_problem(citation))
        ]

    def link_problem(self, citation: Citation) -> str | None:
        """Why a relative Markdown link does not resolve, or None."""
        path_part, _, anchor = citation.text.partition("#")
        path_part = urllib.parse.unquote(path_part)
        target = (citation.source.parent / path_part).resolve() if path_part else citation.source
        if not target.is_relative_to(self.root):
            return "points outside the repository"
        if not target.exists():
            return "no such file"
        if anchor and target.suffix == ".md" and anchor not in heading_ids(target):
            return f"no heading #{anchor} in {target.relative_to(self.root)}"
        return None

    def cited_paths(self, path: Path) -> Iterator[Citation]:
        for number, text in commentary(path):
            for match in self.path_token.finditer(text):
                token = match.group(1).rstrip(".")
                if not (RATE.match(token) or (token.startswith("deploy/") and KUBECTL_RESOURCE.search(text))):
                    yield Citation(path, number, token)
            for pattern in (MARKDOWN_FILE, PYTHON_FILE):
                for match in pattern.finditer(text):
                    if not self.path_token.match(match.group(1)):  # already checked as a repository path
                        yield Citation(path, number, match.group(1))

    def path_problem(self, citation: Citation) -> str | None:
        """Why a cited path does not exist, or None."""
        text = citation.text
        if self.path_token.match(text):
            if self.is_generated(text):
                return None
            if any(ch in text for ch in "*?"):
                return None if any(self.root.glob(text.rstrip("/"))) else "the pattern matches no file"
            return None if (self.root / text).exists() else "no such file or directory"
        here = [citation.source.parent, *citation.source.parent.parents]
        if any((directory / text).is_file() for directory in here if directory.is_relative_to(self.root)):
            return None
        if text.endswith(".py") and any(name.endswith(f"/{text}") for name in self.relative_names):
            return None
        if text.endswith(".py"):
            return "no such file next to the citing file, in a parent directory, or at the end of any repository path"
        return "no such file next to the citing file or in a parent directory"


def markdown_prose(text: str) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) for every line outside fenced code blocks."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            yield number, line


def heading_ids(markdown: Path) -> set[str]:
    """The anchors GitHub gives a file's headings (``-1``, ``-2`` for repeats), and explicit ``<a id>``s."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in markdown_prose(markdown.read_text()):
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading:
            slug = github_slug(heading.group(1))
            repeat = seen.get(slug, 0)
            seen[slug] = repeat + 1
            found.add(slug if repeat == 0 else f"{slug}-{repeat}")
    return found


def github_slug(heading: str) -> str:
    """A heading's id on GitHub: its text in lower case, punctuation dropped, each space a dash."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    return "".join(ch for ch in text if ch.isalnum() or ch in " -_").replace(" ", "-")


def markdown_links(markdown: Path) -> Iterator[Citation]:
    """Every relative link target in a Markdown file (URLs with a scheme are not ours to check)."""
    for number, line in markdown_prose(markdown.read_text()):
        prose = CODE_SPAN.sub(" ", line)
        targets = [match.group(1) for match in INLINE_LINK.finditer(prose)]
        definition = REFERENCE_DEFINITION.match(prose)
        if definition:
            targets.append(definition.group(1))
        yield from (Citation(markdown, number, target) for target in targets if not URL_SCHEME.match(target))


def commentary(path: Path) -> Iterator[tuple[int, str]]:
    """The text people wrote about the code: Markdown prose and inline code, comments, docstrings."""
    if path.suffix == ".md":
        for number, line in markdown_prose(path.read_text()):
            yield number, INLINE_LINK.sub(" ", line).replace("`", " ")  # link targets are checked as links
    elif path.suffix == ".py":
        yield from python_commentary(path.read_text())
    elif path.suffix == ".json":
        yield from json_descriptions(path.read_text())
    elif path.suffix in HASH_COMMENT_SUFFIXES or path.name in HASH_COMMENT_NAMES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            comment = re.search(r"(?:^|\s)#(?!!)(.*)$", line)
            if comment:
                yield number, comment.group(1)


def python_commentary(source: str) -> Iterator[tuple[int, str]]:
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        docstring = ast.get_docstring(node, clean=False)
        if docstring is not None:
            for offset, line in enumerate(docstring.splitlines()):
                yield node.body[0].lineno + offset, line


def json_descriptions(text: str) -> Iterator[tuple[int, str]]:
    """The ``description`` and ``$comment`` strings of a JSON document (a schema's prose)."""
    lines = text.splitlines()

    def walk(value: object) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("description", "$comment") and isinstance(item, str):
                    yield item
                else:
                    yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    for description in walk(json.loads(text)):
        number = next((n for n, line in enumerate(lines, 1) if description[:40] in line), 1)
        yield number, description

"""The emulator's indices: documents by ``_id`` with versions and sequence numbers, templates, data streams.

A data stream is stored under its own name (what clients write to and search) with the name
of its one backing index, ``.ds-<name>-<yyyy.MM.dd>-000001``, which is what Elasticsearch
reports in ``_index``. Elasticsearch's built-in templates are installed like on a fresh
cluster, so ``logs-*-*`` names become data streams unless a higher-priority template says not.

Sources are kept as the JSON bytes the client sent (compact, and every read decodes a fresh
copy, so a caller can never mutate what is stored). One lock guards everything; a bulk
request applies all its items under it, like a single-shard index would.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .index_names import matches_selector, resolve_expression
from .stack_templates import built_in_templates

# (source JSON bytes, _version, _seq_no). A plain tuple on purpose: the garbage collector stops
# tracking tuples of atomic values, so a store of millions of documents costs it nothing, where
# a class instance per document made every full collection walk them all.
StoredDocument = tuple[bytes, int, int]


@dataclass
class Index:
    """One index (or data stream, stored under its own name) and its documents."""

    name: str
    uuid: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    docs: dict[str, StoredDocument] = field(default_factory=dict)
    next_seq_no: int = 0
    data_stream: bool = False
    created: float = field(default_factory=time.time)
    template: str | None = None  # the index template that made it a data stream
    # The concrete index a write lands in: a data stream's first backing index, or the index itself.
    write_name: str = field(init=False)

    def __post_init__(self) -> None:
        if self.data_stream:
            day = time.strftime("%Y.%m.%d", time.gmtime(self.created))
            self.write_name = f".ds-{self.name}-{day}-000001"
        else:
            self.write_name = self.name

    def take_seq_no(self) -> int:
        seq_no = self.next_seq_no
        self.next_seq_no += 1
        return seq_no


@dataclass(frozen=True)
class IndexTemplate:
    name: str
    patterns: tuple[str, ...]
    data_stream: bool
    priority: int
    body: dict[str, Any]


class DocumentStore:
    """Every index of the emulated cluster, safe to use from the server's request threads.

    ``stack_templates`` installs Elasticsearch's built-in templates (``logs-*-*`` and the
    others) as a fresh cluster has them; False is ``stack.templates.enabled: false``.
    """

    def __init__(self, stack_templates: bool = True) -> None:
        self.lock = threading.RLock()
        self._indices: dict[str, Index] = {}
        self._templates: dict[str, IndexTemplate] = {}
        self._documents_total = 0
        self._stack_templates = stack_templates
        self._install_stack_templates()

    def _install_stack_templates(self) -> None:
        if self._stack_templates:
            for name, body in built_in_templates().items():
                self.put_template(name, body)

    # Writes (callers hold ``lock`` across a whole bulk request).

    def index_for_write(self, name: str) -> Index:
        """Return index ``name``, creating it (as a data stream if a template says so) on first write."""
        index = self._indices.get(name)
        if index is None:
            index = self._new_index(name)
            self._indices[name] = index
        return index

    def _new_index(self, name: str) -> Index:
        template = self._template_for(name)
        return Index(name, data_stream=template is not None, template=template.name if template else None)

    def existing(self, name: str) -> Index | None:
        return self._indices.get(name)

    def is_data_stream(self, name: str) -> bool:
        index = self._indices.get(name)
        if index is not None:
            return index.data_stream
        return self._template_for(name) is not None

    def _template_for(self, name: str) -> IndexTemplate | None:
        """The highest-priority data-stream template matching ``name``, if any."""
        candidates = [
            template
            for template in self._templates.values()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in template.patterns)
        ]
        if not candidates:
            return None
        best = max(candidates, key=lambda template: template.priority)
        return best if best.data_stream else None

    def put(self, index: Index, doc_id: str, source: bytes) -> tuple[int, int]:
        """Store ``source`` under ``doc_id``; return its new (_version, _seq_no)."""
        previous = index.docs.get(doc_id)
        version = previous[1] + 1 if previous is not None else 1
        seq_no = index.next_seq_no
        index.next_seq_no += 1
        index.docs[doc_id] = (source, version, seq_no)
        if previous is None:
            self._documents_total += 1
        return version, seq_no

    def delete(self, index: Index, doc_id: str) -> tuple[int, int] | None:
        """Remove ``doc_id``; return the delete's (_version, _seq_no), or None if it was not there."""
        previous = index.docs.pop(doc_id, None)
        if previous is None:
            return None
        self._documents_total -= 1
        return previous[1] + 1, index.take_seq_no()

    def create_index(self, name: str) -> Index | None:
        """Create an empty index; return None if it already exists."""
        with self.lock:
            if name in self._indices:
                return None
            index = self._new_index(name)
            self._indices[name] = index
            return index

    def delete_indices(self, names: list[str]) -> None:
        with self.lock:
            for name in names:
                index = self._indices.pop(name, None)
                if index is not None:
                    self._documents_total -= len(index.docs)

    def put_template(self, name: str, body: dict[str, Any]) -> None:
        patterns = body.get("index_patterns", [])
        if isinstance(patterns, str):
            patterns = [patterns]
        priority = body.get("priority", 0)
        with self.lock:
            self._templates[name] = IndexTemplate(
                name,
                tuple(str(pattern) for pattern in patterns),
                data_stream=isinstance(body.get("data_stream"), dict),
                priority=priority if isinstance(priority, int) else 0,
                body=body,
            )

    def template(self, name: str) -> IndexTemplate | None:
        with self.lock:
            return self._templates.get(name)

    def clear(self) -> None:
        """Forget every index, data stream and user template: a fresh cluster, built-in templates back."""
        with self.lock:
            self._indices.clear()
            self._templates.clear()
            self._documents_total = 0
            self._install_stack_templates()

    def data_streams(self, expression: str) -> list[Index]:
        """The data streams an expression names (wildcards allowed), in name order."""
        with self.lock:
            streams = [name for name, index in self._indices.items() if index.data_stream]
            names, _ = resolve_expression(expression, streams)
            return [self._indices[name] for name in sorted(names)]

    # Reads.

    def names(self) -> list[str]:
        with self.lock:
            return sorted(self._indices)

    def resolve(self, expression: str) -> tuple[list[str], list[str]]:
        """Resolve an Elasticsearch index expression: (matching names, missing concrete names).

        A data stream answers to its own name and, named exactly, to its backing index's.
        """
        with self.lock:
            backing = {index.write_name: name for name, index in self._indices.items() if index.data_stream}
            parts = [backing.get(part.strip(), part) for part in expression.split(",")]
            return resolve_expression(",".join(parts), list(self._indices))

    def count(self, selector: str | None = None) -> int:
        """Count documents in the indices ``selector`` picks (prefix or glob); cheap enough to poll."""
        with self.lock:
            if selector is None:
                return self._documents_total
            return sum(len(index.docs) for name, index in self._indices.items() if matches_selector(name, selector))

    def count_exact(self, names: list[str]) -> int:
        with self.lock:
            return sum(len(self._indices[name].docs) for name in names if name in self._indices)

    def sources(self, selector: str | None = None) -> dict[str, dict[str, Any]]:
        """Return fresh copies of the sources in the selected indices, by ``_id``."""
        with self.lock:
            raw = [
                (doc_id, stored[0])
                for name, index in self._indices.items()
                if matches_selector(name, selector)
                for doc_id, stored in index.docs.items()
            ]
        return {doc_id: json.loads(source) for doc_id, source in raw}

    def hits(self, names: list[str], start: int, size: int) -> tuple[int, list[dict[str, Any]]]:
        """Return (total, one page of search hits) over ``names`` in index then insertion order."""
        with self.lock:
            total = sum(len(self._indices[name].docs) for name in names if name in self._indices)
            page: list[tuple[str, str, bytes]] = []
            skipped = 0
            for name in names:
                index = self._indices.get(name)
                if index is None:
                    continue
                for doc_id, stored in index.docs.items():
                    if len(page) >= size:
                        break
                    if skipped < start:
                        skipped += 1
                        continue
                    page.append((index.write_name, doc_id, stored[0]))
        hits = [
            {"_index": index_name, "_id": doc_id, "_score": 1.0, "_source": json.loads(source)}
            for index_name, doc_id, source in page
        ]
        return total, hits

"""What the emulator has been sent: totals for benchmarks and a bounded log of recent bulk requests."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

RECENT_REQUESTS = 10_000


@dataclass(frozen=True)
class BulkRequestRecord:
    """One ``_bulk`` request: when, its HTTP status, its items and bytes, and how long it took to apply."""

    received_at: float
    status: int
    items: int
    item_errors: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class BulkStats:
    """Totals since start or the last reset.

    ``bytes`` counts request bodies as received (compressed if the client gzipped them),
    ``decoded_bytes`` after decompression. ``item_statuses`` counts items by HTTP status.
    ``dropped_responses`` counts requests applied whose answer was lost on purpose (``drop_response``).
    """

    bulk_requests: int = 0
    rejected_requests: int = 0
    dropped_responses: int = 0
    items: int = 0
    item_errors: int = 0
    bytes: int = 0
    decoded_bytes: int = 0
    item_statuses: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["item_statuses"] = {str(status): count for status, count in sorted(self.item_statuses.items())}
        return data


class StatsRecorder:
    """Thread-safe accumulation of ``BulkStats`` and recent ``BulkRequestRecord``s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._bulk_requests = 0
        self._rejected = 0
        self._dropped = 0
        self._items = 0
        self._item_errors = 0
        self._bytes = 0
        self._decoded = 0
        self._statuses: Counter[int] = Counter()
        self._recent: deque[BulkRequestRecord] = deque(maxlen=RECENT_REQUESTS)

    def reset(self) -> None:
        with self._lock:
            self._reset()

    def record(self, record: BulkRequestRecord, decoded_bytes: int, statuses: list[int]) -> None:
        with self._lock:
            self._bulk_requests += 1
            if record.status >= 400:
                self._rejected += 1
            self._items += record.items
            self._item_errors += record.item_errors
            self._bytes += record.bytes
            self._decoded += decoded_bytes
            self._statuses.update(statuses)
            self._recent.append(record)

    def dropped(self) -> None:
        """Count a request whose answer was lost on purpose after it was applied."""
        with self._lock:
            self._dropped += 1

    @property
    def bulk_requests(self) -> int:
        return self._bulk_requests

    def snapshot(self) -> BulkStats:
        with self._lock:
            return BulkStats(
                bulk_requests=self._bulk_requests,
                rejected_requests=self._rejected,
                dropped_responses=self._dropped,
                items=self._items,
                item_errors=self._item_errors,
                bytes=self._bytes,
                decoded_bytes=self._decoded,
                item_statuses=dict(self._statuses),
            )

    def recent(self) -> list[BulkRequestRecord]:
        with self._lock:
            return list(self._recent)

"""An Elasticsearch Bulk-API emulator for tests and benchmarks (Elasticsearch cannot run here).

It keeps the documented contract — NDJSON bulk bodies, per-item ``status``/``error`` objects,
``errors: true``, 409 ``version_conflict_engine_exception`` on ``create`` of a known ``_id``,
whole-request 429/503 — and lets a test inject failures (``Faults``) in-process or over HTTP
(``/_emulator/faults``). Standard library only, so its container needs nothing but Python.

    with BulkEmulator() as es:
        es.set_faults(Faults(item_status_rate={429: 0.1}, seed=7))
        ...  # ship to es.url
        assert len(es.documents("logs-")) == lines_written
"""

from .emulator import BulkEmulator
from .faults import Faults, FaultsError
from .stats import BulkRequestRecord, BulkStats

__all__ = ["BulkEmulator", "BulkRequestRecord", "BulkStats", "Faults", "FaultsError"]

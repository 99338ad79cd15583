"""The log sidecar against noida-db, an Elasticsearch 8.15 API written by others: every line exactly once.

Our Bulk-API emulator was written next to the sidecar, so it may share its author's
misreadings of the contract; noida-db (PyPI ``noida-db``, one binary,
``--only elasticsearch``) was not. Here the sidecar ships numbered lines to it, is killed
with SIGKILL in mid-stream and restarted on the same state directory while the app keeps
writing, and noida-db's ``_count`` must end at exactly the number of lines written, with
each line stored once. The checkpoint is written rarely (60 s), so the restarted sidecar
resends what the first one had stored, and noida-db must answer those ``create``s with 409.
Once into a plain index, once into a data stream.

How noida-db 0.2.3 differs from real Elasticsearch 8.15, found by probing it (none of it
changes what this test checks; it is why the emulator stays the reference for failures):

- Data streams: an index template with ``data_stream`` is accepted and ``create`` works, but
  the stream is a plain index. Elasticsearch refuses ``index`` operations on a data stream
  (only ``create``) and documents without ``@timestamp``, and names the backing index
  (``.ds-<stream>-<date>-000001``) in each item's ``_index``; noida-db stores both and
  answers with the stream's name; ``GET /_data_stream/<name>`` has no handler.
- ``create`` conflicts: as in Elasticsearch, per item: status 409,
  ``version_conflict_engine_exception``, "document already exists"; ``errors: true``.
- ``_count`` and refresh: as in Elasticsearch: a document counts after the periodic refresh
  (about 1 s) or after ``_refresh`` / ``?refresh=true|wait_for``; at once it does not.
- Bulk error shapes: a mapping conflict is a per-item 400 ``document_parsing_exception``, as
  in 8.x; an unparseable source is a per-item 400 ``x_content_parse_exception`` ("Failed to
  parse content to map", without Elasticsearch's line and column). noida-db stores what
  Elasticsearch refuses: a source with duplicate keys, an index name with upper-case letters,
  a body without its final newline, an empty body, and a 111 MB body (Elasticsearch: 413
  over ``http.max_content_length``, 100 MB). The compact answer under our ``filter_path`` is
  byte for byte Elasticsearch's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.log_sidecar_process import LineWriter, Sidecar, wait_for
from tests.integration.noida_db import MAX_RESULT_WINDOW, NoidaElasticsearch

DATA_STREAM = "logs-sidecar-noida"
# Lines written before the start, just before the kill, while no sidecar runs, after the restart.
BEFORE_START, BEFORE_KILL, WHILE_DOWN, AFTER_RESTART = 3000, 3000, 1500, 1500


@pytest.fixture
def noida(tmp_path: Path) -> Iterator[NoidaElasticsearch]:
    server = NoidaElasticsearch(tmp_path / "noida").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("index", ["logs-test", DATA_STREAM])
def test_sigkill_and_restart_mid_stream_store_every_line_once(
    tmp_path: Path, noida: NoidaElasticsearch, sidecars: list[Sidecar], index: str
) -> None:
    if index == DATA_STREAM:
        noida.request("PUT", "/_index_template/logs-sidecar", {"index_patterns": [index], "data_stream": {}})
    env = {"ES_URL": noida.url, "ES_INDEX": index, "LOG_CHECKPOINT_INTERVAL_SECONDS": "60"}
    first = Sidecar(tmp_path, **env)
    sidecars.append(first)
    writer = LineWriter(first.logs / "app.log")
    writer.write(BEFORE_START)
    first.start()
    wait_for(first, lambda: noida.count(index) >= 500, "some batches stored")
    writer.write(BEFORE_KILL)
    first.kill()
    killed_at = noida.count(index)
    writer.write(WHILE_DOWN)
    second = Sidecar(tmp_path, **env)
    sidecars.append(second)
    second.start()
    writer.write(AFTER_RESTART)
    writer.close()
    written = writer.written
    assert len(written) <= MAX_RESULT_WINDOW
    wait_for(second, lambda: noida.count(index) >= len(written), f"{len(written)} documents in noida-db")
    # What the first sidecar had stored but not checkpointed was sent again and refused with 409.
    assert second.metric("log_sidecar_documents_total", result="duplicate") >= killed_at
    assert second.stop() == 0  # drained: nothing more is on its way
    assert noida.count(index) == len(written)
    stored = Counter(int(doc["seq"]) for doc in noida.sources(index))
    assert sorted(stored) == written, "every line stored"
    assert set(stored.values()) == {1}, "no line stored twice"

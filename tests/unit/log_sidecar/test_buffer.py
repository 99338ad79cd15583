"""Memory is bounded: a full buffer pauses reading and the log file holds the backlog."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from log_sidecar.acks import AckTracker
from log_sidecar.batching import Batch, Batcher
from log_sidecar.buffer import BoundedBuffer
from log_sidecar.tailer import CHUNK_BYTES
from tests.unit.log_sidecar.conftest import MakeHarness


def batch(nbytes: int) -> Batch:
    b = Batch(0.0)
    b.items.append(b"x" * nbytes)
    b.nbytes = nbytes
    return b


def test_offer_refuses_past_the_cap_until_bytes_are_released() -> None:
    buffer = BoundedBuffer(100)
    first, second = batch(60), batch(60)
    assert buffer.offer(first)
    assert not buffer.offer(second)
    taken = buffer.take(0)
    assert taken is first
    assert not buffer.offer(second), "a batch in flight still counts"
    buffer.release(first)
    assert buffer.offer(second)
    assert buffer.used_bytes == 60


def test_an_oversized_batch_is_let_in_when_the_buffer_is_empty() -> None:
    buffer = BoundedBuffer(10)
    assert buffer.offer(batch(50))
    assert not buffer.idle()


def test_batches_seal_at_the_document_and_byte_limits() -> None:
    tracker = AckTracker()
    tracker.start("k", 0)
    batcher = Batcher(tracker, max_docs=3, max_bytes=1000)
    for i in range(7):
        batcher.add("k", (i + 1) * 10, b"doc")
    assert [len(b) for b in batcher.sealed] == [3, 3]
    assert batcher.open_docs() == 1
    by_bytes = Batcher(tracker, max_docs=100, max_bytes=10)
    by_bytes.add("k", 80, b"x" * 6)
    by_bytes.add("k", 90, b"x" * 6)
    assert [len(b) for b in by_bytes.sealed] == [2]


def batches_of(batcher: Batcher) -> list[tuple[list[bytes], int, list[tuple[int, int]]]]:
    return [(b.items, b.nbytes, [(r.start, r.end) for r in b.ranges]) for b in batcher.sealed]


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.lists(st.integers(1, 40), max_size=30), max_size=6),
    max_docs=st.integers(1, 12),
    max_bytes=st.integers(1, 150),
)
def test_adding_a_chunk_at_once_seals_the_same_batches_as_one_by_one(
    chunks: list[list[int]], max_docs: int, max_bytes: int
) -> None:
    one, many = AckTracker(), AckTracker()
    one.start("k", 0)
    many.start("k", 0)
    singly = Batcher(one, max_docs, max_bytes)
    chunked = Batcher(many, max_docs, max_bytes)
    end = 0
    for sizes in chunks:
        items = [bytes([65 + n % 26]) * size for n, size in enumerate(sizes)]
        ends = []
        for item in items:
            end += len(item) + 1
            ends.append(end)
            singly.add("k", end, item)
        chunked.add_many("k", items, ends)
    singly.seal()
    chunked.seal()
    assert batches_of(chunked) == batches_of(singly)


def test_a_down_sink_pauses_reading_and_memory_stays_flat(make_harness: MakeHarness, logs: Path) -> None:
    app = logs / "app.log"
    line = '{"msg": "' + "p" * 180 + '"}\n'
    with app.open("w") as out:
        out.write(line * 20_000)  # ~4 MB of backlog
    cap = 128 * 1024
    h = make_harness(buffer_max_bytes=cap, batch_max_bytes=32 * 1024, batch_max_docs=10_000)
    peak = 0
    for _ in range(50):  # the shipper is stuck: no shipping at all, only reader turns
        h.reader.step()
        peak = max(peak, h.buffer.used_bytes + h.batcher.sealed_bytes())
    (tail,) = h.tailer.tails.values()
    assert tail.offset < app.stat().st_size / 4, "reading paused instead of buffering the whole file"
    # The cap, plus at most the documents of the one chunk being read when the cap was hit.
    assert peak <= cap + 3 * CHUNK_BYTES
    # The sink comes back: everything arrives, once.
    for _ in range(400):
        h.turn()
        h.clock.advance(1.0)
        if len(h.sink.stored) == 20_000:
            break
    assert len(h.sink.stored) == 20_000
    assert sum(h.sink.requests) == 20_000

"""The UDP statsd receiver: one thread draining the socket into batches for the ingestor.

UDP has no back-pressure: whatever the kernel's receive buffer cannot hold is
lost. So the socket asks for a large SO_RCVBUF, the loop reads into one
preallocated buffer, and it hands packets over in batches so the store lock is
taken once per batch, not once per line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable

from metrics_exporter.statsd.parser import MAX_PACKET_BYTES
from sidecar_common import Heartbeat

logger = logging.getLogger(__name__)

# Packets drained per batch: bounds how long one batch holds the store lock (~1 ms per 250 lines).
MAX_BATCH = 1024
POLL_INTERVAL_SECONDS = 0.5
# After a partial batch, let packets pile up this long in the kernel buffer before the next read:
# one wakeup per ~100 packets instead of one per packet, which is most of the cost at high rates.
LINGER_SECONDS = 0.002
# Run housekeeping (ttl expiry) this often, with or without traffic (a scrape also expires).
HOUSEKEEPING_EVERY_SECONDS = 1.0
# The loop beats every poll (0.5 s); a batch or the housekeeping between two beats takes
# milliseconds, plus the wait for the store lock, which a scrape holds while it copies the series.
BEAT_INTERVAL_SECONDS = 2.0


class StatsdReceiver:
    """Bind a UDP socket and feed its packets to ``sink`` from a thread until ``close()``."""

    def __init__(
        self,
        host: str,
        port: int,
        sink: Callable[[list[bytes]], None],
        read_buffer_bytes: int = 8 << 20,
        housekeeping: Callable[[], None] = lambda: None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.sink = sink
        self.heartbeat = Heartbeat("statsd-receiver", BEAT_INTERVAL_SECONDS)
        self._stop = threading.Event()
        self.read_buffer_bytes = read_buffer_bytes
        self.housekeeping = housekeeping
        self.effective_read_buffer_bytes = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        # A pipe close() writes to, so the loop ends at once instead of at its next poll timeout.
        self._wake: tuple[int, int] | None = None

    @property
    def bound(self) -> bool:
        return self._sock is not None

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("receiver not bound")
        return int(self._sock.getsockname()[1])

    def bind(self) -> None:
        """Open and bind the socket (raises OSError if the port is taken)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.read_buffer_bytes)
            sock.bind((self.host, self.requested_port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        # Linux doubles the request for bookkeeping and caps it at net.core.rmem_max.
        self.effective_read_buffer_bytes = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._sock = sock
        logger.info(
            "statsd listening",
            extra={
                "address": f"{self.host}:{self.port}/udp",
                "rcvbuf_requested": self.read_buffer_bytes,
                "rcvbuf_effective": self.effective_read_buffer_bytes,
            },
        )

    def start(self) -> None:
        if self._sock is None:
            self.bind()
        self._stop.clear()
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self.run, name="statsd-receiver", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.heartbeat.alive()

    def run(self) -> None:
        """Receive until ``close()``; a failing batch is logged and the loop goes on."""
        sock = self._sock
        if sock is None:
            raise RuntimeError("receiver not bound")
        # One byte more than the largest packet we accept, so an oversize one is seen as such.
        buffer = bytearray(MAX_PACKET_BYTES + 1)
        view = memoryview(buffer)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        wake = self._wake[0] if self._wake is not None else None
        if wake is not None:
            poller.register(wake, select.POLLIN)
        last_housekeeping = time.monotonic()
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                ready = poller.poll(POLL_INTERVAL_SECONDS * 1000)
                if wake is not None and any(fd == wake for fd, _ in ready):
                    return  # close() was called
                batch: list[bytes] = []
                while ready and len(batch) < MAX_BATCH:
                    try:
                        size = sock.recv_into(buffer)
                    except BlockingIOError:
                        break
                    batch.append(bytes(view[:size]))
                if batch:
                    self.sink(batch)
                    if len(batch) < MAX_BATCH:
                        self._stop.wait(LINGER_SECONDS)
                now = time.monotonic()
                if now - last_housekeeping >= HOUSEKEEPING_EVERY_SECONDS:
                    last_housekeeping = now
                    self.housekeeping()
            except Exception:  # the receiver must outlive any one bad batch
                logger.exception("statsd receive loop failed; continuing")
                self._stop.wait(0.1)  # a persistent failure must not spin

    def close(self, timeout: float = 5.0) -> None:
        """End the loop, wait for it up to ``timeout`` seconds, and close the socket; idempotent."""
        self._stop.set()
        if self._wake is not None:
            os.write(self._wake[1], b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        if self._wake is not None:
            for fd in self._wake:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

"""Fire-and-forget statsd over UDP: a metric must never slow down or fail a request.

Lines use DogStatsD tags (``name:1|c|#key:value``), which the exporter sidecar maps
to Prometheus labels. A packet that cannot be sent is counted in ``dropped`` and the
first failure of each kind is logged, so a misconfigured STATSD_HOST is visible.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Mapping

logger = logging.getLogger(__name__)


class StatsdClient:
    """Send counters, timers and gauges to ``host:port``; an empty host switches metrics off."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.sent = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._failures_logged: set[str] = set()
        self._address: tuple[str, int] | None = None
        self._sock: socket.socket | None = None
        if host:
            self._open()

    def _open(self) -> None:
        try:
            # Resolve once: a DNS lookup per metric could block a request.
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            self._note_failure("resolve", exc)
            return
        sock.setblocking(False)  # a full send buffer drops the packet instead of waiting
        self._sock = sock
        self._address = (str(address[0]), int(address[1]))

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def increment(self, name: str, value: int = 1, tags: Mapping[str, str] | None = None) -> None:
        self.send(f"{name}:{value}|c{_tags(tags)}")

    def timing(self, name: str, milliseconds: float, tags: Mapping[str, str] | None = None) -> None:
        self.send(f"{name}:{milliseconds:.3f}|ms{_tags(tags)}")

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        self.send(f"{name}:{value:g}|g{_tags(tags)}")

    def send(self, line: str) -> None:
        """Send one already formatted statsd line; never blocks, never raises."""
        if not self.host:
            return  # switched off on purpose (STATSD_HOST empty): nothing is lost
        if self._sock is None or self._address is None:
            with self._lock:
                self.dropped += 1
            return
        try:
            # sendto on an unconnected socket: an ICMP "port unreachable" (exporter not up yet)
            # cannot poison later sends the way it does on a connected UDP socket.
            self._sock.sendto(line.encode("utf-8"), self._address)
        except OSError as exc:
            with self._lock:
                self.dropped += 1
            self._note_failure(type(exc).__name__, exc)
            return
        with self._lock:
            self.sent += 1

    def _note_failure(self, kind: str, exc: OSError) -> None:
        with self._lock:
            first = kind not in self._failures_logged
            self._failures_logged.add(kind)
        if first:
            logger.warning(
                "statsd packets to %s:%s are being dropped: %s",
                self.host,
                self.port,
                exc,
                extra={"event.action": "statsd-drop", "error.type": type(exc).__name__},
            )

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _tags(tags: Mapping[str, str] | None) -> str:
    if not tags:
        return ""
    return "|#" + ",".join(f"{_clean(key)}:{_clean(value)}" for key, value in tags.items())


def _clean(text: str) -> str:
    """Keep tag text from breaking the line format (``|``, ``,``, ``#`` and ``:`` are syntax)."""
    return "".join("_" if char in "|,#:\n" else char for char in str(text))

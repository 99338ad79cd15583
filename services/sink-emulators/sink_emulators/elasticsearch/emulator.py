"""``BulkEmulator``: the in-process face of the emulator — start, stop, faults, and what was stored."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Any

from .api import ElasticsearchApi
from .auth import Credentials
from .faults import FaultPlan, Faults
from .handler import DEFAULT_MAX_CONTENT_LENGTH, EmulatorHTTPServer
from .stats import BulkRequestRecord, BulkStats, StatsRecorder
from .store import DocumentStore

logger = logging.getLogger("sink_emulators.elasticsearch")

# How often the accept loop checks for stop(): short, so stopping (once per test) is quick.
_POLL_SECONDS = 0.02


class BulkEmulator:
    """An Elasticsearch Bulk-API emulator on ``host:port`` (port 0 picks a free one at the first start).

    Documents, faults and statistics live in this object and survive ``stop()``/``start()``,
    which rebinds the same port: a test can take "Elasticsearch" away (connections refused)
    and bring it back with its data. ``Faults(down=True)`` instead keeps listening but hangs
    up on every request.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        seed: int = 0,
        max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
        gzip_responses: bool = True,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        self.host = host
        self.seed = seed
        self._port = port
        self._max_content_length = max_content_length
        self._gzip_responses = gzip_responses
        self._store = DocumentStore()
        self._plan = FaultPlan(default_seed=seed)
        self._stats = StatsRecorder()
        self._credentials = Credentials(username, password, api_key)
        self._api = ElasticsearchApi(self._store, self._plan, self._stats, self._credentials)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    # Lifecycle.

    def start(self) -> BulkEmulator:
        """Listen and serve in a daemon thread; return self. Starting a running emulator is a no-op."""
        with self._lifecycle:
            if self._server is not None:
                return self
            self._api.stopping.clear()
            server = EmulatorHTTPServer(
                (self.host, self._port), self._api, self._max_content_length, self._gzip_responses
            )
            self._port = int(server.server_address[1])
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name=f"es-emulator-{self._port}",
                daemon=True,
            )
            self._thread.start()
        logger.info(
            "es emulator listening",
            extra={"url": self.url, "auth": self._credentials.describe(), "seed": self.seed},
        )
        return self

    def stop(self) -> None:
        """Stop listening and hang up every open connection; stored documents are kept."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            if server is None:
                return
            self._api.stopping.set()
            server.shutdown()
            server.hang_up_all()
            server.server_close()
            if thread is not None:
                thread.join(10)

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> BulkEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the configured one before the first start)."""
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    # Faults.

    @property
    def faults(self) -> Faults:
        return self._plan.faults

    def set_faults(self, faults: Faults) -> None:
        """Put ``faults`` in force (replacing the previous ones; counters and seeded draws restart)."""
        self._plan.set(faults)

    def clear_faults(self) -> None:
        self._plan.clear()

    # What was received and stored.

    def documents(self, index: str | None = None) -> dict[str, dict[str, Any]]:
        """Return copies of the stored sources by ``_id``; ``index`` selects by prefix or glob (comma-separated).

        Ids are unique per index; if two selected indices share an ``_id``, one of them wins.
        """
        return self._store.sources(index)

    def count(self, index: str | None = None) -> int:
        """Count stored documents, selected like ``documents()``; cheap enough to poll."""
        return self._store.count(index)

    def index_names(self) -> list[str]:
        return self._store.names()

    @property
    def bulk_requests(self) -> int:
        """``_bulk`` requests received so far (rejected ones included; not those hung up by ``down``)."""
        return self._stats.bulk_requests

    def stats(self) -> BulkStats:
        return self._stats.snapshot()

    def requests(self) -> list[BulkRequestRecord]:
        """The most recent ``_bulk`` requests, oldest first (bounded)."""
        return self._stats.recent()

    def reset(self) -> None:
        """Forget every document, index, template, fault and statistic."""
        self._api.reset()

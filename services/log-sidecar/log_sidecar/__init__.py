"""log_sidecar: tail log files, ship them with no loss and no duplicates (see services/log-sidecar/README.md)."""

from log_sidecar.service import LogSidecar
from log_sidecar.settings import Settings
from log_sidecar.sinks import Sink

__all__ = ["LogSidecar", "Settings", "Sink"]

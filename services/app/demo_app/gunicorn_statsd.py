"""gunicorn's built-in statsd instrumentation, made fire-and-forget.

gunicorn's own ``Statsd`` logger sends on a *connected* UDP socket: while nothing listens
on the statsd port (the exporter sidecar restarting), every send fails with "connection
refused" and gunicorn logs a warning with a stack trace per metric, i.e. several per
request. This subclass keeps gunicorn's metric names and formats and sends them through
the app's StatsdClient instead: unconnected, non-blocking, drops counted, first failure
logged once.
"""

from __future__ import annotations

from typing import Any

from gunicorn.instrument.statsd import Statsd

from demo_app.statsd import StatsdClient


class FireAndForgetStatsd(Statsd):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's statsd logger with a send path that never logs per packet."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        connected: Any = getattr(self, "sock", None)
        if connected is not None:
            connected.close()
        setattr(self, "sock", None)  # noqa: B010 - gunicorn's attribute, untyped
        host, port = cfg.statsd_host
        self.client = StatsdClient(str(host), int(port))

    def _sock_send(self, msg: str | bytes) -> None:
        line = msg.decode("ascii", errors="replace") if isinstance(msg, bytes) else msg
        if self.dogstatsd_tags:
            line = f"{line}|#{self.dogstatsd_tags}"
        self.client.send(line)

"""gunicorn's configuration and server hooks for the demo app, derived from Settings.

It lives in the package, not only in services/app/gunicorn.conf.py, so an installed app
(a container, ``python -m demo_app`` from any directory) always finds it;
services/app/gunicorn.conf.py re-exports it for ``gunicorn -c``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from demo_app.ecs_logging import logging_config
from demo_app.reload_board import ReloadBoard
from demo_app.settings import Settings

# Below Kubernetes' default 30 s terminationGracePeriodSeconds: in-flight requests finish
# (/api/work is capped at 10 s) and gunicorn exits before the kubelet's SIGKILL.
GRACEFUL_TIMEOUT_SECONDS = 20
# A worker silent this long is killed and replaced (the longest request is 10 s work + 10 s chaos).
WORKER_TIMEOUT_SECONDS = 30
# Idle keep-alive connections are kept a while so a proxy in front (Envoy) rarely reuses one
# gunicorn just closed; short enough that idle connections do not pile up.
KEEPALIVE_SECONDS = 5
WSGI_APP = "demo_app.wsgi:create_wsgi_app()"
STATSD_LOGGER = "demo_app.gunicorn_statsd.FireAndForgetStatsd"

_shared_board: ReloadBoard | None = None


def shared_board() -> ReloadBoard | None:
    """The board the gunicorn master created before forking this worker, if any."""
    return _shared_board


def on_starting(server: Any) -> None:
    """gunicorn hook, in the master before any worker forks: create the board every worker inherits."""
    global _shared_board
    if _shared_board is None:
        _shared_board = ReloadBoard.create()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master after a worker exited: free its slot for its replacement."""
    if _shared_board is not None:
        _shared_board.release(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the worker as it exits: free its slot at once (/stats stops listing it)."""
    if _shared_board is not None:
        _shared_board.release(worker.pid)


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """Every gunicorn setting the app relies on, as gunicorn config names."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return {
        "wsgi_app": WSGI_APP,
        "bind": [f"{host}:{settings.port}"],
        "workers": settings.workers,
        # gthread even with one thread: one worker model in every deployment, keep-alive handled by a poller.
        "worker_class": "gthread",
        "threads": settings.threads,
        "graceful_timeout": GRACEFUL_TIMEOUT_SECONDS,
        "timeout": WORKER_TIMEOUT_SECONDS,
        "keepalive": KEEPALIVE_SECONDS,
        "proc_name": settings.name,
        # gunicorn's built-in statsd: gunicorn.requests, gunicorn.request.status.<code>,
        # gunicorn.request.duration, gunicorn.workers, gunicorn.log.<level> (no prefix).
        "statsd_host": f"{settings.statsd_host}:{settings.statsd_port}" if settings.statsd_host else None,
        "statsd_prefix": "",
        "logger_class": STATSD_LOGGER if settings.statsd_host else "gunicorn.glogging.Logger",
        # One JSON log format for gunicorn's messages and the app's; the app logs each request itself.
        "logconfig_dict": logging_config(settings),
        "loglevel": settings.log_level.lower(),
        "accesslog": None,
        "errorlog": "-",
        # The control socket (gunicorn >= 25) would be created under $HOME: not needed, and the
        # root filesystem may be read-only.
        "control_socket_disable": True,
        "worker_tmp_dir": _worker_tmp_dir(),
        "on_starting": on_starting,
        "child_exit": child_exit,
        "worker_exit": worker_exit,
    }


def _worker_tmp_dir() -> str | None:
    """Workers' heartbeat files go to memory (/dev/shm) when possible: /tmp may be read-only or slow."""
    shm = Path("/dev/shm")  # noqa: S108 - a memory filesystem, the location gunicorn's docs recommend
    if shm.is_dir() and os.access(shm, os.W_OK):
        return str(shm)
    return None

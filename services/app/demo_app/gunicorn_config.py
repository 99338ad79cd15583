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
from demo_app.settings import Settings
from demo_app.shared_dir import SharedDir
from sidecar_common.admin_settings import CONTROL_HOST

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

_shared: SharedDir | None = None


def shared_dir() -> SharedDir | None:
    """The directory the gunicorn master created before forking this worker, if any."""
    return _shared


def on_starting(server: Any) -> None:
    """gunicorn hook, in the master before any worker forks: the directory every worker inherits."""
    global _shared
    if _shared is None:
        _shared = SharedDir.create(server.cfg.worker_tmp_dir)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master after a worker exited: /stats stops listing it."""
    if _shared is not None:
        _shared.forget_worker(worker.pid)


def on_exit(server: Any) -> None:
    """gunicorn hook, in the master as it exits (every worker is gone): remove the directory."""
    if _shared is not None:
        _shared.remove()


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """Every gunicorn setting the app relies on, as gunicorn config names."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return {
        "wsgi_app": WSGI_APP,
        # The API where the Service sends traffic, and the control port (POST /-/reload) on
        # loopback only: the pod's containers share localhost, nothing outside reaches it.
        "bind": [f"{host}:{settings.port}", f"{CONTROL_HOST}:{settings.control_port}"],
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
        # gunicorn's own control socket (gunicornc, gunicorn >= 25; not our control port) would be
        # created under $HOME: not needed, and the root filesystem may be read-only.
        "control_socket_disable": True,
        "worker_tmp_dir": worker_tmp_dir(),
        "on_starting": on_starting,
        "child_exit": child_exit,
        "on_exit": on_exit,
    }


def worker_tmp_dir() -> str | None:
    """Heartbeat files and the shared directory go to memory (/dev/shm) if possible: /tmp may be read-only."""
    shm = Path("/dev/shm")  # noqa: S108 - a memory filesystem, the location gunicorn's docs recommend
    if shm.is_dir() and os.access(shm, os.W_OK):
        return str(shm)
    return None

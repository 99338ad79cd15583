"""One lifecycle for every sidecar, and the one ``main`` that runs it.

A service object is built from its settings without side effects. ``start()``
binds its ports and takes its locks, so "port taken" and "state dir locked"
surface in one place, as a :class:`StartupError` naming the variable.
``run(stop)`` serves until ``stop`` is set, then drains. ``close()`` releases
everything and may be called twice. :func:`run_service` wires it: settings,
logging, signals (the handler only sets ``stop``; a second signal forces exit),
and one exit code per failure class, the same in every service:

====  =====================================================================
0     stopped cleanly
1     failed while running
2     configuration error: a variable, or a file a variable names
3     a resource is unavailable at start: a port, a lock, a path
130   forced by a second SIGTERM/SIGINT
====  =====================================================================

uvicorn's ``Server.serve()``/``shutdown()`` is the model; k8s-sidecar's
``sys.exit`` inside a signal handler is what this avoids.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any, Protocol, TypeVar, runtime_checkable

from sidecar_common.jsonlog import configure_logging
from sidecar_common.settings import SettingsError, parse_cli
from sidecar_common.shutdown import FORCED_EXIT, GracefulShutdown

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3
EXIT_FORCED = FORCED_EXIT

S = TypeVar("S")


class StartupError(Exception):
    """A resource a variable names cannot be used at start: a port, a lock, a path."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


class Service(Protocol):
    """What every sidecar is: built without side effects, then start, run, close."""

    def start(self) -> None:
        """Bind ports, take locks, start threads; raise StartupError naming the variable."""

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then drain within the service's own deadline."""

    def close(self) -> None:
        """Release ports, locks and files; idempotent."""


@runtime_checkable
class Reloadable(Protocol):
    """A service that re-reads its own config on SIGHUP (the handler only asks; the service's loop does it)."""

    def request_reload(self) -> None: ...


def run_service(
    prog: str,
    settings_type: type[S],
    build: Callable[[S], Service],
    *,
    description: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    commands: Callable[[argparse.ArgumentParser], None] | None = None,
    run_command: Callable[[S, argparse.Namespace], int | None] | None = None,
) -> int:
    """Parse settings, build the service, run it until SIGTERM/SIGINT; return the exit code.

    ``commands`` adds subcommands to the parser; ``run_command`` runs one and returns its
    exit code, or None to run the service (no subcommand given). A command that raises
    SettingsError or StartupError gets the same one-line error and exit code as the service.
    """
    settings, args = parse_cli(settings_type, prog, description, argv, environ, configure=commands)
    configure_logging(prog, str(getattr(settings, "log_level", "INFO")))
    try:
        if run_command is not None:
            code = run_command(settings, args)
            if code is not None:
                return code
        return _serve(prog, build(settings))
    except SettingsError as exc:
        return _fail(prog, "configuration error", exc, EXIT_CONFIG)
    except StartupError as exc:
        return _fail(prog, "cannot start", exc, EXIT_UNAVAILABLE)


def _serve(prog: str, service: Service) -> int:
    """Start, run until a signal, close whatever happened; StartupError and SettingsError propagate."""
    shutdown = GracefulShutdown()
    shutdown.install()
    if isinstance(service, Reloadable):
        _install_reload(service)
    try:
        service.start()
        service.run(shutdown.stop)
    except (StartupError, SettingsError):
        raise
    except Exception:  # the last line of defence: say what happened, exit non-zero, let the pod restart us
        logger.exception("%s failed", prog)
        return EXIT_FAILED
    finally:
        service.close()
    return EXIT_OK


def _fail(prog: str, what: str, exc: Exception, code: int) -> int:
    """The one-line startup error: on stderr, naming the variable (and the port or path in the reason)."""
    print(f"{prog}: {what}: {exc}", file=sys.stderr)
    return code


def _install_reload(service: Reloadable) -> None:
    def request_reload(signum: int, frame: FrameType | None) -> None:
        service.request_reload()

    signal.signal(signal.SIGHUP, request_reload)


def startup_error(variable: str, what: Any, exc: OSError) -> StartupError:
    """A StartupError for an OSError on ``what`` (a path or host:port), without a traceback's noise."""
    return StartupError(variable, f"{what}: {exc.strerror or exc}")

"""A private inotify reader for the sidecars that watch directories (config source, log directories).

watchdog's low-level ``InotifyFD`` hands over raw events as the kernel reports them;
its high-level Observer holds each IN_MOVED_FROM up to 0.5 s to pair it, which was the
config sidecar's propagation p99. watchdog is only needed by the sidecars that call
this (the ``inotify`` extra), so it is imported here, not at module level.
"""

from __future__ import annotations

import contextlib
import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.observers.inotify_c import InotifyFD


class InotifyUnavailableError(OSError):
    """This platform has no inotify (not Linux): callers fall back to their periodic re-scan."""


def start_inotify(name: str) -> InotifyFD:
    """Start a private reader thread (not watchdog's shared ``get_instance()``: ``stop()`` closes it)."""
    from watchdog.utils import UnsupportedLibcError

    try:
        # Imported here: importing it probes libc and raises where there is no inotify.
        from watchdog.observers.inotify_c import InotifyFD
    except UnsupportedLibcError as exc:
        raise InotifyUnavailableError(errno.ENOSYS, f"inotify is not available on this platform ({exc})") from None
    inotify = InotifyFD()
    inotify.name = name
    inotify.daemon = True  # never the reason a sidecar cannot exit
    inotify.start()
    return inotify


def stop_inotify(inotify: InotifyFD | None, join_seconds: float = 0.0) -> None:
    """Stop a reader (its watches go with it) and wait up to ``join_seconds`` for its thread.

    ``stop()`` closes the fd and wakes the reader through watchdog's own pipe; one whose
    thread already ended may fail to close, which is ignored.
    """
    if inotify is None:
        return
    with contextlib.suppress(OSError):
        inotify.stop()
    if join_seconds > 0:
        inotify.join(timeout=join_seconds)

"""Poll with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, message: str = "") -> T:
    """Call ``check`` until it returns a truthy value; fail after ``timeout`` seconds.

    Exceptions from ``check`` count as "not yet" until the deadline, then the
    last one is raised so the failure says what went wrong.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
            last_exc = None
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            what = message or getattr(check, "__name__", "condition")
            if last_exc is not None:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last_exc!r}") from last_exc
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)

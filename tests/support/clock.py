"""A clock the test moves by hand, for the services' injectable ``clock=`` and ``wall_clock=``."""

from __future__ import annotations


class FakeClock:
    """Reads ``now`` when called; time passes only through ``advance``.

    As a monotonic clock it starts at 1000.0, not 0, as a real one does (code that keeps 0.0
    for "never" must not be fooled); as a wall clock give it a date, ``FakeClock(1_700_000_000.0)``.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

"""Exponential backoff with full jitter, for retries that must not stampede."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, with full jitter.

    Full jitter (a uniform draw below the exponential ceiling) spreads retries
    of many clients; ``reset()`` after a success.
    """

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 30.0,
        multiplier: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial or multiplier < 1:
            raise ValueError("need 0 < initial <= maximum and multiplier >= 1")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        # Cap the exponent: hours of retries would otherwise overflow a float.
        return min(self.maximum, self.initial * self.multiplier ** min(self.attempt, 64))

    def next_delay(self) -> float:
        """Return the next delay and count the attempt."""
        ceiling = self.ceiling()
        self.attempt += 1
        # Never below half the ceiling, so a retry loop cannot spin on tiny draws.
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0

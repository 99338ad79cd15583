"""Injected faults: what to break, and the thread-safe, seeded plan that decides each failure."""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


class FaultsError(ValueError):
    """A fault description that cannot be applied; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Faults:
    """What the emulator breaks until told otherwise (the same keys as the JSON control API).

    - ``item_status_rate``: per-item failure probability by status, e.g. ``{429: 0.1, 503: 0.05}``;
      a failed item is not stored and carries the error a real cluster returns for that status.
    - ``poison_field``: a document holding this field (a dotted path reaches into objects) gets a
      400 ``mapper_parsing_exception`` and is not stored, on every attempt.
    - ``request_status``: answer whole ``_bulk`` requests with this status (e.g. 429 or 503) and an
      Elasticsearch error body, storing nothing; for the next ``request_status_count`` requests,
      or every request while set when the count is None.
    - ``request_status_html``: the ``request_status`` answers come from a proxy or ingress in front
      of Elasticsearch instead: an HTML error page (``text/html``, no ``X-elastic-product``).
    - ``retry_after_seconds``: send ``Retry-After`` with the ``request_status`` answers.
    - ``drop_response``: store the documents of a ``_bulk`` request, then hang up without an answer
      (a proxy timeout or reset after Elasticsearch did the work); for the next
      ``drop_response_count`` requests, or every request while set when the count is None.
    - ``max_body_bytes``: a proxy in front refuses ``_bulk`` bodies larger than this (as sent) with
      an HTML 413 page before Elasticsearch sees them (nginx's ``client_max_body_size``).
    - ``delay_seconds``: hold each ``_bulk`` response this long, after the documents are stored
      (a client that times out has still written them, as with a slow real cluster).
    - ``down``: every connection is closed without an answer (control endpoints still work).
    - ``seed``: makes the item failures reproducible; None uses the emulator's seed.
    """

    item_status_rate: Mapping[int, float] = field(default_factory=dict)
    poison_field: str | None = None
    request_status: int | None = None
    request_status_count: int | None = None
    request_status_html: bool = False
    retry_after_seconds: int | None = None
    drop_response: bool = False
    drop_response_count: int | None = None
    max_body_bytes: int | None = None
    delay_seconds: float = 0.0
    down: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        rates: dict[int, float] = {}
        for key, value in dict(self.item_status_rate).items():
            status = _status(f"item_status_rate[{key!r}]", key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise FaultsError(f"item_status_rate[{key!r}]", f"rate must be a number in [0, 1], got {value!r}")
            rates[status] = float(value)
        if sum(rates.values()) > 1.0 + 1e-9:
            raise FaultsError("item_status_rate", f"rates add up to {sum(rates.values()):.3f} > 1")
        object.__setattr__(self, "item_status_rate", rates)
        if self.poison_field is not None and (not isinstance(self.poison_field, str) or not self.poison_field):
            raise FaultsError("poison_field", f"must be a non-empty string, got {self.poison_field!r}")
        if self.request_status is not None:
            object.__setattr__(self, "request_status", _status("request_status", self.request_status))
        for name in ("request_status_count", "drop_response_count", "max_body_bytes"):
            count = getattr(self, name)
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
                raise FaultsError(name, f"must be a positive integer or null, got {count!r}")
        after = self.retry_after_seconds
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= 3600):
            raise FaultsError("retry_after_seconds", f"must be whole seconds in [0, 3600] or null, got {after!r}")
        for name in ("request_status_html", "drop_response"):
            if not isinstance(getattr(self, name), bool):
                raise FaultsError(name, f"must be true or false, got {getattr(self, name)!r}")
        delay = self.delay_seconds
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0.0 <= delay <= 3600.0:
            raise FaultsError("delay_seconds", f"must be a number of seconds in [0, 3600], got {delay!r}")
        if not isinstance(self.down, bool):
            raise FaultsError("down", f"must be true or false, got {self.down!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise FaultsError("seed", f"must be an integer or null, got {self.seed!r}")

    @classmethod
    def from_json(cls, data: Any) -> Faults:
        """Build faults from the JSON control API's object; unknown keys are an error, not ignored."""
        if not isinstance(data, dict):
            raise FaultsError("faults", f"must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultsError(unknown[0], f"unknown fault; known: {', '.join(sorted(known))}")
        rates = data.get("item_status_rate") or {}
        if not isinstance(rates, dict):
            raise FaultsError("item_status_rate", f"must be an object of status -> rate, got {rates!r}")
        return cls(**{**data, "item_status_rate": rates})

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form, as accepted by ``from_json``."""
        return {
            "item_status_rate": {str(status): rate for status, rate in self.item_status_rate.items()},
            "poison_field": self.poison_field,
            "request_status": self.request_status,
            "request_status_count": self.request_status_count,
            "request_status_html": self.request_status_html,
            "retry_after_seconds": self.retry_after_seconds,
            "drop_response": self.drop_response,
            "drop_response_count": self.drop_response_count,
            "max_body_bytes": self.max_body_bytes,
            "delay_seconds": self.delay_seconds,
            "down": self.down,
            "seed": self.seed,
        }


def _status(name: str, value: Any) -> int:
    try:
        status = int(value)
    except (TypeError, ValueError):
        raise FaultsError(name, f"must be an HTTP status code, got {value!r}") from None
    if isinstance(value, bool | float) or not 400 <= status <= 599:
        raise FaultsError(name, f"must be an HTTP error status (400-599), got {value!r}")
    return status


class FaultPlan:
    """The faults in force plus the state they consume (requests left to fail, attempts per document).

    An item's fate is a hash of (seed, index, _id, attempt number), so a rerun with the same seed
    fails the same documents on the same attempts however the client batches or retries them.
    Items without an ``_id`` draw from one seeded sequence instead.
    """

    def __init__(self, default_seed: int = 0) -> None:
        self._default_seed = default_seed
        self._lock = threading.Lock()
        self._faults = Faults()
        self._requests_left: int | None = None
        self._drops_left: int | None = None
        self._attempts: dict[tuple[str, str], int] = {}
        self._sequence = random.Random(default_seed)

    @property
    def faults(self) -> Faults:
        return self._faults

    def set(self, faults: Faults) -> None:
        """Put ``faults`` in force, restarting their counters and seeded draws."""
        with self._lock:
            self._faults = faults
            self._requests_left = faults.request_status_count
            self._drops_left = faults.drop_response_count
            self._attempts = {}
            self._sequence = random.Random(self._seed())

    def clear(self) -> None:
        """Stop injecting anything."""
        self.set(Faults())

    def _seed(self) -> int:
        return self._faults.seed if self._faults.seed is not None else self._default_seed

    def take_request_failure(self) -> int | None:
        """Return the status this ``_bulk`` request must fail with, consuming one of the N, or None."""
        with self._lock:
            status = self._faults.request_status
            if status is None:
                return None
            if self._requests_left is not None:
                if self._requests_left <= 0:
                    return None
                self._requests_left -= 1
            return status

    def take_dropped_response(self) -> bool:
        """Return whether this ``_bulk`` request's answer must be lost (after storing), consuming one of the N."""
        with self._lock:
            if not self._faults.drop_response:
                return False
            if self._drops_left is not None:
                if self._drops_left <= 0:
                    return False
                self._drops_left -= 1
            return True

    @property
    def injects_items(self) -> bool:
        return bool(self._faults.item_status_rate)

    def item_failure(self, index: str, doc_id: str | None) -> int | None:
        """Return the status this item must fail with, or None for no injected failure."""
        rates = self._faults.item_status_rate
        if not rates:
            return None
        with self._lock:
            if doc_id is None:
                draw = self._sequence.random()
            else:
                key = (index, doc_id)
                attempt = self._attempts.get(key, 0)
                self._attempts[key] = attempt + 1
                digest = hashlib.blake2b(
                    f"{self._seed()}\x00{index}\x00{doc_id}\x00{attempt}".encode(), digest_size=8
                ).digest()
                draw = int.from_bytes(digest, "big") / 2.0**64
        threshold = 0.0
        for status in sorted(rates):
            threshold += rates[status]
            if draw < threshold:
                return status
        return None

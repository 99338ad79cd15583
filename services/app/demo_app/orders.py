"""The body of ``POST /api/orders``: parsed strictly so bad input gets a 400 that says what is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_ITEM_LENGTH = 100
MAX_NOTE_LENGTH = 500
MAX_QUANTITY = 1000
FIELDS = frozenset({"item", "quantity", "note"})


class InvalidOrderError(ValueError):
    """The body is not an acceptable order; the message names the problem."""


@dataclass(frozen=True)
class Order:
    item: str
    quantity: int
    note: str | None = None


def parse_order(body: bytes) -> Order:
    """Decode a JSON order ``{"item": str, "quantity": int, "note"?: str}`` or raise InvalidOrderError."""
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidOrderError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise InvalidOrderError("body is not UTF-8 encoded") from None
    except ValueError as exc:
        raise InvalidOrderError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidOrderError("body is nested too deeply") from None
    return _validate(document)


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not allowed")


def _validate(document: Any) -> Order:
    if not isinstance(document, dict):
        raise InvalidOrderError("body must be a JSON object")
    unknown = sorted(set(document) - FIELDS)
    if unknown:
        raise InvalidOrderError(f"unknown fields: {', '.join(unknown)} (allowed: item, quantity, note)")
    item = document.get("item")
    if not isinstance(item, str) or not item.strip():
        raise InvalidOrderError("item is required and must be a non-empty string")
    if len(item) > MAX_ITEM_LENGTH:
        raise InvalidOrderError(f"item must be at most {MAX_ITEM_LENGTH} characters")
    quantity = document.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidOrderError("quantity is required and must be an integer")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidOrderError(f"quantity must be between 1 and {MAX_QUANTITY}")
    note = document.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_LENGTH):
        raise InvalidOrderError(f"note must be a string of at most {MAX_NOTE_LENGTH} characters")
    return Order(item=item.strip(), quantity=quantity, note=note)

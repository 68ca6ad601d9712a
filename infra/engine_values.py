"""How values arrive in a dynamic provider: the engine hands every number over
as a float (10 arrives as 10.0), so an int check alone would refuse, or skip,
every number a real run passes."""

from __future__ import annotations

from typing import Any


def whole(value: Any) -> int | None:
    """`value` as an int if it is a whole number, else None (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None

"""Small validation helpers shared by the modules of this package."""

from __future__ import annotations

import math
from typing import TypeGuard

__all__ = ("is_count", "is_real")


def is_real(value: object) -> TypeGuard[float]:
    """Whether `value` is a finite int or float (and not a bool)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def is_count(value: object, *, minimum: int = 0) -> TypeGuard[int]:
    """Whether `value` is an int (not a bool) of at least `minimum`."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum

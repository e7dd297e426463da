"""Run-time checks of values that come from callers (typed, but not always what the types say)."""

from __future__ import annotations

import datetime as dt
import math

__all__ = ("is_aware", "is_probability", "is_text")


def is_text(value: object, *, nonempty: bool = False) -> bool:
    """Whether `value` is a string (with a non-space character, if `nonempty`)."""
    return isinstance(value, str) and (not nonempty or bool(value.strip()))


def is_aware(value: object) -> bool:
    """Whether `value` is a timezone-aware datetime."""
    return isinstance(value, dt.datetime) and value.tzinfo is not None


def is_probability(value: object) -> bool:
    """Whether `value` is a real number (not a bool) in [0, 1]."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0.0 <= value <= 1.0
    )

"""Input checks shared by every test: arrays, NaN policy, option values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from crucible_bench.exceptions import (
    InsufficientDataError,
    InvalidInputError,
    InvalidParameterError,
)

Alternative: TypeAlias = Literal["two-sided", "less", "greater"]
NanPolicy: TypeAlias = Literal["raise", "omit"]
FloatArray: TypeAlias = NDArray[np.float64]

_ALTERNATIVES = ("two-sided", "less", "greater")


def choice(argument: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Return `value` if it is one of `allowed`, else raise `InvalidParameterError`."""
    if value not in allowed:
        raise InvalidParameterError(
            f"`{argument}` must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}",
            argument=argument,
            value=value,
            allowed=tuple(allowed),
        )
    return value


def alternative(value: Any) -> Alternative:
    """Check an `alternative` argument."""
    out: Alternative = choice("alternative", value, _ALTERNATIVES)
    return out


def nan_policy(value: Any) -> NanPolicy:
    """Check a `nan_policy` argument."""
    out: NanPolicy = choice("nan_policy", value, ("raise", "omit"))
    return out


def probability(argument: str, value: Any, *, open_low: bool = True) -> float:
    """Check a level/probability strictly inside (0, 1)."""
    try:
        x = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"`{argument}` must be a number strictly between 0 and 1; got {value!r}",
            argument=argument,
            value=value,
        ) from err
    if not (0.0 < x < 1.0) if open_low else not (0.0 <= x < 1.0):
        raise InvalidParameterError(
            f"`{argument}` must be strictly between 0 and 1 (e.g. 0.95); got {value!r}",
            argument=argument,
            value=value,
        )
    return x


def finite_number(argument: str, value: Any) -> float:
    """Check a finite real scalar option (e.g. `mu`)."""
    try:
        x = float(value)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"`{argument}` must be a finite number; got {value!r}",
            argument=argument,
            value=value,
        ) from err
    if not math.isfinite(x):
        raise InvalidParameterError(
            f"`{argument}` must be a finite number; got {value!r}",
            argument=argument,
            value=value,
        )
    return x


def count_option(argument: str, value: Any, *, minimum: int) -> int:
    """Check an integer option such as `n_resamples` (a bool or a fractional float is refused)."""
    integral = (
        isinstance(value, int | np.integer) and not isinstance(value, bool)
    ) or (isinstance(value, float | np.floating) and float(value).is_integer())
    if not integral or int(value) < minimum:
        raise InvalidParameterError(
            f"`{argument}` must be an integer ≥ {minimum}; got {value!r}",
            argument=argument,
            value=value,
        )
    return int(value)


def as_float_array(argument: str, data: ArrayLike, *, ndim: int = 1) -> FloatArray:
    """Convert to a float64 array of the given rank, naming `argument` on failure."""
    if isinstance(data, str | bytes):
        raise InvalidInputError(
            f"`{argument}` must be numbers, not a string; got {data!r}",
            argument=argument,
            reason="type",
        )
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"`{argument}` must be numbers convertible to float (ragged or text values are not); "
            f"got {type(data).__name__}: {err}",
            argument=argument,
            reason="type",
        ) from err
    if arr.ndim == 0 and ndim == 1:
        arr = arr.reshape(1)
    if arr.ndim != ndim:
        raise InvalidInputError(
            f"`{argument}` must be {ndim}-dimensional; got shape {arr.shape}",
            argument=argument,
            reason="shape",
        )
    return arr


def _nonfinite(argument: str, arr: FloatArray, policy: NanPolicy) -> FloatArray:
    if np.isinf(arr).any():
        raise InvalidInputError(
            f"`{argument}` contains infinite values; remove them or replace them with finite numbers",
            argument=argument,
            reason="inf",
        )
    nan = np.isnan(arr)
    if nan.any():
        if policy == "raise":
            raise InvalidInputError(
                f"`{argument}` contains {int(nan.sum())} NaN value(s); drop them or pass "
                '`nan_policy="omit"`',
                argument=argument,
                reason="nan",
            )
        return arr[~nan]
    return arr


def sample(
    argument: str, data: ArrayLike, *, policy: NanPolicy = "raise", minimum: int = 1
) -> FloatArray:
    """A clean 1-D sample: finite floats, NaN handled by `policy`, at least `minimum` values."""
    arr = _nonfinite(argument, as_float_array(argument, data), policy)
    if arr.size < minimum:
        reason = "empty" if arr.size == 0 else "too_few"
        raise InsufficientDataError(
            f"`{argument}` has {arr.size} usable observation(s); this needs at least {minimum}",
            argument=argument,
            reason=reason,
            n=int(arr.size),
            minimum=minimum,
        )
    return arr


def paired(
    x_name: str,
    x: ArrayLike,
    y_name: str,
    y: ArrayLike,
    *,
    policy: NanPolicy = "raise",
    minimum: int = 1,
) -> tuple[FloatArray, FloatArray]:
    """Two samples matched by position; NaN in either member drops the pair under `omit`."""
    a = as_float_array(x_name, x)
    b = as_float_array(y_name, y)
    if a.size != b.size:
        raise InvalidInputError(
            f"paired samples must have the same length: `{x_name}` has {a.size} values and "
            f"`{y_name}` has {b.size}; pairs are matched by position",
            argument=y_name,
            reason="length_mismatch",
        )
    for name, arr in ((x_name, a), (y_name, b)):
        if np.isinf(arr).any():
            raise InvalidInputError(
                f"`{name}` contains infinite values; remove them or replace them with finite numbers",
                argument=name,
                reason="inf",
            )
    bad = np.isnan(a) | np.isnan(b)
    if bad.any():
        if policy == "raise":
            name = x_name if np.isnan(a).any() else y_name
            raise InvalidInputError(
                f'`{name}` contains NaN value(s); drop those pairs or pass `nan_policy="omit"`',
                argument=name,
                reason="nan",
            )
        a, b = a[~bad], b[~bad]
    if a.size < minimum:
        raise InsufficientDataError(
            f"{a.size} usable pair(s); this needs at least {minimum}",
            argument=x_name,
            reason="empty" if a.size == 0 else "too_few",
            n=int(a.size),
            minimum=minimum,
        )
    return a, b


def groups(
    data: Iterable[ArrayLike],
    *,
    policy: NanPolicy = "raise",
    minimum: int = 1,
    k_min: int = 2,
) -> list[FloatArray]:
    """Several samples for a k-group test (`groups[i]` named in errors)."""
    out = [
        sample(f"groups[{i}]", g, policy=policy, minimum=minimum)
        for i, g in enumerate(data)
    ]
    if len(out) < k_min:
        raise InsufficientDataError(
            f"this test needs at least {k_min} groups; got {len(out)}",
            argument="groups",
            reason="too_few_groups",
            n=len(out),
            minimum=k_min,
        )
    return out


def not_constant(argument: str, *arrays: FloatArray) -> None:
    """Raise when every value in `arrays` is equal (no variability to test)."""
    values = np.concatenate(arrays)
    if values.size and np.all(values == values[0]):
        raise InsufficientDataError(
            f"all values in `{argument}` are equal ({values[0]!r}); the statistic is undefined "
            "without variability",
            argument=argument,
            reason="constant",
            n=int(values.size),
            minimum=2,
        )


def counts(argument: str, table: ArrayLike, *, ndim: int = 2) -> FloatArray:
    """A table of non-negative finite counts."""
    arr = as_float_array(argument, table, ndim=ndim)
    if not np.isfinite(arr).all():
        raise InvalidInputError(
            f"`{argument}` must hold finite counts; it contains NaN or inf",
            argument=argument,
            reason="nan",
        )
    if (arr < 0).any():
        raise InvalidInputError(
            f"`{argument}` must hold non-negative counts; got {arr.min()!r}",
            argument=argument,
            reason="negative",
        )
    if arr.sum() == 0:
        raise InsufficientDataError(
            f"`{argument}` is all zeros; there is nothing to test",
            argument=argument,
            reason="empty",
            n=0,
            minimum=1,
        )
    return arr

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


def at_least(argument: str, value: Any, minimum: float, what: str) -> float:
    """A finite real number ≥ `minimum` (e.g. a planned sample size); `what` says why."""
    if isinstance(value, bool) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise InvalidParameterError(
            f"`{argument}` must be a number ≥ {minimum:g} ({what}); got {value!r}",
            argument=argument,
            value=value,
        )
    x = float(value)
    if not (math.isfinite(x) and x >= minimum):
        raise InvalidParameterError(
            f"`{argument}` must be at least {minimum:g} ({what}); got {value!r}",
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


# Values whose magnitude is outside [2^-200, 2^200] have fourth powers (Welch's df, skewness in
# BCa, kurtosis) that overflow or underflow float64; functions that are not scale-free refuse them.
_SCALE_LIMIT = 200
# Integer input may be rounded to float64 only if that moves no value by more than 2^-50 of the
# spread of the values (so the differences a statistic is built on survive).
_INT_TOLERANCE_BITS = 50


def _refuse_dtype(argument: str, arr: NDArray[Any]) -> None:
    kind = arr.dtype.kind
    hint = {
        "c": "complex numbers (take `.real` or `abs()` first if that is what you mean)",
        "U": "text (convert it to numbers first, e.g. `np.asarray(x, dtype=float)`)",
        "S": "bytes (convert them to numbers first)",
        "M": "datetimes (convert them to numbers first, e.g. days since a reference date)",
        "m": "timedeltas (convert them to numbers first, e.g. `.total_seconds()` or "
        "`x / np.timedelta64(1, 's')`)",
        "V": "structured records (pass one numeric field)",
    }.get(kind)
    if kind == "O" and any(isinstance(e, str | bytes | complex) for e in arr.flat):
        hint = "text or complex values inside an object array (convert them to real numbers first)"
    if hint is not None:
        raise InvalidInputError(
            f"`{argument}` must hold real numbers; got {hint}",
            argument=argument,
            reason="type",
        )


def _is_integer_array(arr: NDArray[Any]) -> bool:
    if arr.dtype.kind in "iu":
        return True
    return (
        arr.dtype.kind == "O"
        and arr.size > 0
        and all(
            isinstance(e, int | np.integer) and not isinstance(e, bool)
            for e in arr.flat
        )
    )


def _integers_to_float(
    argument: str, arr: NDArray[Any], *, shift_free: bool, scale_free: bool
) -> FloatArray:
    """Integers (any size) to float64 without silently merging or distorting values."""
    if not arr.size:
        return np.empty(arr.shape, dtype=np.float64)
    if int(arr.min()) >= -(2**53) and int(arr.max()) <= 2**53:
        return arr.astype(np.float64)
    values = [int(e) for e in arr.flat]
    lo, hi = min(values), max(values)
    base = lo if shift_free else 0
    shifted = [e - base for e in values]
    big = max(abs(e) for e in shifted)
    bits = big.bit_length() - 1000
    if bits > 0 and not scale_free:
        raise InvalidInputError(
            f"`{argument}` holds integers up to about 10^{len(str(big)) - 1}, beyond float64's "
            "range (about 1.8e308); divide the data by a power of ten first",
            argument=argument,
            reason="overflow",
        )
    k = max(bits, 0)
    out = [e / (1 << k) for e in shifted] if k else [float(e) for e in shifted]
    if not shift_free:
        from fractions import Fraction

        err = (
            max(abs(int(f) - e) for f, e in zip(out, shifted, strict=True))
            if k == 0
            else max(
                abs(Fraction(f) * (1 << k) - e)
                for f, e in zip(out, shifted, strict=True)
            )
        )
        if err and err * 2**_INT_TOLERANCE_BITS > hi - lo:
            raise InvalidInputError(
                f"`{argument}` holds integers above 2^53 (up to {hi if abs(hi) >= abs(lo) else lo}) "
                "that float64 cannot represent exactly, and rounding would change the differences "
                f"between them (by up to {err}); subtract a common offset first (e.g. "
                "`x - min(x)`), or pass floats to accept the rounding",
                argument=argument,
                reason="precision",
            )
    return np.asarray(out, dtype=np.float64).reshape(arr.shape)


def magnitude(argument: str, arr: FloatArray) -> None:
    """Refuse finite values so large or so small that sums of squares leave float64's range."""
    finite = arr[np.isfinite(arr)]
    if not finite.size:
        return
    top = float(np.abs(finite).max())
    if top == 0.0:
        return
    exponent = math.frexp(top)[1]
    if exponent > _SCALE_LIMIT:
        raise InvalidInputError(
            f"`{argument}` has values as large as {top:.3g}; powers of values beyond "
            f"2^{_SCALE_LIMIT} (≈ 1.6e60) that variances and their standard errors need overflow "
            "float64. Divide the data by a power of ten (e.g. `x / 1e300`) and scale the result "
            "back",
            argument=argument,
            reason="scale",
        )
    if exponent < -_SCALE_LIMIT:
        raise InvalidInputError(
            f"`{argument}` has no value larger than {top:.3g} in magnitude; powers of values below "
            f"2^-{_SCALE_LIMIT} (≈ 6.2e-61) that variances and their standard errors need underflow "
            "float64. Multiply the data by a power of ten (e.g. `x * 1e300`) and scale the result "
            "back",
            argument=argument,
            reason="scale",
        )


def unit_scale(*arrays: FloatArray) -> list[FloatArray]:
    """The arrays multiplied by one power of two so the largest |value| lies in [0.5, 1).

    Exact (a power of two only changes exponents), so a scale-free statistic computed on the
    result equals the one on the data, without overflow near 1e308 or underflow at subnormals.
    """
    tops = [float(np.abs(a).max()) for a in arrays if a.size]
    top = max(tops, default=0.0)
    if top == 0.0 or not math.isfinite(top):
        return list(arrays)
    e = math.frexp(top)[1]
    return [np.ldexp(a, -e) for a in arrays]


def _not_numbers(argument: str, data: object, err: Exception) -> InvalidInputError:
    return InvalidInputError(
        f"`{argument}` must be numbers convertible to float (ragged or text values are not); "
        f"got {type(data).__name__}: {err}",
        argument=argument,
        reason="type",
    )


def as_float_array(
    argument: str,
    data: ArrayLike,
    *,
    ndim: int = 1,
    shift_free: bool = False,
    scale_free: bool = False,
    check_scale: bool = False,
) -> FloatArray:
    """Convert to a float64 array of the given rank, naming `argument` on failure.

    The one place data enters crucible-bench: text, complex, datetime and ragged input is refused;
    a masked array's masked entries become NaN (then handled by `nan_policy`); integers beyond
    2^53 are converted exactly or refused (`shift_free` arguments, such as a correlation's `x`,
    are first shifted by their minimum, which leaves the statistic unchanged; `scale_free` ones
    may also be scaled by a power of two past float64's range); `check_scale` refuses magnitudes
    whose squares leave float64's range (see `magnitude`).
    """
    if isinstance(data, str | bytes):
        raise InvalidInputError(
            f"`{argument}` must be numbers, not a string; got {data!r}",
            argument=argument,
            reason="type",
        )
    mask: NDArray[np.bool_] | None = None
    if isinstance(data, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(data)
        data = np.ma.getdata(data)
        if not mask.any():
            mask = None
    try:
        raw = np.asarray(data)
    except (TypeError, ValueError) as err:
        raise _not_numbers(argument, data, err) from err
    _refuse_dtype(argument, raw)
    try:
        if _is_integer_array(raw):
            keep = raw if mask is None else raw[~mask]
            conv = _integers_to_float(
                argument, keep, shift_free=shift_free, scale_free=scale_free
            )
            if mask is None:
                arr = conv
            else:
                arr = np.full(raw.shape, np.nan)
                arr[~mask] = conv
        else:
            arr = np.asarray(raw, dtype=np.float64)
            if mask is not None:
                arr = arr.copy()
                arr[mask] = np.nan
    except OverflowError as err:
        raise InvalidInputError(
            f"`{argument}` holds a number beyond float64's range (about 1.8e308); divide the "
            "data by a power of ten first",
            argument=argument,
            reason="overflow",
        ) from err
    except InvalidInputError:
        raise
    except (TypeError, ValueError) as err:
        raise _not_numbers(argument, data, err) from err
    if arr.ndim == 0 and ndim == 1:
        arr = arr.reshape(1)
    if arr.ndim != ndim:
        raise InvalidInputError(
            f"`{argument}` must be {ndim}-dimensional; got shape {arr.shape}",
            argument=argument,
            reason="shape",
        )
    if check_scale:
        magnitude(argument, arr)
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
                f"`{argument}` contains {int(nan.sum())} NaN (or masked) value(s); drop them or pass "
                '`nan_policy="omit"`',
                argument=argument,
                reason="nan",
            )
        return arr[~nan]
    return arr


def sample(
    argument: str,
    data: ArrayLike,
    *,
    policy: NanPolicy = "raise",
    minimum: int = 1,
    scale_free: bool = False,
) -> FloatArray:
    """A clean 1-D sample: finite floats, NaN handled by `policy`, at least `minimum` values.

    `scale_free` marks a function whose every output is unchanged by rescaling the data (rank
    tests, standardized effects): it skips the magnitude check and rescales itself if needed.
    """
    arr = _nonfinite(
        argument,
        as_float_array(
            argument, data, scale_free=scale_free, check_scale=not scale_free
        ),
        policy,
    )
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
    scale_free: bool = False,
    shift_free: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Two samples matched by position; NaN (or a masked entry) in either drops the pair under `omit`.

    `shift_free` (correlations) lets each variable be shifted by its own constant.
    """
    kw = {
        "scale_free": scale_free,
        "shift_free": shift_free,
        "check_scale": not scale_free,
    }
    a = as_float_array(x_name, x, **kw)
    b = as_float_array(y_name, y, **kw)
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
                f"`{name}` contains NaN (or masked) value(s); drop those pairs or pass "
                '`nan_policy="omit"`',
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
    scale_free: bool = False,
) -> list[FloatArray]:
    """Several samples for a k-group test (`groups[i]` named in errors)."""
    out = [
        sample(f"groups[{i}]", g, policy=policy, minimum=minimum, scale_free=scale_free)
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

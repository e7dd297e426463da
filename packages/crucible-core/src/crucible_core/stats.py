"""Descriptive statistics shared by telemetry, hedging, datasets and harness.

Every function takes any 1-D array-like of numbers and a `nan_policy`:

- `"raise"` (default): a NaN raises [`ValidationError`][crucible_core.exceptions.ValidationError]
  naming how many there are and where the first is;
- `"omit"`: NaNs are dropped before computing.

Infinite values are always an error (a latency or a cost is never infinite; one is a bug upstream),
and so is an empty sample. Percentiles use the linear interpolation of R's type 7 / numpy's default
(`method="linear"`); other numpy methods may be named. Confidence intervals of a mean are t-based
(Student's t with n − 1 degrees of freedom); of a proportion, Wilson's score interval.

Examples:
    >>> from crucible_core import stats
    >>> stats.percentile([1, 2, 3, 4], 50)
    2.5
    >>> ci = stats.mean_ci([1.0, 2.0, 3.0, 4.0])
    >>> round(ci.low, 4), round(ci.high, 4)
    (0.4457, 4.5543)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypeAlias

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from crucible_core._render import RenderMixin, Table, View
from crucible_core.exceptions import ValidationError

__all__ = (
    "ConfidenceInterval",
    "NanPolicy",
    "Summary",
    "as_sample",
    "describe",
    "mean",
    "mean_ci",
    "median",
    "percentile",
    "percentiles",
    "proportion_ci",
    "sd",
)

NanPolicy: TypeAlias = Literal["raise", "omit"]
"""What to do with NaN values: raise an error, or omit them."""

PercentileMethod: TypeAlias = Literal[
    "linear", "lower", "higher", "nearest", "midpoint", "inverted_cdf", "hazen", "weibull",
    "median_unbiased", "normal_unbiased",
]  # fmt: skip


def as_sample(
    x: ArrayLike, *, nan_policy: NanPolicy = "raise", min_size: int = 1, name: str = "x"
) -> NDArray[np.float64]:
    """Validate and convert a 1-D sample to float64, applying the NaN policy.

    Raises:
        ValidationError: not 1-D, not numeric, infinite values, NaN under `"raise"`, or fewer than
            `min_size` values.
    """
    if nan_policy not in ("raise", "omit"):
        raise ValidationError(
            f"nan_policy must be 'raise' or 'omit', got {nan_policy!r}",
            nan_policy=nan_policy,
        )
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValidationError(
            f"{name} must be numbers, got {type(x).__name__}: {err}"
        ) from err
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValidationError(
            f"{name} must be one-dimensional, got shape {arr.shape}", shape=arr.shape
        )
    nan = np.isnan(arr)
    if nan.any():
        if nan_policy == "raise":
            raise ValidationError(
                f"{name} has {int(nan.sum())} NaN value(s), the first at index {int(np.argmax(nan))}; "
                "drop them or pass nan_policy='omit'",
                nans=int(nan.sum()),
            )
        arr = arr[~nan]
    if np.isinf(arr).any():
        raise ValidationError(
            f"{name} has an infinite value at index {int(np.argmax(np.isinf(arr)))}; "
            "infinite values have no mean or spread",
        )
    if arr.size < min_size:
        raise ValidationError(
            f"{name} has {arr.size} value(s) (after NaN handling); at least {min_size} needed",
            size=int(arr.size),
            min_size=min_size,
        )
    return arr


def mean(x: ArrayLike, *, nan_policy: NanPolicy = "raise") -> float:
    """Arithmetic mean."""
    return float(np.mean(as_sample(x, nan_policy=nan_policy)))


def median(x: ArrayLike, *, nan_policy: NanPolicy = "raise") -> float:
    """Median (the mean of the two middle values for an even count)."""
    return float(np.median(as_sample(x, nan_policy=nan_policy)))


def sd(x: ArrayLike, *, ddof: int = 1, nan_policy: NanPolicy = "raise") -> float:
    """Standard deviation with `ddof` delta degrees of freedom (1: the sample SD, as R's `sd`)."""
    arr = as_sample(x, nan_policy=nan_policy, min_size=ddof + 1)
    return float(np.std(arr, ddof=ddof))


def percentile(
    x: ArrayLike,
    q: float,
    *,
    method: PercentileMethod = "linear",
    nan_policy: NanPolicy = "raise",
) -> float:
    """The `q`-th percentile (0 ≤ q ≤ 100); `method="linear"` is R's type 7."""
    return percentiles(x, [q], method=method, nan_policy=nan_policy)[0]


def percentiles(
    x: ArrayLike,
    qs: Sequence[float],
    *,
    method: PercentileMethod = "linear",
    nan_policy: NanPolicy = "raise",
) -> list[float]:
    """Several percentiles in one pass (one sort)."""
    q = np.asarray(qs, dtype=np.float64)
    if q.size and (np.isnan(q).any() or q.min() < 0 or q.max() > 100):
        raise ValidationError(
            f"percentiles must lie in [0, 100], got {list(qs)!r}", q=list(qs)
        )
    arr = as_sample(x, nan_policy=nan_policy)
    return [float(v) for v in np.percentile(arr, q, method=method)]


@attrs.define(frozen=True, kw_only=True)
class ConfidenceInterval(RenderMixin):
    """A two-sided confidence interval around an estimate."""

    estimate: float
    """The point estimate."""
    low: float
    """Lower bound."""
    high: float
    """Upper bound."""
    confidence_level: float
    """Nominal coverage, e.g. 0.95."""
    method: str
    """How it was computed, e.g. `"t"` or `"wilson"`."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        """Unpack as `low, high`."""
        return iter((self.low, self.high))

    def _view(self) -> View:
        return View(
            title=f"{self.confidence_level:.0%} confidence interval ({self.method})",
            facts=[("estimate", self.estimate), ("low", self.low), ("high", self.high)],
        )


def _check_level(confidence_level: float) -> None:
    if not 0 < confidence_level < 1:
        raise ValidationError(
            f"confidence_level must be between 0 and 1 (e.g. 0.95), got {confidence_level!r}",
            confidence_level=confidence_level,
        )


def mean_ci(
    x: ArrayLike, *, confidence_level: float = 0.95, nan_policy: NanPolicy = "raise"
) -> ConfidenceInterval:
    """t-based confidence interval of the mean: mean ± t(1−α/2, n−1)·sd/√n.

    With a single value there is no estimate of spread and the interval is (−inf, inf); when all of
    n ≥ 2 values are equal it has width 0.
    """
    _check_level(confidence_level)
    arr = as_sample(x, nan_policy=nan_policy)
    m = float(np.mean(arr))
    n = arr.size
    if n < 2:
        return ConfidenceInterval(
            estimate=m,
            low=-math.inf,
            high=math.inf,
            confidence_level=confidence_level,
            method="t",
        )
    from scipy.special import stdtrit  # lazy: scipy.special costs ~0.5 s to import

    half = (
        float(stdtrit(n - 1, 0.5 + confidence_level / 2))
        * float(np.std(arr, ddof=1))
        / math.sqrt(n)
    )
    return ConfidenceInterval(
        estimate=m,
        low=m - half,
        high=m + half,
        confidence_level=confidence_level,
        method="t",
    )


def proportion_ci(
    successes: int, n: int, *, confidence_level: float = 0.95
) -> ConfidenceInterval:
    """Wilson score interval for a proportion (as R's `prop.test(correct=FALSE)`).

    Raises:
        ValidationError: if counts are negative, not integers, or `successes > n`, or `n == 0`.
    """
    _check_level(confidence_level)
    if (
        int(successes) != successes
        or int(n) != n
        or successes < 0
        or n <= 0
        or successes > n
    ):
        raise ValidationError(
            f"need whole counts with 0 <= successes <= n and n > 0, got successes={successes!r}, n={n!r}",
            successes=successes,
            n=n,
        )
    from scipy.special import ndtri

    z = float(ndtri(0.5 + confidence_level / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return ConfidenceInterval(
        estimate=p,
        low=0.0 if successes == 0 else max(0.0, centre - half),
        high=1.0 if successes == n else min(1.0, centre + half),
        confidence_level=confidence_level,
        method="wilson",
    )


@attrs.define(frozen=True, kw_only=True)
class Summary(RenderMixin):
    """Descriptive statistics of one sample."""

    n: int
    """Number of values used (after NaN handling)."""
    mean: float
    """Arithmetic mean."""
    sd: float
    """Sample standard deviation (NaN when n = 1)."""
    min: float
    """Smallest value."""
    p50: float
    """Median."""
    p90: float
    """90th percentile."""
    p95: float
    """95th percentile."""
    p99: float
    """99th percentile."""
    max: float
    """Largest value."""
    nan_omitted: int = 0
    """NaN values dropped under `nan_policy="omit"`."""

    def _view(self) -> View:
        cols = ("n", "mean", "sd", "min", "p50", "p90", "p95", "p99", "max")
        return View(
            title="Summary",
            tables=[Table(headers=cols, rows=[tuple(getattr(self, c) for c in cols)])],
            notes=[f"{self.nan_omitted} NaN value(s) omitted"]
            if self.nan_omitted
            else [],
        )


def describe(x: ArrayLike, *, nan_policy: NanPolicy = "raise") -> Summary:
    """Count, mean, SD, min, median, p90, p95, p99 and max in one pass."""
    raw = np.asarray(x, dtype=np.float64)
    arr = as_sample(raw, nan_policy=nan_policy)
    p = np.percentile(arr, [50, 90, 95, 99])
    return Summary(
        n=int(arr.size),
        mean=float(arr.mean()),
        sd=float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
        min=float(arr.min()),
        p50=float(p[0]),
        p90=float(p[1]),
        p95=float(p[2]),
        p99=float(p[3]),
        max=float(arr.max()),
        nan_omitted=int(raw.size - arr.size) if raw.ndim else 0,
    )

"""Vectorized, seeded bootstrap confidence intervals (percentile, basic, normal, BCa)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeAlias

import attrs
import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import FloatArray, NanPolicy
from crucible_bench.exceptions import InvalidInputError, InvalidParameterError
from crucible_core.render import RenderMixin, View

__all__ = ("BootstrapResult", "bootstrap_ci", "resolve_seed")

StatisticName: TypeAlias = Literal[
    "mean", "median", "std", "mean_difference", "median_difference"
]
BootMethod: TypeAlias = Literal["bca", "percentile", "basic", "normal"]

_BLOCK = 1000  # resamples per independently seeded block; fixed so results do not depend on threads


@attrs.define(frozen=True, kw_only=True, repr=False)
class BootstrapResult(RenderMixin):
    """The result of [`bootstrap_ci`][crucible_bench.bootstrap_ci]."""

    method: BootMethod
    """Interval method: `"bca"`, `"percentile"`, `"basic"` or `"normal"`."""
    statistic: str
    """Name of the statistic (`"mean"`, … or the callable's name)."""
    estimate: float
    """The statistic on the observed data (θ̂)."""
    confidence_interval: tuple[float, float]
    """The bootstrap CI."""
    confidence_level: float
    """Level of `confidence_interval`."""
    standard_error: float
    """SD of the bootstrap distribution."""
    bias: float
    """Mean of the bootstrap distribution minus θ̂."""
    z0: float
    """BCa bias correction Φ⁻¹(P*(θ* < θ̂)) (NaN for other methods)."""
    acceleration: float
    """BCa jackknife acceleration (NaN for other methods)."""
    n_resamples: int
    """Number of bootstrap resamples."""
    n: tuple[int, ...]
    """Size of each sample."""
    paired: bool
    """Whether several samples were resampled together (by row)."""
    seed: int | None
    """The integer seed that reproduces this result (None when a Generator was passed)."""
    interpretation: str
    """A sentence reporting the estimate and CI."""

    def _view(self) -> View:
        return View(
            title=f"Bootstrap {self.method} CI of the {self.statistic}",
            facts=[
                ("estimate", self.estimate),
                (f"{self.confidence_level * 100:g}% CI", self.confidence_interval),
                ("standard error", self.standard_error),
                ("bias", self.bias),
                ("resamples", self.n_resamples),
                ("seed", self.seed),
            ],
            notes=[self.interpretation],
        )


def resolve_seed(
    rng: int | np.random.Generator | None,
) -> tuple[np.random.SeedSequence | np.random.Generator, int | None]:
    """A seed sequence (recording its integer seed) or the caller's Generator."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    value: Any = rng
    if value is None:
        seed = int(np.random.SeedSequence().entropy) % (2**63)  # type: ignore[arg-type]
    elif (
        isinstance(value, int | np.integer)
        and not isinstance(value, bool)
        and value >= 0
    ):
        seed = int(value)
    else:
        raise InvalidParameterError(
            f"`rng` must be a non-negative int seed, a numpy Generator or None; got {rng!r}",
            argument="rng",
            value=rng,
        )
    return np.random.SeedSequence(seed), seed


def _builtin(name: str, k: int) -> Callable[..., Any]:
    one: dict[str, Callable[..., Any]] = {
        "mean": np.mean,
        "median": np.median,
        "std": lambda a, axis: np.std(a, axis=axis, ddof=1),
    }
    two: dict[str, Callable[..., Any]] = {
        "mean_difference": lambda a, b, axis: (
            np.mean(a, axis=axis) - np.mean(b, axis=axis)
        ),
        "median_difference": lambda a, b, axis: (
            np.median(a, axis=axis) - np.median(b, axis=axis)
        ),
    }
    if name in one:
        if k != 1:
            raise InvalidParameterError(
                f"statistic {name!r} takes one sample; got {k}",
                argument="statistic",
                value=name,
            )
        fn = one[name]
        return lambda a, axis=-1: fn(a, axis=axis)
    if name in two:
        if k != 2:
            raise InvalidParameterError(
                f"statistic {name!r} takes two samples; got {k}",
                argument="statistic",
                value=name,
            )
        return two[name]
    raise InvalidParameterError(
        f"unknown statistic {name!r}; use one of {sorted(one) + sorted(two)} or a callable",
        argument="statistic",
        value=name,
        allowed=tuple(sorted(one) + sorted(two)),
    )


def _vectorize(
    fn: Callable[..., Any], samples: Sequence[FloatArray]
) -> Callable[..., FloatArray]:
    """Call `fn(*samples, axis=-1)`; fall back to a loop when `fn` has no `axis` argument."""
    try:
        probe = np.asarray(
            fn(*[np.stack([s, s]) for s in samples], axis=-1), dtype=float
        )
        if probe.shape == (2,):
            return lambda *a: np.asarray(fn(*a, axis=-1), dtype=float)
    except TypeError:
        pass

    def loop(*arrays: FloatArray) -> FloatArray:
        rows = arrays[0].shape[0]
        return np.array([float(fn(*[a[i] for a in arrays])) for i in range(rows)])

    return loop


def bootstrap_ci(
    data: ArrayLike | Sequence[ArrayLike],
    statistic: StatisticName | Callable[..., Any] = "mean",
    *,
    confidence_level: float = 0.95,
    n_resamples: int = 10_000,
    method: BootMethod = "bca",
    paired: bool = False,
    rng: int | np.random.Generator | None = None,
    nan_policy: NanPolicy = "raise",
) -> BootstrapResult:
    """Bootstrap confidence interval of a statistic; vectorized, seeded and reproducible.

    `data` is one sample, or a tuple of samples for multi-sample statistics (e.g.
    `statistic="mean_difference"`); with `paired=True` the samples are resampled together by
    position. A callable statistic receives the (resampled) samples and should accept an `axis`
    keyword (it is then called once per block of resamples); otherwise it is called per resample.

    Methods: `"percentile"` (α/2 and 1−α/2 quantiles), `"basic"` (2θ̂ − quantiles), `"normal"`
    (bias-corrected, as R `boot`'s `norm`), `"bca"` (Efron 1987; jackknife acceleration).
    Resamples are drawn in fixed blocks, each from its own child of the seed, and computed on
    threads, so the result depends only on the seed.

    Args:
        data: one sample, or a sequence of samples.
        statistic: `"mean"`, `"median"`, `"std"`, `"mean_difference"`, `"median_difference"` or
            a callable.
        confidence_level: level of the CI.
        n_resamples: number of resamples (B).
        method: `"bca"`, `"percentile"`, `"basic"` or `"normal"`.
        paired: resample several samples by the same row indices.
        rng: an int seed (recorded in the result), a numpy Generator, or None (a fresh seed is
            drawn and recorded).
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values (whole rows when paired).

    Returns:
        A [`BootstrapResult`][crucible_bench.BootstrapResult].

    Raises:
        InvalidInputError: NaN/inf, unequal lengths when paired.
        InsufficientDataError: fewer than two values, or all values equal.
        InvalidParameterError: unknown statistic or method, `n_resamples` < 100.

    Examples:
        >>> r = bootstrap_ci([3.39, 3.3, 2.81, 3.03, 3.44, 3.07, 3.0, 3.43], rng=1)
        >>> r.seed, round(r.estimate, 4)
        (1, 3.1837)
    """
    level = v.probability("confidence_level", confidence_level)
    method = v.choice("method", method, ("bca", "percentile", "basic", "normal"))
    policy = v.nan_policy(nan_policy)
    resamples: Any = n_resamples
    if not isinstance(resamples, int | np.integer) or resamples < 100:
        raise InvalidParameterError(
            f"`n_resamples` must be an integer ≥ 100 (10 000 is typical); got {n_resamples!r}",
            argument="n_resamples",
            value=n_resamples,
        )
    samples = _samples(data, paired=paired, policy=policy)
    v.not_constant("data", *samples)
    if isinstance(statistic, str):
        fn = _builtin(statistic, len(samples))
        stat_name: str = statistic
    elif callable(statistic):
        fn = statistic
        stat_name = str(getattr(fn, "__name__", "statistic"))
    else:
        raise InvalidParameterError(
            f"`statistic` must be a name or a callable; got {statistic!r}",
            argument="statistic",
            value=statistic,
        )
    vec = _vectorize(fn, samples)
    theta = float(vec(*[s[None, :] for s in samples])[0])
    source, seed = resolve_seed(rng)
    boot = _resample(vec, samples, int(n_resamples), source, paired=paired)
    if np.isnan(boot).any():
        raise InvalidInputError(
            "the statistic returned NaN on some resamples; make it defined for every resample",
            argument="statistic",
            reason="nan",
        )
    se = float(boot.std(ddof=1))
    bias = float(boot.mean()) - theta
    alpha = (1 - level) / 2
    z0 = a = math.nan
    if method == "percentile":
        ci = _quantiles(boot, alpha, 1 - alpha)
    elif method == "basic":
        lo, hi = _quantiles(boot, alpha, 1 - alpha)
        ci = (2 * theta - hi, 2 * theta - lo)
    elif method == "normal":
        from scipy.special import ndtri

        q = float(ndtri(1 - alpha))
        ci = (theta - bias - q * se, theta - bias + q * se)
    else:
        from scipy.special import ndtr, ndtri

        prop = float((boot < theta).mean())
        prop = min(max(prop, 0.5 / boot.size), 1 - 0.5 / boot.size)
        z0 = float(ndtri(prop))
        a = _acceleration(vec, samples, paired=paired)
        za, zb = float(ndtri(alpha)), float(ndtri(1 - alpha))
        a1 = float(ndtr(z0 + (z0 + za) / (1 - a * (z0 + za))))
        a2 = float(ndtr(z0 + (z0 + zb) / (1 - a * (z0 + zb))))
        ci = _quantiles(boot, a1, a2)
    text = (
        f"{stat_name} = {fmt.num(theta)}, {fmt.ci(ci[0], ci[1], level)} "
        f"({method} bootstrap, B = {int(n_resamples):,}, seed = {seed})."
    )
    return BootstrapResult(
        method=method,
        statistic=stat_name,
        estimate=theta,
        confidence_interval=(float(ci[0]), float(ci[1])),
        confidence_level=level,
        standard_error=se,
        bias=bias,
        z0=z0,
        acceleration=a,
        n_resamples=int(n_resamples),
        n=tuple(int(s.size) for s in samples),
        paired=paired,
        seed=seed,
        interpretation=text,
    )


def _samples(data: Any, *, paired: bool, policy: NanPolicy) -> list[FloatArray]:
    if isinstance(data, tuple | list) and data and all(np.ndim(d) == 1 for d in data):
        raw = list(data)
    else:
        raw = [data]
    if paired:
        arrs = [
            v.as_float_array(f"data[{i}]", d, check_scale=True)
            for i, d in enumerate(raw)
        ]
        if len({a.size for a in arrs}) > 1:
            raise InvalidInputError(
                f"paired samples must have equal lengths; got {[a.size for a in arrs]}",
                argument="data",
                reason="length_mismatch",
            )
        if any(np.isinf(a).any() for a in arrs):
            raise InvalidInputError(
                "`data` contains infinite values", argument="data", reason="inf"
            )
        bad = np.zeros(arrs[0].size, dtype=bool)
        for a in arrs:
            bad |= np.isnan(a)
        if bad.any():
            if policy == "raise":
                raise InvalidInputError(
                    '`data` contains NaN; drop those rows or pass `nan_policy="omit"`',
                    argument="data",
                    reason="nan",
                )
            arrs = [a[~bad] for a in arrs]
        for i, a in enumerate(arrs):
            v.sample(f"data[{i}]", a, minimum=2)
        return arrs
    if len(raw) == 1:
        return [v.sample("data", raw[0], policy=policy, minimum=2)]
    return [
        v.sample(f"data[{i}]", d, policy=policy, minimum=2) for i, d in enumerate(raw)
    ]


def _resample(
    vec: Callable[..., FloatArray],
    samples: list[FloatArray],
    b: int,
    source: np.random.SeedSequence | np.random.Generator,
    *,
    paired: bool,
) -> FloatArray:
    nblocks = -(-b // _BLOCK)
    if isinstance(source, np.random.Generator):
        gens = source.spawn(nblocks)
    else:
        gens = [np.random.Generator(np.random.PCG64(s)) for s in source.spawn(nblocks)]
    out = np.empty(b)
    sizes = [s.size for s in samples]
    dtypes = [
        np.int16 if n < 2**15 else np.int32 if n < 2**31 else np.int64 for n in sizes
    ]

    def block(i: int) -> None:
        g = gens[i]
        start = i * _BLOCK
        m = min(_BLOCK, b - start)
        if paired:
            idx = g.integers(0, sizes[0], size=(m, sizes[0]), dtype=dtypes[0])
            arrays = [s[idx] for s in samples]
        else:
            arrays = [
                s[g.integers(0, n, size=(m, n), dtype=dt)]
                for s, n, dt in zip(samples, sizes, dtypes, strict=True)
            ]
        out[start : start + m] = vec(*arrays)

    workers = min(nblocks, os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(block, range(nblocks)))
    else:
        for i in range(nblocks):
            block(i)
    return out


def _quantiles(boot: FloatArray, lo: float, hi: float) -> tuple[float, float]:
    q = np.quantile(boot, [lo, hi])
    return float(q[0]), float(q[1])


def _leave_one_out(
    vec: Callable[..., FloatArray], samples: list[FloatArray], drop: list[int]
) -> FloatArray:
    """Jackknife values leaving out each row of the samples in `drop` (the others kept whole)."""
    n = samples[drop[0]].size
    out = np.empty(n)
    chunk = max(1, 4_000_000 // max(n, 1))
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        keep = np.ones((rows.size, n), dtype=bool)
        keep[np.arange(rows.size), rows] = False
        args = []
        for j, s in enumerate(samples):
            if j in drop:
                args.append(
                    np.broadcast_to(s, (rows.size, n))[keep].reshape(rows.size, n - 1)
                )
            else:
                args.append(np.broadcast_to(s, (rows.size, s.size)))
        out[rows] = vec(*args)
    return out


def _acceleration(
    vec: Callable[..., FloatArray], samples: list[FloatArray], *, paired: bool
) -> float:
    """Jackknife acceleration, summed over samples (leave-one-row-out when paired)."""
    if paired:
        jacks = [_leave_one_out(vec, samples, list(range(len(samples))))]
    else:
        jacks = [_leave_one_out(vec, samples, [i]) for i in range(len(samples))]
    num = den = 0.0
    for jack in jacks:
        n = jack.size
        u = jack.mean() - jack
        num += float((u**3).sum()) / n**3
        den += float((u**2).sum()) / n**2
    if den == 0:
        return 0.0
    return float(num / (6 * den**1.5))

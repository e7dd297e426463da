"""Effect sizes with confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import attrs
import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import FloatArray, NanPolicy
from crucible_bench.exceptions import (
    ConvergenceError,
    InsufficientDataError,
    InvalidInputError,
)
from crucible_core.render import RenderMixin, View

__all__ = (
    "EffectSizeResult",
    "cliffs_delta",
    "cohen_dav",
    "cohen_dz",
    "cohens_d",
    "cohens_h",
    "epsilon_squared",
    "eta_squared",
    "glass_delta",
    "hedges_g",
    "nct_ci",
    "newcombe_interval",
    "odds_ratio",
    "omega_squared",
    "rank_biserial",
    "risk_difference",
    "wilson_interval",
)

_NAN_CI = (math.nan, math.nan)


@attrs.define(frozen=True, kw_only=True, repr=False)
class EffectSizeResult(RenderMixin):
    """One effect size with its confidence interval. `float(result)` gives the estimate."""

    name: str
    """E.g. `"Cohen's d"`."""
    estimate: float
    """The point estimate."""
    confidence_interval: tuple[float, float]
    """The CI; `(nan, nan)` where no interval is defined (stated in `method`)."""
    confidence_level: float
    """Level of `confidence_interval`."""
    method: str
    """How the estimate and CI were computed."""
    n: int
    """Observations used."""
    se: float = math.nan
    """Standard error where the CI is Wald-type (for the odds ratio: of the log odds ratio)."""
    interpretation: str = ""
    """The estimate, CI and a conventional magnitude label."""

    def __float__(self) -> float:
        return self.estimate

    def _view(self) -> View:
        return View(
            title=self.name,
            facts=[
                ("estimate", self.estimate),
                (f"{self.confidence_level * 100:g}% CI", self.confidence_interval),
                ("method", self.method),
                ("n", self.n),
            ],
            notes=[self.interpretation],
        )


def _brent(f: Callable[[float], float], lo: float, hi: float, quantity: str) -> float:
    from scipy.optimize import brentq

    grow = 0
    while f(lo) * f(hi) > 0:
        lo, hi = lo - (hi - lo), hi + (hi - lo)
        grow += 1
        if grow > 60:
            raise ConvergenceError(
                f"could not bracket the {quantity}", quantity=quantity
            )
    return float(brentq(f, lo, hi, xtol=1e-13, rtol=1e-15, maxiter=500))


def nct_cdf(df: float, ncp: float, t: float) -> float:
    """Noncentral t cdf; far-tail points where the special function gives NaN are 0 or 1."""
    from scipy.special import nctdtr

    value = float(nctdtr(df, ncp, t))
    if math.isnan(value):
        return 0.0 if ncp > t else 1.0
    return value


# Beyond this |t| the CI comes from the integral below: scipy's noncentral t returns NaN from
# |t| ≈ 1.3e5 and takes seconds per call long before that.
_NCT_DIRECT = 50.0


def _nct_cdf_integral(t: float, df: float, ncp: float) -> float:
    """P(T ≤ t) for t > 0 as a one-dimensional integral that holds at any magnitude.

    T = (Z + δ)/S with S = √(χ²_ν/ν), so P(T ≤ t) = P(S ≥ (Z + δ)/t) = E_Z[sf_S((Z + δ)/t)]
    = E_S[Φ(tS − δ)]. Whichever integrand varies more slowly than its weight is integrated
    (over z when t·sd(S) ≥ 1, else over s), with a breakpoint where it steps.
    """
    from scipy.integrate import quad
    from scipy.special import chdtrc, gammaln, ndtr

    sd_s = min(1.0, 1.0 / math.sqrt(2.0 * df))
    if t * sd_s >= 1.0:

        def over_z(z: float) -> float:
            s = (z + ncp) / t
            sf = 1.0 if s <= 0 else float(chdtrc(df, df * s * s))
            return math.exp(-0.5 * z * z) * sf

        step = t - ncp  # where (z + δ)/t reaches S's centre, 1
        points = [p for p in (step,) if -39.0 < p < 39.0]
        value, _ = quad(
            over_z, -39.0, 39.0, points=points or None, epsabs=1e-16, limit=400
        )
        return min(1.0, max(0.0, float(value) / math.sqrt(2 * math.pi)))
    log_norm = math.log(2.0 * df) - (df / 2) * math.log(2.0) - float(gammaln(df / 2))

    def over_s(s: float) -> float:
        if s <= 0:
            return 0.0
        x = df * s * s
        log_pdf = log_norm + math.log(s) + (df / 2 - 1) * math.log(x) - x / 2
        return math.exp(log_pdf) * float(ndtr(t * s - ncp))

    half = 40.0 * sd_s
    lo, hi = max(0.0, 1.0 - half), 1.0 + half
    points = [p for p in (ncp / t,) if lo < p < hi]
    value, _ = quad(over_s, lo, hi, points=points or None, epsabs=1e-16, limit=400)
    return min(1.0, max(0.0, float(value)))


def _nct_ci_large(t: float, df: float, confidence_level: float) -> tuple[float, float]:
    """The noncentral-t CI for t > `_NCT_DIRECT`, solved for δ/t (which stays of order one)."""
    from scipy.optimize import brentq
    from scipy.special import chdtri

    a = (1 - confidence_level) / 2
    # S's upper quantile bounds δ/t from above: F(t; δ) ≤ P(S ≥ δ/t − small)
    top = math.sqrt(float(chdtri(df, 1e-12)) / df) + 1.0

    def root(target: float) -> float:
        def g(r: float) -> float:
            return _nct_cdf_integral(t, df, t * r) - target

        lo, hi = -1.0, top
        if g(lo) < 0 or g(hi) > 0:
            raise ConvergenceError(
                "could not bracket the noncentrality", quantity="noncentrality"
            )
        return float(brentq(g, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=200)) * t

    return root(1 - a), root(a)


def nct_ci(t: float, df: float, confidence_level: float) -> tuple[float, float]:
    """CI for the noncentrality parameter of a t statistic (inverting the noncentral t cdf).

    For |t| ≤ 50, scipy's noncentral t cdf is inverted directly. Beyond, the cdf is a 1-D
    integral (`_nct_cdf_integral`) inverted in δ/t: fast at any |t|, and the interval keeps the
    width the SD's uncertainty gives it (≈ t·[√(χ²_{ν,a}/ν), √(χ²_{ν,1−a}/ν)] as t → ∞).
    """
    if abs(t) > _NCT_DIRECT:
        if t > 0:
            return _nct_ci_large(t, df, confidence_level)
        lo, hi = _nct_ci_large(-t, df, confidence_level)
        return -hi, -lo
    a = (1 - confidence_level) / 2
    width = 10 + abs(t) * 2

    def f(target: float) -> Callable[[float], float]:
        return lambda ncp: nct_cdf(df, ncp, t) - target

    lo = _brent(f(1 - a), t - width, t + width, "lower confidence limit")
    hi = _brent(f(a), t - width, t + width, "upper confidence limit")
    return lo, hi


def _var(x: FloatArray) -> float:
    d = x - x.mean()
    return float(d @ d) / (x.size - 1)


def _label(
    name: str, est: float, ci: tuple[float, float], level: float, mag: str
) -> str:
    ci_text = "" if math.isnan(ci[0]) else f", {fmt.ci(ci[0], ci[1], level)}"
    return f"{name} = {fmt.num(est)}{ci_text} ({mag})."


def _two(
    x: ArrayLike, y: ArrayLike, nan_policy: NanPolicy, minimum: int = 2, mu: float = 0.0
) -> tuple[FloatArray, FloatArray, float]:
    """Both samples (and a null value `mu` in their units) scaled by one exact power of two."""
    policy = v.nan_policy(nan_policy)
    a = v.sample("x", x, policy=policy, minimum=minimum, scale_free=True)
    b = v.sample("y", y, policy=policy, minimum=minimum, scale_free=True)
    a, b, m = v.unit_scale(a, b, np.array([mu]))
    return a, b, float(m[0])


def _pooled_d(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    nx, ny = a.size, b.size
    df = nx + ny - 2
    pooled = ((nx - 1) * _var(a) + (ny - 1) * _var(b)) / df
    if pooled == 0:
        raise InsufficientDataError(
            "both samples have zero variance; a standardized difference is undefined",
            argument="x and y",
            reason="constant",
            n=nx + ny,
            minimum=2,
        )
    return float(a.mean() - b.mean()) / math.sqrt(pooled), float(df)


def cohens_d(
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    mu: float = 0.0,
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> EffectSizeResult:
    """Cohen's d: pooled-SD standardized mean difference (or `(mean − mu)/sd` for one sample).

    The CI inverts the noncentral t distribution (as R `effectsize::cohens_d`).

    Args:
        x: the first sample.
        y: the second sample; omit for a one-sample d.
        mu: the null value subtracted from the (difference in) means.
        confidence_level: level of the CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Raises:
        InsufficientDataError: fewer than two values per sample, or zero variance.

    Examples:
        >>> round(cohens_d([3.2, 6.4, 1.8, 2.4, 5.8, 6.5], [2.4, 3.2, 3.2, 1.4, 2.8, 3.5]).estimate, 4)
        1.0025
    """
    confidence_level = v.probability("confidence_level", confidence_level)
    mu = v.finite_number("mu", mu)
    if y is None:
        a = v.sample(
            "x", x, policy=v.nan_policy(nan_policy), minimum=2, scale_free=True
        )
        v.not_constant("x", a)
        a, m = v.unit_scale(a, np.array([mu]))
        n = a.size
        d = (float(a.mean()) - float(m[0])) / math.sqrt(_var(a))
        lo, hi = nct_ci(d * math.sqrt(n), n - 1, confidence_level)
        ci = (lo / math.sqrt(n), hi / math.sqrt(n))
        method = "one-sample (mean − mu)/sd; noncentral-t CI"
    else:
        a, b, mu = _two(x, y, nan_policy, mu=mu)
        n = a.size + b.size
        d, df = _pooled_d(a, b)
        d -= mu / math.sqrt(((a.size - 1) * _var(a) + (b.size - 1) * _var(b)) / df)
        scale = math.sqrt(1 / a.size + 1 / b.size)
        lo, hi = nct_ci(d / scale, df, confidence_level)
        ci = (lo * scale, hi * scale)
        method = "pooled SD (n − 1 denominators); noncentral-t CI"
    return EffectSizeResult(
        name="Cohen's d",
        estimate=d,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method=method,
        n=n,
        interpretation=_label("Cohen's d", d, ci, confidence_level, fmt.magnitude_d(d)),
    )


def _hedges_j_approx(df: float) -> float:
    return 1 - 3 / (4 * (df + 2) - 9)


def hedges_g(
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    correction: Literal["exact", "approx"] = "exact",
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> EffectSizeResult:
    """Hedges' g: Cohen's d with the small-sample bias correction.

    `correction="exact"` uses J(df) = Γ(df/2)/(√(df/2)Γ((df−1)/2)) (R `effectsize`);
    `"approx"` uses 1 − 3/(4(n₁+n₂) − 9) (R `effsize`, pingouin). The CI is d's, scaled by J.

    Args:
        x: the first sample.
        y: the second sample; omit for a one-sample g.
        correction: `"exact"` or `"approx"`.
        confidence_level: level of the CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(hedges_g([3.2, 6.4, 1.8, 2.4, 5.8, 6.5], [2.4, 3.2, 3.2, 1.4, 2.8, 3.5]).estimate, 4)
        0.9251
    """
    from crucible_bench._ttest import hedges_j

    correction = v.choice("correction", correction, ("exact", "approx"))
    d = cohens_d(x, y, confidence_level=confidence_level, nan_policy=nan_policy)
    df = float(d.n - (1 if y is None else 2))
    j = hedges_j(df) if correction == "exact" else _hedges_j_approx(df)
    g = d.estimate * j
    ci = (d.confidence_interval[0] * j, d.confidence_interval[1] * j)
    return EffectSizeResult(
        name="Hedges' g",
        estimate=g,
        confidence_interval=ci,
        confidence_level=d.confidence_level,
        method=f"Cohen's d × J ({correction} correction); CI of d scaled by J",
        n=d.n,
        interpretation=_label(
            "Hedges' g", g, ci, d.confidence_level, fmt.magnitude_d(g)
        ),
    )


def glass_delta(
    x: ArrayLike,
    y: ArrayLike,
    *,
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> EffectSizeResult:
    """Glass's Δ: (mean x − mean y) / sd(y), standardizing by the control group `y`.

    The CI is a normal approximation with variance (n_x+n_y)/(n_x n_y) + Δ²/(2(n_y − 1)).

    Args:
        x: the treatment sample.
        y: the control sample, whose SD standardizes the difference.
        confidence_level: level of the CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(glass_delta([3.2, 6.4, 1.8, 2.4, 5.8, 6.5], [2.4, 3.2, 3.2, 1.4, 2.8, 3.5]).estimate, 4)
        2.0955
    """
    from scipy.special import ndtri

    confidence_level = v.probability("confidence_level", confidence_level)
    a, b, _ = _two(x, y, nan_policy)
    v.not_constant("y", b)
    delta = float(a.mean() - b.mean()) / math.sqrt(_var(b))
    se = math.sqrt(
        (a.size + b.size) / (a.size * b.size) + delta**2 / (2 * (b.size - 1))
    )
    q = float(ndtri(0.5 + confidence_level / 2))
    ci = (delta - q * se, delta + q * se)
    return EffectSizeResult(
        name="Glass's Δ",
        estimate=delta,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method="difference over sd(y); normal-approximation CI",
        n=a.size + b.size,
        se=se,
        interpretation=_label(
            "Glass's Δ", delta, ci, confidence_level, fmt.magnitude_d(delta)
        ),
    )


def cohen_dz(
    x: ArrayLike,
    y: ArrayLike,
    *,
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> EffectSizeResult:
    """Paired d_z = mean(x − y)/sd(x − y) = t/√n, with a noncentral-t CI.

    Args:
        x: the first measurement of each pair.
        y: the second measurement, matched by position.
        confidence_level: level of the CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN pairs.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(cohen_dz([5, 6, 7, 8], [4, 6, 5, 6]).estimate, 4)
        1.3056
    """
    confidence_level = v.probability("confidence_level", confidence_level)
    a, b = v.paired(
        "x", x, "y", y, policy=v.nan_policy(nan_policy), minimum=2, scale_free=True
    )
    a, b = v.unit_scale(a, b)
    d = a - b
    v.not_constant("x - y", d)
    n = d.size
    dz = float(d.mean()) / math.sqrt(_var(d))
    lo, hi = nct_ci(dz * math.sqrt(n), n - 1, confidence_level)
    ci = (lo / math.sqrt(n), hi / math.sqrt(n))
    return EffectSizeResult(
        name="Cohen's d_z",
        estimate=dz,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method="mean difference over SD of differences; noncentral-t CI",
        n=n,
        interpretation=_label(
            "Cohen's d_z", dz, ci, confidence_level, fmt.magnitude_d(dz)
        ),
    )


def cohen_dav(
    x: ArrayLike,
    y: ArrayLike,
    *,
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> EffectSizeResult:
    """Paired d_av = mean(x − y) / √((s_x² + s_y²)/2) (pingouin's paired default).

    The CI is the d_z noncentral-t CI rescaled to the d_av scale (an approximation).

    Args:
        x: the first measurement of each pair.
        y: the second measurement, matched by position.
        confidence_level: level of the CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN pairs.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(cohen_dav([5, 6, 7, 8], [4, 6, 5, 6]).estimate, 4)
        1.0999
    """
    dz = cohen_dz(x, y, confidence_level=confidence_level, nan_policy=nan_policy)
    a, b = v.paired(
        "x", x, "y", y, policy=v.nan_policy(nan_policy), minimum=2, scale_free=True
    )
    a, b = v.unit_scale(a, b)
    sav = math.sqrt((_var(a) + _var(b)) / 2)
    diff = float((a - b).mean())
    dav = diff / sav
    ratio = dav / dz.estimate if dz.estimate != 0 else math.nan
    lo, hi = (dz.confidence_interval[0] * ratio, dz.confidence_interval[1] * ratio)
    ci = (min(lo, hi), max(lo, hi)) if not math.isnan(ratio) else _NAN_CI
    return EffectSizeResult(
        name="Cohen's d_av",
        estimate=dav,
        confidence_interval=ci,
        confidence_level=dz.confidence_level,
        method="mean difference over average SD; d_z CI rescaled (approximate)",
        n=dz.n,
        interpretation=_label(
            "Cohen's d_av", dav, ci, dz.confidence_level, fmt.magnitude_d(dav)
        ),
    )


def eta_squared(
    *groups: ArrayLike, confidence_level: float = 0.95, nan_policy: NanPolicy = "raise"
) -> EffectSizeResult:
    """η² = SS_between / SS_total of a one-way design, with a noncentral-F CI.

    Args:
        *groups: two or more samples.
        confidence_level: level of the two-sided CI (inverting the noncentral F).
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(eta_squared([1, 2, 3], [4, 5, 6]).estimate, 4)
        0.7714
    """
    from crucible_bench._anova import anova_oneway

    confidence_level = v.probability("confidence_level", confidence_level)
    r = anova_oneway(*groups, nan_policy=nan_policy)
    lo, hi = _ncf_ci(r.statistic, r.df[0], r.df[1], confidence_level)
    ci = (lo / (lo + r.n), hi / (hi + r.n))
    return EffectSizeResult(
        name="η²",
        estimate=r.eta_squared,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method="SS_between / SS_total; noncentral-F CI",
        n=r.n,
        interpretation=_label(
            "η²", r.eta_squared, ci, confidence_level, fmt.magnitude_eta(r.eta_squared)
        ),
    )


def omega_squared(
    *groups: ArrayLike, nan_policy: NanPolicy = "raise"
) -> EffectSizeResult:
    """ω² = (SSb − dfb·MSw)/(SSt + MSw), the less biased η² (no CI).

    Args:
        *groups: two or more samples.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult] (CI is NaN).

    Examples:
        >>> round(omega_squared([1, 2, 3], [4, 5, 6]).estimate, 4)
        0.6757
    """
    from crucible_bench._anova import anova_oneway

    r = anova_oneway(*groups, nan_policy=nan_policy)
    return EffectSizeResult(
        name="ω²",
        estimate=r.omega_squared,
        confidence_interval=_NAN_CI,
        confidence_level=0.95,
        method="(SSb − dfb·MSw)/(SSt + MSw); no CI",
        n=r.n,
        interpretation=_label(
            "ω²", r.omega_squared, _NAN_CI, 0.95, fmt.magnitude_eta(r.omega_squared)
        ),
    )


def epsilon_squared(
    *groups: ArrayLike, nan_policy: NanPolicy = "raise"
) -> EffectSizeResult:
    """ε² = (SSb − dfb·MSw)/SSt (no CI).

    Args:
        *groups: two or more samples.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult] (CI is NaN).

    Examples:
        >>> round(epsilon_squared([1, 2, 3], [4, 5, 6]).estimate, 4)
        0.7143
    """
    from crucible_bench._anova import anova_oneway

    r = anova_oneway(*groups, nan_policy=nan_policy)
    return EffectSizeResult(
        name="ε²",
        estimate=r.epsilon_squared,
        confidence_interval=_NAN_CI,
        confidence_level=0.95,
        method="(SSb − dfb·MSw)/SSt; no CI",
        n=r.n,
        interpretation=_label(
            "ε²", r.epsilon_squared, _NAN_CI, 0.95, fmt.magnitude_eta(r.epsilon_squared)
        ),
    )


# scipy's noncentral F takes milliseconds from λ ≈ 1e9, seconds from 1e16, and is NaN from 1e11
_NCF_DIRECT = 1e9


def _ncf_cdf_large(df1: float, df2: float, lam: float, f: float) -> float:
    """P(F' ≤ f) for λ > 1e9: F' = (X/df1)/(V/df2), X ~ χ²'(df1, λ) ≈ N(λ + df1, 2(df1 + 2λ)).

    The normal law of X is off only by its skewness (≈ 3/√λ ≤ 1e-4), which the much wider
    V smooths to ≲ 1e-7 in the cdf (checked against scipy at λ = 1e9), so
    P(F' ≤ f) = E_V[Φ((c·V − μ)/σ)] with c = f·df1/df2, integrated over V ~ χ²_df2 with a
    breakpoint at the step V = μ/c.
    """
    from scipy.integrate import quad
    from scipy.special import chdtri, gammaln, ndtr

    mu, sigma, c = lam + df1, math.sqrt(2 * (df1 + 2 * lam)), f * df1 / df2
    log_norm = -(df2 / 2) * math.log(2.0) - float(gammaln(df2 / 2))

    def integrand(x: float) -> float:
        if x <= 0:
            return 0.0
        log_pdf = log_norm + (df2 / 2 - 1) * math.log(x) - x / 2
        return math.exp(log_pdf) * float(ndtr((c * x - mu) / sigma))

    lo, hi = float(chdtri(df2, 1 - 1e-16)), float(chdtri(df2, 1e-16))
    if mu / c >= hi:
        return 0.0
    points = [p for p in (mu / c,) if lo < p < hi]
    value, _ = quad(integrand, lo, hi, points=points or None, epsabs=1e-16, limit=400)
    return min(1.0, max(0.0, float(value)))


def _ncf_ci(f: float, df1: float, df2: float, level: float) -> tuple[float, float]:
    """CI for the noncentrality λ of an F statistic (0 where the bound is below zero)."""
    from scipy.special import ncfdtr

    a = (1 - level) / 2

    def cdf(lam: float) -> float:
        value = float(ncfdtr(df1, df2, lam, f)) if lam <= _NCF_DIRECT else math.nan
        return _ncf_cdf_large(df1, df2, lam, f) if math.isnan(value) else value

    def bound(target: float) -> float:
        if cdf(0.0) <= target:
            return 0.0
        hi = max(10.0, f * df1 * 4)
        while cdf(hi) > target:
            hi *= 2
            if hi > 1e300:
                raise ConvergenceError("could not bracket λ", quantity="noncentrality")
        return _brent(lambda lam: cdf(lam) - target, 0.0, hi, "noncentrality")

    return bound(1 - a), bound(a)


def rank_biserial(
    x: ArrayLike,
    y: ArrayLike,
    *,
    paired: bool = False,
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> EffectSizeResult:
    """Rank-biserial correlation: 2U/(n_x n_y) − 1, or (W+ − W−)/(W+ + W−) when paired.

    Positive when `x` tends to be larger. The CI uses Fisher's z (as R `effectsize`).

    Args:
        x: the first sample.
        y: the second sample (matched by position when `paired`).
        paired: the matched-pairs version (zero differences dropped).
        confidence_level: level of the CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> rank_biserial([3, 4, 5], [1, 2, 3]).estimate
        0.8888888888888888
    """
    from crucible_bench._rank import mann_whitney, wilcoxon

    if paired:
        w = wilcoxon(
            x,
            y,
            confidence_level=confidence_level,
            nan_policy=nan_policy,
            method="asymptotic",
        )
        est, ci, n, method = (
            w.rank_biserial,
            w.rank_biserial_ci,
            w.n_nonzero,
            "matched pairs",
        )
    else:
        m = mann_whitney(
            x,
            y,
            confidence_level=confidence_level,
            nan_policy=nan_policy,
            method="asymptotic",
        )
        est, ci, n, method = (
            m.rank_biserial,
            m.rank_biserial_ci,
            m.n,
            "independent samples",
        )
    return EffectSizeResult(
        name="rank-biserial r",
        estimate=est,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method=f"{method}; Fisher-z CI",
        n=n,
        interpretation=_label(
            "rank-biserial r", est, ci, confidence_level, fmt.magnitude_r(est)
        ),
    )


def cliffs_delta(
    x: ArrayLike,
    y: ArrayLike,
    *,
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> EffectSizeResult:
    """Cliff's δ = P(X > Y) − P(X < Y) (equal to the unpaired rank-biserial r).

    Args:
        x: the first sample.
        y: the second sample.
        confidence_level: level of the Fisher-z CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(cliffs_delta([3, 4, 5], [1, 2, 3]).estimate, 4)
        0.8889
    """
    r = rank_biserial(x, y, confidence_level=confidence_level, nan_policy=nan_policy)
    return attrs.evolve(
        r,
        name="Cliff's δ",
        interpretation=_label(
            "Cliff's δ",
            r.estimate,
            r.confidence_interval,
            confidence_level,
            fmt.magnitude_r(r.estimate),
        ),
    )


def _table2(table: ArrayLike) -> FloatArray:
    t = v.counts("table", table)
    if t.shape != (2, 2):
        raise InvalidInputError(
            f"a 2 × 2 table is needed; got shape {t.shape}",
            argument="table",
            reason="shape",
        )
    return t


def odds_ratio(
    table: ArrayLike, *, confidence_level: float = 0.95, correction: bool | None = None
) -> EffectSizeResult:
    """Sample odds ratio ad/bc of a 2 × 2 table, with Woolf's log-scale Wald CI.

    Args:
        table: `[[a, b], [c, d]]` counts (rows: groups; columns: event, no event).
        confidence_level: level of the CI.
        correction: add ½ to every cell (Haldane–Anscombe); the default applies it only when a
            cell is zero, and says so in `method`.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult]; `se` is the SE of the log OR.

    Examples:
        >>> round(odds_ratio([[2, 10], [15, 3]]).estimate, 4)
        0.04
    """
    from scipy.special import ndtri

    confidence_level = v.probability("confidence_level", confidence_level)
    t = _table2(table)
    use = bool((t == 0).any()) if correction is None else correction
    tt = t + 0.5 if use else t
    a, b, c, d = (float(z) for z in tt.ravel())
    est = a * d / (b * c)
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    q = float(ndtri(0.5 + confidence_level / 2))
    ci = (math.exp(math.log(est) - q * se), math.exp(math.log(est) + q * se))
    return EffectSizeResult(
        name="odds ratio",
        estimate=est,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method="sample OR; Woolf log-scale Wald CI"
        + ("; ½ added to each cell" if use else ""),
        n=round(float(t.sum())),
        se=se,
        interpretation=f"odds ratio = {fmt.num(est)}, {fmt.ci(ci[0], ci[1], confidence_level)}.",
    )


def cohens_h(
    p1: float,
    p2: float,
    *,
    n1: int | None = None,
    n2: int | None = None,
    confidence_level: float = 0.95,
) -> EffectSizeResult:
    """Cohen's h = 2·asin√p₁ − 2·asin√p₂ for two proportions (CI when n₁, n₂ are given).

    Args:
        p1: the first proportion.
        p2: the second proportion.
        n1: size of the first sample (for the CI).
        n2: size of the second sample (for the CI).
        confidence_level: level of the CI.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(cohens_h(0.7, 0.5).estimate, 4)
        0.4115
    """
    from scipy.special import ndtri

    for name, p in (("p1", p1), ("p2", p2)):
        if not 0.0 <= float(p) <= 1.0:
            raise InvalidInputError(
                f"`{name}` must be a proportion in [0, 1]; got {p!r}",
                argument=name,
                reason="range",
            )
    h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))
    if n1 and n2:
        se = math.sqrt(1 / n1 + 1 / n2)
        q = float(ndtri(0.5 + confidence_level / 2))
        ci = (h - q * se, h + q * se)
        n = n1 + n2
    else:
        se, ci, n = math.nan, _NAN_CI, 0
    return EffectSizeResult(
        name="Cohen's h",
        estimate=h,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method="arcsine difference"
        + ("; normal CI" if n else "; no CI without n1, n2"),
        n=n,
        se=se,
        interpretation=_label("Cohen's h", h, ci, confidence_level, fmt.magnitude_d(h)),
    )


def wilson_interval(
    k: float, n: float, confidence_level: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n."""
    from scipy.special import ndtri

    z = float(ndtri(0.5 + confidence_level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    k1: float,
    n1: float,
    k2: float,
    n2: float,
    confidence_level: float = 0.95,
    *,
    phi: float | None = None,
) -> tuple[float, float]:
    """Newcombe's hybrid-score CI for p₁ − p₂ (method 10; paired when `phi` is given)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence_level)
    l2, u2 = wilson_interval(k2, n2, confidence_level)
    delta = p1 - p2
    rho = 0.0 if phi is None else phi
    lo = delta - math.sqrt(
        max((p1 - l1) ** 2 - 2 * rho * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0)
    )
    hi = delta + math.sqrt(
        max((u1 - p1) ** 2 - 2 * rho * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0)
    )
    return max(-1.0, lo), min(1.0, hi)


def risk_difference(
    table: ArrayLike, *, confidence_level: float = 0.95
) -> EffectSizeResult:
    """Risk difference p₁ − p₂ of a 2 × 2 table of independent groups, with Newcombe's CI.

    Args:
        table: `[[events₁, non-events₁], [events₂, non-events₂]]`.
        confidence_level: level of the hybrid-score (Wilson-based) CI.

    Returns:
        An [`EffectSizeResult`][crucible_bench.EffectSizeResult].

    Examples:
        >>> round(risk_difference([[30, 10], [20, 20]]).estimate, 3)
        0.25
    """
    confidence_level = v.probability("confidence_level", confidence_level)
    t = _table2(table)
    n1, n2 = float(t[0].sum()), float(t[1].sum())
    if n1 == 0 or n2 == 0:
        raise InsufficientDataError(
            "each row of `table` needs at least one observation",
            argument="table",
            reason="empty",
            n=0,
            minimum=1,
        )
    k1, k2 = float(t[0, 0]), float(t[1, 0])
    est = k1 / n1 - k2 / n2
    ci = newcombe_interval(k1, n1, k2, n2, confidence_level)
    return EffectSizeResult(
        name="risk difference",
        estimate=est,
        confidence_interval=ci,
        confidence_level=confidence_level,
        method="p1 − p2; Newcombe hybrid-score CI",
        n=round(n1 + n2),
        interpretation=f"risk difference = {fmt.num(est)}, {fmt.ci(ci[0], ci[1], confidence_level)}.",
    )

"""Pearson, Spearman and Kendall correlations with confidence intervals."""

from __future__ import annotations

import math

import attrs
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import Alternative, FloatArray, NanPolicy
from crucible_core.render import RenderMixin, View

__all__ = ("CorrelationResult", "kendall", "pearson", "spearman")


@attrs.define(frozen=True, kw_only=True, repr=False)
class CorrelationResult(RenderMixin):
    """The result of [`pearson`][crucible_bench.pearson], [`spearman`][crucible_bench.spearman] or [`kendall`][crucible_bench.kendall]."""

    method: str
    """Which coefficient."""
    statistic: float
    """The correlation coefficient (r, ρ or τ-b)."""
    pvalue: float
    """p-value for `alternative` (H0: no association)."""
    df: float | None
    """n − 2 for Pearson and Spearman (t reference); None for Kendall."""
    alternative: Alternative
    """`"greater"` tests for a positive association."""
    n: int
    """Pairs used."""
    confidence_interval: tuple[float, float]
    """Fisher-z CI (Bonett–Wright variances for ρ and τ); one-sided CIs end at ±1.

    At |r| = 1 the two-sided CI is (r, r), as R's `cor.test`; a one-sided CI runs from r to the
    far end (r = 1, `"less"`: (−1, 1)).
    """
    confidence_level: float
    """Level of `confidence_interval`."""
    interpretation: str
    """An APA-style sentence reporting the correlation."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("coefficient", self.statistic),
                ("p-value", self.pvalue),
                ("alternative", self.alternative),
                (f"{self.confidence_level * 100:g}% CI", self.confidence_interval),
                ("n", self.n),
            ],
            notes=[self.interpretation],
        )


def _pair(
    x: ArrayLike, y: ArrayLike, nan_policy: NanPolicy
) -> tuple[FloatArray, FloatArray]:
    a, b = v.paired(
        "x",
        x,
        "y",
        y,
        policy=v.nan_policy(nan_policy),
        minimum=3,
        scale_free=True,
        shift_free=True,
    )
    v.not_constant("x", a)
    v.not_constant("y", b)
    # each variable by its own power of two: exact, and r is unchanged by it
    return v.unit_scale(a)[0], v.unit_scale(b)[0]


def _r(a: FloatArray, b: FloatArray) -> float:
    da = a - a.mean()
    da -= da.mean()
    db = b - b.mean()
    db -= db.mean()
    r = float(da @ db) / math.sqrt(float(da @ da) * float(db @ db))
    return max(-1.0, min(1.0, r))


def _t_p(r: float, n: int, alternative: Alternative) -> float:
    from scipy.special import stdtr

    df = n - 2
    t = (
        math.copysign(math.inf, r)
        if abs(r) == 1.0
        else r * math.sqrt(df / ((1 - r) * (1 + r)))
    )
    if alternative == "two-sided":
        return float(min(1.0, 2 * stdtr(df, -abs(t))))
    return float(stdtr(df, -t) if alternative == "greater" else stdtr(df, t))


def _z_ci(
    r: float, se: float, alternative: Alternative, level: float
) -> tuple[float, float]:
    from scipy.special import ndtri

    if math.isnan(se):
        return (math.nan, math.nan)
    # |r| = 1: z = ±∞, so the bound on r's own side is r and a one-sided interval's open side is ±1
    z = math.copysign(math.inf, r) if abs(r) == 1.0 else math.atanh(r)
    if alternative == "two-sided":
        q = float(ndtri(0.5 + level / 2)) * se
        return math.tanh(z - q), math.tanh(z + q)
    q = float(ndtri(level)) * se
    return (
        (math.tanh(z - q), 1.0)
        if alternative == "greater"
        else (-1.0, math.tanh(z + q))
    )


def _result(
    method: str,
    symbol: str,
    r: float,
    p: float,
    df: float | None,
    alternative: Alternative,
    n: int,
    ci: tuple[float, float],
    level: float,
) -> CorrelationResult:
    df_part = f"({fmt.df_text(df)})" if df is not None else ""
    ci_part = "" if math.isnan(ci[0]) else f", {fmt.ci(ci[0], ci[1], level)}"
    return CorrelationResult(
        method=method,
        statistic=r,
        pvalue=p,
        df=df,
        alternative=alternative,
        n=n,
        confidence_interval=ci,
        confidence_level=level,
        interpretation=(
            f"{symbol}{df_part} = {fmt.num(r)}, {fmt.pval(p)} ({alternative}){ci_part}; "
            f"{fmt.magnitude_r(r)} association."
        ),
    )


def pearson(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alternative: Alternative = "two-sided",
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> CorrelationResult:
    """Pearson's product-moment correlation with a t test and Fisher-z CI (R `cor.test`).

    Computed on centred data with two-pass sums (accurate on NIST StRD Norris).

    Args:
        x: the first variable.
        y: the second variable, matched by position.
        alternative: `"two-sided"`, `"less"` or `"greater"`.
        confidence_level: level of the CI (needs n ≥ 4).
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN pairs.

    Returns:
        A [`CorrelationResult`][crucible_bench.CorrelationResult].

    Raises:
        InsufficientDataError: fewer than 3 pairs, or a constant variable.

    Examples:
        >>> round(pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]).statistic, 4)
        0.7746
    """
    alternative = v.alternative(alternative)
    level = v.probability("confidence_level", confidence_level)
    a, b = _pair(x, y, nan_policy)
    n = a.size
    r = _r(a, b)
    se = 1 / math.sqrt(n - 3) if n > 3 else math.nan
    return _result(
        "Pearson's product-moment correlation",
        "r",
        r,
        _t_p(r, n, alternative),
        float(n - 2),
        alternative,
        n,
        _z_ci(r, se, alternative, level),
        level,
    )


def spearman(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alternative: Alternative = "two-sided",
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> CorrelationResult:
    """Spearman's rank correlation ρ (t approximation p, Bonett–Wright Fisher-z CI).

    Args:
        x: the first variable.
        y: the second variable, matched by position.
        alternative: `"two-sided"`, `"less"` or `"greater"`.
        confidence_level: level of the CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN pairs.

    Returns:
        A [`CorrelationResult`][crucible_bench.CorrelationResult].

    Examples:
        >>> spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic
        0.8207826816681233
    """
    from scipy.stats import rankdata

    alternative = v.alternative(alternative)
    level = v.probability("confidence_level", confidence_level)
    a, b = _pair(x, y, nan_policy)
    n = a.size
    r = _r(rankdata(a), rankdata(b))
    se = math.sqrt((1 + r * r / 2) / (n - 3)) if n > 3 else math.nan
    return _result(
        "Spearman's rank correlation",
        "ρ",
        r,
        _t_p(r, n, alternative),
        float(n - 2),
        alternative,
        n,
        _z_ci(r, se, alternative, level),
        level,
    )


def kendall(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alternative: Alternative = "two-sided",
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> CorrelationResult:
    """Kendall's τ-b (scipy's exact/asymptotic p, Bonett–Wright Fisher-z CI).

    Args:
        x: the first variable.
        y: the second variable, matched by position.
        alternative: `"two-sided"`, `"less"` or `"greater"`.
        confidence_level: level of the CI (needs n ≥ 5).
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN pairs.

    Returns:
        A [`CorrelationResult`][crucible_bench.CorrelationResult].

    Examples:
        >>> round(kendall([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic, 4)
        0.7379
    """
    from scipy.stats import kendalltau

    alternative = v.alternative(alternative)
    level = v.probability("confidence_level", confidence_level)
    a, b = _pair(x, y, nan_policy)
    n = a.size
    res = kendalltau(a, b, alternative=alternative)
    tau = float(res.statistic)
    se = math.sqrt(0.437 / (n - 4)) if n > 4 else math.nan
    return _result(
        "Kendall's rank correlation τ-b",
        "τ",
        tau,
        float(res.pvalue),
        None,
        alternative,
        n,
        _z_ci(tau, se, alternative, level),
        level,
    )

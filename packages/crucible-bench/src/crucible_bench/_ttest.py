"""One-sample, paired, Student and Welch t-tests."""

from __future__ import annotations

import math

import attrs
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import Alternative, FloatArray, NanPolicy
from crucible_bench.exceptions import InsufficientDataError, InvalidParameterError
from crucible_core.render import RenderMixin, View

__all__ = ("TtestResult", "t_pvalue_ci", "ttest")


@attrs.define(frozen=True, kw_only=True, repr=False)
class TtestResult(RenderMixin):
    """The result of [`ttest`][crucible_bench.ttest]."""

    method: str
    """Which test ran, e.g. `"Welch's two-sample t-test"`."""
    statistic: float
    """The t statistic, `(estimate - mu) / se`."""
    pvalue: float
    """The p-value for `alternative`."""
    df: float
    """Degrees of freedom (Welch–Satterthwaite for Welch's test, so possibly fractional)."""
    alternative: Alternative
    """`"two-sided"`, `"less"` or `"greater"` (about `estimate - mu`)."""
    n: int
    """Observations used: the sample size, the number of pairs, or `n_x + n_y`."""
    nobs: tuple[int, ...]
    """Observations per sample (one entry for one-sample and paired tests)."""
    mu: float
    """The null value of the mean (difference)."""
    estimate: float
    """The mean (one-sample), mean of `x - y` (paired) or `mean(x) - mean(y)`."""
    se: float
    """Standard error of `estimate` (R's `stderr`)."""
    confidence_interval: tuple[float, float]
    """CI for `estimate`; half-infinite for one-sided alternatives."""
    confidence_level: float
    """Level of `confidence_interval`."""
    cohens_d: float
    """Cohen's d: pooled-SD d for two samples, `(mean - mu) / sd` (d_z) for one-sample and paired."""
    hedges_g: float
    """`cohens_d` with the exact small-sample correction `J(df)`."""
    interpretation: str
    """An APA-style sentence reporting the test."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("t", self.statistic),
                ("df", self.df),
                ("p-value", self.pvalue),
                ("alternative", self.alternative),
                ("estimate", self.estimate),
                ("standard error", self.se),
                (f"{self.confidence_level * 100:g}% CI", self.confidence_interval),
                ("Cohen's d", self.cohens_d),
                ("Hedges' g", self.hedges_g),
                ("n", self.n),
            ],
            notes=[self.interpretation],
        )


def hedges_j(df: float) -> float:
    """Exact small-sample correction J(df) = Γ(df/2) / (√(df/2) Γ((df−1)/2))."""
    from scipy.special import gammaln

    if df <= 1:
        return math.nan
    return float(math.exp(gammaln(df / 2) - gammaln((df - 1) / 2)) / math.sqrt(df / 2))


def t_pvalue_ci(
    t: float,
    df: float,
    estimate: float,
    se: float,
    alternative: Alternative,
    confidence_level: float,
) -> tuple[float, tuple[float, float]]:
    """p-value and CI of a t statistic (R `t.test` conventions: one-sided CIs are half-infinite)."""
    from scipy.special import stdtr, stdtrit

    if alternative == "two-sided":
        p = float(2.0 * stdtr(df, -abs(t)))
        q = float(stdtrit(df, 0.5 + confidence_level / 2))
        return min(p, 1.0), (estimate - q * se, estimate + q * se)
    q = float(stdtrit(df, confidence_level))
    if alternative == "greater":
        return float(stdtr(df, -t)), (estimate - q * se, math.inf)
    return float(stdtr(df, t)), (-math.inf, estimate + q * se)


def _var(x: FloatArray) -> float:
    m = x.mean()
    d = x - m
    return float(d @ d) / (x.size - 1)


def ttest(
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    paired: bool = False,
    equal_var: bool = False,
    mu: float = 0.0,
    alternative: Alternative = "two-sided",
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> TtestResult:
    """Student's, Welch's, paired or one-sample t-test, with CI and standardized effect sizes.

    Matches R's `t.test`: Welch–Satterthwaite df, `d = x - y` for paired data matched by position,
    half-infinite one-sided CIs.

    Args:
        x: the first sample (or the only one).
        y: the second sample; omit it for a one-sample test.
        paired: test the mean of `x - y` (needs equal lengths).
        equal_var: pool the variances (Student's test); the default is Welch's test.
        mu: the null value of the mean, or of the mean difference.
        alternative: `"two-sided"`, `"less"` or `"greater"` (is `estimate - mu` below/above 0?).
        confidence_level: level of the CI for the estimate.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values (whole pairs when paired).

    Returns:
        A [`TtestResult`][crucible_bench.TtestResult].

    Raises:
        InvalidInputError: empty input, NaN (with `nan_policy="raise"`), inf, unequal paired lengths.
        InsufficientDataError: fewer than two observations, or all values equal.
        InvalidParameterError: an unknown `alternative` or a level outside (0, 1).

    Examples:
        >>> r = ttest([5.1, 4.9, 5.6, 5.8, 6.0], [4.1, 4.4, 4.0, 4.8, 4.3])
        >>> round(r.statistic, 3), round(r.df, 2)
        (4.629, 6.98)
    """
    alternative = v.alternative(alternative)
    confidence_level = v.probability("confidence_level", confidence_level)
    mu = v.finite_number("mu", mu)
    policy = v.nan_policy(nan_policy)
    if y is None:
        if paired:
            raise InvalidParameterError(
                "`paired=True` needs a second sample `y`",
                argument="paired",
                value=paired,
            )
        a = v.sample("x", x, policy=policy, minimum=2)
        v.not_constant("x", a)
        return _one_sample(
            a, mu, alternative, confidence_level, "One-sample t-test", (a.size,)
        )
    if paired:
        a, b = v.paired("x", x, "y", y, policy=policy, minimum=2)
        d = a - b
        v.not_constant("x - y", d)
        return _one_sample(
            d, mu, alternative, confidence_level, "Paired t-test", (d.size,)
        )
    a = v.sample("x", x, policy=policy, minimum=1 if equal_var else 2)
    b = v.sample("y", y, policy=policy, minimum=1 if equal_var else 2)
    if equal_var and a.size + b.size < 3:
        raise InsufficientDataError(
            "Student's t-test needs at least 3 observations in total",
            argument="y",
            reason="too_few",
            n=a.size + b.size,
            minimum=3,
        )
    return _two_sample(a, b, mu, alternative, confidence_level, equal_var=equal_var)


def _one_sample(
    d: FloatArray,
    mu: float,
    alternative: Alternative,
    confidence_level: float,
    method: str,
    nobs: tuple[int, ...],
) -> TtestResult:
    n = d.size
    mean = float(d.mean())
    sd = math.sqrt(_var(d))
    se = sd / math.sqrt(n)
    t = (mean - mu) / se
    df = float(n - 1)
    p, ci = t_pvalue_ci(t, df, mean, se, alternative, confidence_level)
    dz = (mean - mu) / sd
    g = dz * hedges_j(df)
    return _result(
        method,
        t,
        p,
        df,
        alternative,
        n,
        nobs,
        mu,
        mean,
        se,
        ci,
        confidence_level,
        dz,
        g,
    )


def _two_sample(
    a: FloatArray,
    b: FloatArray,
    mu: float,
    alternative: Alternative,
    confidence_level: float,
    *,
    equal_var: bool,
) -> TtestResult:
    nx, ny = a.size, b.size
    vx = _var(a) if nx > 1 else 0.0
    vy = _var(b) if ny > 1 else 0.0
    if vx == 0.0 and vy == 0.0:
        v.not_constant("x and y", a, b)
        raise InsufficientDataError(
            "both samples have zero variance (each sample's values are all equal); the t statistic "
            "is undefined",
            argument="x and y",
            reason="constant",
            n=nx + ny,
            minimum=2,
        )
    estimate = float(a.mean() - b.mean())
    df_pool = float(nx + ny - 2)
    pooled = ((nx - 1) * vx + (ny - 1) * vy) / df_pool if df_pool > 0 else math.nan
    if equal_var:
        se = math.sqrt(pooled * (1.0 / nx + 1.0 / ny))
        df = df_pool
        method = "Student's two-sample t-test"
    else:
        sx, sy = vx / nx, vy / ny
        se = math.sqrt(sx + sy)
        df = (sx + sy) ** 2 / (sx**2 / (nx - 1) + sy**2 / (ny - 1))
        method = "Welch's two-sample t-test"
    t = (estimate - mu) / se
    p, ci = t_pvalue_ci(t, df, estimate, se, alternative, confidence_level)
    d = (estimate - mu) / math.sqrt(pooled) if pooled > 0 else math.nan
    g = d * hedges_j(df_pool)
    return _result(
        method,
        t,
        p,
        df,
        alternative,
        nx + ny,
        (nx, ny),
        mu,
        estimate,
        se,
        ci,
        confidence_level,
        d,
        g,
    )


def _result(
    method: str,
    t: float,
    p: float,
    df: float,
    alternative: Alternative,
    n: int,
    nobs: tuple[int, ...],
    mu: float,
    estimate: float,
    se: float,
    ci: tuple[float, float],
    confidence_level: float,
    d: float,
    g: float,
) -> TtestResult:
    what = "mean" if method == "One-sample t-test" else "mean difference"
    null = f" (H0: {what} = {fmt.num(mu)})" if mu != 0 else ""
    text = (
        f"{method}{null}: t({fmt.df_text(df)}) = {fmt.num(t)}, {fmt.pval(p)} ({alternative}); "
        f"{what} = {fmt.num(estimate)}, {fmt.ci(ci[0], ci[1], confidence_level)}; "
        f"Cohen's d = {fmt.num(d)} ({fmt.magnitude_d(d)}), Hedges' g = {fmt.num(g)}."
    )
    return TtestResult(
        method=method,
        statistic=float(t),
        pvalue=float(p),
        df=float(df),
        alternative=alternative,
        n=int(n),
        nobs=tuple(int(i) for i in nobs),
        mu=mu,
        estimate=estimate,
        se=se,
        confidence_interval=(float(ci[0]), float(ci[1])),
        confidence_level=confidence_level,
        cohens_d=float(d),
        hedges_g=float(g),
        interpretation=text,
    )

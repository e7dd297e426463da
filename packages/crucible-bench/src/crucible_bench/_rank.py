"""Mann–Whitney U and Wilcoxon signed-rank tests (R `wilcox.test` conventions)."""

from __future__ import annotations

import math
from typing import Literal

import attrs
import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import Alternative, FloatArray, NanPolicy
from crucible_bench.exceptions import InsufficientDataError, InvalidParameterError
from crucible_core.render import RenderMixin, View

__all__ = ("MannWhitneyResult", "WilcoxonResult", "mann_whitney", "wilcoxon")

Method = Literal["auto", "exact", "asymptotic"]


def _normal_p(z: float, alternative: Alternative) -> float:
    from scipy.special import ndtr

    if alternative == "less":
        return float(ndtr(z))
    if alternative == "greater":
        return float(ndtr(-z))
    return float(min(1.0, 2.0 * ndtr(-abs(z))))


def _cc(diff: float, alternative: Alternative, *, continuity: bool) -> float:
    if not continuity:
        return 0.0
    if alternative == "two-sided":
        return 0.5 * float(np.sign(diff))
    return 0.5 if alternative == "greater" else -0.5


def _r_ci(r: float, se: float, confidence_level: float) -> tuple[float, float]:
    """Fisher-z CI for a rank-biserial correlation (as R `effectsize`)."""
    from scipy.special import ndtri

    if abs(r) >= 1:
        return (r, r)
    z = math.atanh(r)
    q = float(ndtri(0.5 + confidence_level / 2)) * se
    return (math.tanh(z - q), math.tanh(z + q))


@attrs.define(frozen=True, kw_only=True, repr=False)
class MannWhitneyResult(RenderMixin):
    """The result of [`mann_whitney`][crucible_bench.mann_whitney]."""

    method: str
    """`"Mann-Whitney U test (exact)"` or `"... (normal approximation)"`."""
    statistic: float
    """U of `x` (R's W) = rank-sum(x) − n_x(n_x+1)/2."""
    u2: float
    """U of `y` = n_x·n_y − U."""
    pvalue: float
    """p-value for `alternative`."""
    alternative: Alternative
    """Direction: `"greater"` means `x` tends to be larger than `y`."""
    n: int
    """n_x + n_y."""
    nobs: tuple[int, int]
    """(n_x, n_y)."""
    exact: bool
    """Whether the exact null distribution was used."""
    rank_biserial: float
    """2U/(n_x n_y) − 1; positive when `x` tends to be larger."""
    rank_biserial_ci: tuple[float, float]
    """Fisher-z CI of the rank-biserial correlation."""
    cles: float
    """Common-language effect size U/(n_x n_y) = P(X > Y) + ½P(X = Y)."""
    confidence_level: float
    """Level of `rank_biserial_ci`."""
    interpretation: str
    """An APA-style sentence reporting the test."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("U", self.statistic),
                ("p-value", self.pvalue),
                ("alternative", self.alternative),
                ("rank-biserial r", self.rank_biserial),
                (f"{self.confidence_level * 100:g}% CI (r)", self.rank_biserial_ci),
                ("CLES P(X>Y)", self.cles),
                ("n", self.nobs),
            ],
            notes=[self.interpretation],
        )


def mann_whitney(
    x: ArrayLike,
    y: ArrayLike,
    *,
    alternative: Alternative = "two-sided",
    method: Method = "auto",
    continuity: bool = True,
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> MannWhitneyResult:
    """Mann–Whitney U (Wilcoxon rank-sum) test with rank-biserial r and the CLES.

    `method="auto"` uses the exact distribution when both samples have fewer than 50 values and
    there are no ties (as R), and otherwise the normal approximation with tie-corrected variance and,
    if `continuity`, a 0.5 continuity correction.

    Args:
        x: the first sample.
        y: the second sample.
        alternative: `"two-sided"`, `"less"` or `"greater"` (`x` tends to be larger).
        method: `"auto"`, `"exact"` (no ties allowed) or `"asymptotic"`.
        continuity: apply the continuity correction in the normal approximation.
        confidence_level: level of the rank-biserial CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        A [`MannWhitneyResult`][crucible_bench.MannWhitneyResult].

    Raises:
        InvalidParameterError: `method="exact"` with tied values.
        InsufficientDataError: an empty sample or all values equal.

    Examples:
        >>> r = mann_whitney([1.1, 2.3, 3.5, 4.2], [0.5, 0.9, 1.0, 1.7])
        >>> r.statistic, round(r.pvalue, 4)
        (15.0, 0.0571)
    """
    from scipy.stats import rankdata

    alternative = v.alternative(alternative)
    method = v.choice("method", method, ("auto", "exact", "asymptotic"))
    confidence_level = v.probability("confidence_level", confidence_level)
    policy = v.nan_policy(nan_policy)
    a = v.sample("x", x, policy=policy, scale_free=True)
    b = v.sample("y", y, policy=policy, scale_free=True)
    v.not_constant("x and y", a, b)
    n1, n2 = a.size, b.size
    allv = np.concatenate([a, b])
    ranks = rankdata(allv)
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    ties = _tie_sum(allv)
    exact = method == "exact" or (
        method == "auto" and n1 < 50 and n2 < 50 and ties == 0
    )
    if exact and ties:
        raise InvalidParameterError(
            '`method="exact"` needs data without ties; use `method="asymptotic"` (or "auto")',
            argument="method",
            value=method,
        )
    if exact:
        from scipy.stats import mannwhitneyu

        p = float(mannwhitneyu(a, b, alternative=alternative, method="exact").pvalue)
    else:
        n = n1 + n2
        mu = n1 * n2 / 2
        sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
        z = (u1 - mu - _cc(u1 - mu, alternative, continuity=continuity)) / sigma
        p = _normal_p(z, alternative)
    rbc = 2 * u1 / (n1 * n2) - 1
    cles = u1 / (n1 * n2)
    se = math.sqrt((n1 + n2 + 1) / (3 * n1 * n2))
    ci = _r_ci(rbc, se, confidence_level)
    kind = "exact" if exact else "normal approximation"
    text = (
        f"Mann-Whitney U test ({kind}): U = {fmt.num(u1)}, {fmt.pval(p)} ({alternative}); "
        f"rank-biserial r = {fmt.num(rbc)} ({fmt.magnitude_r(rbc)}), "
        f"{fmt.ci(ci[0], ci[1], confidence_level)}; P(X > Y) = {fmt.num(cles)}."
    )
    return MannWhitneyResult(
        method=f"Mann-Whitney U test ({kind})",
        statistic=u1,
        u2=u2,
        pvalue=p,
        alternative=alternative,
        n=n1 + n2,
        nobs=(n1, n2),
        exact=exact,
        rank_biserial=rbc,
        rank_biserial_ci=ci,
        cles=cles,
        confidence_level=confidence_level,
        interpretation=text,
    )


def _tie_sum(values: FloatArray) -> float:
    _, counts = np.unique(values, return_counts=True)
    c = counts.astype(float)
    return float((c**3 - c).sum())


def _signrank_counts(n: int) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """Number of subsets of {1..n} with each rank sum (exact null of W+), as floats."""
    top = n * (n + 1) // 2
    c = np.zeros(top + 1)
    c[0] = 1.0
    for i in range(1, n + 1):
        c[i:] = c[i:] + c[:-i].copy()
    return c


@attrs.define(frozen=True, kw_only=True, repr=False)
class WilcoxonResult(RenderMixin):
    """The result of [`wilcoxon`][crucible_bench.wilcoxon]."""

    method: str
    """`"Wilcoxon signed-rank test (exact)"` or `"... (normal approximation)"`."""
    statistic: float
    """W+ (R's V): the sum of ranks of positive differences."""
    w_plus: float
    """Sum of ranks of positive differences."""
    w_minus: float
    """Sum of ranks of negative differences."""
    pvalue: float
    """p-value for `alternative`."""
    alternative: Alternative
    """Direction: `"greater"` means `x − y − mu` tends to be positive."""
    n: int
    """Pairs (or values) used before zero differences were dropped."""
    n_nonzero: int
    """Non-zero differences (the effective sample size)."""
    exact: bool
    """Whether the exact null distribution was used."""
    rank_biserial: float
    """Matched-pairs rank-biserial r = (W+ − W−)/(W+ + W−)."""
    rank_biserial_ci: tuple[float, float]
    """Fisher-z CI of the rank-biserial correlation."""
    confidence_level: float
    """Level of `rank_biserial_ci`."""
    interpretation: str
    """An APA-style sentence reporting the test."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("V (W+)", self.statistic),
                ("W−", self.w_minus),
                ("p-value", self.pvalue),
                ("alternative", self.alternative),
                ("rank-biserial r", self.rank_biserial),
                (f"{self.confidence_level * 100:g}% CI (r)", self.rank_biserial_ci),
                ("n (non-zero)", self.n_nonzero),
            ],
            notes=[self.interpretation],
        )


def wilcoxon(
    x: ArrayLike,
    y: ArrayLike | None = None,
    *,
    mu: float = 0.0,
    alternative: Alternative = "two-sided",
    method: Method = "auto",
    continuity: bool = True,
    zero_method: Literal["wilcox", "pratt"] = "wilcox",
    confidence_level: float = 0.95,
    nan_policy: NanPolicy = "raise",
) -> WilcoxonResult:
    """Wilcoxon signed-rank test on `x − y − mu` (paired) or `x − mu`, with rank-biserial r.

    Zero differences are dropped (`zero_method="wilcox"`, R and scipy default) or ranked and then
    excluded from the sums (`"pratt"`). `method="auto"` is exact for fewer than 50 differences
    without ties or zeros, as in R.

    Args:
        x: the first sample (or the differences).
        y: the paired second sample, matched by position.
        mu: the null location of the differences.
        alternative: `"two-sided"`, `"less"` or `"greater"`.
        method: `"auto"`, `"exact"` or `"asymptotic"`.
        continuity: apply the 0.5 continuity correction in the normal approximation.
        zero_method: `"wilcox"` or `"pratt"`.
        confidence_level: level of the rank-biserial CI.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN pairs.

    Returns:
        A [`WilcoxonResult`][crucible_bench.WilcoxonResult].

    Raises:
        InvalidInputError: unequal paired lengths, NaN (with `"raise"`), inf.
        InsufficientDataError: every difference is zero.
        InvalidParameterError: `method="exact"` with ties or zeros.

    Examples:
        >>> r = wilcoxon([1.83, 0.50, 1.62, 2.48, 1.68], [0.878, 0.647, 0.598, 2.05, 1.06])
        >>> r.statistic, round(r.pvalue, 4)
        (14.0, 0.125)
    """
    from scipy.stats import rankdata

    alternative = v.alternative(alternative)
    method = v.choice("method", method, ("auto", "exact", "asymptotic"))
    zero_method = v.choice("zero_method", zero_method, ("wilcox", "pratt"))
    confidence_level = v.probability("confidence_level", confidence_level)
    mu = v.finite_number("mu", mu)
    policy = v.nan_policy(nan_policy)
    # W and p depend only on the ranks of |d|: scale x, y and mu together (exact) so that
    # differences near float64's range cannot overflow
    m = np.array([mu])
    if y is None:
        a, m = v.unit_scale(v.sample("x", x, policy=policy, scale_free=True), m)
        d = a - m[0]
    else:
        a, b = v.paired("x", x, "y", y, policy=policy, scale_free=True)
        a, b, m = v.unit_scale(a, b, m)
        d = a - b - m[0]
    n_all = d.size
    zeros = d == 0
    if zeros.all():
        raise InsufficientDataError(
            "every difference is zero; the signed-rank test needs at least one non-zero difference",
            argument="x",
            reason="constant",
            n=0,
            minimum=1,
        )
    if zero_method == "pratt":
        ranks_all = rankdata(np.abs(d))
        ranks = ranks_all[~zeros]
    else:
        ranks = rankdata(np.abs(d[~zeros]))
    dn = d[~zeros]
    n = dn.size
    w_plus = float(ranks[dn > 0].sum())
    w_minus = float(ranks[dn < 0].sum())
    ties = _tie_sum(np.abs(d) if zero_method == "pratt" else np.abs(dn))
    has_zero = bool(zeros.any())
    exact = method == "exact" or (
        method == "auto" and n < 50 and ties == 0 and not has_zero
    )
    if exact and (ties or has_zero):
        raise InvalidParameterError(
            '`method="exact"` needs differences without ties or zeros; use `method="asymptotic"`',
            argument="method",
            value=method,
        )
    if exact:
        counts = _signrank_counts(n)
        total = counts.sum()
        cdf = np.cumsum(counts) / total
        k = round(w_plus)
        p_le = float(cdf[k])
        p_ge = float(1.0 - (cdf[k - 1] if k > 0 else 0.0))
        if alternative == "less":
            p = p_le
        elif alternative == "greater":
            p = p_ge
        else:
            p = min(1.0, 2.0 * (p_ge if w_plus > n * (n + 1) / 4 else p_le))
    else:
        # Under H0 each non-zero rank is signed ± with probability ½, so the exact null mean
        # and variance of W+ are Σr/2 and Σr²/4 over the ranks that count. This holds for
        # tied (mid-)ranks and for Pratt's ranks (zeros ranked, then dropped) alike; the
        # textbook n(n+1)(2n+1)/24 − Σ(t³−t)/48 is the special case without zeros.
        mean = float(ranks.sum()) / 2
        var = float((ranks * ranks).sum()) / 4
        z = (
            w_plus - mean - _cc(w_plus - mean, alternative, continuity=continuity)
        ) / math.sqrt(var)
        p = _normal_p(z, alternative)
    total_ranks = w_plus + w_minus
    rbc = (w_plus - w_minus) / total_ranks
    se = math.sqrt((2 * n**3 + 3 * n**2 + n) / 6) / ((n**2 + n) / 2)
    ci = _r_ci(rbc, se, confidence_level)
    kind = "exact" if exact else "normal approximation"
    text = (
        f"Wilcoxon signed-rank test ({kind}): V = {fmt.num(w_plus)}, {fmt.pval(p)} "
        f"({alternative}), n = {n} non-zero differences; rank-biserial r = {fmt.num(rbc)} "
        f"({fmt.magnitude_r(rbc)}), {fmt.ci(ci[0], ci[1], confidence_level)}."
    )
    return WilcoxonResult(
        method=f"Wilcoxon signed-rank test ({kind})",
        statistic=w_plus,
        w_plus=w_plus,
        w_minus=w_minus,
        pvalue=p,
        alternative=alternative,
        n=n_all,
        n_nonzero=n,
        exact=exact,
        rank_biserial=rbc,
        rank_biserial_ci=ci,
        confidence_level=confidence_level,
        interpretation=text,
    )

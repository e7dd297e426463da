"""Assumption checks: Shapiro–Wilk normality, Levene/Brown–Forsythe and Bartlett variance tests."""

from __future__ import annotations

from typing import Literal

import attrs
import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import NanPolicy
from crucible_bench.exceptions import InsufficientDataError, InvalidInputError
from crucible_core.render import RenderMixin, View

__all__ = ("AssumptionResult", "bartlett", "levene", "shapiro")


@attrs.define(frozen=True, kw_only=True, repr=False)
class AssumptionResult(RenderMixin):
    """The result of an assumption test ([`shapiro`][crucible_bench.shapiro], [`levene`][crucible_bench.levene], [`bartlett`][crucible_bench.bartlett])."""

    method: str
    """Which test ran."""
    statistic: float
    """W (Shapiro–Wilk, Levene) or K² (Bartlett)."""
    pvalue: float
    """p-value; small values reject the assumption."""
    df: tuple[float, ...] | None
    """Degrees of freedom: `(df1, df2)` for Levene, `(k - 1,)` for Bartlett, `None` for Shapiro–Wilk."""
    n: int
    """Observations used."""
    interpretation: str
    """A sentence stating the result and whether the assumption is rejected at .05."""

    def _view(self) -> View:
        facts: list[tuple[str, object]] = [
            ("statistic", self.statistic),
            ("p-value", self.pvalue),
        ]
        if self.df is not None:
            facts.append(("df", ", ".join(fmt.df_text(d) for d in self.df)))
        facts.append(("n", self.n))
        return View(title=self.method, facts=facts, notes=[self.interpretation])


def shapiro(x: ArrayLike, *, nan_policy: NanPolicy = "raise") -> AssumptionResult:
    """Shapiro–Wilk test of normality (Royston's AS R94, as R's `shapiro.test`).

    Args:
        x: the sample, 3 to 5000 values.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`AssumptionResult`][crucible_bench.AssumptionResult] with W and its p-value.

    Raises:
        InsufficientDataError: fewer than 3 values, or all values equal.
        InvalidInputError: more than 5000 values (the approximation's range), NaN or inf.

    Examples:
        >>> round(shapiro([2.1, 3.4, 1.9, 2.8, 3.1, 2.5, 2.2, 3.9]).statistic, 4)
        0.9545
    """
    from scipy.stats import shapiro as _shapiro

    a = v.sample("x", x, policy=v.nan_policy(nan_policy), minimum=3, scale_free=True)
    v.not_constant("x", a)
    (a,) = v.unit_scale(a)
    if a.size > 5000:
        raise InvalidInputError(
            f"Shapiro–Wilk is defined for 3 to 5000 values; got {a.size}. With this many values "
            "use a Q-Q plot, or rely on the central limit theorem for tests of means",
            argument="x",
            reason="too_many",
        )
    res = _shapiro(a)
    w, p = float(res.statistic), float(res.pvalue)
    verdict = "rejects" if p < 0.05 else "does not reject"
    return AssumptionResult(
        method="Shapiro-Wilk normality test",
        statistic=w,
        pvalue=p,
        df=None,
        n=int(a.size),
        interpretation=f"Shapiro-Wilk: W = {fmt.num(w, 4)}, {fmt.pval(p)}; {verdict} normality at α = .05.",
    )


def levene(
    *groups: ArrayLike,
    center: Literal["median", "mean"] = "median",
    nan_policy: NanPolicy = "raise",
) -> AssumptionResult:
    """Levene's test of equal variances; `center="median"` is Brown–Forsythe (R `car` default).

    Args:
        *groups: two or more samples.
        center: `"median"` (robust, the default) or `"mean"` (Levene's original test).
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`AssumptionResult`][crucible_bench.AssumptionResult] with W, `(df1, df2)` and p.

    Raises:
        InsufficientDataError: fewer than two groups, or a group with no values.

    Examples:
        >>> round(levene([1, 2, 3, 4], [2, 4, 6, 8]).statistic, 3)
        2.4
    """
    from scipy.stats import levene as _levene

    center = v.choice("center", center, ("median", "mean"))
    gs = v.unit_scale(
        *v.groups(groups, policy=v.nan_policy(nan_policy), minimum=1, scale_free=True)
    )
    n = sum(g.size for g in gs)
    k = len(gs)
    if n <= k:
        raise InsufficientDataError(
            "Levene's test needs more observations than groups",
            argument="groups",
            reason="too_few",
            n=n,
            minimum=k + 1,
        )
    spread = [
        np.abs(g - (np.median(g) if center == "median" else g.mean())) for g in gs
    ]
    if all(np.all(z == z[0]) for z in spread):
        raise InsufficientDataError(
            f"Levene's test is undefined here: within every group the absolute deviations from "
            f"the group {center} are all equal (e.g. groups of one or two values), so the "
            "denominator is zero. Collect more values per group",
            argument="groups",
            reason="constant",
            n=n,
            minimum=k + 1,
        )
    res = _levene(*gs, center=center)
    w, p = float(res.statistic), float(res.pvalue)
    name = "Brown-Forsythe (median-centred Levene)" if center == "median" else "Levene"
    verdict = "rejects" if p < 0.05 else "does not reject"
    return AssumptionResult(
        method=f"{name} test of equal variances",
        statistic=w,
        pvalue=p,
        df=(float(k - 1), float(n - k)),
        n=n,
        interpretation=(
            f"{name}: F({k - 1}, {n - k}) = {fmt.num(w)}, {fmt.pval(p)}; {verdict} equal "
            "variances at α = .05."
        ),
    )


def bartlett(*groups: ArrayLike, nan_policy: NanPolicy = "raise") -> AssumptionResult:
    """Bartlett's test of equal variances (sensitive to non-normality; prefer `levene`).

    Args:
        *groups: two or more samples with at least two values each.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`AssumptionResult`][crucible_bench.AssumptionResult] with K², `(k - 1,)` and p.

    Raises:
        InsufficientDataError: a group with fewer than two values or zero variance.

    Examples:
        >>> round(bartlett([1, 2, 3, 4], [2, 4, 6, 8]).statistic, 3)
        1.148
    """
    from scipy.stats import bartlett as _bartlett

    gs = v.unit_scale(
        *v.groups(groups, policy=v.nan_policy(nan_policy), minimum=2, scale_free=True)
    )
    for i, g in enumerate(gs):
        v.not_constant(f"groups[{i}]", g)
    res = _bartlett(*gs)
    k = len(gs)
    stat, p = float(res.statistic), float(res.pvalue)
    verdict = "rejects" if p < 0.05 else "does not reject"
    return AssumptionResult(
        method="Bartlett test of equal variances",
        statistic=stat,
        pvalue=p,
        df=(float(k - 1),),
        n=sum(g.size for g in gs),
        interpretation=(
            f"Bartlett: χ²({k - 1}) = {fmt.num(stat)}, {fmt.pval(p)}; {verdict} equal variances "
            "at α = .05."
        ),
    )

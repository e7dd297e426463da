"""Contingency tables: χ² independence and goodness of fit, Fisher's exact test, McNemar."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import Alternative, FloatArray
from crucible_bench.exceptions import (
    ConvergenceError,
    InsufficientDataError,
    InvalidInputError,
    InvalidParameterError,
)
from crucible_core.render import RenderMixin, Table, View

__all__ = (
    "ChiSquareResult",
    "FisherResult",
    "McNemarResult",
    "chi2_goodness_of_fit",
    "chi2_independence",
    "fisher_exact",
    "mcnemar",
)


def _chi2sf(x: float, df: float) -> float:
    from scipy.special import chdtrc

    return float(chdtrc(df, x))


@attrs.define(frozen=True, kw_only=True, repr=False)
class ChiSquareResult(RenderMixin):
    """The result of [`chi2_independence`][crucible_bench.chi2_independence] or [`chi2_goodness_of_fit`][crucible_bench.chi2_goodness_of_fit]."""

    method: str
    """Which test ran (and whether Yates' correction was applied)."""
    statistic: float
    """Pearson's χ² (Yates-corrected for a 2×2 table when `correction`)."""
    pvalue: float
    """Upper-tail χ² p-value."""
    df: float
    """Degrees of freedom."""
    n: int
    """Total count."""
    expected: np.ndarray = attrs.field(
        eq=False
    )  # the bare class, so the crucible-core serde hook applies
    """Expected counts under the null, in the shape of the input."""
    cramers_v: float | None = None
    """Cramér's V from the uncorrected χ² (independence only)."""
    correction: bool = False
    """Whether Yates' continuity correction was applied."""
    interpretation: str = ""
    """An APA-style sentence reporting the test."""

    def _view(self) -> View:
        facts: list[tuple[str, object]] = [
            ("χ²", self.statistic),
            ("df", self.df),
            ("p-value", self.pvalue),
        ]
        if self.cramers_v is not None:
            facts.append(("Cramér's V", self.cramers_v))
        facts.append(("n", self.n))
        exp = np.atleast_2d(self.expected)
        table = Table(
            headers=("", *(f"col {j}" for j in range(exp.shape[1]))),
            rows=[(f"row {i}", *row) for i, row in enumerate(exp.tolist())],
            title="expected counts",
        )
        return View(
            title=self.method, facts=facts, tables=[table], notes=[self.interpretation]
        )


def chi2_independence(table: ArrayLike, *, correction: bool = True) -> ChiSquareResult:
    """Pearson's χ² test of independence for an r × c table of counts, with Cramér's V.

    Yates' continuity correction applies only to 2 × 2 tables and only when `correction` (as R's
    `chisq.test` and scipy). Cramér's V always uses the uncorrected χ².

    Args:
        table: a 2-D table of non-negative counts.
        correction: apply Yates' correction to a 2 × 2 table.

    Returns:
        A [`ChiSquareResult`][crucible_bench.ChiSquareResult] with expected counts.

    Raises:
        InvalidInputError: negative, NaN or non-2-D counts.
        InsufficientDataError: a row or column that sums to zero.

    Examples:
        >>> r = chi2_independence([[10, 20], [30, 40]], correction=False)
        >>> round(r.statistic, 4)
        0.7937
    """
    t = v.counts("table", table)
    r, c = t.shape
    if r < 2 or c < 2:
        raise InsufficientDataError(
            f"a test of independence needs at least a 2 × 2 table; got {r} × {c}",
            argument="table",
            reason="shape",
            n=min(r, c),
            minimum=2,
        )
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    if (rows == 0).any() or (cols == 0).any():
        raise InsufficientDataError(
            "a row or column of `table` sums to zero, so its expected counts are zero; drop it",
            argument="table",
            reason="empty_margin",
            n=0,
            minimum=1,
        )
    n = float(t.sum())
    expected = np.outer(rows, cols) / n
    diff = t - expected
    chi_raw = float((diff**2 / expected).sum())
    yates = bool(correction and r == 2 and c == 2)
    if yates:
        adj = np.minimum(0.5, np.abs(diff))
        chi = float(((np.abs(diff) - adj) ** 2 / expected).sum())
    else:
        chi = chi_raw
    df = float((r - 1) * (c - 1))
    p = _chi2sf(chi, df)
    cv = math.sqrt(chi_raw / (n * (min(r, c) - 1)))
    name = "Pearson's χ² test of independence" + (
        " (Yates' correction)" if yates else ""
    )
    return ChiSquareResult(
        method=name,
        statistic=chi,
        pvalue=p,
        df=df,
        n=round(n),
        expected=expected,
        cramers_v=cv,
        correction=yates,
        interpretation=(
            f"χ²({fmt.df_text(df)}, N = {round(n)}) = {fmt.num(chi)}, {fmt.pval(p)}, "
            f"Cramér's V = {fmt.num(cv)}."
        ),
    )


def chi2_goodness_of_fit(
    observed: ArrayLike,
    expected: ArrayLike | None = None,
    *,
    probabilities: ArrayLike | None = None,
    ddof: int = 0,
) -> ChiSquareResult:
    """Pearson's χ² goodness-of-fit test of counts against expected counts or probabilities.

    Give at most one of `expected` (counts, which must sum to the observed total) and
    `probabilities` (which must sum to 1); with neither, the categories are equally likely.

    Args:
        observed: the observed counts.
        expected: expected counts.
        probabilities: expected category probabilities.
        ddof: extra degrees of freedom lost to estimated parameters.

    Returns:
        A [`ChiSquareResult`][crucible_bench.ChiSquareResult].

    Raises:
        InvalidInputError: negative counts, mismatched lengths, totals or probabilities that do not
            add up, or a zero expected count.

    Examples:
        >>> round(chi2_goodness_of_fit([18, 22, 20, 40]).statistic, 2)
        12.32
    """
    obs = v.counts("observed", observed, ndim=1)
    k = obs.size
    n = float(obs.sum())
    if expected is not None and probabilities is not None:
        raise InvalidParameterError(
            "give `expected` counts or `probabilities`, not both",
            argument="probabilities",
            value=probabilities,
        )
    if probabilities is not None:
        pr = v.counts("probabilities", probabilities, ndim=1)
        if not math.isclose(float(pr.sum()), 1.0, rel_tol=1e-8, abs_tol=1e-8):
            raise InvalidInputError(
                f"`probabilities` must sum to 1; they sum to {float(pr.sum())!r}",
                argument="probabilities",
                reason="sum",
            )
        exp = pr * n
    elif expected is not None:
        exp = v.counts("expected", expected, ndim=1)
        if not math.isclose(float(exp.sum()), n, rel_tol=1e-8):
            raise InvalidInputError(
                f"`expected` counts sum to {float(exp.sum())!r} but `observed` sums to {n!r}; "
                "scale them, or pass `probabilities=`",
                argument="expected",
                reason="sum",
            )
    else:
        exp = np.full(k, n / k)
    if exp.size != k:
        raise InvalidInputError(
            f"`observed` has {k} categories but the expected values have {exp.size}",
            argument="expected" if probabilities is None else "probabilities",
            reason="length_mismatch",
        )
    if (exp == 0).any():
        raise InvalidInputError(
            "an expected count is zero; drop that category",
            argument="expected",
            reason="zero",
        )
    df = float(k - 1 - ddof)
    if df < 1:
        raise InsufficientDataError(
            f"no degrees of freedom left ({k} categories, ddof={ddof})",
            argument="observed",
            reason="too_few",
            n=k,
            minimum=2 + ddof,
        )
    chi = float(((obs - exp) ** 2 / exp).sum())
    p = _chi2sf(chi, df)
    return ChiSquareResult(
        method="Pearson's χ² goodness-of-fit test",
        statistic=chi,
        pvalue=p,
        df=df,
        n=round(n),
        expected=exp,
        interpretation=f"χ²({fmt.df_text(df)}, N = {round(n)}) = {fmt.num(chi)}, {fmt.pval(p)}.",
    )


# ---------------------------------------------------------------- Fisher


@attrs.define(frozen=True, kw_only=True, repr=False)
class FisherResult(RenderMixin):
    """The result of [`fisher_exact`][crucible_bench.fisher_exact]."""

    method: str
    """`"Fisher's exact test"` (2 × 2) or `"Fisher's exact test (r × c)"`."""
    statistic: float
    """The conditional MLE odds ratio (R's estimate); NaN for tables larger than 2 × 2."""
    pvalue: float
    """Exact p-value; two-sided sums tables with probability ≤ the observed one (× (1 + 1e-7)).

    With `simulate=True`, R's Monte Carlo estimate (1 + #{as extreme}) / (1 + B)."""
    alternative: Alternative
    """Direction of the odds-ratio alternative (2 × 2 only)."""
    n: int
    """Total count."""
    odds_ratio: float
    """Conditional maximum-likelihood odds ratio (as R's `fisher.test`); NaN for r × c."""
    sample_odds_ratio: float
    """The sample odds ratio ad / bc (what scipy returns); NaN for r × c."""
    confidence_interval: tuple[float, float]
    """R's conditional CI for the odds ratio; half-infinite for one-sided alternatives."""
    confidence_level: float
    """Level of `confidence_interval`."""
    interpretation: str
    """An APA-style sentence reporting the test."""
    n_resamples: int | None = None
    """Simulated tables behind a Monte Carlo p-value (`simulate=True`); None when exact."""
    seed: int | None = None
    """The integer seed that reproduces a simulated p-value (None when exact or a Generator)."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("p-value", self.pvalue),
                *(
                    [("resamples", self.n_resamples), ("seed", self.seed)]
                    if self.n_resamples is not None
                    else []
                ),
                ("alternative", self.alternative),
                ("odds ratio (conditional MLE)", self.odds_ratio),
                (f"{self.confidence_level * 100:g}% CI", self.confidence_interval),
                ("sample odds ratio", self.sample_odds_ratio),
                ("n", self.n),
            ],
            notes=[self.interpretation],
        )


class _NcHyper:
    """R's noncentral hypergeometric helpers for a 2 × 2 table (fisher.test)."""

    def __init__(self, t: NDArray[np.int64]) -> None:
        from scipy.stats import hypergeom

        self.m = int(t[:, 0].sum())
        self.n = int(t[:, 1].sum())
        self.k = int(t[0, :].sum())
        self.x = int(t[0, 0])
        self.lo = max(0, self.k - self.n)
        self.hi = min(self.k, self.m)
        self.support = np.arange(self.lo, self.hi + 1)
        self.logdc = hypergeom.logpmf(self.support, self.m + self.n, self.m, self.k)
        self._hyper = hypergeom(self.m + self.n, self.m, self.k)

    def d(self, ncp: float) -> FloatArray:
        lg = self.logdc + math.log(ncp) * self.support
        e = np.exp(lg - lg.max())
        out: FloatArray = e / e.sum()
        return out

    def mean(self, ncp: float) -> float:
        if ncp == 0:
            return float(self.lo)
        if math.isinf(ncp):
            return float(self.hi)
        return float((self.support * self.d(ncp)).sum())

    def p(self, q: int, ncp: float, *, upper: bool = False) -> float:
        if ncp == 1:
            return float(self._hyper.sf(q - 1) if upper else self._hyper.cdf(q))
        if ncp == 0:
            return float(q <= self.lo if upper else q >= self.lo)
        if math.isinf(ncp):
            return float(q <= self.hi if upper else q >= self.hi)
        d = self.d(ncp)
        return float(
            d[self.support >= q].sum() if upper else d[self.support <= q].sum()
        )


def _root(f: Any, lo: float, hi: float, quantity: str) -> float:
    """R's `uniroot` (Brent's zeroin, tolerance eps^0.25), reproduced so limits match R's digits."""
    fa, fb = float(f(lo)), float(f(hi))
    if math.isnan(fa) or math.isnan(fb) or fa * fb > 0:
        raise ConvergenceError(f"could not bracket the {quantity}", quantity=quantity)
    return _zeroin(f, lo, hi, fa, fb, float(np.finfo(float).eps) ** 0.25, 1000)


def _zeroin(
    f: Any, ax: float, bx: float, fa: float, fb: float, tol: float, maxit: int
) -> float:
    """Port of R's `R_zeroin2` (src/library/stats/src/zeroin.c)."""
    eps = float(np.finfo(float).eps)
    a, b = ax, bx
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(
                prev_step * q / 2
            ):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = float(f(b))
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise ConvergenceError("zeroin did not converge", quantity="root")


def _fisher_2x2(
    t: NDArray[np.int64], alternative: Alternative, confidence_level: float
) -> tuple[float, float, tuple[float, float]]:
    h = _NcHyper(t)
    x = h.x
    if alternative == "less":
        p = h.p(x, 1.0)
    elif alternative == "greater":
        p = h.p(x, 1.0, upper=True)
    else:
        d = h.d(1.0)
        p = float(d[d <= d[x - h.lo] * (1 + 1e-7)].sum())
    eps = float(np.finfo(float).eps)

    def ncp_u(alpha: float) -> float:
        if x == h.hi:
            return math.inf
        p1 = h.p(x, 1.0)
        if p1 < alpha:
            return _root(
                lambda t_: h.p(x, t_) - alpha, 0.0, 1.0, "odds ratio upper limit"
            )
        if p1 > alpha:
            return 1.0 / _root(
                lambda t_: h.p(x, 1.0 / t_) - alpha, eps, 1.0, "odds ratio upper limit"
            )
        return 1.0

    def ncp_l(alpha: float) -> float:
        if x == h.lo:
            return 0.0
        p1 = h.p(x, 1.0, upper=True)
        if p1 > alpha:
            return _root(
                lambda t_: h.p(x, t_, upper=True) - alpha,
                0.0,
                1.0,
                "odds ratio lower limit",
            )
        if p1 < alpha:
            return 1.0 / _root(
                lambda t_: h.p(x, 1.0 / t_, upper=True) - alpha,
                eps,
                1.0,
                "odds ratio lower limit",
            )
        return 1.0

    if alternative == "less":
        ci = (0.0, ncp_u(1 - confidence_level))
    elif alternative == "greater":
        ci = (ncp_l(1 - confidence_level), math.inf)
    else:
        a = (1 - confidence_level) / 2
        ci = (ncp_l(a), ncp_u(a))
    if x == h.lo:
        mle = 0.0
    elif x == h.hi:
        mle = math.inf
    else:
        mu = h.mean(1.0)
        if mu > x:
            mle = _root(
                lambda t_: h.mean(t_) - x, 0.0, 1.0, "conditional MLE odds ratio"
            )
        elif mu < x:
            mle = 1.0 / _root(
                lambda t_: h.mean(1.0 / t_) - x, eps, 1.0, "conditional MLE odds ratio"
            )
        else:
            mle = 1.0
    return min(p, 1.0), mle, ci


def fisher_exact(
    table: ArrayLike,
    *,
    alternative: Alternative = "two-sided",
    confidence_level: float = 0.95,
    simulate: bool = False,
    n_resamples: int = 2000,
    rng: int | np.random.Generator | None = None,
) -> FisherResult:
    """Fisher's exact test, with R's conditional MLE odds ratio and its exact CI.

    For 2 × 2 tables this reproduces R's `fisher.test`: the conditional MLE of the odds ratio and
    its conditional CI, and the sample odds ratio ad/bc (what scipy reports). Larger r × c tables
    get the exact two-sided p-value from a network algorithm (in the manner of Mehta & Patel and
    R's FEXACT; it solves every table R solves with its default workspace, and larger ones given
    time), or with `simulate=True` a Monte Carlo p-value computed as R's `simulate.p.value`:
    (1 + #{simulated tables at most as probable as the observed}) / (1 + `n_resamples`), from
    random tables with the observed margins. All-zero rows and columns are dropped first (they do
    not change the test); if fewer than two rows or columns remain, only one table has these
    margins and p = 1.

    Args:
        table: a table of non-negative integer counts.
        alternative: for 2 × 2 tables, `"greater"` means odds ratio > 1.
        confidence_level: level of the odds-ratio CI.
        simulate: r × c only: a Monte Carlo p-value instead of the exact one (for tables too
            large to enumerate in the time you have).
        n_resamples: number of simulated tables (R's `B`, default 2000).
        rng: the seed of the simulation: an int (recorded in the result), a numpy Generator,
            or None for a fresh seed.

    Returns:
        A [`FisherResult`][crucible_bench.FisherResult].

    Raises:
        InvalidInputError: non-integer or negative counts.
        InvalidParameterError: a one-sided alternative for an r × c table, `simulate=True` for
            a 2 × 2 table, or `n_resamples` < 1.

    Examples:
        >>> r = fisher_exact([[3, 1], [1, 3]])
        >>> round(r.pvalue, 4), r.sample_odds_ratio
        (0.4857, 9.0)
        >>> job = [[1, 2, 1, 0], [3, 3, 6, 1], [10, 10, 14, 9], [6, 7, 12, 11]]
        >>> round(fisher_exact(job).pvalue, 4)  # R: fisher.test(Job), p-value = 0.7827
        0.7827
    """
    from crucible_bench._bootstrap import resolve_seed
    from crucible_bench._fisher import fisher_network_pvalue, fisher_simulated_pvalue

    alternative = v.alternative(alternative)
    confidence_level = v.probability("confidence_level", confidence_level)
    t = v.counts("table", table)
    if (t != np.round(t)).any():
        raise InvalidInputError(
            "Fisher's exact test needs integer counts",
            argument="table",
            reason="non_integer",
        )
    ti = t.astype(np.int64)
    n = int(ti.sum())
    if min(ti.shape) < 2:
        raise InsufficientDataError(
            f"Fisher's exact test needs at least a 2 × 2 table; got shape {ti.shape}",
            argument="table",
            reason="shape",
            n=min(ti.shape),
            minimum=2,
        )
    if ti.shape == (2, 2):
        if simulate:
            raise InvalidParameterError(
                "`simulate=True` is for tables larger than 2 × 2 (as R's `simulate.p.value`); "
                "the 2 × 2 test is exact and fast, drop `simulate`",
                argument="simulate",
                value=simulate,
            )
        p, mle, ci = _fisher_2x2(ti, alternative, confidence_level)
        a, b, c, d = (float(z) for z in ti.ravel())
        sample = a * d / (b * c) if b * c > 0 else (math.inf if a * d > 0 else math.nan)
        text = (
            f"Fisher's exact test: {fmt.pval(p)} ({alternative}); conditional MLE odds ratio = "
            f"{fmt.num(mle)}, {fmt.ci(ci[0], ci[1], confidence_level)}; sample odds ratio = "
            f"{fmt.num(sample)}."
        )
        return FisherResult(
            method="Fisher's exact test",
            statistic=mle,
            pvalue=p,
            alternative=alternative,
            n=n,
            odds_ratio=mle,
            sample_odds_ratio=sample,
            confidence_interval=ci,
            confidence_level=confidence_level,
            interpretation=text,
        )
    if alternative != "two-sided":
        raise InvalidParameterError(
            "one-sided alternatives are defined for 2 × 2 tables only",
            argument="alternative",
            value=alternative,
        )
    r, c = ti.shape
    reduced = ti[ti.sum(axis=1) > 0][:, ti.sum(axis=0) > 0]
    seed: int | None = None
    resamples: int | None = None
    if simulate:
        resamples = v.count_option("n_resamples", n_resamples, minimum=1)
        source, seed = resolve_seed(rng)
    if min(reduced.shape) < 2:
        p = 1.0
    elif simulate:
        assert resamples is not None
        p = fisher_simulated_pvalue(reduced, resamples, source)
    else:
        p = fisher_network_pvalue(reduced)
    how = (
        f"simulated p-value, B = {resamples:,}, seed = {seed}"
        if simulate
        else "exact p-value"
    )
    return FisherResult(
        method=f"Fisher's exact test ({r} × {c}"
        + (", simulated p-value)" if simulate else ")"),
        statistic=math.nan,
        pvalue=p,
        alternative=alternative,
        n=n,
        odds_ratio=math.nan,
        sample_odds_ratio=math.nan,
        confidence_interval=(math.nan, math.nan),
        confidence_level=confidence_level,
        interpretation=f"Fisher's exact test ({r} × {c} table, N = {n}, {how}): {fmt.pval(p)}.",
        n_resamples=resamples,
        seed=seed,
    )


# ---------------------------------------------------------------- McNemar


@attrs.define(frozen=True, kw_only=True, repr=False)
class McNemarResult(RenderMixin):
    """The result of [`mcnemar`][crucible_bench.mcnemar]."""

    method: str
    """Exact (binomial) or χ² McNemar test."""
    statistic: float
    """The χ² statistic (continuity-corrected when `continuity`)."""
    pvalue: float
    """The p-value of the chosen method (exact or χ²)."""
    df: float
    """1."""
    n: int
    """Total pairs."""
    b: int
    """Discordant count `table[0][1]`."""
    c: int
    """Discordant count `table[1][0]`."""
    pvalue_exact: float
    """Two-sided binomial test of b out of b + c at ½."""
    pvalue_asymptotic: float
    """χ² p-value."""
    exact: bool
    """Whether `pvalue` is the exact one."""
    interpretation: str
    """An APA-style sentence reporting the test."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("χ²", self.statistic),
                ("p-value", self.pvalue),
                ("exact p", self.pvalue_exact),
                ("discordant (b, c)", f"{self.b}, {self.c}"),
                ("n", self.n),
            ],
            notes=[self.interpretation],
        )


def _binom_two_sided(b: int, n: int) -> float:
    from scipy.special import bdtr, bdtrc

    lo = float(bdtr(b, n, 0.5))
    hi = float(bdtrc(b - 1, n, 0.5)) if b > 0 else 1.0
    return min(1.0, 2.0 * min(lo, hi))


def mcnemar(
    table: ArrayLike, *, continuity: bool = True, exact: bool | None = None
) -> McNemarResult:
    """McNemar's test of marginal homogeneity for paired binary outcomes.

    `b = table[0][1]`, `c = table[1][0]`; χ² = (|b − c| − 1)²/(b + c) with the continuity correction
    and (b − c)²/(b + c) without. The exact p-value is the two-sided binomial test of b in b + c.

    Args:
        table: a 2 × 2 table of paired counts.
        continuity: use the continuity-corrected χ².
        exact: use the exact p-value; the default (`None`) picks it when b + c < 25.

    Returns:
        A [`McNemarResult`][crucible_bench.McNemarResult] carrying both p-values.

    Raises:
        InvalidInputError: not a 2 × 2 table of non-negative integer counts.
        InsufficientDataError: no discordant pairs (b + c = 0).

    Examples:
        >>> r = mcnemar([[794, 150], [86, 570]], continuity=False)
        >>> round(r.statistic, 3)
        17.356
    """
    t = v.counts("table", table)
    if t.shape != (2, 2):
        raise InvalidInputError(
            f"McNemar's test needs a 2 × 2 table; got shape {t.shape}",
            argument="table",
            reason="shape",
        )
    if (t != np.round(t)).any():
        raise InvalidInputError(
            "McNemar's test needs integer counts",
            argument="table",
            reason="non_integer",
        )
    b, c = int(t[0, 1]), int(t[1, 0])
    if b + c == 0:
        raise InsufficientDataError(
            "no discordant pairs (b + c = 0): the two conditions agree on every pair, so there is "
            "nothing to test",
            argument="table",
            reason="no_discordant",
            n=0,
            minimum=1,
        )
    diff = abs(b - c)
    # R `mcnemar.test` and statsmodels square |b − c| − 1 as is: with b == c the corrected
    # statistic is 1/(b + c), not 0 (the correction overshoots; it is not clipped).
    chi = ((diff - 1) if continuity else diff) ** 2 / (b + c)
    p_chi = _chi2sf(chi, 1.0)
    p_exact = _binom_two_sided(b, b + c)
    use_exact = (b + c < 25) if exact is None else bool(exact)
    p = p_exact if use_exact else p_chi
    name = (
        "McNemar's exact test"
        if use_exact
        else "McNemar's χ² test" + (" (continuity correction)" if continuity else "")
    )
    stat_text = (
        f"exact binomial {fmt.pval(p)}"
        if use_exact
        else f"χ²(1) = {fmt.num(chi)}, {fmt.pval(p)}"
    )
    return McNemarResult(
        method=name,
        statistic=chi,
        pvalue=p,
        df=1.0,
        n=round(float(t.sum())),
        b=b,
        c=c,
        pvalue_exact=p_exact,
        pvalue_asymptotic=p_chi,
        exact=use_exact,
        interpretation=f"McNemar's test: {stat_text}; discordant pairs b = {b}, c = {c}.",
    )

"""The comparisons researchers run: two conditions, k conditions, accuracies, sample-size plans."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs
import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._adjust import AdjustMethod, adjust_pvalues
from crucible_bench._anova import (
    AnovaResult,
    AnovaTableResult,
    FriedmanResult,
    KruskalResult,
    anova_oneway,
    friedman,
    kruskal,
    rm_anova,
    welch_anova,
)
from crucible_bench._assumptions import AssumptionResult, levene, shapiro
from crucible_bench._effect import (
    EffectSizeResult,
    cohen_dz,
    hedges_g,
    newcombe_interval,
)
from crucible_bench._rank import (
    MannWhitneyResult,
    WilcoxonResult,
    mann_whitney,
    wilcoxon,
)
from crucible_bench._tables import chi2_independence, fisher_exact, mcnemar
from crucible_bench._ttest import TtestResult, ttest
from crucible_bench._validate import Alternative, FloatArray, NanPolicy
from crucible_bench.exceptions import (
    InsufficientDataError,
    InvalidInputError,
    InvalidParameterError,
)
from crucible_core.render import RenderMixin, Table, View

__all__ = (
    "AccuracyComparisonResult",
    "ComparisonResult",
    "GroupComparisonResult",
    "PairwiseComparison",
    "SampleSizePlan",
    "compare",
    "compare_accuracy",
    "compare_groups",
    "plan_sample_size",
)

TestChoice: TypeAlias = Literal[
    "auto", "ttest", "welch", "student", "mann_whitney", "wilcoxon"
]
TwoSampleResult: TypeAlias = TtestResult | MannWhitneyResult | WilcoxonResult

_SHAPIRO_MAX = 5000


def _normality(
    name: str, x: FloatArray, alpha: float
) -> tuple[AssumptionResult | None, bool, str]:
    """Shapiro–Wilk where it is defined (3 ≤ n ≤ 5000); (check, looks normal, reason)."""
    if x.size < 3:
        return None, True, f"{name}: n = {x.size} is too small to check normality"
    if x.size > _SHAPIRO_MAX:
        return None, True, f"{name}: n = {x.size} > 5000, the mean is near-normal (CLT)"
    if np.all(x == x[0]):
        return None, False, f"{name}: all values are equal"
    check = shapiro(x)
    ok = check.pvalue >= alpha
    verdict = "not rejected" if ok else "rejected"
    return (
        check,
        ok,
        f"{name}: normality {verdict} (Shapiro-Wilk W = {fmt.num(check.statistic, 4)}, {fmt.pval(check.pvalue)})",
    )


# ---------------------------------------------------------------- compare


@attrs.define(frozen=True, kw_only=True, repr=False)
class ComparisonResult(RenderMixin):
    """The result of [`compare`][crucible_bench.compare]: the chosen test, why, and what it found."""

    method: str
    """The test that ran, e.g. `"Welch's two-sample t-test"`."""
    reason: str
    """Why this test was chosen (the assumption checks and their outcome)."""
    statistic: float
    """The test statistic (t, U or V)."""
    pvalue: float
    """The test's p-value."""
    df: float | None
    """Degrees of freedom (t-tests only)."""
    alternative: Alternative
    """Direction: `"greater"` means `a` tends to be larger than `b`."""
    n: tuple[int, int]
    """Observations used in `a` and `b` (pairs twice when paired)."""
    paired: bool
    """Whether the samples were treated as paired by position."""
    alpha: float
    """Significance level used for the decision and the assumption checks."""
    significant: bool
    """`pvalue < alpha`."""
    estimate: float
    """Mean difference a − b (t-tests) or median difference (rank tests; median of a − b when paired)."""
    confidence_interval: tuple[float, float]
    """CI of `estimate` for t-tests; NaN for rank tests (see `effect_size` for their CI)."""
    confidence_level: float
    """Level of the CIs."""
    effect_size: EffectSizeResult
    """Hedges' g (unpaired t), d_z (paired t), or rank-biserial r (rank tests), with CI."""
    assumptions: tuple[AssumptionResult, ...]
    """The assumption checks that were run."""
    descriptives: tuple[tuple[str, float, float, int], ...]
    """(label, mean, SD, n) for `a` and `b`."""
    result: TwoSampleResult
    """The full result of the test that ran."""
    interpretation: str
    """An APA-style report of the comparison."""

    def _view(self) -> View:
        facts: list[tuple[str, object]] = [
            ("test", self.method),
            ("why", self.reason),
            ("statistic", self.statistic),
        ]
        if self.df is not None:
            facts.append(("df", self.df))
        facts += [
            ("p-value", self.pvalue),
            ("alternative", self.alternative),
            ("estimate (a − b)", self.estimate),
            (f"{self.confidence_level * 100:g}% CI", self.confidence_interval),
            (self.effect_size.name, self.effect_size.estimate),
            (
                f"{self.confidence_level * 100:g}% CI ({self.effect_size.name})",
                self.effect_size.confidence_interval,
            ),
        ]
        table = Table(headers=("group", "mean", "SD", "n"), rows=self.descriptives)
        checks = Table(
            headers=("assumption check", "statistic", "p"),
            rows=[(c.method, c.statistic, c.pvalue) for c in self.assumptions],
        )
        return View(
            title="Comparison of two conditions",
            facts=facts,
            tables=[table, checks] if self.assumptions else [table],
            notes=[self.interpretation],
        )


_NO_LEVENE = (
    "equal variances not checkable (Brown-Forsythe undefined: every group's deviations from "
    "its median are equal), so not assumed"
)


def _levene_or_none(*groups: FloatArray) -> AssumptionResult | None:
    """Brown-Forsythe, or None where it is undefined (e.g. every group has two values)."""
    try:
        return levene(*groups)
    except InsufficientDataError:
        return None


def _sd(x: FloatArray) -> float:
    return float(x.std(ddof=1)) if x.size > 1 else math.nan


def compare(
    a: ArrayLike,
    b: ArrayLike,
    *,
    paired: bool | None = None,
    test: TestChoice = "auto",
    alternative: Alternative = "two-sided",
    alpha: float = 0.05,
    confidence_level: float = 0.95,
    labels: tuple[str, str] = ("a", "b"),
    nan_policy: NanPolicy = "raise",
) -> ComparisonResult:
    """Compare two conditions with a test chosen from checked assumptions, and say what it means.

    With `test="auto"`: for paired data (matched by position) the differences are checked for
    normality with Shapiro–Wilk (3 ≤ n ≤ 5000; beyond that the CLT is relied on); normal → paired
    t-test, otherwise the Wilcoxon signed-rank test. For independent samples each sample is checked
    for normality and Levene's (Brown–Forsythe) test checks equal variances; normal → Welch's t-test
    (valid whether or not variances are equal), otherwise the Mann–Whitney U test. The choice and
    the reason are part of the result.

    Args:
        a: the first condition (e.g. the baseline's per-item scores).
        b: the second condition.
        paired: whether `a[i]` and `b[i]` belong together (same item or subject). `None` means
            independent samples; say `True` for per-item scores of two models on the same items.
        test: `"auto"`, or force `"ttest"` (paired t or Welch), `"welch"`, `"student"`,
            `"mann_whitney"` or `"wilcoxon"`.
        alternative: `"two-sided"`, `"less"` or `"greater"` (`a` larger than `b`).
        alpha: significance level for the decision and the assumption checks.
        confidence_level: level of the CIs.
        labels: names of the two conditions, used in the interpretation.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values (pairs when paired).

    Returns:
        A [`ComparisonResult`][crucible_bench.ComparisonResult].

    Raises:
        InvalidInputError: NaN/inf input, unequal lengths when paired.
        InsufficientDataError: too few observations, or all values equal.

    Examples:
        >>> control = [0.89, 0.87, 0.90, 0.88, 0.91]
        >>> treatment = [0.96, 0.97, 0.94, 0.95, 0.98]
        >>> r = compare(treatment, control, labels=("treatment", "control"))
        >>> r.method
        "Welch's two-sample t-test"
    """
    alternative = v.alternative(alternative)
    alpha = v.probability("alpha", alpha)
    confidence_level = v.probability("confidence_level", confidence_level)
    test = v.choice(
        "test", test, ("auto", "ttest", "welch", "student", "mann_whitney", "wilcoxon")
    )
    policy = v.nan_policy(nan_policy)
    is_paired = bool(paired)
    if test == "wilcoxon":
        is_paired = True if paired is None else is_paired
    if is_paired:
        x, y = v.paired("a", a, "b", b, policy=policy, minimum=2)
    else:
        x = v.sample("a", a, policy=policy, minimum=2)
        y = v.sample("b", b, policy=policy, minimum=2)
    checks: list[AssumptionResult] = []
    if test == "auto":
        if is_paired:
            check, ok, why = _normality("differences a − b", x - y, alpha)
            checks += [check] if check else []
            test = "ttest" if ok else "wilcoxon"
            reason = f"paired data; {why}; so the {'paired t-test' if ok else 'Wilcoxon signed-rank test'}"
        else:
            ca, ok_a, why_a = _normality(labels[0], x, alpha)
            cb, ok_b, why_b = _normality(labels[1], y, alpha)
            checks += [c for c in (ca, cb) if c]
            parts = [why_a, why_b]
            if not (np.all(x == x[0]) and np.all(y == y[0])):
                lev = _levene_or_none(x, y)
                if lev is None:
                    parts.append(_NO_LEVENE)
                else:
                    checks.append(lev)
                    parts.append(
                        f"equal variances {'not rejected' if lev.pvalue >= alpha else 'rejected'} "
                        f"(Brown-Forsythe {fmt.pval(lev.pvalue)})"
                    )
            ok = ok_a and ok_b
            test = "welch" if ok else "mann_whitney"
            choice = (
                "Welch's t-test (it does not assume equal variances)"
                if ok
                else "the Mann-Whitney U test (non-normal data)"
            )
            reason = f"independent samples; {'; '.join(parts)}; so {choice}"
    else:
        reason = f"test {test!r} requested"
    if paired is None and is_paired is False:
        reason += (
            " (`paired` not given: treated as independent samples; pass `paired=True` when "
            "a[i] and b[i] are the same item)"
        )
    result: TwoSampleResult
    if test in ("ttest", "welch", "student"):
        if is_paired and test != "ttest":
            raise InvalidInputError(
                f"test {test!r} is for independent samples; use test='ttest' for paired data",
                argument="test",
                reason="paired",
            )
        result = ttest(
            x,
            y,
            paired=is_paired,
            equal_var=test == "student",
            alternative=alternative,
            confidence_level=confidence_level,
        )
        estimate, ci, df = result.estimate, result.confidence_interval, result.df
        eff = (
            cohen_dz(x, y, confidence_level=confidence_level)
            if is_paired
            else hedges_g(x, y, confidence_level=confidence_level)
        )
        stat_text = f"t({fmt.df_text(result.df)}) = {fmt.num(result.statistic)}"
    else:
        if test == "wilcoxon":
            if not is_paired:
                raise InvalidInputError(
                    "the Wilcoxon signed-rank test needs paired data (`paired=True`)",
                    argument="test",
                    reason="unpaired",
                )
            result = wilcoxon(
                x, y, alternative=alternative, confidence_level=confidence_level
            )
            estimate = float(np.median(x - y))
            stat_text = f"V = {fmt.num(result.statistic)}"
        else:
            result = mann_whitney(
                x, y, alternative=alternative, confidence_level=confidence_level
            )
            estimate = float(np.median(x) - np.median(y))
            stat_text = f"U = {fmt.num(result.statistic)}"
        ci, df = (math.nan, math.nan), None
        eff = EffectSizeResult(
            name="rank-biserial r",
            estimate=result.rank_biserial,
            confidence_interval=result.rank_biserial_ci,
            confidence_level=confidence_level,
            method="Fisher-z CI",
            n=result.n,
            interpretation="",
        )
    p = result.pvalue
    sig = p < alpha
    desc = (
        (labels[0], float(x.mean()), _sd(x), int(x.size)),
        (labels[1], float(y.mean()), _sd(y), int(y.size)),
    )
    if sig:
        higher = labels[0] if estimate > 0 else labels[1]
        lower = labels[1] if estimate > 0 else labels[0]
        hi_d, lo_d = (desc[0], desc[1]) if estimate > 0 else (desc[1], desc[0])
        lead = (
            f"{higher} scored significantly higher (M = {fmt.num(hi_d[1])}, SD = {fmt.num(hi_d[2])}) "
            f"than {lower} (M = {fmt.num(lo_d[1])}, SD = {fmt.num(lo_d[2])})"
        )
    else:
        lead = (
            f"No significant difference between {labels[0]} (M = {fmt.num(desc[0][1])}, "
            f"SD = {fmt.num(desc[0][2])}) and {labels[1]} (M = {fmt.num(desc[1][1])}, "
            f"SD = {fmt.num(desc[1][2])})"
        )
    ci_text = (
        ""
        if math.isnan(ci[0])
        else f", difference = {fmt.num(estimate)}, {fmt.ci(ci[0], ci[1], confidence_level)}"
    )
    eff_ci = eff.confidence_interval
    text = (
        f"{lead}; {result.method}, {stat_text}, {fmt.pval(p)}{ci_text}; {eff.name} = "
        f"{fmt.num(eff.estimate)} [{fmt.num(eff_ci[0])}, {fmt.num(eff_ci[1])}] "
        f"({fmt.magnitude_r(eff.estimate) if 'r' in eff.name.split() else fmt.magnitude_d(eff.estimate)}); "
        f"α = {alpha:g}, {alternative}."
    )
    return ComparisonResult(
        method=result.method,
        reason=reason,
        statistic=result.statistic,
        pvalue=p,
        df=df,
        alternative=alternative,
        n=(int(x.size), int(y.size)),
        paired=is_paired,
        alpha=alpha,
        significant=bool(sig),
        estimate=estimate,
        confidence_interval=(float(ci[0]), float(ci[1])),
        confidence_level=confidence_level,
        effect_size=eff,
        assumptions=tuple(checks),
        descriptives=desc,
        result=result,
        interpretation=text,
    )


# ---------------------------------------------------------------- compare_groups


@attrs.define(frozen=True, kw_only=True)
class PairwiseComparison:
    """One post-hoc comparison in a [`GroupComparisonResult`][crucible_bench.GroupComparisonResult]."""

    a: str
    """First group."""
    b: str
    """Second group."""
    method: str
    """The two-sample test used."""
    statistic: float
    """Its statistic."""
    pvalue: float
    """Raw p-value."""
    pvalue_adjusted: float
    """p-value after the family-wise/FDR correction."""
    estimate: float
    """Mean (t) or median (rank) difference a − b."""
    effect_size: float
    """Hedges' g / d_z (t-tests) or rank-biserial r (rank tests)."""
    significant: bool
    """`pvalue_adjusted < alpha`."""


Omnibus: TypeAlias = AnovaResult | KruskalResult | AnovaTableResult | FriedmanResult


@attrs.define(frozen=True, kw_only=True, repr=False)
class GroupComparisonResult(RenderMixin):
    """The result of [`compare_groups`][crucible_bench.compare_groups]."""

    method: str
    """The omnibus test that ran."""
    reason: str
    """Why it was chosen."""
    statistic: float
    """Omnibus statistic (F, H or Q)."""
    pvalue: float
    """Omnibus p-value (Greenhouse–Geisser corrected for repeated measures when sphericity is rejected)."""
    labels: tuple[str, ...]
    """Group names, in input order."""
    paired: bool
    """Repeated measures (rows matched across groups)."""
    alpha: float
    """Significance level."""
    correction: str
    """p-value adjustment used for the pairwise comparisons."""
    omnibus: Omnibus
    """The full omnibus result."""
    assumptions: tuple[AssumptionResult, ...]
    """Assumption checks that were run."""
    pairwise: tuple[PairwiseComparison, ...]
    """Every pair (empty when `posthoc=False`)."""
    interpretation: str
    """An APA-style report."""

    @property
    def matrix(self) -> FloatArray:
        """K × k matrix of adjusted pairwise p-values (1 on the diagonal), in `labels` order."""
        k = len(self.labels)
        m = np.ones((k, k))
        pos = {name: i for i, name in enumerate(self.labels)}
        for pw in self.pairwise:
            i, j = pos[pw.a], pos[pw.b]
            m[i, j] = m[j, i] = pw.pvalue_adjusted
        return m

    def _view(self) -> View:
        tables = []
        if self.pairwise:
            tables.append(
                Table(
                    headers=(
                        "a",
                        "b",
                        "estimate",
                        "effect size",
                        "p",
                        f"p ({self.correction})",
                        "significant",
                    ),
                    rows=[
                        (
                            p.a,
                            p.b,
                            p.estimate,
                            p.effect_size,
                            p.pvalue,
                            p.pvalue_adjusted,
                            p.significant,
                        )
                        for p in self.pairwise
                    ],
                    title="pairwise comparisons",
                )
            )
            tables.append(
                Table(
                    headers=("", *self.labels),
                    rows=[
                        (name, *row)
                        for name, row in zip(
                            self.labels, self.matrix.tolist(), strict=True
                        )
                    ],
                    title=f"adjusted p-values ({self.correction})",
                )
            )
        return View(
            title=f"Comparison of {len(self.labels)} conditions",
            facts=[
                ("test", self.method),
                ("why", self.reason),
                ("statistic", self.statistic),
                ("p-value", self.pvalue),
            ],
            tables=tables,
            notes=[self.interpretation],
        )


def compare_groups(
    groups: Mapping[str, ArrayLike],
    *,
    paired: bool = False,
    test: Literal["auto", "parametric", "nonparametric"] = "auto",
    posthoc: bool = True,
    correction: AdjustMethod = "holm",
    alpha: float = 0.05,
    nan_policy: NanPolicy = "raise",
) -> GroupComparisonResult:
    """Compare k conditions: an omnibus test chosen from checked assumptions, then corrected pairs.

    Independent groups: normal groups with equal variances → one-way ANOVA; normal with unequal
    variances → Welch's ANOVA; otherwise Kruskal–Wallis. Paired (rows matched across groups):
    normal residuals → repeated-measures ANOVA (Greenhouse–Geisser p when Mauchly rejects
    sphericity), otherwise Friedman. Post-hoc pairs use the matching two-sample test and the
    `correction` adjustment.

    Args:
        groups: condition name → values (equal lengths, matched by position, when `paired`).
        paired: repeated measures / the same items in every condition.
        test: `"auto"`, `"parametric"` or `"nonparametric"`.
        posthoc: run the pairwise comparisons.
        correction: p-value adjustment for the pairs (see [`adjust_pvalues`][crucible_bench.adjust_pvalues]).
        alpha: significance level.
        nan_policy: `"raise"`, or `"omit"` (drops values; whole rows when paired).

    Returns:
        A [`GroupComparisonResult`][crucible_bench.GroupComparisonResult]; `.matrix` holds the
        adjusted pairwise p-values.

    Raises:
        InvalidInputError: fewer than two groups, unequal lengths when paired, NaN.

    Examples:
        >>> r = compare_groups({"a": [1, 2, 3, 4], "b": [2, 3, 4, 5], "c": [6, 7, 8, 9]})
        >>> r.method
        'One-way ANOVA'
    """
    if not isinstance(groups, Mapping):
        raise InvalidInputError(
            "`groups` must be a mapping of condition name → values",
            argument="groups",
            reason="type",
        )
    test = v.choice("test", test, ("auto", "parametric", "nonparametric"))
    alpha = v.probability("alpha", alpha)
    policy = v.nan_policy(nan_policy)
    labels = tuple(str(k) for k in groups)
    if len(labels) < 2:
        raise InsufficientDataError(
            f"compare_groups needs at least 2 groups; got {len(labels)}",
            argument="groups",
            reason="too_few_groups",
            n=len(labels),
            minimum=2,
        )
    checks: list[AssumptionResult] = []
    parts: list[str] = []
    omnibus: Omnibus
    if paired:
        raw = [
            v.as_float_array(f"groups[{k!r}]", groups[k], check_scale=True)
            for k in groups
        ]
        if len({r.size for r in raw}) > 1:
            raise InvalidInputError(
                f"paired groups must have equal lengths (one value per item); got {[r.size for r in raw]}",
                argument="groups",
                reason="length_mismatch",
            )
        wide = np.column_stack(raw)
        bad = np.isnan(wide).any(axis=1)
        if bad.any():
            if policy == "raise":
                raise InvalidInputError(
                    '`groups` has NaN; pass `nan_policy="omit"` to drop incomplete rows',
                    argument="groups",
                    reason="nan",
                )
            wide = wide[~bad]
        cols = [wide[:, j] for j in range(wide.shape[1])]
        resid = (wide - wide.mean(axis=1, keepdims=True)).ravel()
        normal = True
        if test == "auto":
            check, normal, why = _normality("residuals", resid, alpha)
            checks += [check] if check else []
            parts.append(why)
        parametric = test == "parametric" or (test == "auto" and normal)
        if parametric:
            omnibus = rm_anova(wide)
            eff = omnibus.effects[0]
            use_gg = eff.mauchly_pvalue is not None and eff.mauchly_pvalue < alpha
            stat, p = (
                eff.statistic,
                (eff.pvalue_gg if use_gg and eff.pvalue_gg is not None else eff.pvalue),
            )
            method = "Repeated-measures ANOVA" + (
                " (Greenhouse-Geisser)" if use_gg else ""
            )
            if eff.mauchly_pvalue is not None:
                parts.append(
                    f"sphericity {'rejected' if use_gg else 'not rejected'} (Mauchly {fmt.pval(eff.mauchly_pvalue)})"
                )
        else:
            omnibus = friedman(wide)
            stat, p, method = omnibus.statistic, omnibus.pvalue, omnibus.method
    else:
        cols = [
            v.sample(f"groups[{k!r}]", groups[k], policy=policy, minimum=2)
            for k in groups
        ]
        normal, equal = True, True
        if test == "auto":
            for name, c in zip(labels, cols, strict=True):
                check, ok, why = _normality(name, c, alpha)
                checks += [check] if check else []
                normal = normal and ok
                if not ok:
                    parts.append(why)
            if normal:
                parts.append("all groups consistent with normality")
            lev = _levene_or_none(*cols)
            if lev is None:
                equal = False  # not checkable: do not assume equal variances
                parts.append(_NO_LEVENE)
            else:
                checks.append(lev)
                equal = lev.pvalue >= alpha
                parts.append(
                    f"equal variances {'not rejected' if equal else 'rejected'} (Brown-Forsythe {fmt.pval(lev.pvalue)})"
                )
        parametric = test == "parametric" or (test == "auto" and normal)
        if parametric:
            omnibus = anova_oneway(*cols) if equal else welch_anova(*cols)
        else:
            omnibus = kruskal(*cols)
        stat, p, method = omnibus.statistic, omnibus.pvalue, omnibus.method
    reason = "; ".join(parts) if parts else f"{test} test requested"
    pairs: list[PairwiseComparison] = []
    if posthoc:
        two_test: TestChoice
        if parametric:
            two_test = "ttest" if paired else "welch"
        else:
            two_test = "wilcoxon" if paired else "mann_whitney"
        raw_pairs = []
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                r = compare(
                    cols[i],
                    cols[j],
                    paired=paired,
                    test=two_test,
                    alpha=alpha,
                    labels=(labels[i], labels[j]),
                )
                raw_pairs.append((labels[i], labels[j], r))
        adj = adjust_pvalues([r.pvalue for _, _, r in raw_pairs], method=correction)
        for (la, lb, r), pa in zip(raw_pairs, adj, strict=True):
            pairs.append(
                PairwiseComparison(
                    a=la,
                    b=lb,
                    method=r.method,
                    statistic=r.statistic,
                    pvalue=r.pvalue,
                    pvalue_adjusted=float(pa),
                    estimate=r.estimate,
                    effect_size=r.effect_size.estimate,
                    significant=bool(pa < alpha),
                )
            )
    sig_pairs = [f"{q.a} vs {q.b}" for q in pairs if q.significant]
    omnibus_text = omnibus.interpretation.rstrip(".")
    if method.endswith("(Greenhouse-Geisser)"):
        omnibus_text += f"; with the Greenhouse-Geisser correction {fmt.pval(p)}"
    text = f"{omnibus_text} ({fmt.significance(p, alpha)} at α = {alpha:g})." + (
        f" Pairs differing after {correction} correction: {', '.join(sig_pairs) or 'none'}."
        if posthoc
        else ""
    )
    return GroupComparisonResult(
        method=method,
        reason=reason,
        statistic=float(stat),
        pvalue=float(p),
        labels=labels,
        paired=paired,
        alpha=alpha,
        correction=correction,
        omnibus=omnibus,
        assumptions=tuple(checks),
        pairwise=tuple(pairs),
        interpretation=text,
    )


# ---------------------------------------------------------------- accuracy


@attrs.define(frozen=True, kw_only=True, repr=False)
class AccuracyComparisonResult(RenderMixin):
    """The result of [`compare_accuracy`][crucible_bench.compare_accuracy]."""

    method: str
    """The test that ran (exact McNemar, Fisher, χ², or a paired t-test on per-item means)."""
    accuracy_a: float
    """Accuracy of `a` (the mean of per-item accuracies when items are repeated)."""
    accuracy_b: float
    """Accuracy of `b`."""
    difference: float
    """`accuracy_a − accuracy_b` (the risk difference)."""
    confidence_interval: tuple[float, float]
    """CI of `difference`: Newcombe hybrid score (single outcomes) or the two-stage cluster bootstrap."""
    confidence_level: float
    """Level of `confidence_interval`."""
    statistic: float
    """The test statistic (χ², t, or the odds ratio for Fisher/exact McNemar)."""
    pvalue: float
    """The test's p-value (two-sided)."""
    n_items: tuple[int, int]
    """Items for `a` and `b`."""
    n_repeats: tuple[float, float]
    """Mean repeats per item for `a` and `b` (1 without repeats)."""
    paired: bool
    """Whether items are matched by position."""
    clustered: bool
    """Whether items had several repeats (the nested analysis)."""
    seed: int | None
    """Seed of the cluster bootstrap (None for single outcomes)."""
    interpretation: str
    """An APA-style report."""

    def _view(self) -> View:
        return View(
            title="Accuracy comparison"
            + (" (repeats nested in items)" if self.clustered else ""),
            facts=[
                ("test", self.method),
                ("accuracy a", self.accuracy_a),
                ("accuracy b", self.accuracy_b),
                ("difference (a − b)", self.difference),
                (f"{self.confidence_level * 100:g}% CI", self.confidence_interval),
                ("statistic", self.statistic),
                ("p-value", self.pvalue),
                ("items", f"{self.n_items[0]}, {self.n_items[1]}"),
                ("repeats per item", f"{self.n_repeats[0]:g}, {self.n_repeats[1]:g}"),
            ],
            notes=[self.interpretation],
        )


def _binary(argument: str, values: ArrayLike) -> FloatArray:
    arr = v.as_float_array(argument, values)
    if np.isnan(arr).any():
        raise InvalidInputError(
            f"`{argument}` has NaN; mark failures as 0 (wrong) rather than missing",
            argument=argument,
            reason="nan",
        )
    if not np.isin(arr, (0.0, 1.0)).all():
        raise InvalidInputError(
            f"`{argument}` must hold binary outcomes (0/1 or False/True)",
            argument=argument,
            reason="not_binary",
        )
    if arr.size == 0:
        raise InsufficientDataError(
            f"`{argument}` is empty", argument=argument, reason="empty", n=0, minimum=1
        )
    return arr


def _ragged(argument: str, values: Any) -> tuple[FloatArray, FloatArray] | None:
    """(padded items × max repeats with NaN, repeats per item) for nested input, else None."""
    if isinstance(values, np.ndarray):
        if values.ndim == 1:
            return None
        if values.ndim != 2:
            raise InvalidInputError(
                f"`{argument}` must be 1-D or items × repeats",
                argument=argument,
                reason="shape",
            )
        rows = [v.as_float_array(f"{argument}[{i}]", r) for i, r in enumerate(values)]
    elif (
        isinstance(values, Sequence)
        and values
        and all(
            isinstance(r, Sequence | np.ndarray) and not isinstance(r, str)
            for r in values
        )
    ):
        rows = [
            v.as_float_array(f"{argument}[{i}]", r).ravel()
            for i, r in enumerate(values)
        ]
    else:
        return None
    counts = np.array([r.size for r in rows], dtype=float)
    if (counts == 0).any():
        raise InvalidInputError(
            f"every item of `{argument}` needs at least one repeat",
            argument=argument,
            reason="empty",
        )
    pad = np.full((len(rows), int(counts.max())), np.nan)
    for i, r in enumerate(rows):
        pad[i, : r.size] = _binary(f"{argument}[{i}]", r)
    return pad, counts


def compare_accuracy(
    a_correct: ArrayLike | Sequence[Sequence[float]],
    b_correct: ArrayLike | Sequence[Sequence[float]],
    *,
    paired: bool = True,
    confidence_level: float = 0.95,
    alpha: float = 0.05,
    n_resamples: int = 10_000,
    rng: int | np.random.Generator | None = None,
    labels: tuple[str, str] = ("a", "b"),
) -> AccuracyComparisonResult:
    """Compare two accuracies from per-item binary outcomes; handles repeats nested in items.

    Single outcome per item: paired → exact McNemar test with Newcombe's paired CI (method 10);
    unpaired → Fisher's exact test when an expected count is below 5, else χ² (no continuity
    correction), with Newcombe's hybrid-score CI. Several repeats per item (a 2-D array
    items × repeats, or a list of per-item lists of any lengths): accuracy is the mean of per-item
    accuracies, the test is a paired t-test (Welch when unpaired) on per-item means, and the CI comes
    from a two-stage cluster bootstrap (resample items, then repeats within items).

    Args:
        a_correct: outcomes of `a` (0/1), one per item or items × repeats.
        b_correct: outcomes of `b`, the same items in the same order when `paired`.
        paired: the two conditions were run on the same items.
        confidence_level: level of the CI.
        alpha: significance level for the interpretation.
        n_resamples: bootstrap resamples for the nested analysis.
        rng: seed (recorded) or Generator for the bootstrap.
        labels: names of the two conditions.

    Returns:
        An [`AccuracyComparisonResult`][crucible_bench.AccuracyComparisonResult].

    Raises:
        InvalidInputError: non-binary values, NaN, unequal item counts when paired.

    Examples:
        >>> a = [1, 1, 1, 0, 1, 1, 0, 1, 1, 1]
        >>> b = [1, 0, 0, 0, 1, 0, 0, 1, 1, 0]
        >>> r = compare_accuracy(a, b)
        >>> r.difference, r.method
        (0.4, "McNemar's exact test")
    """
    level = v.probability("confidence_level", confidence_level)
    alpha = v.probability("alpha", alpha)
    ra = _ragged("a_correct", a_correct)
    rb = _ragged("b_correct", b_correct)
    if (ra is None) != (rb is None):
        raise InvalidInputError(
            "give both conditions in the same layout: one outcome per item, or items × repeats",
            argument="b_correct",
            reason="layout",
        )
    if ra is not None and rb is not None:
        return _nested(
            ra,
            rb,
            paired=paired,
            level=level,
            alpha=alpha,
            n_resamples=n_resamples,
            rng=rng,
            labels=labels,
        )
    xa = _binary("a_correct", a_correct)
    xb = _binary("b_correct", b_correct)
    pa, pb = float(xa.mean()), float(xb.mean())
    diff = pa - pb
    if paired:
        if xa.size != xb.size:
            raise InvalidInputError(
                f"paired outcomes need the same items: `a_correct` has {xa.size}, `b_correct` {xb.size}",
                argument="b_correct",
                reason="length_mismatch",
            )
        n = xa.size
        both = float(((xa == 1) & (xb == 1)).sum())
        b_only_a = float(((xa == 1) & (xb == 0)).sum())
        c_only_b = float(((xa == 0) & (xb == 1)).sum())
        neither = n - both - b_only_a - c_only_b
        denom = math.sqrt(
            (both + b_only_a)
            * (c_only_b + neither)
            * (both + c_only_b)
            * (b_only_a + neither)
        )
        phi = (both * neither - b_only_a * c_only_b) / denom if denom > 0 else 0.0
        ci = newcombe_interval(both + b_only_a, n, both + c_only_b, n, level, phi=phi)
        if b_only_a + c_only_b == 0:
            stat, p, method = 0.0, 1.0, "McNemar's exact test (no discordant items)"
        else:
            mc = mcnemar([[both, b_only_a], [c_only_b, neither]], exact=True)
            stat, p, method = mc.statistic, mc.pvalue, mc.method
        detail = f"{labels[0]} right and {labels[1]} wrong on {int(b_only_a)} items, the reverse on {int(c_only_b)}"
        items = (n, n)
    else:
        table = [[xa.sum(), xa.size - xa.sum()], [xb.sum(), xb.size - xb.sum()]]
        t = np.asarray(table)
        expected = np.outer(t.sum(1), t.sum(0)) / t.sum()
        ci = newcombe_interval(
            float(xa.sum()), xa.size, float(xb.sum()), xb.size, level
        )
        if (t.sum(0) == 0).any():
            stat, p, method = 0.0, 1.0, "no test (every outcome identical)"
        elif (expected < 5).any():
            fr = fisher_exact(table)
            stat, p, method = fr.odds_ratio, fr.pvalue, fr.method
        else:
            cr = chi2_independence(table, correction=False)
            stat, p, method = cr.statistic, cr.pvalue, cr.method
        detail = f"{int(xa.sum())}/{xa.size} vs {int(xb.sum())}/{xb.size} correct"
        items = (int(xa.size), int(xb.size))
    text = (
        f"{labels[0]} accuracy {fmt.num(pa)} vs {labels[1]} {fmt.num(pb)}: difference "
        f"{fmt.num(diff)}, {fmt.ci(ci[0], ci[1], level)}; {method}, {fmt.pval(p)} "
        f"({fmt.significance(p, alpha)} at α = {alpha:g}); {detail}."
    )
    return AccuracyComparisonResult(
        method=method,
        accuracy_a=pa,
        accuracy_b=pb,
        difference=diff,
        confidence_interval=ci,
        confidence_level=level,
        statistic=float(stat),
        pvalue=float(p),
        n_items=items,
        n_repeats=(1.0, 1.0),
        paired=paired,
        clustered=False,
        seed=None,
        interpretation=text,
    )


def _item_means(pad: FloatArray, counts: FloatArray) -> FloatArray:
    out: FloatArray = np.nansum(pad, axis=1) / counts
    return out


def _nested(
    ra: tuple[FloatArray, FloatArray],
    rb: tuple[FloatArray, FloatArray],
    *,
    paired: bool,
    level: float,
    alpha: float,
    n_resamples: int,
    rng: int | np.random.Generator | None,
    labels: tuple[str, str],
) -> AccuracyComparisonResult:
    from crucible_bench._bootstrap import resolve_seed

    pad_a, cnt_a = ra
    pad_b, cnt_b = rb
    if paired and pad_a.shape[0] != pad_b.shape[0]:
        raise InvalidInputError(
            f"paired outcomes need the same items: {pad_a.shape[0]} vs {pad_b.shape[0]}",
            argument="b_correct",
            reason="length_mismatch",
        )
    ma, mb = _item_means(pad_a, cnt_a), _item_means(pad_b, cnt_b)
    pa, pb = float(ma.mean()), float(mb.mean())
    diff = pa - pb
    if n_resamples < 100:
        raise InvalidParameterError(
            f"`n_resamples` must be ≥ 100; got {n_resamples!r}",
            argument="n_resamples",
            value=n_resamples,
        )
    source, seed = resolve_seed(rng)
    gen = (
        source
        if isinstance(source, np.random.Generator)
        else np.random.Generator(np.random.PCG64(source))
    )
    boots = np.empty(n_resamples)
    block = 500
    for start in range(0, n_resamples, block):
        m = min(block, n_resamples - start)
        ia = gen.integers(0, pad_a.shape[0], size=(m, pad_a.shape[0]))
        ib = ia if paired else gen.integers(0, pad_b.shape[0], size=(m, pad_b.shape[0]))
        boots[start : start + m] = _two_stage(gen, pad_a, cnt_a, ia) - _two_stage(
            gen, pad_b, cnt_b, ib
        )
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    ci = (float(lo), float(hi))
    if (
        np.all(ma - mb == 0)
        if paired
        else (np.all(ma == ma[0]) and np.all(mb == mb[0]) and ma[0] == mb[0])
    ):
        stat, p = 0.0, 1.0
        method = "no test (identical per-item accuracies)"
    else:
        tr = ttest(ma, mb, paired=paired, confidence_level=level)
        stat, p, method = tr.statistic, tr.pvalue, f"{tr.method} on per-item accuracies"
    text = (
        f"{labels[0]} accuracy {fmt.num(pa)} vs {labels[1]} {fmt.num(pb)} ({pad_a.shape[0]} items, "
        f"{fmt.num(float(cnt_a.mean()))} repeats each): difference {fmt.num(diff)}, "
        f"{fmt.ci(ci[0], ci[1], level)} (two-stage cluster bootstrap, B = {n_resamples:,}); {method}, "
        f"{fmt.pval(p)} ({fmt.significance(p, alpha)} at α = {alpha:g})."
    )
    return AccuracyComparisonResult(
        method=method,
        accuracy_a=pa,
        accuracy_b=pb,
        difference=diff,
        confidence_interval=ci,
        confidence_level=level,
        statistic=float(stat),
        pvalue=float(p),
        n_items=(int(pad_a.shape[0]), int(pad_b.shape[0])),
        n_repeats=(float(cnt_a.mean()), float(cnt_b.mean())),
        paired=paired,
        clustered=True,
        seed=seed,
        interpretation=text,
    )


def _two_stage(
    gen: np.random.Generator,
    pad: FloatArray,
    counts: FloatArray,
    items: np.ndarray[Any, Any],
) -> FloatArray:
    """Mean accuracy per resample: items drawn as given, then repeats drawn within each item."""
    m, n = items.shape
    r = pad.shape[1]
    c = counts[items]
    reps = np.floor(gen.random((m, n, r)) * c[..., None]).astype(np.intp)
    vals = pad[items[..., None], reps]
    valid = np.arange(r)[None, None, :] < c[..., None]
    per_item = np.where(valid, vals, 0.0).sum(axis=2) / c
    out: FloatArray = per_item.mean(axis=1)
    return out


# ---------------------------------------------------------------- planning


@attrs.define(frozen=True, kw_only=True, repr=False)
class SampleSizePlan(RenderMixin):
    """The result of [`plan_sample_size`][crucible_bench.plan_sample_size]."""

    method: str
    """The test the plan is for."""
    difference: float
    """The pilot's mean difference a − b (the effect to detect)."""
    effect_size: float
    """The pilot's standardized effect at the pilot's repeats (d_z paired, d unpaired)."""
    target_power: float
    """Power the plan reaches."""
    alpha: float
    """Significance level (two-sided)."""
    paired: bool
    """Whether the plan is for a paired design."""
    n_items: int
    """Items needed at the pilot's number of repeats (per condition)."""
    n_repeats: int
    """Repeats per item in the pilot (1 without repeats)."""
    options: tuple[tuple[int, int, int], ...]
    """(repeats per item, items needed, evaluations per condition) for several repeat counts."""
    between_item_variance: float
    """Variance of true per-item effects (of differences when paired)."""
    within_item_variance: float
    """Variance of one repeat around its item's mean (summed over conditions when paired)."""
    interpretation: str
    """A sentence stating the plan."""

    def _view(self) -> View:
        return View(
            title="Sample size plan",
            facts=[
                ("test", self.method),
                ("pilot difference", self.difference),
                ("standardized effect", self.effect_size),
                ("target power", self.target_power),
                ("alpha", self.alpha),
                ("items needed", self.n_items),
            ],
            tables=[
                Table(
                    headers=("repeats per item", "items", "evaluations per condition"),
                    rows=self.options,
                )
            ],
            notes=[self.interpretation],
        )


def plan_sample_size(
    pilot_a: ArrayLike | Sequence[Sequence[float]],
    pilot_b: ArrayLike | Sequence[Sequence[float]],
    *,
    target_power: float = 0.8,
    alpha: float = 0.05,
    paired: bool = True,
    repeats: Sequence[int] = (1, 2, 3, 5, 10),
) -> SampleSizePlan:
    """Items (and repeats) needed to detect the pilot's difference with the target power.

    One value per item: the pilot's standardized effect (d_z paired, pooled d unpaired) goes into a
    t-test power analysis (R `pwr` semantics) solved for n. Items × repeats (2-D arrays or per-item
    lists): the variance of a per-item mean is split into between-item variance σ²_b and within-item
    repeat variance σ²_w, so the effect at r repeats is δ/√(σ²_b + σ²_w/r); the plan lists the items
    needed for each repeat count in `repeats`. More repeats help only while σ²_w/r dominates σ²_b.

    Args:
        pilot_a: pilot outcomes or scores of `a` (1-D, or items × repeats).
        pilot_b: pilot outcomes of `b` (the same items when `paired`).
        target_power: the power to reach.
        alpha: two-sided significance level.
        paired: plan for the same items in both conditions.
        repeats: repeat counts to tabulate for nested pilots.

    Returns:
        A [`SampleSizePlan`][crucible_bench.SampleSizePlan].

    Raises:
        InsufficientDataError: the pilot shows no difference, or too few items.

    Examples:
        >>> plan = plan_sample_size([0.9, 0.8, 0.85, 0.7, 0.95], [0.8, 0.78, 0.8, 0.6, 0.9])
        >>> plan.n_items
        5
    """
    from crucible_bench._power import power_ttest

    target_power = v.probability("target_power", target_power)
    alpha = v.probability("alpha", alpha)
    wanted = [
        v.count_option(f"repeats[{i}]", r, minimum=1) for i, r in enumerate(repeats)
    ]
    na, nb = _ragged("pilot_a", pilot_a), _ragged("pilot_b", pilot_b)
    kind: Literal["paired", "two-sample"] = "paired" if paired else "two-sample"
    if na is None or nb is None:
        if paired:
            xa, xb = v.paired("pilot_a", pilot_a, "pilot_b", pilot_b, minimum=3)
        else:
            xa = v.sample("pilot_a", pilot_a, minimum=3)
            xb = v.sample("pilot_b", pilot_b, minimum=3)
        pads = ((xa[:, None], np.ones(xa.size)), (xb[:, None], np.ones(xb.size)))
        reps_pilot = 1
    else:
        pads = (na, nb)
        reps_pilot = round(float(na[1].mean()))
    (pad_a, cnt_a), (pad_b, cnt_b) = pads
    ma, mb = _item_means(pad_a, cnt_a), _item_means(pad_b, cnt_b)
    if ma.size < 3 or mb.size < 3:
        raise InsufficientDataError(
            "a pilot needs at least 3 items",
            argument="pilot_a",
            reason="too_few",
            n=int(min(ma.size, mb.size)),
            minimum=3,
        )
    delta = float(ma.mean() - mb.mean())

    def within(pad: FloatArray, cnt: FloatArray) -> float:
        multi = cnt > 1
        if not multi.any():
            return 0.0
        dev = pad[multi] - _item_means(pad[multi], cnt[multi])[:, None]
        return float(np.nansum(dev**2) / (cnt[multi] - 1).sum())

    wa, wb = within(pad_a, cnt_a), within(pad_b, cnt_b)
    if paired:
        if ma.size != mb.size:
            raise InvalidInputError(
                "paired pilots need the same items",
                argument="pilot_b",
                reason="length_mismatch",
            )
        observed = float(np.var(ma - mb, ddof=1))
        sw = wa + wb
        sb = max(observed - float((wa / cnt_a + wb / cnt_b).mean()), 0.0)
    else:
        observed = (float(np.var(ma, ddof=1)) + float(np.var(mb, ddof=1))) / 2
        sw = (wa + wb) / 2
        sb = max(observed - float(np.concatenate([wa / cnt_a, wb / cnt_b]).mean()), 0.0)
    if delta == 0 or observed == 0:
        raise InsufficientDataError(
            "the pilot shows no difference (or no variability), so there is no effect to plan for; "
            "plan with an assumed effect size via `power_ttest`",
            argument="pilot_a",
            reason="no_effect",
            n=int(ma.size),
            minimum=3,
        )
    d_pilot = delta / math.sqrt(observed)

    def items_for(r: float) -> int:
        d = delta / math.sqrt(sb + sw / r) if sb + sw / r > 0 else math.inf
        return power_ttest(
            effect_size=abs(d), power=target_power, alpha=alpha, kind=kind
        ).n_required

    n_items = (
        items_for(reps_pilot)
        if reps_pilot > 1
        else power_ttest(
            effect_size=abs(d_pilot), power=target_power, alpha=alpha, kind=kind
        ).n_required
    )
    rs = sorted(set(wanted) | {reps_pilot}) if reps_pilot > 1 else [1]
    options = tuple(
        (
            r,
            items_for(r) if reps_pilot > 1 else n_items,
            (items_for(r) if reps_pilot > 1 else n_items) * r,
        )
        for r in rs
    )
    design = "paired t-test" if paired else "two-sample t-test"
    text = (
        f"To detect the pilot difference {fmt.num(delta)} (standardized {fmt.num(d_pilot)}) with "
        f"{target_power:.0%} power at α = {alpha:g} ({design} on per-item means), use {n_items} items"
        + (f" at {reps_pilot} repeats" if reps_pilot > 1 else "")
        + " per condition."
    )
    if reps_pilot > 1:
        best = min(options, key=lambda o: o[2])
        text += (
            f" Fewest evaluations: {best[1]} items × {best[0]} repeat(s) = {best[2]} per "
            "condition."
        )
    return SampleSizePlan(
        method=design,
        difference=delta,
        effect_size=d_pilot,
        target_power=target_power,
        alpha=alpha,
        paired=paired,
        n_items=n_items,
        n_repeats=reps_pilot,
        options=options,
        between_item_variance=sb,
        within_item_variance=sw,
        interpretation=text,
    )

"""One-way (classic and Welch), Kruskal–Wallis, Friedman, two-way and repeated-measures ANOVA."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import FloatArray, NanPolicy
from crucible_bench.exceptions import (
    InsufficientDataError,
    InvalidInputError,
    InvalidParameterError,
)
from crucible_core.render import RenderMixin, Table, View

__all__ = (
    "AnovaEffect",
    "AnovaResult",
    "AnovaTableResult",
    "FriedmanResult",
    "KruskalResult",
    "anova_oneway",
    "anova_twoway",
    "friedman",
    "kruskal",
    "rm_anova",
    "welch_anova",
)


def _fsf(f: float, df1: float, df2: float) -> float:
    from scipy.special import fdtrc

    if math.isnan(f):
        return math.nan
    return float(fdtrc(df1, df2, f))


def _chi2sf(x: float, df: float) -> float:
    from scipy.special import chdtrc

    return float(chdtrc(df, x))


# ---------------------------------------------------------------- one-way


@attrs.define(frozen=True, kw_only=True, repr=False)
class AnovaResult(RenderMixin):
    """A one-way ANOVA table ([`anova_oneway`][crucible_bench.anova_oneway], [`welch_anova`][crucible_bench.welch_anova]).

    For Welch's ANOVA, `statistic`, `df` and `pvalue` are Welch's; the sums of squares and effect
    sizes describe the ordinary decomposition of the same data.
    """

    method: str
    """`"One-way ANOVA"` or `"Welch's one-way ANOVA"`."""
    statistic: float
    """The F statistic."""
    pvalue: float
    """Upper-tail p-value of F."""
    df: tuple[float, float]
    """(numerator, denominator) degrees of freedom."""
    n: int
    """Total observations."""
    k: int
    """Number of groups."""
    ss_between: float
    """Between-group sum of squares."""
    ss_within: float
    """Within-group (residual) sum of squares."""
    ms_between: float
    """`ss_between / (k - 1)`."""
    ms_within: float
    """`ss_within / (n - k)`."""
    eta_squared: float
    """η² = SSb / SSt."""
    omega_squared: float
    """ω² = (SSb − dfb·MSw) / (SSt + MSw)."""
    epsilon_squared: float
    """ε² = (SSb − dfb·MSw) / SSt."""
    cohen_f: float
    """Cohen's f = √(η² / (1 − η²)), computed as √(SSb / SSw) (full precision as η² → 1)."""
    group_means: tuple[float, ...]
    """Mean of each group, in input order."""
    interpretation: str
    """An APA-style sentence reporting the test."""

    @property
    def df_between(self) -> float:
        """Numerator degrees of freedom."""
        return self.df[0]

    @property
    def df_within(self) -> float:
        """Denominator degrees of freedom."""
        return self.df[1]

    def _view(self) -> View:
        dfb, dfw = self.df
        return View(
            title=self.method,
            facts=[
                ("F", self.statistic),
                ("df", f"{fmt.df_text(dfb)}, {fmt.df_text(dfw)}"),
                ("p-value", self.pvalue),
                ("η²", self.eta_squared),
                ("ω²", self.omega_squared),
                ("ε²", self.epsilon_squared),
                ("Cohen's f", self.cohen_f),
                ("n", self.n),
            ],
            tables=[
                Table(
                    headers=("source", "SS", "df", "MS"),
                    rows=[
                        ("between", self.ss_between, self.k - 1, self.ms_between),
                        ("within", self.ss_within, self.n - self.k, self.ms_within),
                    ],
                )
            ],
            notes=[self.interpretation],
        )


def _sums_of_squares(
    groups: Sequence[FloatArray],
) -> tuple[float, float, list[float], int]:
    """SSb, SSw, group means, n; data centred on the first value, two-pass sums (NIST-accurate)."""
    shift = groups[0][0]
    centred = [g - shift for g in groups]
    n = sum(g.size for g in centred)
    means = [float(g.mean()) for g in centred]
    means = [m + float((g - m).mean()) for g, m in zip(centred, means, strict=True)]
    grand = sum(float(g.sum()) for g in centred) / n
    grand += sum(float((g - grand).sum()) for g in centred) / n
    ssw = 0.0
    for g, m in zip(centred, means, strict=True):
        d = g - m
        ssw += float(d @ d)
    ssb = sum(g.size * (m - grand) ** 2 for g, m in zip(centred, means, strict=True))
    return float(ssb), ssw, [m + float(shift) for m in means], n


def _oneway_effects(
    ssb: float, ssw: float, dfb: float, dfw: float
) -> tuple[float, float, float, float]:
    sst = ssb + ssw
    msw = ssw / dfw
    eta = ssb / sst if sst > 0 else math.nan
    omega = (ssb - dfb * msw) / (sst + msw)
    eps = (ssb - dfb * msw) / sst if sst > 0 else math.nan
    # f = √(η²/(1 − η²)) = √(SSb/SSw): from the sums of squares, 1 − η² loses every digit as η² → 1
    f = math.sqrt(ssb / ssw) if ssw > 0 else math.inf
    return eta, omega, eps, f


def _clean_groups(
    groups: Sequence[ArrayLike],
    policy: NanPolicy,
    minimum: int,
    *,
    scale_free: bool = False,
) -> list[FloatArray]:
    if len(groups) == 1 and isinstance(groups[0], Mapping):
        raise InvalidInputError(
            "pass the groups as separate arguments (`anova_oneway(*groups.values())`), or use "
            "`compare_groups(mapping)`",
            argument="groups",
            reason="type",
        )
    return v.groups(
        groups, policy=v.nan_policy(policy), minimum=minimum, scale_free=scale_free
    )


def anova_oneway(*groups: ArrayLike, nan_policy: NanPolicy = "raise") -> AnovaResult:
    """Classic one-way ANOVA (equal variances), with η², ω², ε² and Cohen's f.

    Sums of squares are computed on data centred at its first value with two-pass sums, which keeps
    full accuracy on the NIST StRD SmLs sets (data offset by 1e12).

    Args:
        *groups: two or more samples.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`AnovaResult`][crucible_bench.AnovaResult].

    Raises:
        InvalidInputError: NaN/inf values, or fewer than two groups.
        InsufficientDataError: an empty group, no within-group variability, or n == k.

    Examples:
        >>> r = anova_oneway([4.2, 4.8, 5.1], [5.9, 6.1, 6.6], [5.0, 5.2, 4.9])
        >>> round(r.statistic, 2)
        15.37
    """
    gs = _clean_groups(groups, nan_policy, 1)
    ssb, ssw, means, n = _sums_of_squares(gs)
    k = len(gs)
    dfb, dfw = float(k - 1), float(n - k)
    if dfw <= 0 or ssw == 0.0:
        raise InsufficientDataError(
            "one-way ANOVA needs within-group variability: at least one group with two different "
            "values",
            argument="groups",
            reason="constant" if dfw > 0 else "too_few",
            n=n,
            minimum=k + 1,
        )
    msb, msw = ssb / dfb, ssw / dfw
    f = msb / msw
    p = _fsf(f, dfb, dfw)
    eta, omega, eps, cf = _oneway_effects(ssb, ssw, dfb, dfw)
    text = (
        f"One-way ANOVA: F({fmt.df_text(dfb)}, {fmt.df_text(dfw)}) = {fmt.num(f)}, {fmt.pval(p)}, "
        f"η² = {fmt.num(eta)} ({fmt.magnitude_eta(eta)}), ω² = {fmt.num(omega)}."
    )
    return AnovaResult(
        method="One-way ANOVA",
        statistic=f,
        pvalue=p,
        df=(dfb, dfw),
        n=n,
        k=k,
        ss_between=ssb,
        ss_within=ssw,
        ms_between=msb,
        ms_within=msw,
        eta_squared=eta,
        omega_squared=omega,
        epsilon_squared=eps,
        cohen_f=cf,
        group_means=tuple(means),
        interpretation=text,
    )


def welch_anova(*groups: ArrayLike, nan_policy: NanPolicy = "raise") -> AnovaResult:
    """Welch's one-way ANOVA for unequal variances (R `oneway.test`).

    Args:
        *groups: two or more samples, each with at least two values and non-zero variance.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        An [`AnovaResult`][crucible_bench.AnovaResult] whose F, df and p are Welch's.

    Raises:
        InsufficientDataError: a group with fewer than two values or zero variance.

    Examples:
        >>> r = welch_anova([4.2, 4.8, 5.1], [5.9, 6.1, 6.6], [5.0, 5.2, 4.9])
        >>> round(r.df[1], 2)
        3.28
    """
    gs = _clean_groups(groups, nan_policy, 2)
    k = len(gs)
    ns = np.array([g.size for g in gs], dtype=float)
    means = np.array([g.mean() for g in gs])
    var = np.array([float(((g - g.mean()) ** 2).sum()) / (g.size - 1) for g in gs])
    if (var == 0).any():
        i = int(np.flatnonzero(var == 0)[0])
        raise InsufficientDataError(
            f"Welch's ANOVA needs every group to vary; all values in `groups[{i}]` are equal. Use "
            "`anova_oneway` or a rank test instead",
            argument=f"groups[{i}]",
            reason="constant",
            n=int(ns[i]),
            minimum=2,
        )
    w = ns / var
    sw = w.sum()
    mbar = float((w * means).sum() / sw)
    num = float((w * (means - mbar) ** 2).sum()) / (k - 1)
    tmp = float(((1 - w / sw) ** 2 / (ns - 1)).sum()) / (k * k - 1)
    f = num / (1 + 2 * (k - 2) * tmp)
    dfb, dfw = float(k - 1), 1.0 / (3 * tmp)
    p = _fsf(f, dfb, dfw)
    ssb, ssw, gmeans, n = _sums_of_squares(gs)
    eta, omega, eps, cf = _oneway_effects(ssb, ssw, float(k - 1), float(n - k))
    text = (
        f"Welch's one-way ANOVA: F({fmt.df_text(dfb)}, {fmt.df_text(dfw)}) = {fmt.num(f)}, "
        f"{fmt.pval(p)}, η² = {fmt.num(eta)} ({fmt.magnitude_eta(eta)})."
    )
    return AnovaResult(
        method="Welch's one-way ANOVA",
        statistic=f,
        pvalue=p,
        df=(dfb, dfw),
        n=n,
        k=k,
        ss_between=ssb,
        ss_within=ssw,
        ms_between=ssb / (k - 1),
        ms_within=ssw / (n - k),
        eta_squared=eta,
        omega_squared=omega,
        epsilon_squared=eps,
        cohen_f=cf,
        group_means=tuple(gmeans),
        interpretation=text,
    )


# ---------------------------------------------------------------- rank-based


@attrs.define(frozen=True, kw_only=True, repr=False)
class KruskalResult(RenderMixin):
    """The result of [`kruskal`][crucible_bench.kruskal]."""

    method: str
    """`"Kruskal-Wallis rank sum test"`."""
    statistic: float
    """The tie-corrected H statistic."""
    pvalue: float
    """Upper-tail χ² p-value."""
    df: float
    """`k - 1`."""
    n: int
    """Total observations."""
    k: int
    """Number of groups."""
    epsilon_squared: float
    """Rank effect size ε² = H / (n − 1)."""
    interpretation: str
    """An APA-style sentence reporting the test."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("H", self.statistic),
                ("df", self.df),
                ("p-value", self.pvalue),
                ("ε²", self.epsilon_squared),
                ("n", self.n),
            ],
            notes=[self.interpretation],
        )


def _tie_sum(values: FloatArray) -> float:
    _, counts = np.unique(values, return_counts=True)
    c = counts.astype(float)
    return float((c**3 - c).sum())


def kruskal(*groups: ArrayLike, nan_policy: NanPolicy = "raise") -> KruskalResult:
    """Kruskal–Wallis rank sum test (tie-corrected H, χ² reference), with ε².

    Args:
        *groups: two or more samples.
        nan_policy: `"raise"` on NaN, or `"omit"` to drop NaN values.

    Returns:
        A [`KruskalResult`][crucible_bench.KruskalResult].

    Raises:
        InsufficientDataError: an empty group, or all values equal.

    Examples:
        >>> round(kruskal([1, 2, 3], [4, 5, 6]).statistic, 4)
        3.8571
    """
    from scipy.stats import rankdata

    gs = _clean_groups(groups, nan_policy, 1, scale_free=True)
    allv = np.concatenate(gs)
    v.not_constant("groups", allv)
    n = allv.size
    ranks = rankdata(allv)
    h = 0.0
    start = 0
    for g in gs:
        r = ranks[start : start + g.size]
        h += float(r.sum()) ** 2 / g.size
        start += g.size
    h = 12.0 / (n * (n + 1)) * h - 3 * (n + 1)
    h /= 1 - _tie_sum(allv) / (n**3 - n)
    k = len(gs)
    df = float(k - 1)
    p = _chi2sf(h, df)
    eps = h / (n - 1)
    text = (
        f"Kruskal-Wallis test: H({fmt.df_text(df)}) = {fmt.num(h)}, {fmt.pval(p)}, "
        f"ε² = {fmt.num(eps)}."
    )
    return KruskalResult(
        method="Kruskal-Wallis rank sum test",
        statistic=h,
        pvalue=p,
        df=df,
        n=n,
        k=k,
        epsilon_squared=eps,
        interpretation=text,
    )


@attrs.define(frozen=True, kw_only=True, repr=False)
class FriedmanResult(RenderMixin):
    """The result of [`friedman`][crucible_bench.friedman]."""

    method: str
    """`"Friedman rank sum test"`."""
    statistic: float
    """The tie-corrected Friedman Q (R's `friedman.test`)."""
    pvalue: float
    """Upper-tail χ² p-value."""
    df: float
    """`k - 1`."""
    n: int
    """Number of blocks (subjects) used."""
    k: int
    """Number of treatments."""
    kendall_w: float
    """Kendall's coefficient of concordance W = Q / (n (k − 1))."""
    interpretation: str
    """An APA-style sentence reporting the test."""

    def _view(self) -> View:
        return View(
            title=self.method,
            facts=[
                ("Q", self.statistic),
                ("df", self.df),
                ("p-value", self.pvalue),
                ("Kendall's W", self.kendall_w),
                ("blocks", self.n),
            ],
            notes=[self.interpretation],
        )


def _wide(
    data: Any, argument: str, *, scale_free: bool = False
) -> tuple[FloatArray, tuple[str, ...]]:
    """A subjects × conditions matrix from a 2-D array or a mapping of condition → column."""
    if isinstance(data, Mapping) or hasattr(data, "columns"):
        names = tuple(
            str(c) for c in (data.keys() if isinstance(data, Mapping) else data.columns)
        )
        cols = [
            v.as_float_array(
                f"{argument}[{c!r}]",
                data[c],
                scale_free=scale_free,
                check_scale=not scale_free,
            )
            for c in names
        ]
        if len({c.size for c in cols}) > 1:
            raise InvalidInputError(
                f"every column of `{argument}` must have one value per subject; got lengths "
                f"{[c.size for c in cols]}",
                argument=argument,
                reason="length_mismatch",
            )
        arr = np.column_stack(cols) if cols else np.empty((0, 0))
    else:
        arr = v.as_float_array(
            argument,
            data,
            ndim=2,
            scale_free=scale_free,
            check_scale=not scale_free,
        )
        names = tuple(f"c{j}" for j in range(arr.shape[1]))
    if np.isinf(arr).any():
        raise InvalidInputError(
            f"`{argument}` contains infinite values", argument=argument, reason="inf"
        )
    return arr, names


def _listwise(arr: FloatArray, policy: NanPolicy, argument: str) -> FloatArray:
    bad = np.isnan(arr).any(axis=1)
    if bad.any():
        if policy == "raise":
            raise InvalidInputError(
                f"`{argument}` has missing values for {int(bad.sum())} subject(s); pass "
                '`nan_policy="omit"` to drop those subjects (listwise deletion)',
                argument=argument,
                reason="nan",
            )
        arr = arr[~bad]
    return arr


def friedman(data: Any, *, nan_policy: NanPolicy = "raise") -> FriedmanResult:
    """Friedman rank sum test for blocks × treatments, with Kendall's W.

    Args:
        data: a 2-D array-like (rows are blocks/subjects, columns treatments), or a mapping
            (or DataFrame) of treatment name → column.
        nan_policy: `"raise"` on missing values, or `"omit"` to drop incomplete blocks.

    Returns:
        A [`FriedmanResult`][crucible_bench.FriedmanResult].

    Raises:
        InsufficientDataError: fewer than two blocks or treatments, or all values equal.

    Examples:
        >>> round(friedman([[1, 2, 3], [2, 3, 1], [1, 3, 2], [1, 2, 3]]).statistic, 3)
        3.5
    """
    from scipy.stats import rankdata

    arr, _ = _wide(data, "data", scale_free=True)
    arr = _listwise(arr, v.nan_policy(nan_policy), "data")
    n, k = arr.shape
    if n < 2 or k < 2:
        raise InsufficientDataError(
            f"Friedman's test needs at least 2 blocks and 2 treatments; got {n} × {k}",
            argument="data",
            reason="too_few",
            n=n,
            minimum=2,
        )
    v.not_constant("data", arr.ravel())
    r = rankdata(arr, axis=1)
    ties = sum(_tie_sum(row) for row in arr)
    denom = n * k * (k + 1) - ties / (k - 1)
    if denom == 0:
        raise InsufficientDataError(
            "every block has all treatments tied; Friedman's Q is undefined",
            argument="data",
            reason="constant",
            n=n,
            minimum=2,
        )
    q = 12.0 * float(((r.sum(axis=0) - n * (k + 1) / 2) ** 2).sum()) / denom
    df = float(k - 1)
    p = _chi2sf(q, df)
    w = q / (n * (k - 1))
    text = (
        f"Friedman test: χ²({fmt.df_text(df)}) = {fmt.num(q)}, {fmt.pval(p)}, "
        f"Kendall's W = {fmt.num(w)}."
    )
    return FriedmanResult(
        method="Friedman rank sum test",
        statistic=q,
        pvalue=p,
        df=df,
        n=n,
        k=k,
        kendall_w=w,
        interpretation=text,
    )


# ---------------------------------------------------------------- factorial tables


@attrs.define(frozen=True, kw_only=True)
class AnovaEffect:
    """One row of a factorial or repeated-measures ANOVA table."""

    name: str
    """The effect: a factor name, or `"A:B"` for an interaction."""
    ss: float
    """Sum of squares of the effect."""
    df: float
    """Degrees of freedom of the effect."""
    ms: float
    """`ss / df`."""
    statistic: float
    """F statistic against the effect's error term."""
    pvalue: float
    """Upper-tail F p-value (uncorrected)."""
    ss_error: float
    """Sum of squares of the error term the effect is tested against."""
    df_error: float
    """Degrees of freedom of that error term."""
    partial_eta_squared: float
    """SS_effect / (SS_effect + SS_error)."""
    eta_squared: float
    """SS_effect / SS_total."""
    generalized_eta_squared: float
    """Olejnik & Algina's η²_G (equals the partial η² for between-subjects designs)."""
    eps_gg: float | None = None
    """Greenhouse–Geisser ε (repeated measures only)."""
    eps_hf: float | None = None
    """Huynh–Feldt ε, kept within [1/df, 1] (repeated measures only)."""
    eps_hf_raw: float | None = None
    """Huynh–Feldt ε before bounding; None with two subjects, where the formula is 0/0."""
    eps_lb: float | None = None
    """Lower-bound ε = 1 / df."""
    pvalue_gg: float | None = None
    """p-value with Greenhouse–Geisser corrected df."""
    pvalue_hf: float | None = None
    """p-value with Huynh–Feldt corrected df."""
    mauchly_w: float | None = None
    """Mauchly's W (sphericity; only when df ≥ 2)."""
    mauchly_pvalue: float | None = None
    """p-value of Mauchly's test."""


@attrs.define(frozen=True, kw_only=True, repr=False)
class AnovaTableResult(RenderMixin):
    """A factorial ([`anova_twoway`][crucible_bench.anova_twoway]) or repeated-measures ([`rm_anova`][crucible_bench.rm_anova]) ANOVA table."""

    method: str
    """E.g. `"Two-way ANOVA (type II SS)"`."""
    effects: tuple[AnovaEffect, ...]
    """One row per effect, main effects first."""
    ss_residual: float
    """Residual sum of squares (two-way) or the sum of all within-subject error SS (repeated measures)."""
    df_residual: float
    """Residual degrees of freedom (two-way), or the summed error df (repeated measures)."""
    ss_total: float
    """Total sum of squares about the grand mean."""
    n: int
    """Observations (two-way) or subjects (repeated measures) used."""
    ss_subjects: float | None = None
    """Between-subjects sum of squares (repeated measures only)."""
    interpretation: str = ""
    """APA-style sentences reporting each effect."""

    def effect(self, name: str) -> AnovaEffect:
        """The row for `name`: a factor name, `"A"`, `"B"`, or `"AxB"`/`"A:B"` for the interaction.

        Raises:
            KeyError: no effect of that name (the message lists the names).
        """
        for e in self.effects:
            if e.name == name:
                return e
        aliases = {"A": 0, "B": 1, "AxB": 2, "A:B": 2, "A×B": 2, "interaction": 2}
        if name in aliases and aliases[name] < len(self.effects):
            return self.effects[aliases[name]]
        raise KeyError(
            f"no effect {name!r}; effects are {[e.name for e in self.effects]}"
        )

    @property
    def statistic(self) -> float:
        """F of the first effect (a convenience for one-factor designs)."""
        return self.effects[0].statistic

    @property
    def pvalue(self) -> float:
        """p-value of the first effect (a convenience for one-factor designs)."""
        return self.effects[0].pvalue

    def _view(self) -> View:
        rm = self.effects[0].eps_gg is not None
        headers = ["effect", "SS", "df", "MS", "F", "p", "η²p", "η²G"]
        if rm:
            headers += ["ε GG", "p GG", "ε HF", "p HF", "Mauchly W", "p Mauchly"]
        rows = []
        for e in self.effects:
            row: list[object] = [
                e.name,
                e.ss,
                e.df,
                e.ms,
                e.statistic,
                e.pvalue,
                e.partial_eta_squared,
                e.generalized_eta_squared,
            ]
            if rm:
                row += [
                    e.eps_gg,
                    e.pvalue_gg,
                    e.eps_hf,
                    e.pvalue_hf,
                    e.mauchly_w,
                    e.mauchly_pvalue,
                ]
            rows.append(tuple(row))
        if not rm:
            rows.append(
                (
                    "residual",
                    self.ss_residual,
                    self.df_residual,
                    self.ss_residual / self.df_residual,
                    None,
                    None,
                    None,
                    None,
                )
            )
        return View(
            title=self.method,
            facts=[("n", self.n)],
            tables=[Table(headers=tuple(headers), rows=rows)],
            notes=[self.interpretation],
        )


def _codes(argument: str, labels: ArrayLike) -> tuple[np.ndarray[Any, Any], list[Any]]:
    arr = np.asarray(labels, dtype=object)
    if arr.ndim != 1:
        raise InvalidInputError(
            f"`{argument}` must be 1-D", argument=argument, reason="shape"
        )
    levels: list[Any] = []
    index: dict[Any, int] = {}
    codes = np.empty(arr.size, dtype=np.intp)
    for i, lab in enumerate(arr.tolist()):
        if lab is None or (isinstance(lab, float) and math.isnan(lab)):
            raise InvalidInputError(
                f"`{argument}` has a missing label at position {i}; drop that observation",
                argument=argument,
                reason="nan",
            )
        if lab not in index:
            index[lab] = len(levels)
            levels.append(lab)
        codes[i] = index[lab]
    return codes, levels


def _design(codes: np.ndarray[Any, Any], k: int, *, sum_to_zero: bool) -> FloatArray:
    m = np.zeros((codes.size, k - 1))
    for j in range(1, k):
        m[:, j - 1] = codes == j
    if sum_to_zero:
        m[codes == 0, :] = -1.0
    return m


def _rss(y: FloatArray, x: FloatArray) -> tuple[float, int]:
    if x.shape[1] == 0:
        return float(y @ y), 0
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    r = y - x @ beta
    return float(r @ r), int(rank)


def anova_twoway(
    y: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    *,
    ss_type: Literal[1, 2, 3] = 2,
    names: tuple[str, str] = ("A", "B"),
    nan_policy: NanPolicy = "raise",
) -> AnovaTableResult:
    """Two-way between-subjects ANOVA with interaction, type I, II or III sums of squares.

    Type I is sequential (A, then B, then A:B) as R's `anova(lm(y ~ A * B))`; types II and III are
    as `car::Anova`, type III with sum-to-zero contrasts.

    Args:
        y: the response.
        a: the level of factor A for each observation (any hashable labels).
        b: the level of factor B for each observation.
        ss_type: 1, 2 or 3.
        names: the names of the two factors, used for the effects (`"A:B"` for the interaction).
        nan_policy: `"raise"` on NaN responses, or `"omit"` to drop those observations.

    Returns:
        An [`AnovaTableResult`][crucible_bench.AnovaTableResult]; `result.effect("A")`,
        `result.effect("B")` and `result.effect("AxB")` give the rows.

    Raises:
        InvalidInputError: lengths differ, NaN/inf responses or missing labels.
        InsufficientDataError: no residual degrees of freedom.

    Examples:
        >>> r = anova_twoway([1, 2, 3, 4, 2, 3, 5, 6], list("aabbaabb"), list("xxxxyyyy"))
        >>> r.effect("A").df
        1.0
    """
    ss_type = v.choice("ss_type", ss_type, (1, 2, 3))
    policy = v.nan_policy(nan_policy)
    yy = v.as_float_array("y", y, check_scale=True)
    ca, la = _codes("a", a)
    cb, lb = _codes("b", b)
    if not (yy.size == ca.size == cb.size):
        raise InvalidInputError(
            f"`y`, `a` and `b` must have equal lengths; got {yy.size}, {ca.size}, {cb.size}",
            argument="a",
            reason="length_mismatch",
        )
    if np.isinf(yy).any():
        raise InvalidInputError(
            "`y` contains infinite values", argument="y", reason="inf"
        )
    bad = np.isnan(yy)
    if bad.any():
        if policy == "raise":
            raise InvalidInputError(
                '`y` contains NaN; drop those observations or pass `nan_policy="omit"`',
                argument="y",
                reason="nan",
            )
        yy, ca, cb = yy[~bad], ca[~bad], cb[~bad]
        ca, la = _codes("a", [la[i] for i in ca])
        cb, lb = _codes("b", [lb[i] for i in cb])
    n = yy.size
    ka, kb = len(la), len(lb)
    if ka < 2 or kb < 2:
        raise InsufficientDataError(
            f"each factor needs at least 2 levels; got {ka} and {kb}",
            argument="a" if ka < 2 else "b",
            reason="too_few_groups",
            n=min(ka, kb),
            minimum=2,
        )
    yc = yy - yy.mean()
    yc = yc - yc.mean()
    sst = float(yc @ yc)
    stz = ss_type == 3
    xa = _design(ca, ka, sum_to_zero=stz)
    xb = _design(cb, kb, sum_to_zero=stz)
    xab = np.column_stack(
        [xa[:, i] * xb[:, j] for i in range(ka - 1) for j in range(kb - 1)]
    )
    one = np.ones((n, 1))

    def fit(*blocks: FloatArray) -> tuple[float, int]:
        return _rss(yc, np.column_stack([one, *blocks]))

    full, rank_full = fit(xa, xb, xab)
    df_res = n - rank_full
    if df_res <= 0:
        raise InsufficientDataError(
            "no residual degrees of freedom: every cell has one observation; add replicates or "
            "drop the interaction",
            argument="y",
            reason="too_few",
            n=n,
            minimum=rank_full + 1,
        )
    rows: list[tuple[float, int]] = []
    if ss_type == 1:
        r0 = fit()
        r1 = fit(xa)
        r2 = fit(xa, xb)
        rows = [(r0[0] - r1[0], r1[1] - r0[1]), (r1[0] - r2[0], r2[1] - r1[1])]
        rows.append((r2[0] - full, rank_full - r2[1]))
    elif ss_type == 2:
        rab = fit(xa, xb)
        rb = fit(xb)
        ra = fit(xa)
        rows = [(rb[0] - rab[0], rab[1] - rb[1]), (ra[0] - rab[0], rab[1] - ra[1])]
        rows.append((rab[0] - full, rank_full - rab[1]))
    else:
        for drop in range(3):
            blocks = [blk for i, blk in enumerate((xa, xb, xab)) if i != drop]
            r = fit(*blocks)
            rows.append((r[0] - full, rank_full - r[1]))
    msr = full / df_res
    label = [names[0], names[1], f"{names[0]}:{names[1]}"]
    effects = []
    parts = []
    for name, (ss, df) in zip(label, rows, strict=True):
        ss = max(ss, 0.0)
        ms = ss / df if df > 0 else math.nan
        f = ms / msr
        p = _fsf(f, df, df_res)
        np2 = ss / (ss + full)
        effects.append(
            AnovaEffect(
                name=name,
                ss=ss,
                df=float(df),
                ms=ms,
                statistic=f,
                pvalue=p,
                ss_error=full,
                df_error=float(df_res),
                partial_eta_squared=np2,
                eta_squared=ss / sst,
                generalized_eta_squared=np2,
            )
        )
        parts.append(
            f"{name}: F({df}, {df_res}) = {fmt.num(f)}, {fmt.pval(p)}, η²p = {fmt.num(np2)}"
        )
    roman = {1: "I", 2: "II", 3: "III"}[ss_type]
    return AnovaTableResult(
        method=f"Two-way ANOVA (type {roman} sums of squares)",
        effects=tuple(effects),
        ss_residual=full,
        df_residual=float(df_res),
        ss_total=sst,
        n=n,
        interpretation="; ".join(parts) + ".",
    )


# ---------------------------------------------------------------- repeated measures


def _helmert(k: int) -> FloatArray:
    """K × (k−1) orthonormal contrasts (columns orthogonal to the constant)."""
    h = np.zeros((k, k - 1))
    for j in range(1, k):
        h[:j, j - 1] = 1.0
        h[j, j - 1] = -float(j)
        h[:, j - 1] /= math.sqrt(j * (j + 1))
    return h


def _long_to_wide(
    data: Any, dv: str, subject: str, within: Sequence[str]
) -> tuple[FloatArray, list[list[Any]]]:
    try:
        y = v.as_float_array(dv, data[dv], check_scale=True)
        subj = np.asarray(data[subject], dtype=object)
        facs = [np.asarray(data[w], dtype=object) for w in within]
    except KeyError as err:
        raise InvalidInputError(
            f"`data` has no column {err.args[0]!r}; `dv`, `subject` and `within` must name columns",
            argument="data",
            reason="missing_column",
        ) from err
    if any(len(c) != y.size for c in (subj, *facs)):
        raise InvalidInputError(
            "every column of `data` must have the same length",
            argument="data",
            reason="length_mismatch",
        )
    scodes, _ = _codes(subject, subj)
    codes_levels = [_codes(w, f) for w, f in zip(within, facs, strict=True)]
    sizes = [len(lv) for _, lv in codes_levels]
    cell = np.zeros(y.size, dtype=np.intp)
    for c, lv in codes_levels:
        cell = cell * len(lv) + c
    ncell = int(np.prod(sizes))
    nsub = int(scodes.max()) + 1 if y.size else 0
    total = np.zeros((nsub, ncell))
    count = np.zeros((nsub, ncell))
    ok = ~np.isnan(y)
    np.add.at(total, (scodes[ok], cell[ok]), y[ok])
    np.add.at(count, (scodes[ok], cell[ok]), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        wide = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return wide, [lv for _, lv in codes_levels]


def _mauchly_p(w: float, p: int, df: int, ncell: int) -> float:
    """Mauchly's p-value with R's second-order correction (`mauchly.test`, `car`).

    R's ω₂ term uses the number of cells (`3 * p` with p = ncol(SSD)) where the textbook formula
    has the number of contrasts; we follow R so that p-values agree with R, car and ez.
    """
    rho = 1 - (2 * p * p + p + 2) / (6 * p * df)
    w2 = (
        (p + 2)
        * (p - 1)
        * (p - 2)
        * (2 * p**3 + 6 * p**2 + 3 * ncell + 2)
        / (288 * (df * p * rho) ** 2)
    )
    if w <= 0:  # a singular error covariance (as R: log(0) = −Inf, so p = 0)
        return 0.0
    z = -df * rho * math.log(w)
    f = p * (p + 1) / 2 - 1
    pr1, pr2 = _chi2sf(z, f), _chi2sf(z, f + 4)
    return min(1.0, max(0.0, pr1 + w2 * (pr2 - pr1)))


def _sphericity_epsilons(m: FloatArray, n: int) -> tuple[float, float, float | None]:
    """Greenhouse–Geisser ε, Huynh–Feldt ε and the unbounded HF value, for a p × p covariance.

    Both are kept in ε's range [1/p, 1]. GG lies there mathematically and rounding may not take
    it out. The HF formula (n·p·ε̂ − 2)/(p·(n − 1 − p·ε̂)) increases with ε̂ from 1/p at ε̂ = 1/p
    (n ≥ 3), and often exceeds 1 (capped, as R's car and pingouin do). With two subjects the
    covariance has rank 1, ε̂_GG = 1/p exactly and the HF formula is 0/0 (rounding made it −1
    before): ε_HF is then the lower bound and the raw value `None`.
    """
    p = m.shape[0]
    lower = 1.0 / p
    if p == 1:
        return 1.0, 1.0, 1.0
    tr = float(np.trace(m))
    gg = min(max(tr**2 / (p * float(np.sum(m * m))), lower), 1.0)
    if n == 2:
        return lower, lower, None
    den = p * (n - 1 - p * gg)
    # ε̂_GG ≤ (n − 1)/p (the covariance has rank ≤ n − 1), so den ≥ 0 save for rounding; at 0
    # the formula is +∞ (its numerator n(n − 1) − 2 > 0), capped at 1 below.
    raw = (n * p * gg - 2) / den if den > 0 else math.inf
    return gg, min(max(raw, lower), 1.0), raw


def rm_anova(
    data: Any,
    *,
    dv: str | None = None,
    subject: str | None = None,
    within: str | Sequence[str] | None = None,
    nan_policy: NanPolicy = "raise",
) -> AnovaTableResult:
    """Repeated-measures ANOVA for one or two within-subject factors, with sphericity checks.

    Each effect gets Greenhouse–Geisser and Huynh–Feldt (original formula, kept within [1/df, 1])
    corrected p-values, the lower-bound ε, Mauchly's test (when the effect has 2+ df), partial and
    generalized η². Subjects with any missing cell are dropped (listwise deletion).

    Args:
        data: either wide data (a 2-D array-like, rows = subjects and columns = conditions, or a
            mapping/DataFrame of condition → column) for one within factor, or long data (a
            mapping/DataFrame of columns) together with `dv`, `subject` and `within`.
            Several observations of one subject in one cell are averaged.
        dv: long data: the response column.
        subject: long data: the subject column.
        within: long data: one or two within-factor columns.
        nan_policy: `"raise"` on missing cells, or `"omit"` to drop incomplete subjects.

    Returns:
        An [`AnovaTableResult`][crucible_bench.AnovaTableResult] with one row per effect.

    Raises:
        InvalidInputError: missing cells with `nan_policy="raise"`, unknown columns.
        InsufficientDataError: fewer than two complete subjects or fewer than two levels, or an
            effect without error variance (perfectly additive data).

    Examples:
        >>> r = rm_anova([[1, 2, 4], [2, 3, 3], [1, 3, 5], [2, 2, 4]])
        >>> r.effect("within").df
        2.0
    """
    policy = v.nan_policy(nan_policy)
    if subject is None:
        if dv is not None or within is not None:
            raise InvalidParameterError(
                "long-format data needs all of `dv`, `subject` and `within`",
                argument="subject",
                value=subject,
            )
        wide, _ = _wide(data, "data")
        factors = ["within"]
        sizes = [wide.shape[1]]
    else:
        if dv is None or within is None:
            raise InvalidParameterError(
                "long-format data needs all of `dv`, `subject` and `within`",
                argument="dv" if dv is None else "within",
                value=None,
            )
        factors = [within] if isinstance(within, str) else list(within)
        if not 1 <= len(factors) <= 2:
            raise InvalidParameterError(
                f"`within` names one or two factors; got {factors!r}",
                argument="within",
                value=within,
            )
        wide, levels = _long_to_wide(data, dv, subject, factors)
        sizes = [len(lv) for lv in levels]
    wide = _listwise(wide, policy, "data")
    n = wide.shape[0]
    if n < 2 or min(sizes) < 2:
        raise InsufficientDataError(
            f"repeated-measures ANOVA needs at least 2 complete subjects and 2 levels per factor; "
            f"got {n} subject(s) and levels {sizes}",
            argument="data",
            reason="too_few",
            n=n,
            minimum=2,
        )
    v.not_constant("data", wide.ravel())
    centred = wide - wide[0, 0]
    centred = centred - centred.mean()
    grand = 0.0
    ncell = centred.shape[1]
    sst = float((centred**2).sum())
    subj_means = centred.mean(axis=1)
    ss_subjects = ncell * float((subj_means**2).sum())
    contrasts: list[tuple[str, np.ndarray[Any, Any]]]
    if len(factors) == 1:
        contrasts = [(factors[0], _helmert(sizes[0]))]
    else:
        ka, kb = sizes
        ha, hb = _helmert(ka), _helmert(kb)
        ua = np.ones((ka, 1)) / math.sqrt(ka)
        ub = np.ones((kb, 1)) / math.sqrt(kb)
        contrasts = [
            (factors[0], np.kron(ha, ub)),
            (factors[1], np.kron(ua, hb)),
            (f"{factors[0]}:{factors[1]}", np.kron(ha, hb)),
        ]
    rows = []
    for name, c in contrasts:
        z = centred @ c
        zbar = z.mean(axis=0) - grand
        ss = n * float(zbar @ zbar)
        resid = z - z.mean(axis=0)
        sse = float((resid**2).sum())
        rows.append((name, c.shape[1], ss, sse, resid))
    ss_err_total = sum(r[3] for r in rows)
    effects = []
    parts = []
    for name, p_, ss, sse, resid in rows:
        if not sse > 1e-28 * sst:
            raise InsufficientDataError(
                f"the effect `{name}` has no error variance: every subject differs from the "
                "others by the same amount in every condition, so F is undefined (infinite); "
                "check the data, or report the condition means directly",
                argument="data",
                reason="no_error_variance",
                n=n,
                minimum=2,
            )
        df1, df2 = float(p_), float(p_ * (n - 1))
        ms = ss / df1
        f = ms / (sse / df2)
        pv = _fsf(f, df1, df2)
        m = resid.T @ resid / (n - 1)
        eps_gg, eps_hf, eps_hf_raw = _sphericity_epsilons(m, n)
        mw: float | None = None
        mp: float | None = None
        if p_ >= 2 and n > p_:
            mw = min(
                max(float(np.linalg.det(m) / (float(np.trace(m)) / p_) ** p_), 0.0), 1.0
            )
            mp = _mauchly_p(mw, p_, n - 1, ncell)
        np2 = ss / (ss + sse)
        ges = ss / (ss + ss_subjects + ss_err_total)
        p_gg = _fsf(f, df1 * eps_gg, df2 * eps_gg)
        p_hf = _fsf(f, df1 * eps_hf, df2 * eps_hf)
        effects.append(
            AnovaEffect(
                name=name,
                ss=ss,
                df=df1,
                ms=ms,
                statistic=f,
                pvalue=pv,
                ss_error=sse,
                df_error=df2,
                partial_eta_squared=np2,
                eta_squared=ss / sst,
                generalized_eta_squared=ges,
                eps_gg=eps_gg,
                eps_hf=eps_hf,
                eps_hf_raw=eps_hf_raw,
                eps_lb=1.0 / p_,
                pvalue_gg=p_gg,
                pvalue_hf=p_hf,
                mauchly_w=mw,
                mauchly_pvalue=mp,
            )
        )
        parts.append(
            f"{name}: F({fmt.df_text(df1)}, {fmt.df_text(df2)}) = {fmt.num(f)}, {fmt.pval(pv)} "
            f"(Greenhouse-Geisser ε = {fmt.num(eps_gg)}, {fmt.pval(p_gg)}), "
            f"η²G = {fmt.num(ges)}"
        )
    return AnovaTableResult(
        method="Repeated-measures ANOVA",
        effects=tuple(effects),
        ss_residual=ss_err_total,
        df_residual=float(sum(e.df_error for e in effects)),
        ss_total=sst,
        n=n,
        ss_subjects=ss_subjects,
        interpretation="; ".join(parts) + ".",
    )

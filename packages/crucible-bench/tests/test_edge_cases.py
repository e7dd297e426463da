"""Inputs that once gave silent wrong numbers (issue #17), each checked against a reference.

The reference of each case is named beside it: scipy or statsmodels on the same definition, an
exact computation written out in the test, or a value R documents.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crucible_bench as cb

ALTERNATIVES = ("two-sided", "less", "greater")

# ---------------------------------------------------------------- Wilcoxon, Pratt's zeros


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("continuity", [False, True])
@pytest.mark.parametrize(
    "d",
    [
        [0, 0, 0, 1, 2, -3, 4, 5],  # the issue's case: exact variance gives p = 0.19160
        [0, 0, 1, 1, -1, 2, 2, -3, 3, 4, 0, 5],  # zeros plus ties among non-zeros
        [0, -1, 2, 3, 3, -3, 4, 6, 7],
    ],
)
def test_wilcoxon_pratt_normal_approximation_matches_scipy(d, alternative, continuity):
    from scipy.stats import wilcoxon

    ours = cb.wilcoxon(
        d,
        zero_method="pratt",
        method="asymptotic",
        continuity=continuity,
        alternative=alternative,
    )
    ref = wilcoxon(
        d,
        zero_method="pratt",
        method="approx",
        correction=continuity,
        alternative=alternative,
    )
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-12)


def test_wilcoxon_pratt_issue_value():
    r = cb.wilcoxon(
        [0, 0, 0, 1, 2, -3, 4, 5],
        zero_method="pratt",
        method="asymptotic",
        continuity=False,
    )
    # by hand: ranks of |d| are 2,2,2,4,5,6,7,8; W+ = 24, E = 30/2, Var = 190/4
    from scipy.special import ndtr

    z = (24 - 15) / np.sqrt(190 / 4)
    assert r.pvalue == pytest.approx(2 * ndtr(-z), rel=1e-14)
    assert round(r.pvalue, 5) == 0.19160


# ---------------------------------------------------------------- McNemar, b == c


@pytest.mark.parametrize(
    "table",
    [
        [[5, 3], [3, 5]],  # the issue's case: R 0.1667, p 0.683
        [[10, 1], [1, 4]],
        [[0, 12], [12, 0]],
        [[7, 3], [4, 9]],  # |b − c| = 1: the corrected statistic is 0
        [[794, 150], [86, 570]],
    ],
)
@pytest.mark.parametrize("continuity", [True, False])
def test_mcnemar_chi2_matches_statsmodels(table, continuity):
    from statsmodels.stats.contingency_tables import mcnemar

    ours = cb.mcnemar(table, exact=False, continuity=continuity)
    ref = mcnemar(np.asarray(table), exact=False, correction=continuity)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-13, abs=1e-15)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    exact = mcnemar(np.asarray(table), exact=True)
    assert ours.pvalue_exact == pytest.approx(exact.pvalue, rel=1e-12)


def test_mcnemar_b_equals_c_issue_value():
    r = cb.mcnemar([[5, 3], [3, 5]], exact=False)
    assert r.statistic == pytest.approx(1 / 6, rel=1e-15)  # (|3 − 3| − 1)²/(3 + 3)
    assert round(r.pvalue, 3) == 0.683  # R: mcnemar.test(matrix(c(5,3,3,5), 2))


# ---------------------------------------------------------------- repeated measures, two subjects


def _anova_rm_statsmodels(wide):
    pd = pytest.importorskip("pandas")
    from statsmodels.stats.anova import AnovaRM

    n, k = np.shape(wide)
    df = pd.DataFrame(
        {
            "s": np.repeat(np.arange(n), k),
            "c": np.tile(np.arange(k), n),
            "y": np.ravel(wide),
        }
    )
    return AnovaRM(df, "y", "s", within=["c"]).fit().anova_table.iloc[0]


@pytest.mark.parametrize(
    "wide", [[[1, 2, 3], [2, 4, 7]], [[1, 2], [2, 4]], [[0.5, 2, 9, 3], [1, 1, 4, 8]]]
)
def test_rm_anova_two_subjects_is_defined_and_bounded(wide):
    r = cb.rm_anova(wide)
    e = r.effects[0]
    ref = _anova_rm_statsmodels(wide)
    assert e.statistic == pytest.approx(ref["F Value"], rel=1e-12)
    assert e.pvalue == pytest.approx(ref["Pr > F"], rel=1e-10)
    k = np.shape(wide)[1]
    # two subjects: the error covariance has rank 1, so ε̂_GG is exactly the lower bound 1/(k−1)
    # (pingouin gives 0.5 for the 3-level case); the HF formula is 0/0 there and ε_HF = 1/(k−1)
    assert e.eps_gg == pytest.approx(1 / (k - 1), rel=1e-14)
    assert e.eps_hf == e.eps_lb == pytest.approx(1 / (k - 1))
    assert e.pvalue_hf == pytest.approx(e.pvalue_gg, rel=1e-14)
    assert e.eps_hf_raw is None or k == 2
    assert 0 <= e.pvalue_hf <= 1


def test_compare_groups_paired_with_two_subjects():
    r = cb.compare_groups({"a": [1, 2], "b": [2, 4], "c": [3, 7]}, paired=True)
    ref = _anova_rm_statsmodels([[1, 2, 3], [2, 4, 7]])
    assert r.statistic == pytest.approx(ref["F Value"], rel=1e-12)
    assert 0 <= r.pvalue <= 1


def test_rm_anova_epsilons_match_pingouin_for_three_or_more_subjects():
    pd = pytest.importorskip("pandas")
    pg = pytest.importorskip("pingouin")
    rng = np.random.default_rng(17)
    seen_capped = seen_inside = False
    for _ in range(60):
        n, k = int(rng.integers(3, 7)), int(rng.integers(3, 6))
        wide = rng.normal(size=(n, k)) * rng.uniform(0.1, 3, size=k)
        e = cb.rm_anova(wide).effects[0]
        ref_gg = pg.epsilon(pd.DataFrame(wide), correction="gg")
        ref_hf = pg.epsilon(
            pd.DataFrame(wide), correction="hf"
        )  # min(raw, 1), no lower bound
        lower = 1 / (k - 1)
        assert e.eps_gg == pytest.approx(ref_gg, rel=1e-10)
        assert lower <= e.eps_hf <= 1
        # for n ≥ 3 the HF formula is ≥ 1/(k−1) whenever ε̂_GG is, so pingouin's min(raw, 1) and
        # our [1/(k−1), 1] bounds agree
        seen_capped |= ref_hf == 1
        seen_inside |= ref_hf < 1
        assert e.eps_hf == pytest.approx(ref_hf, rel=1e-10)
    assert seen_capped and seen_inside


def test_rm_anova_without_error_variance_is_refused():
    with pytest.raises(cb.InsufficientDataError, match="no error variance") as info:
        cb.rm_anova([[1, 2, 3], [2, 3, 4], [3, 4, 5]])
    assert info.value.reason == "no_error_variance"
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------- r × c Fisher

JOB = [[1, 2, 1, 0], [3, 3, 6, 1], [10, 10, 14, 9], [6, 7, 12, 11]]


def _enumerated_fisher(table):
    """Independent oracle: every table with the margins (itertools), probabilities from scipy."""
    from itertools import product

    from scipy.stats import random_table

    t = np.asarray(table)
    rows, cols = t.sum(1), t.sum(0)
    dist = random_table(rows, cols)
    p_obs = dist.pmf(t)
    total = 0.0
    # rows 0..r−2 free (each a composition of its row total), the last row is what is left
    choices = [
        [c for c in product(*(range(x + 1) for x in cols)) if sum(c) == rows[i]]
        for i in range(len(rows) - 1)
    ]
    for head in product(*choices):
        last = cols - np.sum(head, axis=0)
        if (last < 0).any():
            continue
        p = dist.pmf(np.vstack([*head, last]))
        if p <= p_obs * (1 + 1e-7):
            total += p
    return total


def test_fisher_rxc_job_satisfaction_matches_r():
    # R: fisher.test(Job) in ?fisher.test (Agresti 2002, p. 57): p-value = 0.7827
    r = cb.fisher_exact(JOB)
    assert round(r.pvalue, 4) == 0.7827
    # R's FEXACT (ACM 643, through its Rust port `fexact` 0.2.0, run outside this suite)
    assert r.pvalue == pytest.approx(0.7826849389665325, rel=1e-10)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        # full enumeration of all 3 × 3 tables with these margins (math.fsum of scipy-free
        # log-factorial probabilities), the extreme tail where a scaling bug once lost 0.3 %
        ([[37, 23, 1], [6, 4, 32], [7, 11, 12]], 9.517628195947432e-16),
        ([[35, 20, 37], [8, 38, 16], [30, 34, 0]], 9.789159388018605e-14),
        # R's FEXACT (fexact 0.2.0, as above); R needs workspace > 2e5 for the last two
        ([[27, 9], [10, 5], [9, 3], [2, 19], [2, 42]], 2.0239684264375677e-14),
        ([[9, 21, 15, 3], [3, 5, 13, 3], [3, 6, 0, 10]], 3.2260222461941175e-05),
        ([[5, 3, 8, 2, 6, 4], [4, 7, 2, 6, 3, 5]], None),
    ],
)
def test_fisher_rxc_matches_enumeration_and_fexact(table, expected):
    p = cb.fisher_exact(table).pvalue
    if expected is None:  # a 2 × c table: every first row enumerated
        expected = _enumerated_fisher_2xc(table)
    assert p == pytest.approx(expected, rel=1e-8)


def _enumerated_fisher_2xc(table):
    """Exact 2 × c p-value by dynamic programming over the first row (independent of the network)."""
    from scipy.special import gammaln

    t = np.asarray(table)
    cols, n1 = t.sum(0), int(t[0].sum())
    # log-probability of a first row x: Σ log C(c_j, x_j) − log C(N, n1)
    lp_obs = sum(
        gammaln(c + 1) - gammaln(x + 1) - gammaln(c - x + 1)
        for c, x in zip(cols, t[0], strict=True)
    )
    dist = {0: [0.0]}  # partial first-row sum → list of partial log C sums
    for c in cols:
        nxt: dict[int, list[float]] = {}
        for s, vals in dist.items():
            for x in range(min(c, n1 - s) + 1):
                w = gammaln(c + 1) - gammaln(x + 1) - gammaln(c - x + 1)
                nxt.setdefault(s + x, []).extend(v + w for v in vals)
        dist = {s: vs for s, vs in nxt.items() if s <= n1}
    n = int(t.sum())
    norm = gammaln(n + 1) - gammaln(n1 + 1) - gammaln(n - n1 + 1)
    vals = np.asarray(dist[n1])
    keep = vals <= lp_obs + np.log1p(1e-7)
    return float(np.exp(vals[keep] - norm).sum())


def test_fisher_rxc_drops_empty_rows_and_columns():
    t = [[3, 0, 1, 4], [0, 0, 0, 0], [1, 0, 5, 2]]
    reduced = [[3, 1, 4], [1, 5, 2]]
    assert cb.fisher_exact(t).pvalue == pytest.approx(
        _enumerated_fisher(reduced), rel=1e-10
    )
    assert cb.fisher_exact([[3, 0, 1], [0, 0, 0], [0, 0, 0]]).pvalue == 1.0


def test_fisher_simulated_pvalue_follows_r_convention_and_seed():
    a = cb.fisher_exact(JOB, simulate=True, n_resamples=4000, rng=7)
    b = cb.fisher_exact(JOB, simulate=True, n_resamples=4000, rng=a.seed)
    assert a.pvalue == b.pvalue
    assert a.seed == 7
    assert a.n_resamples == 4000
    # R: (1 + #{S_sim ≤ S_obs}) / (B + 1), so (B + 1)·p is an integer ≥ 1
    k = a.pvalue * 4001
    assert k == pytest.approx(round(k), abs=1e-9)
    assert k >= 1
    # agrees with the exact p within 4 binomial standard errors
    exact = 0.7826849389665325
    assert abs(a.pvalue - exact) < 4 * np.sqrt(exact * (1 - exact) / 4000)
    assert "simulated" in a.method
    assert "B = 4,000" in a.interpretation


def test_fisher_simulated_pvalue_of_the_most_extreme_table_is_one_over_b_plus_one():
    # the observed table is (much) less probable than almost any random table with its margins
    t = [[20, 0, 0], [0, 20, 0], [0, 0, 20]]
    r = cb.fisher_exact(t, simulate=True, n_resamples=999, rng=1)
    assert r.pvalue == pytest.approx(1 / 1000)


@pytest.mark.parametrize(
    "call",
    [
        lambda: cb.fisher_exact([[1, 2], [3, 4]], simulate=True),
        lambda: cb.fisher_exact(JOB, simulate=True, n_resamples=0),
        lambda: cb.fisher_exact(JOB, simulate=True, n_resamples=2.5),
        lambda: cb.fisher_exact(JOB, simulate=True, rng=-1),
    ],
)
def test_fisher_simulation_options_are_checked(call):
    with pytest.raises(cb.InvalidParameterError):
        call()


def test_rm_anova_singular_error_covariance_gives_mauchly_p_zero():
    # the error covariance has rank 1 < 2 contrasts: W = 0, and R's mauchly.test gives p = 0
    e = cb.rm_anova([[0, 0, 0], [0, 0, 0], [0, 0, 1]]).effects[0]
    assert e.mauchly_w == 0.0
    assert e.mauchly_pvalue == 0.0


# ---------------------------------------------------------------- power: impossible n


@pytest.mark.parametrize(
    ("call", "argument", "minimum"),
    [
        (lambda: cb.power_ttest_unequal(effect_size=0.5, n1=1, n2=1), "n1", "2"),
        (lambda: cb.power_ttest_unequal(effect_size=0.5, n1=10, n2=1.5), "n2", "2"),
        (
            lambda: cb.power_ttest_unequal(n1=1, n2=10, power=0.8),
            "n1",
            "2",
        ),
        (lambda: cb.power_chi2(w=0.3, n=0, df=1), "n", "1"),
        (lambda: cb.power_chi2(n=0, df=1, power=0.8), "n", "1"),
        (lambda: cb.power_chi2(w=0.3, n=10, df=0), "df", "1"),
        (lambda: cb.power_chi2(w=0.3, n=10, df=1.5), "df", "1"),
        (lambda: cb.power_chi2(w=-0.3, n=10, df=1), "w", "0"),
        (lambda: cb.power_proportions(effect_size=0.3, n=-5), "n", "1"),
        (lambda: cb.power_proportions(n=-5, power=0.8), "n", "1"),
        (lambda: cb.power_proportions(effect_size=4.0, n=10), "effect_size", "π"),
        (lambda: cb.power_ttest(effect_size=0.5, n=1), "n", "2"),
        (lambda: cb.power_ttest(n=1, power=0.8), "n", "2"),
        (lambda: cb.power_ttest(effect_size=0.5, n=math.inf), "n", "2"),
        (lambda: cb.power_ttest(effect_size=math.nan, n=10), "effect_size", "finite"),
        (lambda: cb.power_ttest(effect_size=0.5, n="20"), "n", "2"),
        (lambda: cb.power_ttest(effect_size=0.5, n=True), "n", "2"),
        (lambda: cb.power_anova(k=1, n=10, f=0.25), "k", "2"),
        (lambda: cb.power_anova(k=3, n=1, f=0.25), "n", "2"),
        (lambda: cb.power_anova(k=3, f=0.25, power=0.8, n=None), "n", None),
        (lambda: cb.power_anova(k=None, n=1, f=0.25, power=0.8), "n", "2"),
        (lambda: cb.power_anova(k=3, n=10, f=-0.1), "f", "0"),
        (
            lambda: cb.plan_sample_size([1, 2, 3, 4], [2, 3, 5, 4], repeats=[0]),
            "repeats[0]",
            "1",
        ),
        (
            lambda: cb.plan_sample_size([1, 2, 3, 4], [2, 3, 5, 4], repeats=[2.5]),
            "repeats[0]",
            "1",
        ),
    ],
)
def test_power_functions_refuse_impossible_inputs_naming_the_parameter_and_minimum(
    call, argument, minimum
):
    if minimum is None:  # a valid call: solving for n must give at least the minimum
        assert call().n >= 2
        return
    with pytest.raises(cb.InvalidParameterError) as info:
        call()
    assert info.value.argument == argument
    assert f"`{argument}`" in str(info.value)
    assert minimum in str(info.value)


def test_power_solving_for_n_never_goes_below_the_minimum():
    # the solved n1 reproduces the target power when fed back (R pwr.t2n.test also searches n ≥ 2)
    r = cb.power_ttest_unequal(effect_size=0.5, n2=50, power=0.8)
    assert r.n >= 2
    check = cb.power_ttest_unequal(effect_size=0.5, n1=r.n, n2=50)
    assert check.power == pytest.approx(0.8, abs=1e-9)
    with pytest.raises(cb.ConvergenceError, match="smallest allowed n1"):
        cb.power_ttest_unequal(effect_size=3.0, n2=50, power=0.5)


# ---------------------------------------------------------------- noncentral-t CIs at huge |t|


@pytest.mark.parametrize("t", [50.5, 80.0, 300.0, 2000.0])
@pytest.mark.parametrize("df", [2, 9, 60, 800])
def test_nct_ci_beyond_the_direct_range_inverts_scipys_noncentral_t(t, df):
    from scipy.special import nctdtr

    from crucible_bench._effect import nct_ci

    lo, hi = nct_ci(t, df, 0.95)
    # scipy's own cdf is good to ~1e-8 here, which bounds the agreement
    assert nctdtr(df, lo, t) == pytest.approx(0.975, abs=2e-8)
    assert nctdtr(df, hi, t) == pytest.approx(0.025, abs=2e-8)
    nlo, nhi = nct_ci(-t, df, 0.95)
    assert (nlo, nhi) == (-hi, -lo)


def test_nct_ci_is_continuous_where_the_method_switches():
    from crucible_bench._effect import nct_ci

    below = nct_ci(50.0, 7, 0.9)
    above = nct_ci(50.0 + 1e-9, 7, 0.9)
    assert above[0] == pytest.approx(below[0], rel=1e-9)
    assert above[1] == pytest.approx(below[1], rel=1e-9)


@pytest.mark.parametrize("t", [1.3e5, 1e7, -4e9, 1e14])
@pytest.mark.parametrize("df", [1, 5, 40, 10_000])
def test_nct_ci_at_huge_t_keeps_the_width_the_sd_uncertainty_gives(t, df):
    # as t → ∞, P(T ≤ t) → P(S ≥ δ/t) with S = √(χ²_ν/ν): the limits tend to |t|·S's quantiles
    from scipy.special import chdtri

    from crucible_bench._effect import nct_ci

    lo, hi = nct_ci(t, df, 0.95)
    q_lo = math.sqrt(chdtri(df, 0.975) / df)
    q_hi = math.sqrt(chdtri(df, 0.025) / df)
    expect = (t * q_lo, t * q_hi) if t > 0 else (t * q_hi, t * q_lo)
    assert lo == pytest.approx(expect[0], rel=1e-6)
    assert hi == pytest.approx(expect[1], rel=1e-6)
    assert hi - lo > 0.01 * abs(t)


def test_cohen_dz_ci_for_a_huge_t_is_not_zero_width():
    from scipy.special import chdtri

    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    noise = np.array([1, -1, 2, -2, 1, -1]) * 1e-6
    r = cb.cohen_dz(base + 1.0 + noise, base)
    dz = r.estimate
    assert abs(dz * math.sqrt(6)) > 1e5
    lo, hi = r.confidence_interval
    assert lo < dz < hi
    assert lo == pytest.approx(dz * math.sqrt(chdtri(5, 0.975) / 5), rel=1e-4)
    g = cb.hedges_g(base + 1e7, base + np.array([1, -1, 2, -2, 1, -1]) * 1e-3)
    assert g.confidence_interval[0] < g.estimate < g.confidence_interval[1]


# ---------------------------------------------------------------- correlations at |r| = 1


@pytest.mark.parametrize(
    ("sign", "alternative", "expected"),
    [
        (1, "two-sided", (1.0, 1.0)),
        (1, "greater", (1.0, 1.0)),
        (1, "less", (-1.0, 1.0)),
        (-1, "two-sided", (-1.0, -1.0)),
        (-1, "greater", (-1.0, 1.0)),
        (-1, "less", (-1.0, -1.0)),
    ],
)
@pytest.mark.parametrize("method", [cb.pearson, cb.spearman, cb.kendall])
def test_one_sided_correlation_ci_at_perfect_correlation_runs_to_the_far_end(
    sign, alternative, expected, method
):
    x = [1, 2, 3, 4, 5, 6, 7]
    y = [sign * v for v in x]
    r = method(x, y, alternative=alternative)
    assert r.statistic == sign
    assert r.confidence_interval == expected


# ---------------------------------------------------------------- Cohen's f as η² → 1


def test_cohen_f_keeps_full_precision_as_eta_squared_approaches_one():
    from fractions import Fraction

    groups = [[0.0, 2.0**-30], [1.0, 1.0 + 2.0**-30]]
    r = cb.anova_oneway(*groups)
    # exact: SSb = 4·(1/2)² = 1, SSw = 2·2·(2^-31)² = 2^-60, f = √(SSb/SSw) = 2^30
    ssw = sum(
        sum((Fraction(v) - sum(map(Fraction, g)) / len(g)) ** 2 for v in g)
        for g in groups
    )
    assert r.eta_squared == pytest.approx(1.0)
    assert math.isfinite(r.cohen_f)
    assert r.cohen_f == pytest.approx(math.sqrt(1 / float(ssw)), rel=1e-12)
    assert cb.welch_anova(*groups).cohen_f == pytest.approx(r.cohen_f, rel=1e-12)


# ---------------------------------------------------------------- η² CI at huge F, Levene undefined


def test_ncf_cdf_beyond_scipys_range_matches_scipy_where_both_work():
    from scipy.special import ncfdtr

    from crucible_bench._effect import _ncf_cdf_large

    for df1, df2 in ((1, 4), (3, 30), (2, 200)):
        for lam in (1e9, 5e9):
            for ratio in (0.9, 1.0, 1.1):
                f = lam * ratio / df1
                # the normal law of χ²'(df1, λ) is off by its skewness ≈ 3/√λ ≈ 1e-4, which the
                # much wider χ²_df2 smooths to ≲ 1e-7 in P(F' ≤ f)
                assert _ncf_cdf_large(df1, df2, lam, f) == pytest.approx(
                    float(ncfdtr(df1, df2, lam, f)), abs=1e-7
                )


@pytest.mark.parametrize("gap", [1e3, 1e6, 1e9, 1e15])
def test_eta_squared_ci_at_huge_f_is_defined_and_contains_the_estimate(gap):
    r = cb.eta_squared([0, 1, 2], [gap, gap + 1, gap + 2])
    lo, hi = r.confidence_interval
    assert 0 <= lo <= r.estimate <= hi <= 1


@pytest.mark.parametrize(
    "groups", [([1.0, 2.0], [3.0, 5.0]), ([1.0, 2.0], [3.0, 5.0], [0.0, 9.0])]
)
def test_levene_without_within_group_spread_of_deviations_is_refused(groups):
    # each group of two: |x − median| is the same for both values, so W = 0/0 (scipy: NaN)
    with pytest.raises(cb.InsufficientDataError, match="deviations"):
        cb.levene(*groups)
    r = cb.compare_groups({f"g{i}": g for i, g in enumerate(groups)})
    assert "not checkable" in r.interpretation or r.method
    assert 0 <= r.pvalue <= 1

"""Agreement with scipy, pingouin and statsmodels where they implement the same definition."""

from __future__ import annotations

import numpy as np
import pytest

import crucible_bench as cb

RNG = np.random.default_rng(20240601)


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return RNG.normal(0, 1, 40), RNG.normal(0.4, 1.5, 35), RNG.normal(0.1, 1, 40)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_ttests_match_scipy(samples, alternative):
    from scipy import stats

    x, y, z = samples
    for equal_var in (True, False):
        ours = cb.ttest(x, y, equal_var=equal_var, alternative=alternative)
        ref = stats.ttest_ind(x, y, equal_var=equal_var, alternative=alternative)
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
        ci = ref.confidence_interval(0.95)
        assert ours.confidence_interval == pytest.approx((ci.low, ci.high), rel=1e-10)
    ours = cb.ttest(x, z, paired=True, alternative=alternative)
    ref = stats.ttest_rel(x, z, alternative=alternative)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-10)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_rank_tests_match_scipy(samples, alternative):
    from scipy import stats

    x, y, z = samples
    x1 = np.round(x, 1)  # ties → normal approximation
    ours = cb.mann_whitney(x1, y, alternative=alternative)
    ref = stats.mannwhitneyu(x1, y, alternative=alternative, method="asymptotic")
    assert ours.statistic == ref.statistic
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    small = cb.mann_whitney(x[:8], y[:7], alternative=alternative)
    assert small.exact
    ref = stats.mannwhitneyu(x[:8], y[:7], alternative=alternative, method="exact")
    assert small.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    w = cb.wilcoxon(x[:20], z[:20], alternative=alternative)
    assert w.exact
    ref = stats.wilcoxon(x[:20], z[:20], alternative=alternative, method="exact")
    assert w.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    w = cb.wilcoxon(x1, np.round(z, 1), alternative=alternative, method="asymptotic")
    ref = stats.wilcoxon(
        x1, np.round(z, 1), alternative=alternative, method="approx", correction=True
    )
    assert w.pvalue == pytest.approx(ref.pvalue, rel=1e-9)


def test_k_sample_tests_match_scipy(samples):
    from scipy import stats

    x, y, z = samples
    assert cb.anova_oneway(x, y, z).pvalue == pytest.approx(
        stats.f_oneway(x, y, z).pvalue, rel=1e-10
    )
    assert cb.kruskal(x, y, z).statistic == pytest.approx(
        stats.kruskal(x, y, z).statistic, rel=1e-12
    )
    cols = np.column_stack([x, z, np.round(z + RNG.normal(0, 1, 40), 1)])
    fr = cb.friedman(cols)
    ref = stats.friedmanchisquare(*cols.T)
    assert fr.statistic == pytest.approx(ref.statistic, rel=1e-12)


def test_tables_match_scipy():
    from scipy import stats

    t = np.array([[12, 5, 7], [3, 9, 8]])
    ours = cb.chi2_independence(t)
    ref = stats.chi2_contingency(t)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    np.testing.assert_allclose(ours.expected, ref.expected_freq, rtol=1e-12)
    t2 = np.array([[12, 5], [3, 9]])
    assert cb.chi2_independence(t2).statistic == pytest.approx(
        stats.chi2_contingency(t2).statistic, rel=1e-12
    )
    for alt in ("two-sided", "less", "greater"):
        f = cb.fisher_exact(t2, alternative=alt)
        ref = stats.fisher_exact(t2, alternative=alt)
        assert f.pvalue == pytest.approx(ref.pvalue, rel=1e-9)
        assert f.sample_odds_ratio == pytest.approx(ref.statistic, rel=1e-12)


def test_fisher_rxc_matches_a_direct_enumeration_oracle():
    from itertools import product

    from scipy.stats import multivariate_hypergeom

    t = np.array([[3, 1, 0], [1, 2, 4]])
    rows, cols = t.sum(1), t.sum(0)

    def prob(tab):
        return multivariate_hypergeom.pmf(tab[0], cols, rows[0])

    p_obs = prob(t)
    total = 0.0
    for first in product(*(range(c + 1) for c in cols)):
        if sum(first) != rows[0]:
            continue
        tab = np.array([first, cols - np.array(first)])
        pr = prob(tab)
        if pr <= p_obs * (1 + 1e-7):
            total += pr
    assert cb.fisher_exact(t).pvalue == pytest.approx(total, rel=1e-10)


def test_twoway_type3_matches_statsmodels():
    pd = pytest.importorskip("pandas")
    smf = pytest.importorskip("statsmodels.formula.api")
    sm = pytest.importorskip("statsmodels.api")
    a = ["x"] * 7 + ["y"] * 9 + ["z"] * 8
    b = (["p", "q"] * 12)[:24]
    y = RNG.normal(0, 1, 24) + np.array([0.5 if v == "y" else 0 for v in a])
    df = pd.DataFrame({"y": y, "a": a, "b": b})
    for typ in (1, 2, 3):
        formula = "y ~ C(a, Sum) * C(b, Sum)" if typ == 3 else "y ~ C(a) * C(b)"
        ref = sm.stats.anova_lm(smf.ols(formula, df).fit(), typ=typ)
        ours = cb.anova_twoway(y, a, b, ss_type=typ)  # type: ignore[arg-type]
        rows = [r for r in ref.index if r not in ("Intercept", "Residual")]
        for eff, row in zip(ours.effects, rows, strict=True):
            assert eff.ss == pytest.approx(ref.loc[row, "sum_sq"], rel=1e-9)
            assert eff.pvalue == pytest.approx(ref.loc[row, "PR(>F)"], rel=1e-8)
        assert ours.ss_residual == pytest.approx(
            ref.loc["Residual", "sum_sq"], rel=1e-9
        )


def test_two_factor_rm_anova_matches_pingouin():
    pd = pytest.importorskip("pandas")
    pg = pytest.importorskip("pingouin")
    n, ka, kb = 10, 2, 3
    rows = []
    for s in range(n):
        base = RNG.normal(0, 1)
        for i in range(ka):
            for j in range(kb):
                rows.append(  # noqa: PERF401 - readable nested loops
                    {
                        "s": s,
                        "A": f"a{i}",
                        "B": f"b{j}",
                        "y": base + 0.4 * i + 0.3 * j + RNG.normal(0, 1),
                    }
                )
    df = pd.DataFrame(rows)
    ours = cb.rm_anova(df, dv="y", subject="s", within=["A", "B"])
    ref = pg.rm_anova(
        data=df, dv="y", subject="s", within=["A", "B"], effsize="ng2"
    ).set_index("Source")
    for name, eff in zip(["A", "B", "A * B"], ours.effects, strict=True):
        assert eff.statistic == pytest.approx(ref.loc[name, "F"], rel=1e-9)
        assert eff.pvalue == pytest.approx(ref.loc[name, "p_unc"], rel=1e-8)
        assert eff.generalized_eta_squared == pytest.approx(
            ref.loc[name, "ng2"], rel=1e-8
        )
        assert eff.eps_gg == pytest.approx(ref.loc[name, "eps"], rel=1e-8)


def test_power_matches_statsmodels():
    sm = pytest.importorskip("statsmodels.stats.power")
    ref = sm.TTestIndPower().power(effect_size=0.4, nobs1=30, alpha=0.05, ratio=1.0)
    assert cb.power_ttest(effect_size=0.4, n=30).power == pytest.approx(ref, rel=1e-9)
    ref = sm.TTestPower().power(
        effect_size=0.3, nobs=25, alpha=0.05, alternative="larger"
    )
    ours = cb.power_ttest(
        effect_size=0.3, n=25, kind="one-sample", alternative="greater"
    )
    assert ours.power == pytest.approx(ref, rel=1e-9)


def test_power_solutions_round_trip():
    r = cb.power_ttest(effect_size=0.35, power=0.9)
    back = cb.power_ttest(effect_size=0.35, n=r.n)
    assert back.power == pytest.approx(0.9, abs=1e-10)
    a = cb.power_anova(k=3, n=None, f=0.25, power=0.8)
    assert cb.power_anova(k=3, n=a.n, f=0.25).power == pytest.approx(0.8, abs=1e-10)
    c = cb.power_chi2(w=0.3, n=None, df=2, power=0.8)
    assert cb.power_chi2(w=0.3, n=c.n, df=2).power == pytest.approx(0.8, abs=1e-10)
    p = cb.power_proportions(effect_size=0.2, power=0.8)
    assert cb.power_proportions(effect_size=0.2, n=p.n).power == pytest.approx(
        0.8, abs=1e-10
    )
    u = cb.power_ttest_unequal(effect_size=0.5, n1=30, n2=None, power=0.7)
    assert cb.power_ttest_unequal(
        effect_size=0.5, n1=30, n2=u.n2, power=None
    ).power == pytest.approx(0.7, abs=1e-10)


def test_bootstrap_agrees_with_scipy_on_a_two_sample_statistic():
    from scipy import stats

    x, y = RNG.normal(1, 1, 60), RNG.normal(0, 2, 50)
    ours = cb.bootstrap_ci(
        (x, y), "mean_difference", method="percentile", n_resamples=20_000, rng=1
    )
    ref = stats.bootstrap(
        (x, y),
        lambda a, b, axis: a.mean(axis) - b.mean(axis),
        method="percentile",
        n_resamples=20_000,
        rng=2,
    )
    assert ours.confidence_interval[0] == pytest.approx(
        ref.confidence_interval.low, abs=0.05
    )
    assert ours.confidence_interval[1] == pytest.approx(
        ref.confidence_interval.high, abs=0.05
    )
    bca = cb.bootstrap_ci((x, y), "mean_difference", n_resamples=20_000, rng=1)
    ref = stats.bootstrap(
        (x, y),
        lambda a, b, axis: a.mean(axis) - b.mean(axis),
        method="BCa",
        n_resamples=20_000,
        rng=2,
    )
    assert bca.confidence_interval[0] == pytest.approx(
        ref.confidence_interval.low, abs=0.05
    )
    paired = cb.bootstrap_ci(
        (x[:50], y),
        lambda a, b: np.corrcoef(a, b)[0, 1],
        paired=True,
        n_resamples=1000,
        rng=3,
    )
    assert -1 <= paired.confidence_interval[0] <= paired.confidence_interval[1] <= 1

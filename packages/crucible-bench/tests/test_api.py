"""Behaviour of the wider API: solving each power quantity, effect sizes, layouts, forced tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crucible_bench as cb

RNG = np.random.default_rng(99)


def test_power_solves_every_quantity_consistently():
    f = cb.power_anova(k=4, n=20, f=None, power=0.8)
    assert cb.power_anova(k=4, n=20, f=f.effect_size).power == pytest.approx(
        0.8, abs=1e-9
    )
    k = cb.power_anova(k=None, n=15, f=0.3, power=0.8)
    assert cb.power_anova(k=k.k, n=15, f=0.3).power == pytest.approx(0.8, abs=1e-9)
    w = cb.power_chi2(w=None, n=100, df=3, power=0.9)
    assert cb.power_chi2(w=w.effect_size, n=100, df=3).power == pytest.approx(
        0.9, abs=1e-9
    )
    h = cb.power_proportions(effect_size=None, n=200, power=0.8, alternative="less")
    assert h.effect_size < 0
    assert cb.power_proportions(
        effect_size=h.effect_size, n=200, alternative="less"
    ).power == pytest.approx(0.8, abs=1e-9)
    d = cb.power_ttest_unequal(effect_size=None, n1=20, n2=40, power=0.8)
    assert cb.power_ttest_unequal(
        effect_size=d.effect_size, n1=20, n2=40
    ).power == pytest.approx(0.8, abs=1e-9)
    n1 = cb.power_ttest_unequal(effect_size=0.6, n1=None, n2=30, power=0.8)
    assert cb.power_ttest_unequal(
        effect_size=0.6, n1=n1.n, n2=30
    ).power == pytest.approx(0.8, abs=1e-9)
    less = cb.power_ttest(
        effect_size=None, n=30, power=0.8, alternative="less", kind="paired"
    )
    assert less.effect_size < 0
    for r in (f, k, w, h, d, n1, less):
        assert r.interpretation
        assert r.render()


def test_power_two_sided_counts_both_tails():
    # with a tiny effect both tails matter: power at d = 0 equals alpha exactly
    assert cb.power_ttest(effect_size=0.0, n=10).power == pytest.approx(0.05, rel=1e-9)
    assert cb.power_ttest(
        effect_size=1e-12, n=10, alternative="greater"
    ).power == pytest.approx(0.05, rel=1e-6)


def test_one_sample_effect_sizes_and_ci():
    x = [5.1, 4.9, 5.6, 5.8, 6.0, 5.2]
    d = cb.cohens_d(x, mu=5.0)
    t = cb.ttest(x, mu=5.0)
    assert d.estimate == pytest.approx(t.cohens_d, rel=1e-12)
    assert d.confidence_interval[0] < d.estimate < d.confidence_interval[1]
    g = cb.hedges_g(x)
    assert abs(g.estimate) < abs(cb.cohens_d(x).estimate)


def test_two_sample_d_with_mu_shift():
    x, y = [5.1, 4.9, 5.6, 5.8, 6.0, 5.2], [4.1, 4.4, 4.0, 4.8, 4.3, 4.6]
    shifted = cb.cohens_d(x, [v + 1.0 for v in y])
    assert cb.cohens_d(x, y, mu=1.0).estimate == pytest.approx(
        shifted.estimate, rel=1e-12
    )


def test_paired_effect_sizes():
    x, y = [5, 6, 7, 8, 9], [4, 6, 5, 6, 8]
    dz = cb.cohen_dz(x, y)
    assert dz.estimate == pytest.approx(
        cb.ttest(x, y, paired=True).statistic / math.sqrt(5), rel=1e-12
    )
    dav = cb.cohen_dav(x, y)
    lo, hi = dav.confidence_interval
    assert lo < dav.estimate < hi


def test_odds_ratio_zero_cell_uses_haldane_and_says_so():
    r = cb.odds_ratio([[0, 10], [5, 5]])
    assert "½ added" in r.method
    assert r.estimate == pytest.approx((0.5 * 5.5) / (10.5 * 5.5))
    plain = cb.odds_ratio([[2, 10], [5, 5]], correction=False)
    assert plain.estimate == pytest.approx(0.2)


def test_cohens_h_and_risk_difference():
    h = cb.cohens_h(0.7, 0.5, n1=100, n2=100)
    assert h.confidence_interval[0] < h.estimate < h.confidence_interval[1]
    assert math.isnan(cb.cohens_h(0.7, 0.5).confidence_interval[0])
    with pytest.raises(cb.InvalidInputError):
        cb.cohens_h(1.2, 0.5)
    rd = cb.risk_difference([[56, 14], [48, 32]])
    assert rd.estimate == pytest.approx(0.2)
    assert rd.confidence_interval == pytest.approx(
        (0.0524, 0.3339), abs=5e-5
    )  # Newcombe 1998


def test_eta_squared_ci_bounds():
    weak = cb.eta_squared([1, 2, 3, 4], [1.5, 2.5, 3.5, 4.5])
    assert weak.confidence_interval[0] == 0.0
    strong = cb.eta_squared([1, 2, 3], [7, 8, 9], [14, 15, 16])
    assert (
        0
        < strong.confidence_interval[0]
        < strong.estimate
        < strong.confidence_interval[1]
        < 1
    )
    assert cb.cliffs_delta([3, 4, 5], [1, 2, 3]).estimate == pytest.approx(8 / 9)


def test_wide_and_long_layouts_agree():
    wide = RNG.normal(0, 1, (12, 3)) + np.array([0.0, 0.3, 0.8])
    by_matrix = cb.rm_anova(wide)
    by_mapping = cb.rm_anova({"a": wide[:, 0], "b": wide[:, 1], "c": wide[:, 2]})
    long = {
        "y": wide.ravel(),
        "subject": np.repeat(np.arange(12), 3),
        "cond": np.tile(["a", "b", "c"], 12),
    }
    by_long = cb.rm_anova(long, dv="y", subject="subject", within="cond")
    for r in (by_mapping, by_long):
        assert r.effects[0].statistic == pytest.approx(
            by_matrix.effects[0].statistic, rel=1e-10
        )
        assert r.effects[0].mauchly_pvalue == pytest.approx(
            by_matrix.effects[0].mauchly_pvalue, rel=1e-10
        )
    assert cb.friedman(
        {"a": wide[:, 0], "b": wide[:, 1], "c": wide[:, 2]}
    ).statistic == pytest.approx(cb.friedman(wide).statistic)
    with pytest.raises(cb.InvalidParameterError):
        cb.rm_anova(long, dv="y", subject="subject")
    with pytest.raises(cb.InvalidInputError, match="no column"):
        cb.rm_anova(long, dv="score", subject="subject", within="cond")


def test_twoway_nan_omit_and_errors():
    y = [1.0, 2.0, 3.0, 4.0, 2.0, 3.0, 5.0, 6.0, math.nan]
    a = list("aabbaabba")
    b = list("xxxxyyyyx")
    r = cb.anova_twoway(y, a, b, nan_policy="omit")
    assert r.n == 8
    with pytest.raises(cb.InvalidInputError):
        cb.anova_twoway(y, a, b)
    with pytest.raises(cb.InsufficientDataError):
        cb.anova_twoway([1, 2, 3, 4], list("abab"), list("xxxx"))


def test_fisher_rxc_and_goodness_of_fit_expected_counts():
    r = cb.fisher_exact([[3, 1, 0], [1, 2, 4]])
    assert 0 < r.pvalue < 1
    assert math.isnan(r.odds_ratio)
    g = cb.chi2_goodness_of_fit([10, 20, 30], [20, 20, 20])
    assert g.statistic == pytest.approx(10.0)
    with pytest.raises(cb.InvalidInputError, match="sum"):
        cb.chi2_goodness_of_fit([10, 20, 30], [10, 10, 10])


def test_forced_tests_in_compare():
    a, b = RNG.normal(0, 1, 20), RNG.normal(0.5, 1, 20)
    assert cb.compare(a, b, test="student").method == "Student's two-sample t-test"
    assert cb.compare(a, b, test="mann_whitney").method.startswith("Mann-Whitney")
    assert cb.compare(a, b, test="wilcoxon").paired
    with pytest.raises(cb.InvalidInputError):
        cb.compare(a, b, paired=True, test="welch")
    with pytest.raises(cb.InvalidInputError):
        cb.compare(a, b, paired=False, test="wilcoxon")
    r = cb.compare(a, b, alternative="less")
    assert r.alternative == "less"


def test_compare_groups_forced_and_paired_parametric():
    base = RNG.normal(0, 1, 15)
    groups = {
        "a": base,
        "b": base + 0.5 + RNG.normal(0, 0.3, 15),
        "c": base + 1 + RNG.normal(0, 0.3, 15),
    }
    rm = cb.compare_groups(groups, paired=True, test="parametric")
    assert rm.method.startswith("Repeated-measures ANOVA")
    fr = cb.compare_groups(groups, paired=True, test="nonparametric", posthoc=False)
    assert fr.method == "Friedman rank sum test"
    assert fr.pairwise == ()
    kw = cb.compare_groups(groups, test="nonparametric", correction="bh")
    assert kw.method.startswith("Kruskal")
    assert all(p.method.startswith("Mann-Whitney") for p in kw.pairwise)
    with pytest.raises(cb.InvalidInputError):
        cb.compare_groups({"a": [1, 2, 3], "b": [1, 2]}, paired=True)
    with pytest.raises(cb.InsufficientDataError):
        cb.compare_groups({"a": [1, 2, 3]})


def test_correlations():
    x = RNG.normal(0, 1, 30)
    y = x + RNG.normal(0, 1, 30)
    for fn in (cb.pearson, cb.spearman, cb.kendall):
        two = fn(x, y)
        greater = fn(x, y, alternative="greater")
        assert greater.pvalue == pytest.approx(two.pvalue / 2, rel=1e-6)
        assert greater.confidence_interval[1] == 1.0


def test_bootstrap_variants():
    x = RNG.exponential(1, 80)
    seeded = cb.bootstrap_ci(
        x, "median", method="percentile", n_resamples=2000, rng=np.random.default_rng(1)
    )
    assert seeded.seed is None
    fresh = cb.bootstrap_ci(x, "std", n_resamples=2000)
    assert isinstance(fresh.seed, int)
    assert (
        cb.bootstrap_ci(x, "std", n_resamples=2000, rng=fresh.seed).confidence_interval
        == fresh.confidence_interval
    )

    def trimmed(a):  # no axis argument: called once per resample
        s = np.sort(a)
        return float(s[5:-5].mean())

    t = cb.bootstrap_ci(x, trimmed, n_resamples=300, rng=2, method="bca")
    assert t.statistic == "trimmed"
    assert t.confidence_interval[0] < t.estimate < t.confidence_interval[1]
    with pytest.raises(cb.InvalidParameterError):
        cb.bootstrap_ci((x, x), "mean", rng=1)
    with pytest.raises(cb.InvalidInputError):
        cb.bootstrap_ci((x, x[:10]), "mean_difference", paired=True)

"""Inputs that once gave silent wrong numbers (issue #17), each checked against a reference.

The reference of each case is named beside it: scipy or statsmodels on the same definition, an
exact computation written out in the test, or a value R documents.
"""

from __future__ import annotations

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

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

"""Invariants that hold for any input: p in [0, 1], CIs contain estimates, order and symmetry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crucible_bench as cb

# strategies.py is a sibling file; load it by path (import-mode=importlib forbids sibling imports)
_spec = importlib.util.spec_from_file_location(
    "crucible_bench_test_strategies", Path(__file__).with_name("strategies.py")
)
assert _spec is not None
assert _spec.loader is not None
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)

ALTS = st.sampled_from(["two-sided", "less", "greater"])


@given(x=S.samples(), y=S.samples(), alt=ALTS, equal_var=st.booleans())
def test_ttest_p_in_unit_interval_and_ci_contains_estimate(x, y, alt, equal_var):
    r = cb.ttest(x, y, equal_var=equal_var, alternative=alt)
    assert 0.0 <= r.pvalue <= 1.0
    lo, hi = r.confidence_interval
    assert lo <= r.estimate <= hi


@given(x=S.samples(), y=S.samples(), data=st.data())
def test_ttest_invariant_to_order_and_antisymmetric(x, y, data):
    px = data.draw(st.permutations(x))
    py = data.draw(st.permutations(y))
    r = cb.ttest(x, y)
    r2 = cb.ttest(px, py)
    swapped = cb.ttest(y, x)
    assert r2.statistic == pytest.approx(r.statistic, rel=1e-9, abs=1e-12)
    assert r2.pvalue == pytest.approx(r.pvalue, rel=1e-9, abs=1e-15)
    assert swapped.statistic == pytest.approx(-r.statistic, rel=1e-9, abs=1e-12)
    assert swapped.pvalue == pytest.approx(r.pvalue, rel=1e-9, abs=1e-15)
    assert swapped.cohens_d == pytest.approx(-r.cohens_d, rel=1e-9, abs=1e-12)


@given(x=S.samples(), y=S.samples(), alt=ALTS)
def test_mann_whitney_p_range_symmetry_and_order(x, y, alt):
    r = cb.mann_whitney(x, y, alternative=alt)
    assert 0.0 <= r.pvalue <= 1.0
    assert r.statistic + r.u2 == len(x) * len(y)
    lo, hi = r.rank_biserial_ci
    assert lo <= r.rank_biserial <= hi
    flip = {"two-sided": "two-sided", "less": "greater", "greater": "less"}[alt]
    s = cb.mann_whitney(y, x, alternative=flip)
    assert s.pvalue == pytest.approx(r.pvalue, rel=1e-9, abs=1e-15)
    assert s.rank_biserial == pytest.approx(-r.rank_biserial, abs=1e-12)
    rev = cb.mann_whitney(x[::-1], y[::-1], alternative=alt)
    assert rev.pvalue == pytest.approx(r.pvalue, rel=1e-12, abs=1e-15)


@given(x=S.samples(min_size=4), alt=ALTS, data=st.data())
def test_wilcoxon_p_range_and_sign_flip(x, alt, data):
    y = data.draw(st.lists(S.values, min_size=len(x), max_size=len(x)))
    if all(a == b for a, b in zip(x, y, strict=True)):
        return
    r = cb.wilcoxon(x, y, alternative=alt)
    assert 0.0 <= r.pvalue <= 1.0
    assert r.w_plus + r.w_minus == r.n_nonzero * (r.n_nonzero + 1) / 2
    flip = {"two-sided": "two-sided", "less": "greater", "greater": "less"}[alt]
    s = cb.wilcoxon(y, x, alternative=flip)
    assert s.pvalue == pytest.approx(r.pvalue, rel=1e-9, abs=1e-15)
    assert s.rank_biserial == pytest.approx(-r.rank_biserial, abs=1e-12)


@given(groups=st.lists(S.samples(), min_size=2, max_size=5), data=st.data())
def test_anova_family_invariant_to_group_and_value_order(groups, data):
    order = data.draw(st.permutations(range(len(groups))))
    shuffled = [data.draw(st.permutations(groups[i])) for i in order]
    for fn in (cb.anova_oneway, cb.kruskal):
        a, b = fn(*groups), fn(*shuffled)
        assert 0.0 <= a.pvalue <= 1.0
        assert b.statistic == pytest.approx(a.statistic, rel=1e-9, abs=1e-12)
    r = cb.anova_oneway(*groups)
    assert r.ss_between >= 0
    assert r.ss_within > 0
    assert 0.0 <= r.eta_squared <= 1.0


@given(
    p=S.pvalue_lists,
    method=st.sampled_from(
        ["bonferroni", "holm", "hochberg", "bh", "by", "hommel", "sidak"]
    ),
)
def test_adjusted_pvalues_monotone_and_at_least_raw(p, method):
    raw = np.asarray(p)
    adj = cb.adjust_pvalues(p, method=method)
    assert adj.shape == raw.shape
    assert np.all(adj >= raw - 1e-15)
    assert np.all(adj <= 1.0)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-12), "adjusted p must be monotone in raw p"


@given(p=S.pvalue_lists, data=st.data())
def test_adjusted_pvalues_keep_input_order(p, data):
    perm = data.draw(st.permutations(range(len(p))))
    adj = cb.adjust_pvalues(p, method="holm")
    adj_perm = cb.adjust_pvalues([p[i] for i in perm], method="holm")
    np.testing.assert_allclose(adj_perm, adj[list(perm)], rtol=1e-12)


@given(x=S.samples(min_size=4), y=S.samples(min_size=4))
@settings(max_examples=25)
def test_cohens_d_ci_contains_estimate_and_flips_sign(x, y):
    d = cb.cohens_d(x, y)
    lo, hi = d.confidence_interval
    assert lo <= d.estimate <= hi
    s = cb.cohens_d(y, x)
    assert s.estimate == pytest.approx(-d.estimate, abs=1e-12)
    assert s.confidence_interval[0] == pytest.approx(-hi, rel=1e-7, abs=1e-9)


@given(
    x=S.samples(min_size=5),
    seed=st.integers(0, 2**32),
    method=st.sampled_from(["percentile", "basic", "normal", "bca"]),
)
@settings(max_examples=20, deadline=None)
def test_bootstrap_reproducible_from_the_recorded_seed(x, seed, method):
    a = cb.bootstrap_ci(x, method=method, n_resamples=500, rng=seed)
    b = cb.bootstrap_ci(x, method=method, n_resamples=500, rng=a.seed)
    assert a.confidence_interval == b.confidence_interval
    assert a.confidence_interval[0] <= a.confidence_interval[1]


@given(x=S.samples(min_size=5), y=S.samples(min_size=5))
@settings(max_examples=25)
def test_correlations_in_range_and_symmetric(x, y):
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    if len(set(x)) < 2 or len(set(y)) < 2:
        return
    for fn in (cb.pearson, cb.spearman, cb.kendall):
        r = fn(x, y)
        s = fn(y, x)
        assert -1.0 <= r.statistic <= 1.0
        assert 0.0 <= r.pvalue <= 1.0
        assert s.statistic == pytest.approx(r.statistic, abs=1e-12)
        lo, hi = r.confidence_interval
        if not np.isnan(lo):
            assert lo <= r.statistic <= hi


@given(
    t=st.lists(
        st.lists(st.integers(0, 30), min_size=2, max_size=4), min_size=2, max_size=4
    ).filter(lambda t: len({len(r) for r in t}) == 1)
)
def test_chi2_independence_p_range_and_transpose(t):
    arr = np.asarray(t)
    if (arr.sum(0) == 0).any() or (arr.sum(1) == 0).any():
        return
    r = cb.chi2_independence(arr)
    s = cb.chi2_independence(arr.T)
    assert 0.0 <= r.pvalue <= 1.0
    assert s.statistic == pytest.approx(r.statistic, rel=1e-9, abs=1e-12)
    assert r.cramers_v is not None
    assert 0.0 <= r.cramers_v <= 1.0 + 1e-12


@given(
    a=st.integers(0, 12),
    b=st.integers(0, 12),
    c=st.integers(0, 12),
    d=st.integers(0, 12),
)
def test_fisher_p_range_and_ci_contains_mle(a, b, c, d):
    if a + b == 0 or c + d == 0 or a + c == 0 or b + d == 0:
        return
    r = cb.fisher_exact([[a, b], [c, d]])
    assert 0.0 <= r.pvalue <= 1.0
    lo, hi = r.confidence_interval
    assert lo <= r.odds_ratio <= hi


# Differences on a coarse grid with many zeros and ties: the class that found the Pratt tie-term bug.
_small_diffs = st.lists(st.integers(-4, 4), min_size=3, max_size=30).filter(
    lambda d: any(d)
)


@given(
    d=_small_diffs,
    alt=ALTS,
    continuity=st.booleans(),
    zero_method=st.sampled_from(["wilcox", "pratt"]),
)
def test_wilcoxon_normal_approximation_matches_scipy_with_zeros_and_ties(
    d, alt, continuity, zero_method
):
    from scipy.stats import wilcoxon

    ours = cb.wilcoxon(
        d,
        zero_method=zero_method,
        method="asymptotic",
        continuity=continuity,
        alternative=alt,
    )
    ref = wilcoxon(
        d,
        zero_method=zero_method,
        method="approx",
        correction=continuity,
        alternative=alt,
    )
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


@given(
    a=st.integers(0, 40),
    b=st.integers(0, 40),
    c=st.one_of(
        st.just(None), st.integers(0, 40)
    ),  # None: c = b, the class that found the bug
    d=st.integers(0, 40),
    continuity=st.booleans(),
)
def test_mcnemar_matches_statsmodels_including_b_equals_c(a, b, c, d, continuity):
    from statsmodels.stats.contingency_tables import mcnemar

    c = b if c is None else c
    if b + c == 0:
        return
    table = [[a, b], [c, d]]
    ours = cb.mcnemar(table, exact=False, continuity=continuity)
    ref = mcnemar(np.asarray(table), exact=False, correction=continuity)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12, abs=1e-15)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-15)


@given(
    k=st.integers(2, 5),
    n=st.sampled_from(
        [2, 2, 3, 4]
    ),  # two subjects: the class that found the HF = −1 / 0-division bugs
    data=st.data(),
)
def test_rm_anova_epsilons_bounded_and_pvalues_valid_for_few_subjects(k, n, data):
    wide = data.draw(
        st.lists(
            st.lists(st.integers(-20, 20), min_size=k, max_size=k),
            min_size=n,
            max_size=n,
        )
    )
    arr = np.asarray(wide, dtype=float)
    resid = arr - arr.mean(axis=0) - arr.mean(axis=1, keepdims=True) + arr.mean()
    if (
        not np.abs(resid).max() > 1e-9
    ):  # additive (or constant) data: refused, tested elsewhere
        with pytest.raises(cb.InsufficientDataError):
            cb.rm_anova(wide)
        return
    e = cb.rm_anova(wide).effects[0]
    lower = 1 / (k - 1)
    assert lower - 1e-12 <= e.eps_gg <= 1
    assert lower <= e.eps_hf <= 1
    for p in (e.pvalue, e.pvalue_gg, e.pvalue_hf):
        assert 0 <= p <= 1


@given(
    t=st.lists(
        st.lists(st.integers(0, 5), min_size=2, max_size=4), min_size=2, max_size=3
    ).filter(lambda t: len({len(r) for r in t}) == 1 and (len(t), len(t[0])) != (2, 2))
)
@settings(max_examples=40)
def test_fisher_rxc_network_matches_full_enumeration(t):
    from itertools import product

    from scipy.stats import random_table

    arr = np.asarray(t)
    if not arr.any():
        with pytest.raises(cb.InsufficientDataError):
            cb.fisher_exact(t)
        return
    arr = arr[arr.sum(1) > 0][:, arr.sum(0) > 0]
    if min(arr.shape) < 2:
        assert cb.fisher_exact(t).pvalue == 1.0
        return
    rows, cols = arr.sum(1), arr.sum(0)
    dist = random_table(rows, cols)
    p_obs = dist.pmf(arr)
    choices = [
        [c for c in product(*(range(x + 1) for x in cols)) if sum(c) == rows[i]]
        for i in range(len(rows) - 1)
    ]
    total = 0.0
    for head in product(*choices):
        last = cols - np.sum(head, axis=0)
        if (last >= 0).all():
            p = dist.pmf(np.vstack([*head, last]))
            total += p if p <= p_obs * (1 + 1e-7) else 0.0
    assert cb.fisher_exact(t).pvalue == pytest.approx(min(total, 1.0), rel=1e-9)

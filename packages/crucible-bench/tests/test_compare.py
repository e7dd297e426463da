"""compare, compare_groups, compare_accuracy and plan_sample_size."""

from __future__ import annotations

import numpy as np
import pytest

import crucible_bench as cb

RNG = np.random.default_rng(7)


def test_compare_seed_example_with_correct_numbers():
    control = [0.89, 0.87, 0.90, 0.88, 0.91]
    treatment = [0.96, 0.97, 0.94, 0.95, 0.98]
    r = cb.compare(treatment, control, labels=("treatment", "control"))
    assert r.method == "Welch's two-sample t-test"
    # the seed claimed t(7.98) = 8.45, d = 4.52; the correct values (R: t.test) are t(8) = 7
    assert r.statistic == pytest.approx(7.0, rel=1e-12)
    assert r.df == pytest.approx(8.0, rel=1e-12)
    assert r.estimate == pytest.approx(0.07, rel=1e-9)
    assert r.significant
    assert "treatment scored significantly higher" in r.interpretation
    assert "t(8) = 7.00" in r.interpretation


def test_compare_chooses_rank_test_for_skewed_data():
    a = RNG.lognormal(0, 1.5, 40)
    b = RNG.lognormal(0.8, 1.5, 40)
    r = cb.compare(a, b)
    assert r.method.startswith("Mann-Whitney")
    assert "normality rejected" in r.reason
    assert r.effect_size.name == "rank-biserial r"


def test_compare_paired_checks_the_differences():
    a = RNG.normal(0, 1, 30)
    b = a + RNG.normal(0.5, 0.2, 30)
    r = cb.compare(a, b, paired=True)
    assert r.method == "Paired t-test"
    assert "differences a − b" in r.reason
    assert r.effect_size.name == "Cohen's d_z"
    skewed = a + RNG.exponential(1, 30) ** 3
    r = cb.compare(a, skewed, paired=True)
    assert r.method.startswith("Wilcoxon")


def test_compare_groups_paths():
    a, b, c = (RNG.normal(m, 1, 25) for m in (0, 0.2, 1.5))
    r = cb.compare_groups({"a": a, "b": b, "c": c})
    assert r.method in ("One-way ANOVA", "Welch's one-way ANOVA")
    assert len(r.pairwise) == 3
    m = r.matrix
    assert m.shape == (3, 3)
    assert np.allclose(m, m.T)
    raw = [p.pvalue for p in r.pairwise]
    assert all(p.pvalue_adjusted >= q for p, q in zip(r.pairwise, raw, strict=True))
    skew = cb.compare_groups({k: RNG.lognormal(0, 2, 30) for k in "abc"})
    assert skew.method.startswith("Kruskal")
    rm = cb.compare_groups(
        {"a": a, "b": a + 0.3 + RNG.normal(0, 0.3, 25), "c": a + 1}, paired=True
    )
    assert rm.method.startswith(("Repeated-measures ANOVA", "Friedman"))
    assert rm.paired


def test_compare_accuracy_paired_uses_exact_mcnemar():
    a = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1])
    b = np.array([1, 0, 0, 0, 1, 0, 0, 1, 1, 0])
    r = cb.compare_accuracy(a, b)
    assert r.method == "McNemar's exact test"
    assert r.difference == pytest.approx(0.4)
    # 4 discordant pairs, all favouring a: exact two-sided p = 2 * 0.5**4
    assert r.pvalue == pytest.approx(0.125, rel=1e-12)
    lo, hi = r.confidence_interval
    assert lo < 0.4 < hi


def test_compare_accuracy_unpaired_newcombe_interval_matches_published_example():
    # Newcombe (1998) Table II example (e): 56/70 vs 48/80 → difference 0.2, 95% CI 0.0524 to 0.3339
    a = [1] * 56 + [0] * 14
    b = [1] * 48 + [0] * 32
    r = cb.compare_accuracy(a, b, paired=False)
    assert r.difference == pytest.approx(0.2)
    assert r.confidence_interval[0] == pytest.approx(0.0524, abs=5e-5)
    assert r.confidence_interval[1] == pytest.approx(0.3339, abs=5e-5)


def test_compare_accuracy_paired_interval_reduces_to_unpaired_when_uncorrelated():
    # a = 10 both right, b = 10, c = 10, d = 10 → ad = bc, so φ = 0 and Newcombe's paired
    # interval (method 10) equals the independent hybrid-score interval on the same margins
    a = [1] * 10 + [1] * 10 + [0] * 10 + [0] * 10
    b = [1] * 10 + [0] * 10 + [1] * 10 + [0] * 10
    paired = cb.compare_accuracy(a, b)
    unpaired = cb.compare_accuracy(a, b, paired=False)
    assert paired.confidence_interval == pytest.approx(
        unpaired.confidence_interval, rel=1e-12
    )
    # positive correlation between the conditions narrows the paired interval
    a2 = [1] * 18 + [1] * 2 + [0] * 2 + [0] * 18
    b2 = [1] * 18 + [0] * 2 + [1] * 2 + [0] * 18
    p2 = cb.compare_accuracy(a2, b2)
    u2 = cb.compare_accuracy(a2, b2, paired=False)
    assert (
        p2.confidence_interval[1] - p2.confidence_interval[0]
        < u2.confidence_interval[1] - u2.confidence_interval[0]
    )


def test_compare_accuracy_nested_repeats():
    p = RNG.uniform(0.2, 0.9, 60)
    a = (RNG.random((60, 4)) < p[:, None]).astype(int)
    b = (RNG.random((60, 4)) < p[:, None] * 0.85).astype(int)
    r = cb.compare_accuracy(a, b, rng=11)
    assert r.clustered
    assert r.seed == 11
    assert r.accuracy_a == pytest.approx(a.mean())
    lo, hi = r.confidence_interval
    assert lo <= r.difference <= hi
    again = cb.compare_accuracy(a, b, rng=11)
    assert again.confidence_interval == r.confidence_interval
    ragged = cb.compare_accuracy(
        [list(row[: 1 + i % 4]) for i, row in enumerate(a)], b.tolist(), rng=1
    )
    assert ragged.n_repeats[0] == pytest.approx(2.5)


def test_cluster_bootstrap_is_wider_than_treating_repeats_as_independent():
    # strong item effects: repeats of one item agree, so items, not evaluations, are the unit
    p = RNG.choice([0.05, 0.95], 40)
    a = (RNG.random((40, 10)) < p[:, None]).astype(int)
    b = (RNG.random((40, 10)) < np.clip(p[:, None] - 0.1, 0, 1)).astype(int)
    nested = cb.compare_accuracy(a, b, rng=5)
    flat = cb.compare_accuracy(a.ravel(), b.ravel())
    width = nested.confidence_interval[1] - nested.confidence_interval[0]
    flat_width = flat.confidence_interval[1] - flat.confidence_interval[0]
    assert width > flat_width


def test_plan_sample_size_simple_and_nested():
    a = RNG.normal(0.5, 1, 20)
    b = a - 0.4 + RNG.normal(0, 0.5, 20)
    plan = cb.plan_sample_size(a, b)
    d = (a - b).mean() / (a - b).std(ddof=1)
    assert (
        plan.n_items
        == cb.power_ttest(effect_size=abs(d), power=0.8, kind="paired").n_required
    )
    p = RNG.uniform(0.3, 0.8, 40)
    A = (RNG.random((40, 3)) < p[:, None]).astype(int)
    B = (RNG.random((40, 3)) < p[:, None] - 0.15).astype(int)
    nested = cb.plan_sample_size(A, B)
    items = [o[1] for o in nested.options]
    assert items == sorted(items, reverse=True), "more repeats never need more items"
    assert nested.n_repeats == 3
    with pytest.raises(cb.InsufficientDataError):
        cb.plan_sample_size([1, 2, 3], [1, 2, 3])

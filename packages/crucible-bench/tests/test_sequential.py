"""Anytime-valid confidence sequences, e-values, group-sequential boundaries, family control.

Coverage and error rates are checked by seeded Monte Carlo *over optional stopping*: a run
"misses" if the interval excludes the truth at ANY sample size (equivalently, a peeking analyst who
stops the first time H₀ is rejected makes a type I error), and the miss rate must stay ≤ α.
"""

from __future__ import annotations

import doctest
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crucible_bench as cb
from crucible_bench import _group_sequential, _sequential
from crucible_core.serde import from_json, to_json

ALPHA = 0.05


def _ever_misses(result: cb.ConfidenceSequenceResult, truth: float) -> bool:
    lo = np.asarray(result.lower_path)
    hi = np.asarray(result.upper_path)
    return bool(((lo > truth) | (hi < truth)).any())


# ---------------------------------------------------------------- coverage under optional stopping
@pytest.mark.parametrize("p", [0.08, 0.5, 0.92])
def test_bernoulli_coverage_holds_at_every_n(p):
    rng = np.random.default_rng(20231)
    runs, n = 200, 300
    misses = sum(
        _ever_misses(
            cb.confidence_sequence(rng.binomial(1, p, n), null=p, grid_size=200), p
        )
        for _ in range(runs)
    )
    assert misses / runs <= ALPHA


def test_bounded_coverage_for_graded_scores():
    # Beta(2, 5) scores rescaled to [0, 10]: mean 10·2/7
    rng = np.random.default_rng(7)
    truth = 10 * 2 / 7
    misses = sum(
        _ever_misses(
            cb.confidence_sequence(
                10 * rng.beta(2, 5, 300), bounds=(0, 10), null=truth, grid_size=200
            ),
            truth,
        )
        for _ in range(200)
    )
    assert misses / 200 <= ALPHA


def test_naive_fixed_n_interval_fails_under_peeking():
    """The contrast that makes the coverage test meaningful: a Wald CI checked at every n misses."""
    rng = np.random.default_rng(20231)
    runs, n, p = 200, 300, 0.5
    t = np.arange(1, n + 1)
    misses = 0
    for _ in range(runs):
        x = rng.binomial(1, p, n)
        mean = np.cumsum(x) / t
        half = 1.96 * np.sqrt(np.maximum(mean * (1 - mean), 1e-12) / t)
        misses += bool((np.abs(mean - p) > half)[9:].any())
    assert misses / runs > 2 * ALPHA


def test_type_one_error_of_the_anytime_pvalue_with_stop_at_first_rejection():
    rng = np.random.default_rng(99)
    rejected = sum(
        cb.confidence_sequence(
            rng.binomial(1, 0.7, 400), null=0.7, grid_size=100
        ).decided
        for _ in range(200)
    )
    assert rejected / 200 <= ALPHA


def test_one_sided_sequences_cover_and_bound_one_side():
    rng = np.random.default_rng(3)
    misses = 0
    for _ in range(200):
        r = cb.confidence_sequence(
            rng.binomial(1, 0.3, 300), null=0.3, alternative="greater", grid_size=200
        )
        assert set(r.upper_path) == {1.0}
        misses += _ever_misses(r, 0.3)
    assert misses / 200 <= ALPHA
    r = cb.confidence_sequence([0] * 30, null=0.5, alternative="less")
    assert r.confidence_interval[0] == 0.0 and r.decided


def test_paired_difference_covers_under_correlated_outcomes():
    # items of varying difficulty; b is right on 80% of the items a gets right, plus some others
    rng = np.random.default_rng(11)
    misses = 0
    for _ in range(200):
        difficulty = rng.uniform(0.2, 0.95, 300)
        a = rng.binomial(1, difficulty)
        b = np.where(a == 1, rng.binomial(1, 0.8, 300), rng.binomial(1, 0.1, 300))
        truth = (
            0.575 * -0.2 + (1 - 0.575) * 0.1
        )  # population mean of b − a, E[d] = 0.575
        r = cb.paired_confidence_sequence(b, a, null=truth, grid_size=200)
        misses += _ever_misses(r, truth)
    assert misses / 200 <= ALPHA


def test_difference_of_proportions_covers():
    rng = np.random.default_rng(5)
    misses = 0
    for _ in range(200):
        r = cb.proportion_difference_sequence(
            rng.binomial(1, 0.6, 300),
            rng.binomial(1, 0.45, 280),
            null=0.15,
            grid_size=200,
        )
        assert r.n == 280
        misses += _ever_misses(r, 0.15)
    assert misses / 200 <= ALPHA


# ---------------------------------------------------------------- power: stops when the answer is known
def test_a_real_difference_is_decided_long_before_the_data_run_out():
    rng = np.random.default_rng(1)
    a = rng.binomial(1, 0.85, 2000)
    b = rng.binomial(1, 0.65, 2000)
    r = cb.paired_confidence_sequence(a, b, labels=("new", "base"))
    assert r.decided and r.decided_at is not None and r.decided_at < 400
    lo, hi = r.confidence_interval
    assert lo > 0.1 and hi < 0.3
    assert r.pvalue < 1e-6 and r.e_value > 1e6
    assert "new − base" in r.interpretation


def test_futility_when_the_interval_is_inside_the_margin():
    rng = np.random.default_rng(2)
    x = rng.binomial(1, 0.5, 4000) - rng.binomial(1, 0.5, 4000)
    r = cb.confidence_sequence(x, bounds=(-1, 1), null=0.0)
    assert not r.decided
    assert r.futile(0.1) and not r.futile(0.01)


# ---------------------------------------------------------------- exactness against the formula
def _reference_log_capital(
    x: list[float], m: float, alpha: float
) -> tuple[float, float]:
    """WSR (2023) hedged capital at m with predictable plug-in bets, written as plain loops."""
    log_kp = log_km = 0.0
    total, ss, sigma2_prev = 0.0, 0.0, 0.25
    for i, xi in enumerate(x, start=1):
        lam = math.sqrt(2 * math.log(2 / alpha) / (sigma2_prev * i * math.log(1 + i)))
        log_kp += math.log(1 + min(lam, 0.5 / m) * (xi - m))
        log_km += math.log(1 - min(lam, 0.5 / (1 - m)) * (xi - m))
        total += xi
        mu = (0.5 + total) / (i + 1)
        ss += (xi - mu) ** 2
        sigma2_prev = (0.25 + ss) / (i + 1)
    return log_kp, log_km


@pytest.mark.parametrize("null", [0.3, 0.5, 0.77])
def test_e_value_equals_the_published_capital_process(null):
    rng = np.random.default_rng(4)
    x = rng.beta(2, 2, 150).tolist()
    r = cb.confidence_sequence(x, null=null)
    log_kp, log_km = _reference_log_capital(x, null, ALPHA)
    expected = 0.5 * math.exp(log_kp) + 0.5 * math.exp(log_km)
    assert r.e_value == pytest.approx(expected, rel=1e-10)


def test_interval_endpoints_bracket_the_exact_boundary():
    rng = np.random.default_rng(8)
    x = rng.binomial(1, 0.35, 200).astype(float).tolist()
    r = cb.confidence_sequence(x, grid_size=400)
    lo, hi = r.confidence_interval
    threshold = math.log(1 / ALPHA)
    # the reported ends were rejected at some n (outward rounding), points just inside never were
    inside = [lo + 0.01, hi - 0.01]
    for m in inside:
        for k in range(1, len(x) + 1):
            kp, km = _reference_log_capital(x[:k], m, ALPHA)
            assert np.logaddexp(math.log(0.5) + kp, math.log(0.5) + km) < threshold


# ---------------------------------------------------------------- properties
outcomes = st.lists(st.integers(0, 4).map(lambda i: i / 4), min_size=1, max_size=60)


@settings(max_examples=40)
@given(x=outcomes, cut=st.integers(0, 60))
def test_streaming_in_any_batches_equals_one_batch(x, cut):
    whole = cb.ConfidenceSequence(grid_size=100)
    whole.update(x)
    parts = cb.ConfidenceSequence(grid_size=100)
    parts.update(x[:cut])
    for value in x[cut : cut + 3]:
        parts.update(value)
    parts.update(x[cut + 3 :])
    a, b = whole.result(), parts.result()
    assert a.confidence_interval == b.confidence_interval
    assert a.lower_path == b.lower_path
    assert a.pvalue == pytest.approx(b.pvalue, rel=1e-12, abs=1e-300)


@settings(max_examples=40)
@given(x=outcomes, alt=st.sampled_from(["two-sided", "less", "greater"]))
def test_paths_are_monotone_nested_and_in_bounds(x, alt):
    r = cb.confidence_sequence(x, alternative=alt, grid_size=100)
    lo, hi = np.asarray(r.lower_path), np.asarray(r.upper_path)
    assert (np.diff(lo) >= 0).all() and (np.diff(hi) <= 0).all()
    assert (lo >= 0).all() and (hi <= 1).all()
    assert 0.0 <= r.pvalue <= 1.0 and r.e_value >= 0.0
    assert r.confidence_interval[0] <= r.confidence_interval[1]
    assert r.n == len(x) == len(r.lower_path)


@settings(max_examples=30)
@given(x=outcomes)
def test_rescaling_the_data_rescales_the_interval(x):
    a = cb.confidence_sequence(x, grid_size=100)
    b = cb.confidence_sequence([10 * v - 5 for v in x], bounds=(-5, 5), grid_size=100)
    assert b.confidence_interval == pytest.approx(
        tuple(10 * e - 5 for e in a.confidence_interval)
    )
    assert b.pvalue == pytest.approx(a.pvalue)


def test_swapping_conditions_mirrors_the_paired_interval():
    rng = np.random.default_rng(6)
    a, b = rng.binomial(1, 0.7, 200), rng.binomial(1, 0.5, 200)
    ab = cb.paired_confidence_sequence(a, b, grid_size=200)
    ba = cb.paired_confidence_sequence(b, a, grid_size=200)
    assert ab.estimate == -ba.estimate
    assert ab.confidence_interval == pytest.approx(
        (-ba.confidence_interval[1], -ba.confidence_interval[0])
    )
    assert ab.pvalue == pytest.approx(ba.pvalue)


# ---------------------------------------------------------------- group-sequential boundaries
# Jennison & Turnbull (2000), Group Sequential Methods with Applications to Clinical Trials,
# Table 2.1 (Pocock C_P(K, α)) and Table 2.3 (O'Brien & Fleming C_B(K, α)), two-sided α = 0.05,
# printed to 3 decimals.
JT_TABLE_2_1_POCOCK = {
    1: 1.960,
    2: 2.178,
    3: 2.289,
    4: 2.361,
    5: 2.413,
    6: 2.453,
    8: 2.512,
    10: 2.555,
}
JT_TABLE_2_3_OBF = {
    1: 1.960,
    2: 1.977,
    3: 2.004,
    4: 2.024,
    5: 2.040,
    6: 2.053,
    8: 2.072,
    10: 2.087,
}


@pytest.mark.parametrize("looks", sorted(JT_TABLE_2_1_POCOCK))
def test_classical_pocock_constant_matches_jennison_turnbull_table_2_1(looks):
    d = cb.group_sequential_design(looks, method="pocock", spending=False)
    assert d.boundaries == pytest.approx(
        (JT_TABLE_2_1_POCOCK[looks],) * looks, abs=5e-4
    )
    assert sum(d.alpha_spent) == pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize("looks", sorted(JT_TABLE_2_3_OBF))
def test_classical_obrien_fleming_matches_jennison_turnbull_table_2_3(looks):
    d = cb.group_sequential_design(looks, method="obrien_fleming", spending=False)
    expected = [
        JT_TABLE_2_3_OBF[looks] * math.sqrt(looks / k) for k in range(1, looks + 1)
    ]
    assert d.boundaries[-1] == pytest.approx(JT_TABLE_2_3_OBF[looks], abs=5e-4)
    assert d.boundaries == pytest.approx(expected, abs=5e-4 * math.sqrt(looks))


def test_lan_demets_spending_boundaries_match_the_published_five_look_designs():
    # Lan–DeMets spending, 5 equally spaced looks, two-sided α = 0.05 (0.025 per side): the
    # boundaries printed by R gsDesign (test.type = 2, sfu = sfLDOF / sfLDPocock) and by the
    # Reboussin, DeMets, Kim & Lan ld98 program (Controlled Clinical Trials 21, 2000).
    obf = cb.group_sequential_design(5, method="obrien_fleming")
    assert obf.boundaries == pytest.approx(
        (4.877, 3.357, 2.680, 2.290, 2.031), abs=5e-4
    )
    poc = cb.group_sequential_design(5, method="pocock")
    assert poc.boundaries == pytest.approx(
        (2.438, 2.427, 2.410, 2.397, 2.386), abs=5e-4
    )
    one = cb.group_sequential_design(5, alpha=0.025, sides="one-sided")
    # the same per-side spending; the two-sided design's lower tail moves the last bound by 1e-8
    assert one.boundaries == pytest.approx(obf.boundaries, abs=1e-6)


def test_spending_design_spends_exactly_the_spending_function():
    t = (0.25, 0.5, 0.9, 1.0)
    d = cb.group_sequential_design(list(t), method="obrien_fleming")
    from scipy.stats import norm

    z = norm.ppf(1 - 0.0125)
    spend = 2 * 2 * (1 - norm.cdf(z / np.sqrt(t)))
    assert d.cumulative_alpha == pytest.approx(spend, rel=1e-7)
    p = cb.group_sequential_design(list(t), method="pocock")
    assert p.cumulative_alpha == pytest.approx(
        0.05 * np.log1p((math.e - 1) * np.array(t)), rel=1e-7
    )
    assert d.power(0.0) == pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize(
    ("method", "spending"), [("obrien_fleming", True), ("pocock", False)]
)
def test_design_error_and_power_match_simulated_brownian_motion(method, spending):
    d = cb.group_sequential_design(4, method=method, spending=spending)
    rng = np.random.default_rng(2024)
    t = np.asarray(d.information)
    sims = 200_000
    for drift in (0.0, 2.8):
        steps = rng.standard_normal((sims, t.size)) * np.sqrt(np.diff(t, prepend=0.0))
        z = (np.cumsum(steps, axis=1) + drift * t) / np.sqrt(t)
        hit = (np.abs(z) >= np.asarray(d.boundaries)).any(axis=1).mean()
        se = math.sqrt(hit * (1 - hit) / sims)
        assert abs(hit - d.power(drift)) < 4 * se


def test_first_crossing_reads_statistics_in_order():
    d = cb.group_sequential_design(3)
    assert d.first_crossing([1.0, 2.0]) is None
    assert d.first_crossing([1.0, -3.5, 0.0]) == 2
    with pytest.raises(cb.InvalidInputError, match="3 looks"):
        d.first_crossing([0, 0, 0, 0])


def test_design_rejects_bad_information_fractions():
    with pytest.raises(cb.InvalidParameterError, match="increasing"):
        cb.group_sequential_design([0.5, 0.4, 1.0])
    with pytest.raises(cb.InvalidParameterError, match="ending at 1"):
        cb.group_sequential_design([0.5, 0.9])


# ---------------------------------------------------------------- families
@settings(max_examples=60)
@given(e=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=20))
def test_e_bh_matches_its_definition(e):
    m = len(e)
    out = cb.e_bh(e, alpha=0.1)
    ranked = sorted(e, reverse=True)
    k_star = max(
        (k for k in range(1, m + 1) if ranked[k - 1] >= m / (0.1 * k)), default=0
    )
    assert int(out.sum()) == k_star
    if k_star:
        assert min(x for x, r in zip(e, out, strict=True) if r) >= ranked[k_star - 1]


def test_family_holm_uses_anytime_pvalues_and_controls_fwer():
    rng = np.random.default_rng(12)
    errors = 0
    for _ in range(150):
        family = {
            f"c{j}": cb.paired_confidence_sequence(
                rng.binomial(1, 0.6, 200), rng.binomial(1, 0.6, 200), grid_size=100
            )
            for j in range(3)
        }
        fam = cb.sequential_family(family, method="holm")
        errors += any(fam.rejected)
    assert errors / 150 <= ALPHA
    assert fam.adjusted_pvalues == tuple(
        cb.adjust_pvalues(list(fam.pvalues), method="holm").tolist()
    )


def test_family_e_bh_rejects_the_real_effects():
    rng = np.random.default_rng(13)
    real = cb.paired_confidence_sequence(
        rng.binomial(1, 0.9, 400), rng.binomial(1, 0.6, 400)
    )
    null = cb.paired_confidence_sequence(
        rng.binomial(1, 0.6, 400), rng.binomial(1, 0.6, 400)
    )
    fam = cb.sequential_family([real, null], method="e-bh")
    assert fam.rejected == (True, False) and not fam.all_decided
    assert fam.adjusted_pvalues is None
    assert "FDR" in fam.interpretation


# ---------------------------------------------------------------- errors
def test_errors_say_how_to_fix():
    with pytest.raises(cb.InvalidInputError, match="widen `bounds`"):
        cb.confidence_sequence([0.2, 1.5])
    with pytest.raises(cb.InvalidParameterError, match="strictly inside"):
        cb.confidence_sequence([0.2], null=1.0)
    with pytest.raises(cb.InvalidParameterError, match="lower < upper"):
        cb.confidence_sequence([0.2], bounds=(1, 0))
    with pytest.raises(cb.InvalidInputError, match="0/1"):
        cb.proportion_difference_sequence([0.5], [1])
    with pytest.raises(cb.InvalidInputError, match="same length"):
        cb.paired_confidence_sequence([1, 0], [1])
    with pytest.raises(cb.InvalidInputError, match="empty"):
        cb.sequential_family([])
    with pytest.raises(cb.InvalidInputError, match="non-negative"):
        cb.e_bh([-1.0])


# ---------------------------------------------------------------- views and serialization
RESULTS = {
    "cs": lambda: cb.confidence_sequence([1, 0, 1, 1] * 10, null=0.5),
    "paired": lambda: cb.paired_confidence_sequence([1, 1, 0] * 10, [0, 1, 0] * 10),
    "family": lambda: cb.sequential_family(
        [cb.confidence_sequence([1] * 30), cb.confidence_sequence([1, 0] * 15)]
    ),
    "design": lambda: cb.group_sequential_design(4, method="pocock"),
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_views_and_round_trip(name):
    r = RESULTS[name]()
    assert r.render() == str(r) and r.interpretation in r.render()
    assert r._repr_html_().startswith('<div class="crucible-view">')
    assert len(repr(r)) < 400
    assert "|" in r.to_markdown()
    json.loads(to_json(r))
    back = from_json(to_json(r), type(r))
    assert to_json(back) == to_json(r)


@pytest.mark.parametrize("module", [_sequential, _group_sequential])
def test_docstring_examples(module):
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0 and tried > 0

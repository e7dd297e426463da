"""Input classes that once gave silent wrong numbers or raw exceptions (issue #17).

Scales near float64's overflow and underflow, masked arrays, integers beyond 2^53 and beyond 1e308,
and wrong dtypes, across every public function that takes data. The reference for the scaled
cases is the same function on the unscaled data (exact: the data differ by a power of two) and
scipy on the same values; for integer input, scipy on the exactly shifted integers.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crucible_bench as cb
from crucible_bench import BenchError, InvalidInputError

_spec = importlib.util.spec_from_file_location(
    "crucible_bench_test_strategies", Path(__file__).with_name("strategies.py")
)
assert _spec is not None
assert _spec.loader is not None
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)

RNG = np.random.default_rng(20261207)
# on a 1/1024 grid with |value| < 8: 13 significant bits, exact even as subnormals near 2^-1040
X = np.round(RNG.normal(size=12) * 1024) / 1024
Y = np.round((0.4 * X + RNG.normal(size=12)) * 1024) / 1024
Z = np.round(RNG.normal(size=12) * 1024) / 1024


def _outputs(r: Any) -> list[float]:
    """Every number a scale-free result reports (statistic, p, CIs, effect sizes)."""
    out: list[float] = []
    for value in r.to_dict().values():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            out.append(float(value))
        elif isinstance(value, list | tuple) and all(
            isinstance(e, int | float) for e in value
        ):
            out.extend(float(e) for e in value)
    return out


# Functions whose every reported number is unchanged when all data are multiplied by one constant.
SCALE_FREE: dict[str, Callable[[Callable[[np.ndarray], np.ndarray]], Any]] = {
    "pearson": lambda s: cb.pearson(s(X), s(Y)),
    "pearson-greater": lambda s: cb.pearson(s(X), s(Y), alternative="greater"),
    "spearman": lambda s: cb.spearman(s(X), s(Y)),
    "kendall": lambda s: cb.kendall(s(X), s(Y)),
    "mann_whitney": lambda s: cb.mann_whitney(s(X), s(Y)),
    "wilcoxon": lambda s: cb.wilcoxon(s(X), s(Y)),
    "wilcoxon-one": lambda s: cb.wilcoxon(s(X)),
    "kruskal": lambda s: cb.kruskal(s(X), s(Y), s(Z)),
    "friedman": lambda s: cb.friedman(s(np.c_[X, Y, Z])),
    "shapiro": lambda s: cb.shapiro(s(X)),
    "levene": lambda s: cb.levene(s(X), s(Y)),
    "bartlett": lambda s: cb.bartlett(s(X), s(Y)),
    "cohens_d": lambda s: cb.cohens_d(s(X), s(Y)),
    "cohens_d-one": lambda s: cb.cohens_d(s(X)),
    "hedges_g": lambda s: cb.hedges_g(s(X), s(Y)),
    "glass_delta": lambda s: cb.glass_delta(s(X), s(Y)),
    "cohen_dz": lambda s: cb.cohen_dz(s(X), s(Y)),
    "cohen_dav": lambda s: cb.cohen_dav(s(X), s(Y)),
    "rank_biserial": lambda s: cb.rank_biserial(s(X), s(Y)),
    "rank_biserial-paired": lambda s: cb.rank_biserial(s(X), s(Y), paired=True),
    "cliffs_delta": lambda s: cb.cliffs_delta(s(X), s(Y)),
}

# Functions that report quantities in the data's units (means, sums of squares): they refuse
# magnitudes whose squares leave float64's range, with reason "scale".
UNIT_BEARING: dict[str, Callable[[Callable[[np.ndarray], np.ndarray]], Any]] = {
    "ttest": lambda s: cb.ttest(s(X)),
    "ttest-two": lambda s: cb.ttest(s(X), s(Y)),
    "ttest-paired": lambda s: cb.ttest(s(X), s(Y), paired=True),
    "anova_oneway": lambda s: cb.anova_oneway(s(X), s(Y), s(Z)),
    "welch_anova": lambda s: cb.welch_anova(s(X), s(Y), s(Z)),
    "rm_anova": lambda s: cb.rm_anova(s(np.c_[X, Y, Z])),
    "anova_twoway": lambda s: cb.anova_twoway(
        s(np.r_[X, Y]), list("ab" * 12), list("xxyy" * 6)
    ),
    "eta_squared": lambda s: cb.eta_squared(s(X), s(Y)),
    "omega_squared": lambda s: cb.omega_squared(s(X), s(Y)),
    "epsilon_squared": lambda s: cb.epsilon_squared(s(X), s(Y)),
    "bootstrap_ci": lambda s: cb.bootstrap_ci(s(X), n_resamples=1000, rng=1),
    "bootstrap_ci-paired": lambda s: cb.bootstrap_ci(
        (s(X), s(Y)), "mean_difference", paired=True, n_resamples=1000, rng=1
    ),
    "compare": lambda s: cb.compare(s(X), s(Y)),
    "compare-paired": lambda s: cb.compare(s(X), s(Y), paired=True),
    "compare_groups": lambda s: cb.compare_groups({"a": s(X), "b": s(Y), "c": s(Z)}),
    "compare_groups-paired": lambda s: cb.compare_groups(
        {"a": s(X), "b": s(Y), "c": s(Z)}, paired=True
    ),
    "plan_sample_size": lambda s: cb.plan_sample_size(s(X), s(Y)),
}


def _by(exponent: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: np.ldexp(np.asarray(a, dtype=float), exponent)


@pytest.mark.parametrize("name", sorted(SCALE_FREE))
@pytest.mark.parametrize("exponent", [1013, 1000, 600, -600, -1040])
def test_scale_free_functions_match_the_unscaled_data_near_overflow_and_underflow(
    name, exponent
):
    call = SCALE_FREE[name]
    ref = _outputs(call(_by(0)))
    got = _outputs(call(_by(exponent)))
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        if math.isnan(r):
            assert math.isnan(g)
        else:
            assert g == pytest.approx(r, rel=1e-12, abs=1e-14)


def test_pearson_near_overflow_is_the_scaled_result_and_matches_scipy():
    from scipy.stats import pearsonr

    big = np.array([1.2e308, -0.3e308, 0.9e308, 1.7e308, -1.1e308, 0.2e308])
    other = np.array([0.5, 0.1, -0.7, 0.2, 0.9, -0.4])
    r = cb.pearson(big, other)
    ref = pearsonr(big / 1e308, other)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-13)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    lo, hi = r.confidence_interval
    assert -1 < lo < r.statistic < hi < 1
    assert r.statistic == pytest.approx(cb.pearson(big / 1e308, other).statistic)


def test_pearson_on_subnormal_values_matches_scipy_on_the_rescaled_values():
    from scipy.stats import pearsonr

    tiny = np.array([3, -1, 4, 1, -5, 9]) * 5e-324
    r = cb.pearson(tiny, [1, 2, 3, 4, 5, 6])
    assert r.statistic == pytest.approx(
        pearsonr([3, -1, 4, 1, -5, 9], [1, 2, 3, 4, 5, 6]).statistic, rel=1e-14
    )


@pytest.mark.parametrize("name", sorted(UNIT_BEARING))
@pytest.mark.parametrize("exponent", [1000, 210, -210, -1040])
def test_unit_bearing_functions_refuse_magnitudes_outside_float64_squares(
    name, exponent
):
    with pytest.raises(InvalidInputError) as info:
        UNIT_BEARING[name](_by(exponent))
    assert info.value.reason == "scale"
    assert "power of ten" in str(info.value)


@pytest.mark.parametrize("name", sorted(UNIT_BEARING))
def test_unit_bearing_functions_work_at_large_but_safe_magnitudes(name):
    UNIT_BEARING[name](_by(190))
    UNIT_BEARING[name](_by(-190))


# ---------------------------------------------------------------- masked arrays


def test_masked_entries_are_missing_values_never_data():
    from scipy.stats import pearsonr

    x = np.ma.masked_array([1.0, 2.0, 3.0, 4.0, 1e6, 5.0], mask=[0, 0, 0, 0, 1, 0])
    y = [2.0, 1.0, 4.0, 3.0, -7.0, 6.0]
    with pytest.raises(InvalidInputError, match="masked") as info:
        cb.pearson(x, y)
    assert info.value.reason == "nan"
    r = cb.pearson(x, y, nan_policy="omit")
    keep = ~np.ma.getmaskarray(x)
    assert r.n == 5
    assert r.statistic == pytest.approx(
        pearsonr(x.compressed(), np.asarray(y)[keep]).statistic, rel=1e-14
    )
    t = cb.ttest(x, nan_policy="omit")
    assert t.estimate == pytest.approx(np.mean(x.compressed()))


def test_masked_integer_array_ignores_whatever_hides_under_the_mask():
    x = np.ma.masked_array(
        np.array([1, 2, 3, 2**62 + 1], dtype=np.int64), mask=[0, 0, 0, 1]
    )
    r = cb.ttest(x, nan_policy="omit")
    assert r.n == 3
    assert r.estimate == 2.0


def test_a_mask_with_nothing_masked_is_plain_data():
    x = np.ma.masked_array([1.0, 2.0, 4.0, 3.0], mask=False)
    assert (
        cb.pearson(x, [1, 2, 3, 4]).statistic
        == cb.pearson([1.0, 2.0, 4.0, 3.0], [1, 2, 3, 4]).statistic
    )


# ---------------------------------------------------------------- integers


def test_int64_above_2_53_that_differ_are_kept_apart_in_a_correlation():
    from scipy.stats import pearsonr, spearmanr

    base = 2**62
    x = np.array([base, base + 1, base + 3, base + 2, base + 7], dtype=np.int64)
    y = [1.0, 2.0, 3.0, 4.0, 5.0]
    ref = pearsonr([0, 1, 3, 2, 7], y)
    r = cb.pearson(x, y)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-14)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert cb.spearman(x, y).statistic == pytest.approx(
        spearmanr([0, 1, 3, 2, 7], y).statistic, rel=1e-14
    )
    assert cb.kendall(x, y).statistic == pytest.approx(0.8, rel=1e-14)


def test_integers_float64_would_distort_are_refused_where_a_shift_changes_the_result():
    x = np.array([2**53, 2**53 + 1, 2**53 + 3], dtype=np.int64)
    with pytest.raises(InvalidInputError, match="2\\^53") as info:
        cb.ttest(x)
    assert info.value.reason == "precision"
    assert info.value.argument == "x"
    with pytest.raises(InvalidInputError, match="offset"):
        cb.mann_whitney(x, [1, 2, 3])


def test_large_integers_float64_holds_exactly_or_nearly_are_accepted():
    exact = np.array([2**60, 2**60 + 2**10, 2**60 + 2**12], dtype=np.int64)
    r = cb.ttest(exact)
    assert r.estimate == pytest.approx(float(2**60 + (2**10 + 2**12) / 3), rel=1e-15)
    # rounding by one unit in values spread over 2^62 changes nothing that matters
    spread = np.array([1, 2**62 + 1, 2**61 + 3], dtype=np.int64)
    cb.ttest(spread)
    uint = np.array([2**64 - 1, 2**64 - 2, 2**64 - 4], dtype=np.uint64)
    assert cb.pearson(uint, [3, 2, 1]).statistic == pytest.approx(
        np.corrcoef([3, 2, 0], [3, 2, 1])[0, 1], rel=1e-14
    )


def test_python_ints_beyond_1e308_in_a_correlation_are_exact():
    from scipy.stats import pearsonr

    big = 10**400
    x = [big + 5, big + 1, big + 4, big + 9]
    assert cb.pearson(x, [1, 2, 3, 4]).statistic == pytest.approx(
        pearsonr([5, 1, 4, 9], [1, 2, 3, 4]).statistic, rel=1e-14
    )
    spread = [big, 2 * big, 3 * big, 5 * big]
    assert cb.pearson(spread, [1, 2, 3, 5]).statistic == pytest.approx(1.0)


def test_python_ints_beyond_1e308_elsewhere_get_a_bench_error():
    for call in (
        lambda: cb.ttest([10**309, 1, 2]),
        lambda: cb.anova_oneway([10**309, 1], [2, 3]),
        lambda: cb.ttest([10**309, 1.5, 2]),
    ):
        with pytest.raises(InvalidInputError) as info:
            call()
        assert info.value.reason == "overflow"
        assert "power of ten" in str(info.value)


# ---------------------------------------------------------------- dtypes and shapes

BAD_VALUES: dict[str, Any] = {
    "complex": np.array([1 + 2j, 2, 3, 4]),
    "complex-list": [1 + 2j, 2, 3, 4],
    "numeric text": np.array(["1", "2", "3", "4"]),
    "text in a list": ["1", 2, 3, 4],
    "datetime": np.array(
        ["2020-01-01", "2020-01-02", "2020-01-05", "2020-01-03"], dtype="datetime64[D]"
    ),
    "timedelta": np.array([1, 2, 5, 3], dtype="timedelta64[s]"),
    "ragged": [[1, 2], [3]],
    "string": "1234",
    "dict": {"a": 1},
    "none": None,
}


def _data_callers() -> dict[str, Callable[[Any], Any]]:
    """Every public function that takes data, with the bad value in its first data argument."""
    return {
        "ttest": lambda b: cb.ttest(b, Y[:4]),
        "ttest-paired": lambda b: cb.ttest(b, Y[:4], paired=True),
        "mann_whitney": lambda b: cb.mann_whitney(b, Y),
        "wilcoxon": lambda b: cb.wilcoxon(b, Y[:4]),
        "anova_oneway": lambda b: cb.anova_oneway(b, Y),
        "welch_anova": lambda b: cb.welch_anova(b, Y),
        "kruskal": lambda b: cb.kruskal(b, Y),
        "friedman": lambda b: cb.friedman(b),
        "rm_anova": lambda b: cb.rm_anova(b),
        "anova_twoway": lambda b: cb.anova_twoway(b, "aabb", "xyxy"),
        "shapiro": lambda b: cb.shapiro(b),
        "levene": lambda b: cb.levene(b, Y),
        "bartlett": lambda b: cb.bartlett(b, Y),
        "cohens_d": lambda b: cb.cohens_d(b, Y),
        "hedges_g": lambda b: cb.hedges_g(b, Y),
        "glass_delta": lambda b: cb.glass_delta(b, Y),
        "cohen_dz": lambda b: cb.cohen_dz(b, Y[:4]),
        "cohen_dav": lambda b: cb.cohen_dav(b, Y[:4]),
        "eta_squared": lambda b: cb.eta_squared(b, Y),
        "omega_squared": lambda b: cb.omega_squared(b, Y),
        "epsilon_squared": lambda b: cb.epsilon_squared(b, Y),
        "rank_biserial": lambda b: cb.rank_biserial(b, Y),
        "cliffs_delta": lambda b: cb.cliffs_delta(b, Y),
        "pearson": lambda b: cb.pearson(b, Y[:4]),
        "spearman": lambda b: cb.spearman(b, Y[:4]),
        "kendall": lambda b: cb.kendall(b, Y[:4]),
        "bootstrap_ci": lambda b: cb.bootstrap_ci(b, n_resamples=1000, rng=1),
        "adjust_pvalues": lambda b: cb.adjust_pvalues(b),
        "chi2_independence": lambda b: cb.chi2_independence(b),
        "chi2_goodness_of_fit": lambda b: cb.chi2_goodness_of_fit(b),
        "fisher_exact": lambda b: cb.fisher_exact(b),
        "mcnemar": lambda b: cb.mcnemar(b),
        "odds_ratio": lambda b: cb.odds_ratio(b),
        "compare": lambda b: cb.compare(b, Y),
        "compare_groups": lambda b: cb.compare_groups({"a": b, "b": Y}),
        "compare_accuracy": lambda b: cb.compare_accuracy(b, [1, 0, 1, 1]),
        "plan_sample_size": lambda b: cb.plan_sample_size(b, Y[:4]),
        "confidence_sequence": lambda b: cb.confidence_sequence(b),
        "paired_confidence_sequence": lambda b: cb.paired_confidence_sequence(
            b, [0.5, 0.2, 0.4, 0.9]
        ),
        "proportion_difference_sequence": lambda b: cb.proportion_difference_sequence(
            b, [1, 0, 1, 1]
        ),
        "e_bh": lambda b: cb.e_bh(b),
    }


CALLERS = _data_callers()


@pytest.mark.parametrize("bad", sorted(BAD_VALUES))
@pytest.mark.parametrize("name", sorted(CALLERS))
def test_wrong_dtypes_and_shapes_get_a_bench_error_naming_the_argument(name, bad):
    with pytest.raises(BenchError) as info:
        CALLERS[name](BAD_VALUES[bad])
    assert isinstance(info.value, ValueError)
    assert str(info.value)
    assert getattr(info.value, "argument", None)


def test_complex_input_is_refused_not_truncated():
    with pytest.raises(InvalidInputError, match="complex") as info:
        cb.ttest([1 + 5j, 2, 3])
    assert info.value.reason == "type"


# ---------------------------------------------------------------- property tests

BAD_CLASSES = st.sampled_from(
    ["nan", "inf", "-inf", "empty", "masked", "complex", "text", "ragged", "huge int"]
)


def _corrupt(kind: str, values: list[float]) -> Any:
    arr = np.asarray(values, dtype=float)
    if kind in ("nan", "inf", "-inf"):
        arr = arr.copy()
        arr[len(arr) // 2] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[kind]
        return arr
    if kind == "empty":
        return []
    if kind == "masked":
        mask = np.zeros(arr.size, dtype=bool)
        mask[0] = True
        return np.ma.masked_array(arr, mask=mask)
    if kind == "complex":
        return arr + 1j
    if kind == "text":
        return [str(e) for e in values]
    if kind == "ragged":
        return [values, values[:1]]
    return [10**400, *values[1:]]


@given(values=S.samples(min_size=4, max_size=12), kind=BAD_CLASSES, data=st.data())
def test_every_bad_input_class_is_a_bench_error_in_every_function(values, kind, data):
    name = data.draw(st.sampled_from(sorted(CALLERS)))
    bad = _corrupt(kind, values)
    with pytest.raises(BenchError) as info:
        CALLERS[name](bad)
    assert isinstance(info.value, ValueError)
    assert str(info.value)


@given(values=S.samples(min_size=4, max_size=20), exponent=st.integers(-1040, 1015))
def test_pearson_is_invariant_to_any_power_of_two_scale(values, exponent):
    y = list(range(len(values)))
    ref = cb.pearson(values, y)
    got = cb.pearson(np.ldexp(np.asarray(values), exponent), y)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12, abs=1e-15)
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)


@given(
    offsets=st.lists(st.integers(0, 2**20), min_size=4, max_size=12).filter(
        lambda xs: len(set(xs)) > 1
    ),
    base=st.integers(2**53, 2**62),
)
def test_int64_correlation_equals_the_correlation_of_the_offsets(offsets, base):
    x = np.array([base + o for o in offsets], dtype=np.int64)
    y = list(range(len(offsets)))
    assert cb.pearson(x, y).statistic == pytest.approx(
        cb.pearson(offsets, y).statistic, rel=1e-13, abs=1e-15
    )


TWO_SAMPLE_SCALE_FREE = {
    "pearson": cb.pearson,
    "spearman": cb.spearman,
    "mann_whitney": cb.mann_whitney,
    "wilcoxon": cb.wilcoxon,
    "cohens_d": cb.cohens_d,
    "glass_delta": cb.glass_delta,
    "cohen_dz": cb.cohen_dz,
    "levene": cb.levene,
}


@given(
    x=S.samples(min_size=5, max_size=15),
    data=st.data(),
    exponent=st.sampled_from([-1045, -700, -300, 300, 700, 1005]),
    name=st.sampled_from(sorted(TWO_SAMPLE_SCALE_FREE)),
)
def test_scale_free_functions_are_invariant_to_power_of_two_scales(
    x, data, exponent, name
):
    y = data.draw(st.lists(S.values, min_size=len(x), max_size=len(x)))
    if len(set(y)) < 2 or all(a == b for a, b in zip(x, y, strict=True)):
        return
    fn = TWO_SAMPLE_SCALE_FREE[name]
    try:
        ref = _outputs(fn(x, y))
    except (
        BenchError
    ) as err:  # e.g. d_z of constant differences: refused at every scale
        with pytest.raises(type(err)):
            fn(np.ldexp(np.asarray(x), exponent), np.ldexp(np.asarray(y), exponent))
        return
    got = _outputs(
        fn(np.ldexp(np.asarray(x), exponent), np.ldexp(np.asarray(y), exponent))
    )
    for g, r in zip(got, ref, strict=True):
        assert (math.isnan(g) and math.isnan(r)) or g == pytest.approx(
            r, rel=1e-9, abs=1e-12
        )

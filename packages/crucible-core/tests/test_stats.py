from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from crucible_core import stats
from crucible_core.exceptions import ValidationError

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
samples = st.lists(finite, min_size=2, max_size=60)


def test_reference_values() -> None:
    x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
    assert stats.mean(x) == 5.0
    assert stats.median(x) == 4.5
    assert stats.sd(x, ddof=0) == 2.0
    assert stats.sd(x) == pytest.approx(2.138089935299395)  # R: sd(x)
    # R: quantile(x, c(.1, .9), type = 7) -> 3.4, 7.6
    assert stats.percentiles(x, [10, 90]) == pytest.approx([3.4, 7.6])


def test_mean_ci_matches_r_t_test() -> None:
    # scipy.stats.ttest_1samp(x, 0).confidence_interval(), as R's t.test(x)$conf.int
    ci = stats.mean_ci([5.1, 4.9, 5.6, 5.8, 6.0, 4.7])
    assert (ci.low, ci.high) == pytest.approx(
        (4.799671307645994, 5.900328692354007), rel=1e-12
    )
    low, high = ci
    assert low == ci.low and high == ci.high


def test_proportion_ci_matches_r_prop_test() -> None:
    # statsmodels proportion_confint(42, 50, method="wilson"), as R's prop.test(correct = FALSE)
    ci = stats.proportion_ci(42, 50)
    assert (ci.low, ci.high) == pytest.approx(
        (0.7148578393696499, 0.9166257932196658), rel=1e-12
    )
    assert stats.proportion_ci(0, 10).low == 0.0
    assert stats.proportion_ci(10, 10).high == 1.0


@given(samples, st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_mean_ci_agrees_with_scipy_and_contains_mean(
    x: list[float], level: float
) -> None:
    ci = stats.mean_ci(x, confidence_level=level)
    assert ci.low <= ci.estimate <= ci.high
    if np.std(x) > 0:
        ref = scipy.stats.t.interval(
            level, len(x) - 1, loc=np.mean(x), scale=scipy.stats.sem(x)
        )
        assert (ci.low, ci.high) == pytest.approx(ref, rel=1e-9, abs=1e-9)


@given(samples, st.floats(min_value=0, max_value=100))
def test_percentile_matches_numpy_and_is_order_free(x: list[float], q: float) -> None:
    got = stats.percentile(x, q)
    assert got == pytest.approx(float(np.percentile(x, q)), rel=1e-12, abs=1e-9)
    assert stats.percentile(list(reversed(x)), q) == got
    assert min(x) <= got <= max(x)


def test_describe() -> None:
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=1000)
    s = stats.describe(x)
    assert s.n == 1000
    assert s.p99 == pytest.approx(np.percentile(x, 99))
    assert s.min <= s.p50 <= s.p90 <= s.p95 <= s.p99 <= s.max
    assert "p99" in s.render()
    assert "<table>" in s._repr_html_()


def test_nan_policy() -> None:
    x = [1.0, math.nan, 3.0]
    with pytest.raises(
        ValidationError, match=r"1 NaN value\(s\), the first at index 1"
    ):
        stats.mean(x)
    assert stats.mean(x, nan_policy="omit") == 2.0
    assert stats.describe(x, nan_policy="omit").nan_omitted == 1
    with pytest.raises(ValidationError, match="nan_policy"):
        stats.mean(x, nan_policy="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("x", "match"),
    [
        ([], "0 value"),
        ([math.nan], "NaN"),
        ([1.0, math.inf], "infinite"),
        ([[1.0, 2.0]], "one-dimensional"),
        (["a", "b"], "must be numbers"),
    ],
)
def test_bad_samples(x: object, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        stats.mean(x)  # type: ignore[arg-type]


def test_edge_cases() -> None:
    one = stats.mean_ci([3.0])
    assert (one.low, one.high) == (-math.inf, math.inf)
    flat = stats.mean_ci([2.0, 2.0, 2.0])
    assert flat.low == flat.high == 2.0
    with pytest.raises(ValidationError):
        stats.sd([1.0])
    with pytest.raises(ValidationError, match="confidence_level"):
        stats.mean_ci([1.0, 2.0], confidence_level=95)
    with pytest.raises(ValidationError, match=r"\[0, 100\]"):
        stats.percentile([1.0, 2.0], 101)
    with pytest.raises(ValidationError, match="successes"):
        stats.proportion_ci(11, 10)

"""Bad input gets a clear BenchError subclass naming the problem; never a silent coercion."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import crucible_bench as cb
from crucible_bench import (
    BenchError,
    InsufficientDataError,
    InvalidInputError,
    InvalidParameterError,
)

NAN = math.nan


@pytest.mark.parametrize(
    ("call", "error", "reason"),
    [
        (lambda: cb.ttest([]), InsufficientDataError, "empty"),
        (lambda: cb.ttest([1.0]), InsufficientDataError, "too_few"),
        (lambda: cb.ttest([2.0, 2.0, 2.0]), InsufficientDataError, "constant"),
        (lambda: cb.ttest([1.0, NAN, 3.0]), InvalidInputError, "nan"),
        (lambda: cb.ttest([1.0, math.inf, 3.0]), InvalidInputError, "inf"),
        (
            lambda: cb.ttest([1, 2, 3], [1, 2], paired=True),
            InvalidInputError,
            "length_mismatch",
        ),
        (lambda: cb.ttest([1, 1], [2, 2]), InsufficientDataError, "constant"),
        (lambda: cb.mann_whitney([], [1, 2]), InsufficientDataError, "empty"),
        (lambda: cb.mann_whitney([1, 1], [1, 1]), InsufficientDataError, "constant"),
        (lambda: cb.wilcoxon([1, 2, 3], [1, 2, 3]), InsufficientDataError, "constant"),
        (lambda: cb.wilcoxon([1, 2, 3], [1, 2]), InvalidInputError, "length_mismatch"),
        (lambda: cb.anova_oneway([1, 2, 3]), InsufficientDataError, "too_few_groups"),
        (lambda: cb.anova_oneway([1, 1], [1, 1]), InsufficientDataError, "constant"),
        (lambda: cb.welch_anova([1, 2], [3, 3]), InsufficientDataError, "constant"),
        (lambda: cb.kruskal([1, NAN], [2, 3]), InvalidInputError, "nan"),
        (
            lambda: cb.chi2_independence([[1, -2], [3, 4]]),
            InvalidInputError,
            "negative",
        ),
        (
            lambda: cb.chi2_independence([[0, 0], [3, 4]]),
            InsufficientDataError,
            "empty_margin",
        ),
        (
            lambda: cb.chi2_goodness_of_fit([1, 2], probabilities=[0.5, 0.6]),
            InvalidInputError,
            "sum",
        ),
        (lambda: cb.fisher_exact([[1.5, 2], [3, 4]]), InvalidInputError, "non_integer"),
        (lambda: cb.mcnemar([[5, 0], [0, 5]]), InsufficientDataError, "no_discordant"),
        (lambda: cb.mcnemar([[1, 2, 3], [4, 5, 6]]), InvalidInputError, "shape"),
        (lambda: cb.shapiro([1, 2]), InsufficientDataError, "too_few"),
        (lambda: cb.adjust_pvalues([0.1, 1.2]), InvalidInputError, "range"),
        (lambda: cb.adjust_pvalues([]), InvalidInputError, "empty"),
        (lambda: cb.pearson([1, 2, 3], [1, 2, NAN]), InvalidInputError, "nan"),
        (lambda: cb.bootstrap_ci([3.0, 3.0, 3.0]), InsufficientDataError, "constant"),
        (
            lambda: cb.compare_accuracy([1, 0, 2], [1, 0, 1]),
            InvalidInputError,
            "not_binary",
        ),
        (
            lambda: cb.compare_accuracy([1, 0, 1], [1, 0]),
            InvalidInputError,
            "length_mismatch",
        ),
        (lambda: cb.rm_anova([[1, 2], [NAN, 3], [2, 4]]), InvalidInputError, "nan"),
        (lambda: cb.ttest("abc"), InvalidInputError, "type"),
    ],
)
def test_bad_input_raises_a_named_error(call, error, reason):
    with pytest.raises(error) as info:
        call()
    err = info.value
    assert isinstance(err, BenchError)
    assert isinstance(err, ValueError)
    assert err.reason == reason
    assert str(err)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: cb.ttest([1, 2, 3], alternative="bigger"), "alternative"),
        (lambda: cb.ttest([1, 2, 3], confidence_level=1.5), "confidence_level"),
        (lambda: cb.ttest([1, 2, 3], nan_policy="ignore"), "nan_policy"),
        (lambda: cb.mann_whitney([1, 2], [2, 3], method="exact"), "method"),
        (lambda: cb.adjust_pvalues([0.1], method="magic"), "method"),
        (lambda: cb.power_ttest(effect_size=0.5), "n"),
        (lambda: cb.power_ttest(effect_size=0.5, n=10, power=0.8), "effect_size"),
        (lambda: cb.power_ttest(effect_size=0.5, power=0.01), "power"),
        (lambda: cb.bootstrap_ci([1, 2, 3], n_resamples=10), "n_resamples"),
        (lambda: cb.bootstrap_ci([1, 2, 3], statistic="mode"), "statistic"),
        (lambda: cb.bootstrap_ci([1, 2, 3], rng=-1), "rng"),
        (lambda: cb.anova_twoway([1, 2, 3, 4], "aabb", "xyxy", ss_type=4), "ss_type"),
    ],
)
def test_bad_options_raise_invalid_parameter(call, argument):
    with pytest.raises(InvalidParameterError) as info:
        call()
    assert info.value.argument == argument
    assert isinstance(info.value, ValueError)


def test_nan_policy_omit_drops_values_and_pairs():
    r = cb.ttest([1.0, 2.0, NAN, 4.0], nan_policy="omit")
    assert r.n == 3
    p = cb.ttest(
        [1.0, 2.0, NAN, 4.0], [1.5, NAN, 2.0, 3.0], paired=True, nan_policy="omit"
    )
    assert p.n == 2
    q = cb.rm_anova([[1, 2, 3], [NAN, 3, 4], [2, 4, 5], [1, 3, 6]], nan_policy="omit")
    assert q.n == 3


def test_errors_pickle_with_their_context():
    with pytest.raises(InvalidInputError) as info:
        cb.ttest([1.0, NAN])
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is InvalidInputError
    assert again.reason == "nan"
    assert again.argument == "x"
    assert str(again) == str(info.value)


def test_mapping_passed_to_anova_gets_a_hint():
    with pytest.raises(InvalidInputError, match="compare_groups"):
        cb.anova_oneway({"a": [1, 2], "b": [3, 4]})  # type: ignore[arg-type]


def test_power_solver_reports_impossible_targets():
    with pytest.raises(cb.ConvergenceError):
        cb.power_ttest(n=3, power=0.999999, kind="one-sample", alpha=1e-6)


def test_fisher_rxc_rejects_one_sided():
    with pytest.raises(InvalidParameterError):
        cb.fisher_exact(np.ones((2, 3), dtype=int), alternative="less")

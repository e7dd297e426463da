"""The harness analysis: tests and intervals that agree, effect sizes, sensitivity, direction, order."""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import crucible_bench as bench
from crucible_core.exceptions import ValidationError
from crucible_harness import _numbers as fmt
from crucible_harness._analysis import (
    Analysis,
    _mcnemar_tango,
    _resampled_percentiles,
    _tango_score,
    analyse,
    in_task_order,
)
from crucible_harness._experiment import AnalysisConfig
from crucible_harness._report import write_reports
from crucible_harness.exceptions import ExperimentDefinitionError


# -- records -----------------------------------------------------------------------------------
def records_from(
    outcomes: dict[str, Sequence[Sequence[int]]],
    *,
    latency: dict[str, Sequence[Sequence[float]]] | None = None,
    cost: float = 0.001,
) -> list[dict[str, Any]]:
    """Task records from per-condition items × repeats outcomes (and latencies)."""
    out = []
    for condition, items in outcomes.items():
        for i, reps in enumerate(items):
            for r, v in enumerate(reps):
                lat = latency[condition][i][r] if latency else 0.5 + 0.01 * i + 0.1 * r
                out.append(
                    {
                        "key": f"{condition}\x1fq{i:03d}\x1f{r}",
                        "condition": condition,
                        "item": f"q{i:03d}",
                        "repeat": r,
                        "status": "ok",
                        "correct": bool(v),
                        "latency": lat,
                        "cost": cost * (1 + v),
                        "input_tokens": 10,
                        "output_tokens": 5,
                    }
                )
    return out


def run_analysis(
    records: Sequence[dict[str, Any]], conditions: Sequence[str], **config: Any
) -> Analysis:
    cfg = AnalysisConfig(**{"n_resamples": 400, **config})
    manifest = {"experiment": {"run": {"seed": 3}}}
    return analyse(records, conditions=conditions, config=cfg, manifest=manifest)


def excludes_zero(ci: tuple[float, float]) -> bool:
    return ci[0] > 0 or ci[1] < 0


# -- the number rule ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "kind", "options", "text"),
    [
        (0.8333333, "proportion", {}, "0.833"),
        (1.0, "proportion", {}, "1.000"),
        (0.12, "difference", {}, "+0.120"),
        (-7.685e-13, "difference", {}, "0.000"),
        (-7.685e-13, "seconds", {"scale": 0.7}, "0.000"),
        (0.0035, "usd", {}, "0.00350"),
        (12.2, "tokens", {}, "12.2"),
        (1234.6, "tokens", {}, "1235"),
        (1.5599999999999838, "setting", {}, "1.56"),
        (0.05, "setting", {}, "0.05"),
        (0.4115, "effect", {}, "+0.41"),
        (2.0123, "ratio", {}, "2.01"),
        (0.014, "p", {}, ".014"),
        (0.0004, "p", {}, "< .001"),
        (1.0, "p", {}, "1.000"),
        (None, "count", {}, "—"),
        (math.nan, "seconds", {}, "NaN"),
        (math.inf, "usd", {}, "inf"),
        (40, "count", {}, "40"),
        (2.5, "count", {}, "2.5"),
    ],
)
def test_one_rule_formats_by_quantity(
    value: Any, kind: fmt.Kind, options: dict[str, Any], text: str
) -> None:
    assert fmt.number(value, kind, **options) == text


def test_p_values_are_apa_style() -> None:
    assert fmt.pvalue(0.0144) == "p = .014"
    assert fmt.pvalue(0.0009) == "p < .001"
    assert fmt.pvalue(0.9999) == "p = 1.000"
    assert fmt.interval(-0.0461, 0.6128, "difference") == "[-0.046, 0.613]"
    assert (
        fmt.interval(0.1, 1.23, "seconds") == "[0.10, 1.23]"
    )  # the decimals of the larger end


_NOISE = re.compile(r"\d\.\d{7,}|\de-\d")


def test_no_report_shows_float_noise(tmp_path: Path) -> None:
    # Identical latencies in both conditions: every latency difference is zero or float noise.
    rng = random.Random(5)
    outcomes = {
        c: [[rng.random() < 0.6 for _ in range(3)] for _ in range(30)]
        for c in ("a", "b")
    }
    lat = [[0.1 + 0.7 * rng.random() for _ in range(3)] for _ in range(30)]
    records = records_from(outcomes, latency={"a": lat, "b": lat})  # type: ignore[arg-type]
    for r in records:
        r["cost"] = 0.1 + 0.2 + 1.26  # 1.5599999999999998
    analysis = run_analysis(records, ["a", "b"])
    paths = write_reports(
        analysis, tmp_path, formats=["markdown", "latex", "html", "notebook"]
    )
    for key in ("markdown", "latex", "html"):
        text = paths[key].read_text(encoding="utf-8")
        assert not _NOISE.search(text), (key, _NOISE.search(text))
    tex = paths["latex"].read_text(encoding="utf-8")
    assert "[U+" not in tex  # every symbol of the methods text has a LaTeX spelling
    cells = json.loads(paths["notebook"].read_text(encoding="utf-8"))["cells"]
    shown = "".join(c["source"] for c in cells if c["cell_type"] == "markdown")
    assert not _NOISE.search(shown)
    assert "p < .001" in shown or "p = " in shown
    latency = next(m for m in analysis.metric_comparisons if m.metric == "latency_mean")
    assert abs(latency.difference) < 1e-12
    text = paths["markdown"].read_text(encoding="utf-8")
    assert "| per-item mean latency (s) | 30 |" in text
    assert "| 0.000 |" in text or "| 0.00 |" in text
    assert str(analysis) == analysis.render() and not _NOISE.search(str(analysis))


# -- McNemar with Tango's interval ---------------------------------------------------------------
def test_tango_interval_matches_fagerland_2014() -> None:
    # Fagerland, Lydersen & Laake (2014), Stat Med 33:2850, the Bentur et al. airway data:
    # n11 = 1, n12 = 1, n21 = 7, n22 = 12; Tango 95% CI (-0.517, -0.026), McNemar asymptotic p = 0.034.
    treatment = np.array([1] * 1 + [1] * 1 + [0] * 7 + [0] * 12, dtype=float)
    baseline = np.array([1] * 1 + [0] * 1 + [1] * 7 + [0] * 12, dtype=float)
    test = _mcnemar_tango(baseline, treatment, 0.95)
    assert test.estimate == pytest.approx(-6 / 21)
    assert test.interval == pytest.approx((-0.517, -0.026), abs=5e-4)
    assert test.pvalue == pytest.approx(0.034, abs=5e-4)
    assert test.pvalue == pytest.approx(sps.chi2.sf((1 - 7) ** 2 / (1 + 7), 1))


@pytest.mark.parametrize(
    ("n12", "n21", "n", "delta"),
    [(5, 2, 20, 0.1), (5, 2, 20, -0.2), (10, 3, 40, 0.3), (1, 7, 30, -0.1)],
)
def test_tango_score_uses_the_restricted_maximum_likelihood(
    n12: int, n21: int, n: int, delta: float
) -> None:
    from scipy.optimize import minimize_scalar

    rest = n - n12 - n21

    def nll(p21: float) -> float:
        p12 = p21 + delta
        return -(
            n12 * math.log(p12) + n21 * math.log(p21) + rest * math.log(1 - p12 - p21)
        )

    lo, hi = max(0.0, -delta) + 1e-12, (1 - delta) / 2 - 1e-12
    p21 = minimize_scalar(
        nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}
    ).x
    direct = (n12 - n21 - n * delta) / math.sqrt(n * (2 * p21 + delta * (1 - delta)))
    assert _tango_score(n12, n21, n, delta) == pytest.approx(direct, rel=1e-7)


# -- the interval and the test agree (random grids) -----------------------------------------------
_AGREE = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _check_agreement(analysis: Analysis, level: float) -> None:
    for c in (*analysis.comparisons, *analysis.metric_comparisons):
        lo, hi = c.confidence_interval
        if (
            "bootstrap" not in c.method
        ):  # a percentile interval need not contain the estimate
            assert lo <= c.difference <= hi, c
        assert (c.pvalue < 1 - level) == excludes_zero(c.confidence_interval), c
        if c.significant:
            assert excludes_zero(c.confidence_interval), c
        # The interval at the level the correction implies agrees with the corrected verdict.
        assert c.significant == excludes_zero(c.confidence_interval_adjusted), c


@_AGREE
@given(
    data=st.data(),
    n=st.integers(2, 60),
    level=st.sampled_from([0.9, 0.95, 0.99]),
)
def test_one_repeat_interval_and_test_agree(
    data: st.DataObject, n: int, level: float
) -> None:
    cells = st.lists(st.integers(0, 1), min_size=n, max_size=n)
    a, b = data.draw(cells), data.draw(cells)
    records = records_from({"a": [[v] for v in a], "b": [[v] for v in b]})
    analysis = run_analysis(
        records, ["a", "b"], confidence_level=level, alpha=1 - level
    )
    (c,) = analysis.comparisons
    assert c.method.startswith("McNemar's test")
    assert c.difference == pytest.approx((sum(b) - sum(a)) / n)
    _check_agreement(analysis, level)


@_AGREE
@given(
    data=st.data(),
    n=st.integers(2, 30),
    repeats=st.integers(2, 4),
    level=st.sampled_from([0.9, 0.95]),
)
def test_repeated_interval_and_test_agree(
    data: st.DataObject, n: int, repeats: int, level: float
) -> None:
    grid = st.lists(
        st.lists(st.integers(0, 1), min_size=repeats, max_size=repeats),
        min_size=n,
        max_size=n,
    )
    latencies = st.lists(
        st.lists(st.floats(0.01, 20.0), min_size=repeats, max_size=repeats),
        min_size=n,
        max_size=n,
    )
    outcomes = {"a": data.draw(grid), "b": data.draw(grid)}
    latency = {"a": data.draw(latencies), "b": data.draw(latencies)}
    records = records_from(outcomes, latency=latency)
    analysis = run_analysis(
        records, ["a", "b"], confidence_level=level, alpha=1 - level
    )
    (c,) = analysis.comparisons
    assert c.method.startswith("paired t-test")
    assert {m.metric for m in analysis.metric_comparisons} == {
        "latency_mean",
        "latency_p95",
        "latency_p99",
        "cost_mean",
    }
    _check_agreement(analysis, level)


def test_paired_t_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random((25, 3)) < 0.55).astype(int).tolist()
    b = (rng.random((25, 3)) < 0.7).astype(int).tolist()
    analysis = run_analysis(records_from({"a": a, "b": b}), ["a", "b"])
    (c,) = analysis.comparisons
    ref = sps.ttest_rel(np.mean(b, axis=1), np.mean(a, axis=1))
    assert c.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    assert c.confidence_interval == pytest.approx(tuple(ref.confidence_interval(0.95)))
    dz = next(e for e in c.effects if e.name == "d_z")
    ref_dz = bench.cohen_dz(np.mean(b, axis=1), np.mean(a, axis=1))
    assert dz.estimate == pytest.approx(ref_dz.estimate)
    assert dz.confidence_interval == pytest.approx(ref_dz.confidence_interval)


# -- effect sizes ----------------------------------------------------------------------------------
def test_accuracy_effects_are_risk_difference_odds_ratio_and_h() -> None:
    rng = np.random.default_rng(2)
    a = [[int(v)] for v in rng.random(80) < 0.5]
    b = [[int(v)] for v in rng.random(80) < 0.7]
    (c,) = run_analysis(records_from({"a": a, "b": b}), ["a", "b"]).comparisons
    names = [e.name for e in c.effects]
    assert names == [
        "risk difference",
        "odds ratio",
        "Cohen's h",
    ]  # no d_z without repeats
    rd, odds, h = c.effects
    assert (
        rd.estimate == c.difference and rd.confidence_interval == c.confidence_interval
    )
    pa, pb = c.accuracy_a, c.accuracy_b
    assert odds.estimate == pytest.approx(pb / (1 - pb) / (pa / (1 - pa)))
    assert h.estimate == pytest.approx(bench.cohens_h(pb, pa).estimate)
    for e in (odds, h):
        assert e.confidence_interval[0] <= e.estimate <= e.confidence_interval[1]
        assert "cluster bootstrap" in e.method
    assert "Tango" in rd.method


# -- latency and cost ------------------------------------------------------------------------------
def test_resampled_percentiles_are_numpy_percentiles_of_the_resampled_items() -> None:
    rng = np.random.default_rng(3)
    groups = [
        list(rng.exponential(1.0, size=int(k))) for k in rng.integers(1, 5, size=12)
    ]
    picks = rng.integers(0, 12, size=(7, 12))
    got = _resampled_percentiles(groups, picks, (50.0, 95.0, 99.0))
    for row, idx in zip(got, picks, strict=True):
        values = np.concatenate([groups[i] for i in idx])
        assert row == pytest.approx(np.percentile(values, [50, 95, 99]))


def test_latency_and_cost_form_a_second_corrected_family() -> None:
    rng = np.random.default_rng(4)
    outcomes = {
        c: (rng.random((30, 2)) < p).astype(int).tolist()
        for c, p in (("a", 0.5), ("b", 0.6), ("c", 0.7))
    }
    latency = {
        c: rng.lognormal(s, 0.5, size=(30, 2)).tolist()
        for c, s in (("a", 0.0), ("b", 0.3), ("c", -0.2))
    }
    analysis = run_analysis(records_from(outcomes, latency=latency), ["a", "b", "c"])
    metrics = analysis.metric_comparisons
    assert len(metrics) == 3 * 4
    assert list(
        bench.adjust_pvalues([m.pvalue for m in metrics], method="holm")
    ) == pytest.approx([m.pvalue_adjusted for m in metrics])
    accuracy = analysis.comparisons
    assert list(
        bench.adjust_pvalues([c.pvalue for c in accuracy], method="holm")
    ) == pytest.approx([c.pvalue_adjusted for c in accuracy])
    p95 = next(m for m in metrics if (m.a, m.b, m.metric) == ("a", "b", "latency_p95"))
    assert p95.baseline == pytest.approx(np.percentile(np.ravel(latency["a"]), 95))
    assert p95.treatment == pytest.approx(np.percentile(np.ravel(latency["b"]), 95))
    mean = next(
        m for m in metrics if (m.a, m.b, m.metric) == ("a", "c", "latency_mean")
    )
    ref = sps.ttest_rel(np.mean(latency["c"], axis=1), np.mean(latency["a"], axis=1))
    assert mean.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    assert mean.confidence_interval == pytest.approx(
        tuple(ref.confidence_interval(0.95))
    )
    assert "second family" in analysis.methods_text()
    p99 = next(m for m in metrics if m.metric == "latency_p99")
    assert "fewer than 10 latencies per condition lie above P99" in p99.method
    assert "so its interval is rough" in p95.method  # 60 · 0.05 = 3 < 10


# -- direction -------------------------------------------------------------------------------------
def _three() -> list[dict[str, Any]]:
    rng = np.random.default_rng(6)
    return records_from(
        {
            c: (rng.random((20, 2)) < p).astype(int).tolist()
            for c, p in (("llama", 0.4), ("gpt4", 0.8), ("mix", 0.6))
        }
    )


def test_comparisons_are_treatment_minus_the_named_baseline() -> None:
    analysis = run_analysis(_three(), ["llama", "gpt4", "mix"], baseline="gpt4")
    assert [(c.a, c.b) for c in analysis.comparisons] == [
        ("gpt4", "llama"),
        ("gpt4", "mix"),
    ]
    acc = {c.name: c.accuracy for c in analysis.conditions}
    for c in analysis.comparisons:
        assert c.difference == pytest.approx(acc[c.b] - acc[c.a])
        assert c.interpretation.startswith(f"{c.b} − {c.a}: accuracy")
    primary = run_analysis(
        _three(), ["llama", "gpt4", "mix"], primary=("llama", "gpt4")
    )
    (c,) = primary.comparisons
    assert (c.a, c.b) == (
        "llama",
        "gpt4",
    ) and c.difference > 0  # "gpt4 beats llama" reads positive
    pairs = run_analysis(_three(), ["llama", "gpt4", "mix"])
    assert [(c.a, c.b) for c in pairs.comparisons] == [
        ("llama", "gpt4"),
        ("llama", "mix"),
        ("gpt4", "mix"),
    ]


def test_an_unknown_baseline_is_refused() -> None:
    with pytest.raises(ValidationError, match="baseline 'gpt5'"):
        run_analysis(_three(), ["llama", "gpt4", "mix"], baseline="gpt5")
    from crucible_harness import Experiment

    with pytest.raises(ExperimentDefinitionError, match="baseline"):
        Experiment(
            name="x",
            conditions={"a": lambda item: "1", "b": lambda item: "1"},
            dataset=[{"id": "1", "input": "q", "expected": "1"}],
            analysis=AnalysisConfig(baseline="c"),
        )
    with pytest.raises(ExperimentDefinitionError, match="target_effect"):
        AnalysisConfig(target_effect=1.5)


# -- order -----------------------------------------------------------------------------------------
def test_results_do_not_depend_on_completion_order() -> None:
    records = _three()
    shuffled = list(records)
    random.Random(0).shuffle(shuffled)
    one = run_analysis(records, ["llama", "gpt4", "mix"])
    two = run_analysis(shuffled, ["llama", "gpt4", "mix"])
    assert one.to_dict() == two.to_dict()
    assert list(one.records) == list(in_task_order(shuffled))


_SHUFFLE_RNG = np.random.default_rng(11)
_SHUFFLED = records_from(
    {
        c: (_SHUFFLE_RNG.random((12, 3)) < p).astype(int).tolist()
        for c, p in (("a", 0.5), ("b", 0.7), ("c", 0.6))
    },
    latency={c: _SHUFFLE_RNG.lognormal(0, 0.5, (12, 3)).tolist() for c in "abc"},
)
_SHUFFLED_REFERENCE = run_analysis(_SHUFFLED, ["a", "b", "c"]).to_dict()


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(len(_SHUFFLED))))
def test_every_completion_order_gives_a_bit_identical_analysis(
    order: list[int],
) -> None:
    shuffled = [_SHUFFLED[i] for i in order]
    again = run_analysis(shuffled, ["a", "b", "c"]).to_dict()
    # bit-identical: bootstrap intervals, p-values, percentiles, the records' order
    assert json.dumps(again, sort_keys=True) == json.dumps(
        _SHUFFLED_REFERENCE, sort_keys=True
    )


# -- sensitivity instead of observed power ---------------------------------------------------------
def test_minimum_detectable_difference_replaces_observed_power() -> None:
    rng = np.random.default_rng(7)
    a = (rng.random((40, 3)) < 0.6).astype(int).tolist()
    b = (rng.random((40, 3)) < 0.65).astype(int).tolist()
    (c,) = run_analysis(records_from({"a": a, "b": b}), ["a", "b"]).comparisons
    d = np.mean(b, axis=1) - np.mean(a, axis=1)
    assert c.power is None and c.items_needed is None  # no target effect named
    assert c.mde_dz is not None and c.mde is not None
    achieved = bench.power_ttest(effect_size=c.mde_dz, n=40, kind="paired").power
    assert achieved == pytest.approx(0.8, abs=1e-6)
    assert c.mde == pytest.approx(c.mde_dz * d.std(ddof=1))
    assert [p.repeats for p in c.plan] == [1, 2, 3, 5, 10]
    mdes = [p.mde for p in c.plan]
    assert mdes == sorted(
        mdes, reverse=True
    )  # more repeats, smaller detectable difference
    assert "Minimum detectable difference at 80% power" in c.interpretation
    assert "items needed for 80% power" not in c.interpretation


def _components(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """σ²_b and σ²_w of items × repeats outcomes, repeats paired by index (one-way ANOVA of b − a)."""
    d = b - a
    within = float(
        ((d - d.mean(axis=1, keepdims=True)) ** 2).sum() / (d.size - d.shape[0])
    )
    between = max(float(d.mean(axis=1).var(ddof=1)) - within / d.shape[1], 0.0)
    return between, within


def test_target_effect_gives_a_priori_power_and_the_items_needed() -> None:
    rng = np.random.default_rng(8)
    p_item = rng.uniform(0.2, 0.9, size=30)
    a = (rng.random((30, 3)) < p_item[:, None]).astype(int)
    b = (rng.random((30, 3)) < np.clip(p_item + 0.1, 0, 1)[:, None]).astype(int)
    target = 0.08
    analysis = run_analysis(
        records_from({"a": a.tolist(), "b": b.tolist()}),
        ["a", "b"],
        target_effect=-target,
    )
    (c,) = analysis.comparisons
    sd = float((b.mean(axis=1) - a.mean(axis=1)).std(ddof=1))
    assert c.power == pytest.approx(
        bench.power_ttest(effect_size=target / sd, n=30, kind="paired").power
    )
    assert (
        c.items_needed
        == bench.power_ttest(
            effect_size=target / sd, power=0.8, kind="paired"
        ).n_required
    )
    between, within = _components(a.astype(float), b.astype(float))
    for row in c.plan:
        sd_r = sd if row.repeats == 3 else math.sqrt(between + within / row.repeats)
        needed = bench.power_ttest(effect_size=target / sd_r, power=0.8, kind="paired")
        assert (row.items_needed, row.evaluations) == (
            needed.n_required,
            needed.n_required * row.repeats,
        )
    assert "A priori power to detect a difference of 0.080" in c.interpretation
    assert "target difference 0.080" in analysis.methods_text()


def test_sensitivity_pairs_repeats_across_conditions() -> None:
    # A hedged copy of a model answers each repeat as the model does, bar a few flips: the
    # per-repeat differences are nearly constant, so every repeat count detects small differences.
    rng = np.random.default_rng(9)
    a = (rng.random((60, 3)) < 0.7).astype(int)
    b = a.copy()
    flips = rng.random(a.shape) < 0.03
    b[flips] = 1 - b[flips]
    (c,) = run_analysis(
        records_from({"a": a.tolist(), "b": b.tolist()}), ["a", "b"]
    ).comparisons
    mdes = [p.mde for p in c.plan]
    assert mdes == sorted(mdes, reverse=True)
    assert next(p.mde for p in c.plan if p.repeats == 3) == pytest.approx(c.mde)
    assert (
        max(mdes) < 0.1
    )  # independent-repeat bookkeeping would claim ≈ 0.25 at one repeat


def test_adjusted_intervals_are_bonferroni_simultaneous_intervals() -> None:
    rng = np.random.default_rng(10)
    outcomes = {
        c: (rng.random((40, 2)) < p).astype(int).tolist()
        for c, p in (("a", 0.5), ("b", 0.62), ("c", 0.75))
    }
    analysis = run_analysis(
        records_from(outcomes), ["a", "b", "c"], correction="bonferroni"
    )
    for c in analysis.comparisons:
        d = np.mean(outcomes[c.b], axis=1) - np.mean(outcomes[c.a], axis=1)
        ref = sps.ttest_rel(
            np.mean(outcomes[c.b], axis=1), np.mean(outcomes[c.a], axis=1)
        )
        assert c.pvalue_adjusted == pytest.approx(min(1.0, 3 * ref.pvalue))
        if c.pvalue_adjusted < 1:
            expected = ref.confidence_interval(1 - 0.05 / 3)
            assert c.confidence_interval_adjusted == pytest.approx(tuple(expected))
        assert c.significant == excludes_zero(c.confidence_interval_adjusted)
        assert d.size == 40
    assert any(
        "interval at the adjusted level" in c.interpretation
        for c in analysis.comparisons
    )

"""Metrics checked against numpy on the same data, the p99 interval, comparisons, views."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crucible_telemetry as ct
from crucible_core import context


def _run(emit: Any, latencies: list[float], failures: int, *, name: str = "m") -> str:
    with ct.experiment(name, condition="base") as exp:
        for i, lat in enumerate(latencies):
            with context.use(condition="a" if i % 2 else "b"):
                emit.stop(
                    lat,
                    model="sim:gpt-4" if i % 3 else "sim:claude-3",
                    input_tokens=10 + i,
                    output_tokens=i % 7,
                    cost=0.001 * (i % 5),
                )
        for _ in range(failures):
            emit.exception(9.0)
    return exp.id


def test_metrics_match_numpy(emit: Any) -> None:
    rng = np.random.default_rng(1)
    lat = list(rng.lognormal(-1, 0.8, 600))
    exp_id = _run(emit, lat, failures=4)
    m = ct.calculate_metrics(exp_id)
    ms = np.array(lat) * 1000
    assert m.summary.total_events == 604
    assert m.summary.event_types == {
        "crucible.llm.request.stop": 600,
        "crucible.llm.request.exception": 4,
    }
    assert m.summary.first is not None and m.summary.last is not None
    assert m.summary.first <= m.summary.last and m.summary.duration_seconds > 0
    assert m.latency.n == 600
    assert m.latency.mean == pytest.approx(ms.mean())
    assert m.latency.median == pytest.approx(np.median(ms))
    for q in (50, 90, 95, 99):
        assert getattr(m.latency, f"p{q}") == pytest.approx(np.percentile(ms, q))
    assert m.latency.sd == pytest.approx(ms.std(ddof=1))
    assert (m.latency.min, m.latency.max) == (
        pytest.approx(ms.min()),
        pytest.approx(ms.max()),
    )
    ci = m.latency.p99_ci
    assert ci is not None and ci.low <= m.latency.p99 <= ci.high
    costs = np.array([0.001 * (i % 5) for i in range(600)])
    assert m.cost.total == pytest.approx(costs.sum())
    assert m.cost.priced == 600 and m.cost.unpriced == 4
    assert m.cost.mean_per_request == pytest.approx(costs.mean())
    assert m.cost.cost_per_1k_requests == pytest.approx(costs.mean() * 1e3)
    assert m.cost.cost_per_1m_requests == pytest.approx(costs.mean() * 1e6)
    r = m.reliability
    assert (r.requests, r.successes, r.failures) == (604, 600, 4)
    assert r.success_rate == pytest.approx(
        600 / 604
    ) and r.failure_rate == pytest.approx(4 / 604)
    assert r.sla_99 is True and r.sla_999 is False
    assert r.success_rate_ci is not None and r.success_rate_ci.low < r.success_rate < 1
    t = m.tokens
    assert t.total_prompt == sum(10 + i for i in range(600)) + 0
    assert t.total_completion == sum(i % 7 for i in range(600))
    assert t.mean_total == pytest.approx(np.mean([10 + i + i % 7 for i in range(600)]))
    assert set(m.by_condition) == {"a", "b", "base"}
    assert m.by_condition["a"].latency.mean == pytest.approx(ms[1::2].mean())
    assert m.by_condition["base"].reliability.failures == 4
    assert set(m.by_model) == {"sim:gpt-4", "sim:claude-3"}
    gpt = [x for i, x in enumerate(ms) if i % 3]
    assert m.by_model["sim:gpt-4"].latency.p90 == pytest.approx(np.percentile(gpt, 90))


def test_each_part_renders(emit: Any) -> None:
    exp_id = _run(emit, [0.1 * (i + 1) for i in range(400)], failures=1)
    m = ct.calculate_metrics(exp_id)
    assert m.latency.p99_ci is not None
    assert "p99 95% CI" in str(m.latency) and "p99 latency 95% CI" in str(m)
    for part, title in (
        (m.summary, "Summary"),
        (m.cost, "Cost (USD)"),
        (m.reliability, "Reliability"),
        (m.tokens, "Tokens"),
        (m.by_condition["a"], "Request metrics"),
    ):
        assert str(part).startswith(title)
        assert part._repr_html_().startswith('<div class="crucible-view">')
    assert "crucible.llm.request.stop" in str(m.summary)


def test_empty_experiment_metrics() -> None:
    with ct.experiment("empty") as exp:
        pass
    m = ct.calculate_metrics(exp.id)
    assert (
        m.summary.total_events == 0 and m.latency.n == 0 and math.isnan(m.latency.mean)
    )
    assert m.reliability.requests == 0 and m.reliability.sla_99 is False
    assert "Metrics of" in m.render()


def test_requests_prefix(emit: Any) -> None:
    from crucible_core import events

    with ct.experiment("hedged") as exp:
        events.emit(events.HEDGING_REQUEST_STOP, {"duration": 0.2, "cost": 0.01})
        events.emit(events.HEDGING_REQUEST_EXCEPTION, {"duration": 0.4})
        emit.stop(1.0)
    m = ct.calculate_metrics(exp.id, requests="crucible.hedging.request")
    assert (
        m.reliability.requests == 2 and m.latency.mean == 200.0 and m.cost.total == 0.01
    )


def _coverage(n: int, q: Fraction, lo: int, hi: int) -> Fraction:
    """P(lo <= B <= hi - 1) for B ~ Binomial(n, q), exactly."""
    return sum(
        (Fraction(math.comb(n, k)) * q**k * (1 - q) ** (n - k) for k in range(lo, hi)),
        Fraction(0),
    )


@pytest.mark.parametrize(("n", "q"), [(50, 0.5), (400, 0.99), (1000, 0.9), (999, 0.99)])
def test_quantile_ci_is_the_exact_binomial_interval(n: int, q: float) -> None:
    x = np.arange(1, n + 1, dtype=float)  # order statistic k is k itself
    ci = ct.quantile_ci(x, q)
    assert ci is not None
    lo, hi = int(ci.low), int(ci.high)
    qf = Fraction(q).limit_denominator(1000)
    # coverage at least 95 %, and each tail at most 2.5 %
    assert _coverage(n, qf, lo, hi) >= Fraction(95, 100)
    assert _coverage(n, qf, 0, lo) < Fraction(25, 1000)  # P(B < lo)
    assert _coverage(n, qf, 0, lo + 1) >= Fraction(25, 1000)  # lo is the smallest such
    assert _coverage(n, qf, hi, n + 1) <= Fraction(25, 1000)  # P(B >= hi)
    assert ci.estimate == pytest.approx(np.percentile(x, q * 100))


def test_quantile_ci_too_small_and_bad_input() -> None:
    assert ct.quantile_ci(np.arange(100.0), 0.99) is None
    with pytest.raises(ct.InvalidOptionError):
        ct.quantile_ci([1.0, 2.0], 1.5)
    with pytest.raises(ValueError, match="NaN"):
        ct.quantile_ci([1.0, math.nan], 0.5)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e4), min_size=400, max_size=900))
def test_quantile_ci_brackets_the_estimate(values: list[float]) -> None:
    ci = ct.quantile_ci(values, 0.99)
    assert ci is not None and ci.low <= ci.estimate <= ci.high
    assert ci.low in values and ci.high in values


def test_compare_conditions(emit: Any) -> None:
    a = _run(emit, [0.1, 0.2, 0.3, 0.4], 0, name="control")
    b = _run(emit, [0.5, 0.6, 0.7], 1, name="treatment")
    cmp = ct.compare_conditions(a, b)
    assert cmp.a_values == (100.0, 200.0, 300.0, 400.0) and len(cmp.b_values) == 3
    assert cmp.a_summary is not None and cmp.a_summary.mean == pytest.approx(250.0)
    success = ct.compare_conditions(a, b, metric="success")
    assert success.b_values == (1.0, 1.0, 1.0, 0.0)
    text = cmp.render()
    assert "latency_ms" in text and a in text
    with pytest.raises(ct.InvalidOptionError, match="metric must be"):
        ct.compare_conditions(a, b, metric="speed")  # type: ignore[arg-type]


def test_views_escape_and_render(emit: Any) -> None:
    with ct.experiment("<script>x</script>", tags=["<t>"]) as exp:
        emit.stop(0.1, model="<evil>")
    record = ct.get_experiment(exp.id)
    html = record._repr_html_()
    assert "<script>x" not in html and "&lt;script&gt;" in html
    assert repr(record).startswith("TelemetryExperiment(id=")
    m = ct.calculate_metrics(exp.id)
    assert "&lt;evil&gt;" in m._repr_html_() and "<evil>" not in m._repr_html_()
    assert "model=<evil>" in str(m)
    assert m.to_dict()["latency"]["n"] == 1
    frame = m.to_polars()
    assert frame["group"].to_list() == ["all", "condition=default", "model=<evil>"]
    got = ct.get_events(exp.id)
    assert repr(got) == f"Events(n=1, experiments=[{exp.id!r}])"
    assert "1 events" in got.render() and "&lt;evil&gt;" in got._repr_html_()

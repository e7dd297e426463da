"""The packages together: telemetry captures what models, ensembles and the harness emit; bench compares."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import crucible_bench
import crucible_telemetry as ct
from crucible_core.models import Request, SimulatedModel
from crucible_ensemble import Ensemble
from crucible_harness import Condition, Experiment, HarnessItem, RunConfig, run


def _calls(model: SimulatedModel, n: int) -> None:
    async def go() -> None:
        for i in range(n):
            await model.complete(
                Request(
                    prompt=f"What is {i} + {i}?", reference=str(2 * i), kind="number"
                )
            )

    asyncio.run(go())


def test_telemetry_compares_two_experiments_through_bench() -> None:
    with ct.experiment("fast-model") as fast:
        _calls(SimulatedModel("llama-3-70b", seed=1, virtual_time=True), 300)
    with ct.experiment("slow-model") as slow:
        _calls(SimulatedModel("gemini-pro", seed=1, virtual_time=True), 300)
    comparison = ct.compare_conditions(fast.id, slow.id, metric="latency_ms")
    assert len(comparison.a_values) >= 290 and len(comparison.b_values) >= 290
    assert comparison.test is not None
    assert isinstance(comparison.test, crucible_bench.ComparisonResult)
    assert (
        comparison.test.pvalue < 0.001
    )  # fast (P50 200 ms) vs medium (P50 500 ms) latency profiles
    assert comparison.a_summary is not None and comparison.b_summary is not None
    assert comparison.a_summary.p50 < comparison.b_summary.p50


def test_telemetry_captures_a_harness_run_with_an_ensemble(tmp_path: Path) -> None:
    items = [
        HarnessItem(id=f"q{i}", input=f"What is {i} + {i}?", expected=str(2 * i))
        for i in range(30)
    ]
    members = [
        SimulatedModel(name, seed=2, virtual_time=True)
        for name in ("gpt-4", "claude-3", "gemini-pro")
    ]
    exp = Experiment(
        name="captured",
        dataset=items,
        conditions=[
            Condition(
                name="single", target=SimulatedModel("gpt-4", seed=2, virtual_time=True)
            ),
            Condition(name="vote", target=Ensemble(members, strategy="majority")),
        ],
        run=RunConfig(max_concurrency=8),
    )
    with ct.experiment("harness-capture", capture="all") as captured:
        result = run(exp, output_dir=tmp_path, formats=())
    events = ct.get_events(captured.id)
    names = [e.name for e in events]
    assert names.count("crucible.harness.task.stop") == 60
    assert names.count("crucible.ensemble.vote.stop") == 30
    assert names.count("crucible.llm.request.stop") >= 30 + 30 * 3
    vote_acc = next(c for c in result.analysis.conditions if c.name == "vote").accuracy
    assert 0.8 <= vote_acc <= 1.0


@pytest.mark.parametrize("bad", ["nope"])
def test_unknown_experiment_is_a_key_error(bad: str) -> None:
    with pytest.raises(KeyError):
        ct.get_events(bad)


@pytest.mark.parametrize("limit", [0.02, 0.05, 0.13])
def test_budget_holds_with_hedged_and_ensemble_conditions(
    tmp_path: Path, limit: float
) -> None:
    """Hedged backups and ensemble members are billed; the reservation covers them up front."""
    from crucible_harness import Budget, run_async
    from crucible_hedging import Fixed, HedgedModel, run_virtual

    items = [
        HarnessItem(id=f"q{i}", input=f"What is {i} + {i}?", expected=str(2 * i))
        for i in range(40)
    ]
    hedged = HedgedModel(
        SimulatedModel("gpt-4", seed=4), policy=Fixed(delay=0.3)
    )  # fires often
    vote = Ensemble(
        [SimulatedModel(n, seed=4) for n in ("gpt-4", "claude-3", "gemini-pro")]
    )
    exp = Experiment(
        name="billed",
        dataset=items,
        conditions=[
            Condition(name="hedged", target=hedged),
            Condition(name="vote", target=vote),
        ],
        budget=Budget(max_total=limit),
        run=RunConfig(max_concurrency=16),
    )
    from crucible_harness import estimate

    est = estimate(exp)
    assert est.cost["hedged"] == pytest.approx(
        40 * 0.005 * 2
    )  # every attempt billed: 1 + max_hedges
    assert est.cost["vote"] == pytest.approx(40 * (0.005 + 0.003 + 0.001))
    result = run_virtual(run_async(exp, output_dir=tmp_path, formats=()))
    assert result.spent <= limit + 1e-9
    assert result.status == "budget"
    hedged_costs = [r["cost"] for r in result.records if r["condition"] == "hedged"]
    if (
        len(hedged_costs) >= 5
    ):  # with room for several tasks, some backups fired and were billed
        assert any(c == pytest.approx(0.010) for c in hedged_costs)

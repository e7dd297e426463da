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

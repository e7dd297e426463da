"""Hedged execution runs through crucible-hedging, on the latencies the members report."""

from __future__ import annotations

import numpy as np
import pytest

from crucible_core.models import Completion, Request, Usage
from crucible_ensemble import (
    Ensemble,
    EnsembleConfigurationError,
    EnsembleTimeoutError,
    Hedged,
)
from crucible_hedging import Fixed, HedgeBudget, Parametric, Percentile, simulate

CHOICE = Request(prompt="Pick one", kind="choice", choices=("A", "B", "C", "D"))
PRICE = 0.002


class Replayed:
    """A member that answers `text` at once, reporting the latency `latencies[item]`."""

    def __init__(self, name: str, text: str, latencies: np.ndarray) -> None:
        self.name, self.text, self.latencies = name, text, latencies
        self.calls = 0

    @property
    def id(self) -> str:
        return f"replay:{self.name}"

    @property
    def provider(self) -> str:
        return "replay"

    async def complete(self, request: Request) -> Completion:
        self.calls += 1
        return Completion(
            text=self.text,
            usage=Usage(input_tokens=10, output_tokens=1),
            latency=float(self.latencies[request.metadata["item"]]),
            cost=PRICE,
        )

    async def aclose(self) -> None:
        pass


def items(n: int) -> list[Request]:
    return [
        Request(prompt=f"q{i}", kind="choice", choices=("A", "B"), metadata={"item": i})
        for i in range(n)
    ]


async def test_a_hedged_ensemble_gives_what_crucible_hedging_simulate_gives() -> None:
    """Same latencies, same policy and budget: the same latency, backups and winner per item."""
    n = 1200
    matrix = Parametric(distribution="medium").sample(np.random.default_rng(11), n, 2)

    class Replay:
        def sample(self, rng: object, n_: int, attempts: int) -> np.ndarray:
            return matrix

    def options() -> dict[str, object]:
        return {
            "policy": Percentile(p=90, min_samples=20),
            "budget": HedgeBudget(ratio=0.08),
        }

    des = simulate(Replay(), n=n, **options())  # type: ignore[arg-type]
    members = [
        Replayed("primary", "A", matrix[:, 0]),
        Replayed("backup", "B", matrix[:, 1]),
    ]
    ensemble = Ensemble(members, execution=Hedged(**options()))  # type: ignore[arg-type]
    results = [await ensemble.predict_async(item) for item in items(n)]

    np.testing.assert_allclose([r.latency for r in results], des.latency, atol=1e-9)
    assert [r.members_called - 1 for r in results] == des.hedges.tolist()
    assert [0 if r.answer == "A" else 1 for r in results] == des.winner.tolist()
    report, expected = ensemble.hedger.report(), des.report  # type: ignore[union-attr]
    assert (report.hedges_fired, report.hedge_wins) == (
        expected.hedges_fired,
        expected.hedge_wins,
    )
    assert 0 < report.hedge_rate <= 0.08 + 5 / n
    # billing: every call sent, the cancelled loser included (providers bill it)
    assert all(r.cost == pytest.approx(PRICE * r.members_called) for r in results)
    assert sum(m.calls for m in members) == n + int(des.hedges.sum())


async def test_a_slow_primary_is_beaten_by_the_backup_and_cancelled(scripted) -> None:
    primary = scripted("primary", "A", latency=4.0)
    backup = scripted("backup", "B", latency=0.3)
    ensemble = Ensemble([primary, backup], execution=Hedged(policy=Fixed(delay=0.5)))
    result = await ensemble.predict_async(CHOICE)
    assert result.answer == "B"
    assert result.latency == pytest.approx(0.8)
    cancelled, answered = result.responses
    assert (cancelled.status, cancelled.text, cancelled.answer) == (
        "cancelled",
        None,
        None,
    )
    assert (answered.status, answered.latency) == ("answered", 0.3)
    # the cancelled primary was sent, so it is billed: its completion's cost, an upper bound
    assert cancelled.cost == pytest.approx(0.001) and cancelled.input_tokens == 10
    assert result.cost == pytest.approx(0.002)


async def test_the_budget_caps_backups_across_predictions(scripted) -> None:
    members = [scripted("slow", "A", latency=2.0), scripted("quick", "B", latency=0.1)]
    budget = HedgeBudget(ratio=0.1, burst=1)
    ensemble = Ensemble(members, execution=Hedged(delay=0.5, budget=budget))
    results = [await ensemble.predict_async(CHOICE) for _ in range(100)]
    backups = sum(r.members_called - 1 for r in results)
    assert 0 < backups <= 1 + 0.1 * 100
    assert budget.spent == backups == ensemble.hedger.report().hedges_fired  # type: ignore[union-attr]
    assert sorted({round(r.latency, 9) for r in results}) == [0.6, 2.0]


async def test_each_answer_wanted_gets_its_own_hedged_request(scripted) -> None:
    a = scripted("a", "A", latency=5.0)
    b = scripted("b", "A", latency=0.2)
    c = scripted("c", "A", latency=0.3)
    d = scripted("d", "B", latency=0.1)
    ensemble = Ensemble([a, b, c, d], execution=Hedged(delay=1.0), min_responses=2)
    result = await ensemble.predict_async(CHOICE)
    # request 0: a, then c after 1 s (answers at 1.3 s); request 1: b answers at 0.2 s
    assert result.votes == {"A": 2}
    assert [r.status for r in result.responses] == ["cancelled", "answered", "answered"]
    assert [r.member for r in result.responses] == ["fake:a", "fake:b", "fake:c"]
    assert d.calls == 0
    assert result.latency == pytest.approx(1.3)


async def test_the_timeout_runs_on_the_reported_clock(scripted) -> None:
    members = [scripted("a", "A", latency=9.0), scripted("b", "B", latency=5.0)]
    ensemble = Ensemble(members, execution=Hedged(delay=1.0), timeout=2.0)
    with pytest.raises(EnsembleTimeoutError) as info:
        await ensemble.predict_async(CHOICE)
    result = info.value.result
    assert [r.status for r in result.responses] == ["timed_out", "timed_out"]
    assert result.latency == pytest.approx(2.0)


async def test_an_unreadable_answer_moves_on_at_once(scripted) -> None:
    members = [scripted("a", "no idea", latency=0.1), scripted("b", "C", latency=0.2)]
    result = await Ensemble(members, execution=Hedged(delay=5.0)).predict_async(CHOICE)
    assert result.answer == "C" and result.latency == pytest.approx(0.3)
    assert [r.status for r in result.responses] == ["unparsed", "answered"]
    assert result.cost == pytest.approx(0.002)  # the unreadable answer was paid for


def test_hedged_options_are_checked() -> None:
    with pytest.raises(EnsembleConfigurationError, match="not both"):
        Hedged(delay=0.5, policy=Fixed(delay=0.5))
    with pytest.raises(EnsembleConfigurationError, match="policy"):
        Hedged(policy="p95")  # type: ignore[arg-type]
    with pytest.raises(EnsembleConfigurationError, match="budget"):
        Hedged(budget=2)
    with pytest.raises(EnsembleConfigurationError, match="throttle"):
        Hedged(throttle=3)  # type: ignore[arg-type]
    assert Hedged().hedge_policy() == Fixed(delay=1.0)
    assert Hedged(delay=0.2).hedge_policy() == Fixed(delay=0.2)


def test_only_hedged_ensembles_have_a_hedger(scripted) -> None:
    assert Ensemble([scripted("a")]).hedger is None
    hedger = Ensemble([scripted("a"), scripted("b")], execution="hedged").hedger
    assert hedger is not None and hedger.max_hedges == 1

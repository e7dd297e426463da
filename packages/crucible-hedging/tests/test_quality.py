"""The statistical quality bar, in simulated and virtual time (fixed seeds, enough requests)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from crucible_core.models import LATENCY_CLASSES
from crucible_hedging import (
    Adaptive,
    Fixed,
    HedgeBudget,
    Hedger,
    Parametric,
    Percentile,
    run_virtual,
    simulate,
)
from crucible_hedging._survival import Survival, choose_delay

N = 40_000
MEDIUM = LATENCY_CLASSES["medium"]


@pytest.fixture(scope="module")
def p95_independent() -> Any:
    return simulate(Parametric(distribution="medium"), Percentile(p=95), n=N, seed=7)


def test_p95_hedge_cuts_p99_by_40_percent_leaving_p50_p95(p95_independent: Any) -> None:
    report = p95_independent.report
    # the simulated baseline really is the seeds' medium profile
    assert report.baseline(50) == pytest.approx(500, rel=0.03)
    assert report.baseline(95) == pytest.approx(2000, rel=0.05)
    assert report.baseline(99) == pytest.approx(5000, rel=0.08)
    assert report.latency(50) == pytest.approx(report.baseline(50), rel=0.01)
    assert report.latency(95) == pytest.approx(report.baseline(95), rel=0.03)
    assert report.reduction(99) >= 0.40
    assert report.hedge_rate == pytest.approx(0.05, abs=0.005)
    assert report.win_rate > 0.5


def test_p95_hedge_never_makes_a_request_slower(p95_independent: Any) -> None:
    assert (p95_independent.latency <= p95_independent.baseline + 1e-9).all()


def test_fully_correlated_latency_gains_nothing() -> None:
    result = simulate(
        Parametric(distribution="medium", correlation=1.0),
        Percentile(p=95),
        n=N,
        seed=7,
    )
    report = result.report
    assert report.hedge_rate == pytest.approx(0.05, abs=0.005)  # the load is paid...
    assert report.hedge_wins == 0  # ...for nothing
    assert report.reduction(99) == pytest.approx(0.0, abs=1e-9)
    assert report.reduction(99.9) == pytest.approx(0.0, abs=1e-9)


def test_partial_correlation_gains_less_than_independence() -> None:
    gains = [
        simulate(
            Parametric(distribution="medium", correlation=rho),
            Fixed(delay=2.0),
            n=N // 2,
            seed=3,
        ).report.reduction(99)
        for rho in (0.0, 0.5, 0.9)
    ]
    assert gains[0] > gains[1] > gains[2] >= 0


class LoggedBudget(HedgeBudget):
    """A budget that records every deposit (+ratio) and spend (-1) in order."""

    log: list[int]

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.log = []

    def deposit(self) -> None:
        super().deposit()
        self.log.append(0)

    def try_spend(self) -> bool:
        ok = super().try_spend()
        if ok:
            self.log.append(1)
        return ok


def _max_window_excess(log: list[int], ratio: float) -> float:
    """Max over windows of (backups - ratio * requests), by a prefix-sum scan."""
    level = 0.0
    lowest = 0.0
    worst = 0.0
    for step in log:
        level += 1.0 if step else -ratio
        worst = max(worst, level - lowest)
        lowest = min(lowest, level)
    return worst


@pytest.mark.parametrize("arrival_rate", [None, 50.0])
def test_budget_is_never_exceeded_over_any_window(arrival_rate: float | None) -> None:
    import crucible_hedging._simulate as sim

    budget = LoggedBudget(ratio=0.05, burst=3)
    # an aggressive policy (hedge at the median) with failures: the budget must bind
    policy = Percentile(p=50)
    # simulate copies the budget; run the controller on ours to inspect its log
    original = sim.copy.deepcopy
    try:
        sim.copy.deepcopy = lambda x: x  # type: ignore[attr-defined]
        result = simulate(
            Parametric(distribution="fast"),
            policy,
            n=20_000,
            seed=2,
            budget=budget,
            arrival_rate=arrival_rate,
            failure_rate=0.02,
            max_hedges=2,
        )
    finally:
        sim.copy.deepcopy = original  # type: ignore[attr-defined]
    assert result.report.budget_denied > 1000
    assert _max_window_excess(budget.log, 0.05) <= 3 + 1e-9
    assert result.report.hedge_rate <= 0.05 + 3 / 20_000


def test_simulate_leaves_the_policy_and_budget_untouched() -> None:
    policy, budget = Percentile(p=95), HedgeBudget(ratio=0.05)
    simulate(Parametric(distribution="fast"), policy, n=2000, budget=budget)
    assert policy.samples == 0
    assert budget.requests == 0


def _oracle_delay(max_rate: float) -> float:
    u = np.linspace(1e-5, 1 - 1e-5, 200_001)
    z = np.array([MEDIUM.quantile(float(x)) for x in u[::100]])  # coarse grid for speed
    times = np.sort(z)
    surv = 1.0 - u[::100]
    return choose_delay(
        Survival(times, surv), max_rate=max_rate, q=0.99, tolerance=0.05
    )


def test_adaptive_converges_to_the_oracle_delay() -> None:
    policy = Adaptive(max_rate=0.05, window=4000, update_every=500)
    result = simulate(Parametric(distribution="medium"), policy, n=N, seed=11)
    oracle = _oracle_delay(0.05)
    learned = result.delay[-5000:]
    assert np.nanmedian(learned) == pytest.approx(oracle, rel=0.12)
    report = result.report
    assert report.hedge_rate == pytest.approx(0.05, abs=0.005)  # a target, not a cap
    assert report.reduction(99) >= 0.35
    assert report.latency(50) == pytest.approx(report.baseline(50), rel=0.01)


def test_adaptive_stays_within_its_rate_under_a_budget() -> None:
    result = simulate(
        Parametric(distribution="slow"),
        Adaptive(max_rate=0.02),
        n=N,
        seed=5,
        budget=HedgeBudget(ratio=0.02),
    )
    assert result.report.hedge_rate <= 0.02 + 5 / N
    assert result.report.reduction(99) > 0.1


def test_asyncio_driver_and_simulator_agree_exactly(replay: Any) -> None:
    """The same decision code gives the same answers on the virtual asyncio loop and in the DES."""
    n = 1500
    rng = np.random.default_rng(4)
    matrix = Parametric(distribution="medium").sample(rng, n, 2)
    des, hedger = replay(matrix)

    async def main() -> list[float]:
        out = []
        for row in matrix:
            calls = iter(row)

            async def attempt(calls: Any = calls) -> None:
                await asyncio.sleep(next(calls))

            out.append((await hedger.request(attempt)).latency_ms / 1000)
        return out

    latencies = run_virtual(main())
    np.testing.assert_allclose(latencies, des.latency, rtol=0, atol=1e-9)
    assert hedger.report().hedges_fired == des.report.hedges_fired > 0
    assert hedger.report().hedge_wins == des.report.hedge_wins


def test_virtual_time_quality_bar_on_the_asyncio_driver() -> None:
    """The p95 hedge on the medium profile, through `Hedger.request` on the virtual loop."""
    n = 8000
    matrix = Parametric(distribution="medium").sample(np.random.default_rng(9), n, 2)
    hedger = Hedger(policy=Percentile(p=95))

    async def main() -> None:
        for row in matrix:
            calls = iter(row)

            async def attempt(calls: Any = calls) -> None:
                await asyncio.sleep(next(calls))

            await hedger.request(attempt)

    run_virtual(main())
    report = hedger.report()
    base = np.percentile(matrix[:, 0], [50, 95, 99]) * 1000
    assert report.latency(50) == pytest.approx(base[0], rel=0.02)
    assert report.latency(95) == pytest.approx(base[1], rel=0.05)
    assert 1 - report.latency(99) / base[2] >= 0.40
    assert report.hedge_rate == pytest.approx(0.05, abs=0.01)
    # the Kaplan–Meier estimate of the unhedged tail, from censored first attempts, is close
    assert report.baseline(99) == pytest.approx(base[2], rel=0.1)

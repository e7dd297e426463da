"""Hedging on reported latencies: attempts that return at once but say how long they took."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from crucible_core.exceptions import ResponseError
from crucible_core.models import Request, SimulatedModel
from crucible_hedging import (
    AllAttemptsFailedError,
    Fixed,
    HedgeAttempt,
    HedgedModel,
    Hedger,
    HedgingTimeoutError,
    InvalidHedgingConfigError,
    Parametric,
    hedged,
)


class Reported:
    """Attempts that answer at once with `(latency, label)`, or raise, as scripted."""

    def __init__(self, *specs: tuple[float, Any]) -> None:
        self.specs = iter(specs)
        self.calls = 0

    async def __call__(self) -> tuple[float, Any]:
        self.calls += 1
        latency, outcome = next(self.specs)
        if isinstance(outcome, BaseException):
            raise outcome
        return latency, outcome


def took(value: tuple[float | None, Any]) -> float | None:
    return value[0]


def test_a_backup_beats_a_primary_that_reports_a_long_latency() -> None:
    fn = Reported((10.0, "primary"), (0.1, "backup"))
    # a plain event loop: nothing sleeps, the request's clock follows the reported latencies
    result = asyncio.run(hedged(fn, policy=Fixed(delay=0.5), latency=took))
    assert result.value == (0.1, "backup") and result.winner_index == 1
    assert result.latency_ms == pytest.approx(600.0)
    assert (result.attempts, result.cancelled) == (2, 1)
    assert result.timeline == (
        HedgeAttempt(
            index=0, start_ms=0.0, end_ms=pytest.approx(600.0), outcome="cancelled"
        ),
        HedgeAttempt(
            index=1,
            start_ms=pytest.approx(500.0),
            end_ms=pytest.approx(600.0),
            outcome="won",
        ),
    )


def test_a_primary_in_time_needs_no_backup() -> None:
    fn = Reported((0.3, "primary"))
    result = asyncio.run(hedged(fn, policy=Fixed(delay=0.5), latency=took))
    assert (result.winner_index, result.attempts, fn.calls) == (0, 1, 1)
    assert result.latency_ms == pytest.approx(300.0)


def test_reported_latencies_give_exactly_what_simulate_gives(replay: Any) -> None:
    """The asyncio driver on a plain loop and the discrete-event simulator, same latencies."""
    n = 1500
    matrix = Parametric(distribution="medium").sample(np.random.default_rng(8), n, 2)
    des, hedger = replay(matrix)

    async def main() -> list[float]:
        out = []
        for row in matrix:
            fn = Reported(*((float(x), "ok") for x in row))
            out.append((await hedger.request(fn, latency=took)).latency_ms / 1000)
        return out

    latencies = asyncio.run(main())
    np.testing.assert_allclose(latencies, des.latency, rtol=0, atol=1e-9)
    assert hedger.report().hedges_fired == des.report.hedges_fired > 0
    assert hedger.report().hedge_wins == des.report.hedge_wins


def test_the_timeout_runs_on_the_reported_clock() -> None:
    fn = Reported((9.0, "late"), (8.0, "late too"))
    with pytest.raises(HedgingTimeoutError) as info:
        asyncio.run(hedged(fn, policy=Fixed(delay=1.0), timeout=2.0, latency=took))
    timeline = info.value.timeline
    assert [a.outcome for a in timeline] == ["cancelled", "cancelled"]
    assert [a.end_ms for a in timeline] == [pytest.approx(2000.0)] * 2
    assert pickle.loads(pickle.dumps(info.value)).timeline == timeline


def test_a_failure_starts_the_backup_at_once() -> None:
    fn = Reported((0.0, ResponseError("boom", status=500)), (0.2, "backup"))
    result = asyncio.run(hedged(fn, policy=Fixed(delay=5.0), latency=took))
    assert result.winner_index == 1
    assert result.latency_ms == pytest.approx(200.0, abs=1.0)
    assert [a.outcome for a in result.timeline] == ["failed", "won"]
    # an error may say how long its attempt took: the backup starts then
    late = ResponseError("boom after 1 s", status=500, latency=1.0)
    fn = Reported((0.0, late), (0.2, "backup"))
    result = asyncio.run(hedged(fn, policy=Fixed(delay=5.0), latency=took))
    assert result.latency_ms == pytest.approx(1200.0, abs=1.0)
    assert result.timeline[0].end_ms == pytest.approx(1000.0)


def test_every_attempt_failing_keeps_the_timeline() -> None:
    fn = Reported(
        (0.1, ResponseError("a", status=500)), (0.1, ResponseError("b", status=503))
    )
    with pytest.raises(AllAttemptsFailedError) as info:
        asyncio.run(hedged(fn, policy=Fixed(delay=5.0), latency=took))
    assert [a.outcome for a in info.value.timeline] == ["failed", "failed"]
    assert len(pickle.loads(pickle.dumps(info.value)).timeline) == 2


def test_an_attempt_still_running_on_the_loop_can_win() -> None:
    """Reported and real latencies mix: the clock waits while real attempts are running."""

    calls = iter(["reported", "real"])

    async def fn() -> tuple[float | None, str]:
        if next(calls) == "reported":
            return 5.0, "reported"
        await asyncio.sleep(0.02)  # really takes 20 ms, reports nothing
        return None, "real"

    result = asyncio.run(hedged(fn, policy=Fixed(delay=0.01), latency=took))
    assert result.value == (None, "real") and result.winner_index == 1
    assert [a.outcome for a in result.timeline] == ["cancelled", "won"]


def test_max_hedges_per_request() -> None:
    hedger = Hedger(policy=Fixed(delay=0.1), max_hedges=3)

    async def main() -> tuple[int, int]:
        capped = await hedger.request(
            Reported((9.0, "a"), (9.0, "b")), latency=took, max_hedges=1
        )
        free = await hedger.request(
            Reported((9.0, "a"), (9.0, "b"), (9.0, "c"), (0.1, "d")), latency=took
        )
        return capped.attempts, free.attempts

    assert asyncio.run(main()) == (2, 4)
    with pytest.raises(InvalidHedgingConfigError, match="max_hedges"):
        asyncio.run(hedger.request(Reported((0.1, "x")), max_hedges=-1))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_reported_latency_is_an_error(bad: float) -> None:
    with pytest.raises(InvalidHedgingConfigError, match="latency"):
        asyncio.run(hedged(Reported((bad, "x")), policy=Fixed(delay=1.0), latency=took))


def test_hedged_model_hedges_a_simulated_model_in_virtual_time() -> None:
    """No sleeping, no virtual loop: the completions' latencies drive the hedges."""
    inner = SimulatedModel("gpt-4", seed=3, virtual_time=True, retry=None)
    model = HedgedModel(inner, policy=Fixed(delay=2.0), budget=0.2)

    def items() -> Iterator[Request]:
        for i in range(400):
            yield Request(prompt=f"q{i}", reference="4", kind="number")

    async def main() -> list[tuple[float, float, int]]:
        out = []
        for request in items():
            try:
                done = await model.complete(request)
                alone = (await inner.complete(request)).latency
            except Exception:  # simulated 500s
                continue
            out.append((done.latency, alone, done.raw["hedge"]["winner_index"]))
        return out

    rows = asyncio.run(main())
    assert all(hedged_s <= alone + 1e-9 for hedged_s, alone, _ in rows)
    assert any(winner == 1 for *_, winner in rows)
    assert all(hedged_s <= 2.0 + 1e-9 or alone > 2.0 for hedged_s, alone, _ in rows)

"""Shared helpers: scripted attempts, event capture."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest

from crucible_core import events


@attrs.define
class Scripted:
    """An async callable whose n-th call sleeps `specs[n][0]` then returns or raises `specs[n][1]`."""

    specs: Sequence[tuple[float, Any]]
    calls: int = 0
    cancelled: list[int] = attrs.Factory(list)
    finished: list[int] = attrs.Factory(list)

    async def __call__(self) -> Any:
        index = self.calls
        self.calls += 1
        latency, outcome = self.specs[index]
        try:
            await asyncio.sleep(latency)
        except asyncio.CancelledError:
            self.cancelled.append(index)
            raise
        self.finished.append(index)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def captured() -> Iterator[
    list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]]
]:
    """Every crucible.hedging event emitted during the test."""
    seen: list[tuple[tuple[str, ...], dict[str, float], dict[str, Any]]] = []

    def handler(name: Any, measurements: Any, metadata: Any) -> None:
        seen.append((tuple(name), dict(measurements), dict(metadata)))

    events.attach("hedging-test", [("crucible", "hedging")], handler)
    try:
        yield seen
    finally:
        events.detach("hedging-test")


def _replay(matrix: Any) -> tuple[Any, Any]:
    """The simulator run over the latency matrix `matrix`, and a fresh hedger with the same
    policy (Percentile 90) and budget (8%), to drive the same latencies through asyncio."""
    from crucible_hedging import HedgeBudget, Hedger, Percentile, simulate

    class Replay:
        def sample(self, rng: Any, n: int, attempts: int) -> Any:
            return matrix

    des = simulate(
        Replay(),
        Percentile(p=90, min_samples=20),
        n=len(matrix),
        budget=HedgeBudget(ratio=0.08),
    )
    return des, Hedger(
        policy=Percentile(p=90, min_samples=20), budget=HedgeBudget(ratio=0.08)
    )


@pytest.fixture
def replay() -> Any:
    """`replay(matrix) -> (simulate's result, a Hedger)` on the same policy and budget."""
    return _replay


@pytest.fixture
def script() -> type[Scripted]:
    """The `Scripted` class, to build scripted attempts: `script([(latency, value_or_error), ...])`."""
    return Scripted

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crucible_core.exceptions import ValidationError
from crucible_core.ratelimit import TokenBucket


class FakeClock:
    """Virtual time: `sleep` advances the clock instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_starts_full_and_refills_with_time() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, capacity=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.5
    assert bucket.available == pytest.approx(1.0)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now = 100.0
    assert bucket.available == 3  # never above capacity


async def test_acquire_waits_for_the_deficit() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, capacity=2, clock=clock, sleep=clock.sleep)
    assert await bucket.acquire(2) == 0.0
    waited = await bucket.acquire(1)
    assert waited == pytest.approx(0.25)
    assert clock.sleeps == [pytest.approx(0.25)]


async def test_concurrent_waiters_are_served_in_arrival_order_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=1, clock=clock, sleep=clock.sleep)
    served: list[tuple[int, float]] = []

    async def worker(i: int, tokens: float) -> None:
        await bucket.acquire(tokens)
        served.append((i, clock.now))

    sizes = [1, 1, 0.5, 1, 0.25, 1, 1, 1]
    await asyncio.gather(*(worker(i, t) for i, t in enumerate(sizes)))
    assert [i for i, _ in served] == list(range(len(sizes)))  # FIFO: nobody overtakes
    times = [t for _, t in served]
    expected = [0.0]
    for size in sizes[1:]:
        expected.append(expected[-1] + size / 10)
    assert times == pytest.approx(expected)


async def test_try_acquire_does_not_overtake_waiters() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await gate.wait()
        clock.now += seconds

    bucket = TokenBucket(rate=1, capacity=1, clock=clock, sleep=slow_sleep)
    assert bucket.try_acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    clock.now += 5  # tokens are there, but the waiter came first
    assert not bucket.try_acquire()
    gate.set()
    await waiter
    assert not waiter.cancelled()


async def test_cancelled_waiter_takes_nothing() -> None:
    clock = FakeClock()
    never = asyncio.Event()

    async def stuck_sleep(seconds: float) -> None:
        await never.wait()

    bucket = TokenBucket(rate=1, capacity=1, clock=clock, sleep=stuck_sleep)
    assert bucket.try_acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    clock.now = 1.0
    assert bucket.try_acquire()  # the token refilled and nobody else took it


async def test_real_clock_paces_requests() -> None:
    bucket = TokenBucket(rate=200, capacity=1)
    waits = [await bucket.acquire() for _ in range(3)]
    assert waits[0] == 0.0
    assert all(w > 0 for w in waits[1:])  # later acquisitions had to wait for a refill


@pytest.mark.parametrize(
    ("rate", "capacity"),
    [(0, None), (-1, None), (float("inf"), None), (1, 0), (True, None)],
)
def test_validates_construction(rate: float, capacity: float | None) -> None:
    with pytest.raises(ValidationError):
        TokenBucket(rate, capacity)


async def test_validates_amounts() -> None:
    bucket = TokenBucket(rate=1, capacity=2)
    with pytest.raises(ValidationError, match="capacity"):
        await bucket.acquire(3)
    with pytest.raises(ValidationError):
        bucket.try_acquire(0)
    assert repr(bucket) == "TokenBucket(rate=1, capacity=2)"
    assert TokenBucket(rate=0.5).capacity == 1.0


@given(
    rate=st.floats(0.1, 100),
    capacity=st.floats(1, 50),
    steps=st.lists(st.tuples(st.floats(0, 10), st.floats(0.01, 1)), max_size=30),
)
def test_never_exceeds_rate_plus_burst(
    rate: float, capacity: float, steps: list[tuple[float, float]]
) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=rate, capacity=capacity, clock=clock)
    taken = 0.0
    for advance, fraction in steps:
        clock.now += advance
        amount = fraction * capacity
        if bucket.try_acquire(amount):
            taken += amount
        assert 0 <= bucket.available <= capacity + 1e-9
    assert taken <= capacity + rate * clock.now + 1e-6

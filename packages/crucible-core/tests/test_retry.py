from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crucible_core.exceptions import (
    NetworkError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ValidationError,
)
from crucible_core.retry import (
    RetryDetails,
    RetryPolicy,
    is_testing,
    is_transient,
    retry,
    retry_context,
    set_testing,
)


class Flaky:
    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self.error = error or ConnectionError("flaky")

    def __call__(self, value: int = 1) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return value * 2


def test_sync_decorator_retries_until_success() -> None:
    flaky = Flaky(2)
    wrapped = retry(on=ConnectionError, attempts=5)(flaky)
    assert wrapped(21) == 42
    assert flaky.calls == 3


async def test_async_decorator_retries_until_success() -> None:
    calls = 0

    @retry(on=ConnectionError, attempts=5)
    async def fetch(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls < 3:
            raise ConnectionError("flaky")
        return x

    assert asyncio.iscoroutinefunction(fetch)
    assert await fetch(7) == 7
    assert calls == 3
    assert fetch.__name__ == "fetch"


def test_gives_up_after_attempts_raising_the_original_error() -> None:
    flaky = Flaky(10)
    with pytest.raises(ConnectionError, match="flaky"):
        retry(on=ConnectionError, attempts=3)(flaky)()
    assert flaky.calls == 3


def test_other_errors_propagate_at_once() -> None:
    flaky = Flaky(1, KeyError("k"))
    with pytest.raises(KeyError):
        retry(on=ConnectionError, attempts=3)(flaky)()
    assert flaky.calls == 1


def test_predicate_and_tuple_forms() -> None:
    flaky = Flaky(2, ValueError("retry me"))
    assert retry(on=lambda e: "retry" in str(e), attempts=3)(flaky)() == 2
    flaky = Flaky(2, TimeoutError())
    assert retry(on=(ConnectionError, TimeoutError), attempts=3)(flaky)() == 2


def test_sync_loop_form_reports_retries() -> None:
    seen: list[RetryDetails] = []
    nums = []
    for attempt in retry_context(
        on=ConnectionError,
        attempts=4,
        wait_initial=1.0,
        wait_jitter=0.0,
        on_retry=seen.append,
    ):
        with attempt:
            nums.append(attempt.num)
            if attempt.num < 3:
                raise ConnectionError("x")
    assert nums == [1, 2, 3]
    assert [(d.attempt, d.wait) for d in seen] == [(1, 1.0), (2, 2.0)]
    assert all(isinstance(d.error, ConnectionError) for d in seen)
    assert repr(attempt) == "<Attempt num=3>"


async def test_async_loop_form() -> None:
    nums = []
    async for attempt in retry_context(on=ConnectionError, attempts=4):
        with attempt:
            nums.append(attempt.num)
            if attempt.num < 2:
                raise ConnectionError("x")
    assert nums == [1, 2]


async def test_cancellation_is_never_retried() -> None:
    calls = 0

    @retry(on=Exception, attempts=5)
    async def work() -> None:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == 1


def test_retry_after_is_the_minimum_wait() -> None:
    policy = retry(on=RateLimitError, wait_initial=0.1, wait_max=5.0, wait_jitter=0.0)
    limited = RateLimitError("slow down", retry_after=30.0)
    assert policy.wait(1, limited) == 30.0  # beyond wait_max: the server knows best
    assert policy.wait(1, RateLimitError("x", retry_after=None)) == 0.1
    assert policy.wait(6, RateLimitError("x", retry_after=0.5)) == 3.2
    assert policy.wait(1, RateLimitError("x", retry_after=float("nan"))) == 0.1


@given(
    attempt=st.integers(1, 200),
    initial=st.floats(0, 10),
    maximum=st.floats(0, 60),
    jitter=st.floats(0, 5),
    u=st.floats(0, 1, exclude_max=True),
)
def test_backoff_is_bounded_and_grows(
    attempt: int, initial: float, maximum: float, jitter: float, u: float
) -> None:
    policy = retry(
        on=OSError, wait_initial=initial, wait_max=maximum, wait_jitter=jitter
    )
    wait = policy.wait(attempt, jitter=u)
    assert 0 <= wait <= maximum
    assert wait <= policy.wait(attempt + 1, jitter=u) or math.isclose(wait, maximum)


def test_retry_waits_are_slept_outside_testing_mode() -> None:
    flaky = Flaky(1)
    slept: list[float] = []
    import crucible_core._retry as impl

    original = impl.time.sleep
    impl.time.sleep = slept.append  # type: ignore[assignment]
    try:
        with set_testing(False):
            retry(on=ConnectionError, attempts=2, wait_initial=0.25, wait_jitter=0)(
                flaky
            )()
    finally:
        impl.time.sleep = original
    assert slept == [0.25]


def test_testing_mode_removes_waits_and_can_cap_attempts() -> None:
    assert is_testing()  # the autouse fixture
    flaky = Flaky(5)
    policy = retry(on=ConnectionError, attempts=10, wait_initial=3600)
    assert policy(flaky)() == 2  # an hour of backoff would hang this test
    with set_testing(True, attempts=2):
        flaky = Flaky(5)
        with pytest.raises(ConnectionError):
            policy(flaky)()
        assert flaky.calls == 2
        assert policy.max_attempts() == 2
    assert policy.max_attempts() == 10
    with set_testing(False):
        assert not is_testing()
    assert is_testing()


def test_timeout_stops_before_a_wait_that_would_pass_it() -> None:
    flaky = Flaky(5)
    with set_testing(False), pytest.raises(ConnectionError):
        retry(on=ConnectionError, attempts=10, timeout=1.0, wait_initial=5.0)(flaky)()
    assert flaky.calls == 1


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (RateLimitError("x", status=429), True),
        (NetworkError("x"), True),
        (ProviderTimeoutError("x"), True),
        (ResponseError("x", status=500), True),
        (ResponseError("x", status=503), True),
        (ResponseError("x", status=529), True),
        (ResponseError("x", status=408), True),
        (ResponseError("x", status=400), False),
        (ResponseError("x", status=401), False),
        (ResponseError("x", status=200), False),
        (ResponseError("x"), False),
        (ValueError("x"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize(
    "options",
    [
        {"on": "ConnectionError"},
        {"on": ()},
        {"on": int},
        {"on": OSError, "attempts": 0},
        {"on": OSError, "attempts": 1.5},
        {"on": OSError, "timeout": -1},
        {"on": OSError, "wait_initial": -0.1},
        {"on": OSError, "wait_max": float("inf")},
    ],
)
def test_validation(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(**options)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        set_testing(True, attempts=0)

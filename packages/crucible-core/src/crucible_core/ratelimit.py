"""Rate and concurrency limits: a token bucket and an adaptive (AIMD) concurrency limiter.

```python
from crucible_core.ratelimit import AdaptiveLimiter, TokenBucket, shared_limiter

bucket = TokenBucket(rate=5)                  # 5 requests/s: never more than 5 in any second
bucket = TokenBucket(rate=5, capacity=10)     # ... or allow an initial burst of 10
await bucket.acquire()                        # waits until a token is free
if bucket.try_acquire(): ...                  # never waits

limiter = shared_limiter("openai https://api.openai.com/v1", max_limit=64)
async with limiter.slot() as slot:            # waits while `limit` requests are in flight
    ...
    slot.overloaded()                         # a 429/overload: halve the limit
```

Waiters are served first come, first served (a request for many tokens is not overtaken by later
small ones, so nobody starves), and a cancelled waiter takes nothing. The clock and the sleep are
injectable, so tests can run the bucket in virtual time. Neither object binds to an event loop, so
both can be reused by successive `asyncio.run` calls (not by two loops running at once).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from crucible_core.exceptions import ValidationError

if TYPE_CHECKING:
    import asyncio

__all__ = ("AdaptiveLimiter", "Slot", "TokenBucket", "shared_limiter")

_EPSILON = 1e-9


def _positive(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValidationError(
            f"`{name}` must be a positive finite number, got {value!r}", **{name: value}
        )
    return float(value)


class TokenBucket:
    """A token bucket shared by concurrent tasks.

    The bucket starts full. Tokens refill continuously at `rate` per second up to `capacity`.
    With the default `capacity=1` a bucket of `rate=N` never hands out more than `N` tokens of
    size 1 in any one-second window; a capacity `b` allows an initial burst of `b` and up to
    `N + b - 1` in one second.

    Args:
        rate: tokens added per second.
        capacity: the most tokens held, i.e. the largest burst (default `1`).
        clock: a monotonic clock in seconds (default `time.monotonic`).
        sleep: an async sleep (default `asyncio.sleep`); tests pass one that advances their clock.

    Raises:
        ValidationError: if `rate` or `capacity` is not a positive finite number.

    Examples:
        >>> import asyncio
        >>> bucket = TokenBucket(rate=100, capacity=2)
        >>> bucket.try_acquire(), bucket.try_acquire(), bucket.try_acquire()
        (True, True, False)
        >>> waited = asyncio.run(bucket.acquire())  # about 10 ms for the next token
        >>> 0 < waited < 1
        True
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        self._rate = _positive("rate", rate)
        self._capacity = 1.0 if capacity is None else _positive("capacity", capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._capacity
        self._updated = clock()
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _loop_lock(self) -> asyncio.Lock:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most tokens the bucket holds."""
        return self._capacity

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self._rate:g}, capacity={self._capacity:g})"

    def _refill(self) -> None:
        now = self._clock()
        if now > self._updated:
            self._tokens = min(
                self._capacity, self._tokens + (now - self._updated) * self._rate
            )
        self._updated = max(now, self._updated)

    def _check(self, tokens: float) -> float:
        amount = _positive("tokens", tokens)
        if amount > self._capacity + _EPSILON:
            raise ValidationError(
                f"cannot take {amount:g} tokens from a bucket of capacity {self._capacity:g}; "
                "raise `capacity` or split the request",
                tokens=amount,
                capacity=self._capacity,
            )
        return amount

    @property
    def available(self) -> float:
        """Tokens available right now."""
        self._refill()
        return self._tokens

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take `tokens` if they are available now and nobody is waiting; never waits.

        Raises:
            ValidationError: if `tokens` is not positive or exceeds the capacity.
        """
        amount = self._check(tokens)
        if (
            self._lock is not None and self._lock.locked()
        ):  # others queued: no overtaking
            return False
        self._refill()
        if self._tokens + _EPSILON >= amount:
            self._tokens -= amount
            return True
        return False

    async def acquire(self, tokens: float = 1) -> float:
        """Wait until `tokens` are available, take them, and return the seconds waited.

        Raises:
            ValidationError: if `tokens` is not positive or exceeds the capacity.
        """
        import asyncio

        amount = self._check(tokens)
        sleep = self._sleep or asyncio.sleep
        lock = self._loop_lock()
        started = self._clock()
        waited = lock.locked()  # queued behind others counts as waiting
        async with lock:
            while True:
                self._refill()
                if self._tokens >= amount:
                    self._tokens -= amount
                    return max(0.0, self._clock() - started) if waited else 0.0
                # never early: wait the whole deficit (at least a nanosecond, so rounding cannot
                # leave the loop spinning without the clock moving)
                await sleep(max((amount - self._tokens) / self._rate, _EPSILON))
                waited = True


class Slot:
    """One request's place in an [`AdaptiveLimiter`][crucible_core.ratelimit.AdaptiveLimiter].

    Leaving the `async with` block frees it and counts a success, unless
    [`overloaded`][crucible_core.ratelimit.Slot.overloaded] or
    [`neutral`][crucible_core.ratelimit.Slot.neutral] was called, or the block raised.
    """

    __slots__ = ("_generation", "_limiter", "_outcome", "waited")

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self._limiter = limiter
        self._outcome = "success"
        self._generation = 0
        self.waited = 0.0
        """Seconds spent waiting for the slot."""

    def overloaded(self) -> None:
        """The request met a 429 or an overload (503/529): the limiter backs off."""
        self._outcome = "overloaded"

    def neutral(self) -> None:
        """The request failed for a reason that says nothing about load (a 400, a bad body)."""
        self._outcome = "neutral"

    async def __aenter__(self) -> Slot:
        self.waited, self._generation = await self._limiter._acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        outcome = (
            self._outcome
            if exc_type is None or self._outcome != "success"
            else "neutral"
        )
        self._limiter._release(outcome, self._generation)


class AdaptiveLimiter:
    """An AIMD concurrency limit: back off on overload, grow on success, never above `max_limit`.

    At most `limit` requests hold a slot at once; others wait, first come, first served. Each
    success adds `increase / limit` (about `increase` per window of requests); an overload
    multiplies the limit by `decrease` (not below `min_limit`), once per window: overloads of
    requests that started before the last decrease do not decrease it again, so one 429 storm
    halves the limit once rather than collapsing it. This is how inspect_ai and promptfoo adapt
    their concurrency to a provider's rate limits.

    Args:
        max_limit: the configured maximum of requests in flight.
        initial: the starting limit (default `max_limit`).
        min_limit: the floor (default 1).
        increase: additive growth per window of successes.
        decrease: multiplicative factor on overload, in (0, 1).
        adaptive: `False` keeps the limit fixed at `initial` (a plain semaphore).

    Examples:
        >>> limiter = AdaptiveLimiter(max_limit=8)
        >>> limiter.limit, limiter.in_flight
        (8.0, 0)
    """

    def __init__(
        self,
        max_limit: int,
        *,
        initial: float | None = None,
        min_limit: int = 1,
        increase: float = 1.0,
        decrease: float = 0.5,
        adaptive: bool = True,
    ) -> None:
        checked: tuple[tuple[str, object], ...] = (
            ("max_limit", max_limit),
            ("min_limit", min_limit),
        )
        for name, value in checked:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(
                    f"`{name}` must be a positive integer, got {value!r}",
                    **{name: value},
                )
        if min_limit > max_limit:
            raise ValidationError(
                f"`min_limit` ({min_limit}) must not exceed `max_limit` ({max_limit})",
                min_limit=min_limit,
                max_limit=max_limit,
            )
        factor: object = decrease
        if not (
            isinstance(factor, int | float)
            and not isinstance(factor, bool)
            and 0 < factor < 1
        ):
            raise ValidationError(
                f"`decrease` must be in (0, 1), got {decrease!r}", decrease=decrease
            )
        self.max_limit = max_limit
        """The configured maximum; the limit never exceeds it."""
        self.min_limit = min_limit
        """The floor of the limit."""
        self._increase = _positive("increase", increase)
        self._decrease = float(decrease)
        self.adaptive = adaptive
        """Whether the limit adapts (`False`: fixed)."""
        start = float(max_limit) if initial is None else _positive("initial", initial)
        self._limit = min(float(max_limit), max(float(min_limit), start))
        self._in_flight = 0
        self._generation = 0  # bumped at each decrease
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.overloads = 0
        """Overloads reported so far (including those that did not decrease the limit)."""

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter(limit={self._limit:.3g}, max_limit={self.max_limit}, "
            f"in_flight={self._in_flight})"
        )

    @property
    def limit(self) -> float:
        """The current limit (requests in flight allowed: its integer part, at least 1)."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Slots held right now."""
        return self._in_flight

    def slot(self) -> Slot:
        """`async with limiter.slot() as slot:` holds one place while the request runs."""
        return Slot(self)

    def _room(self) -> bool:
        return self._in_flight < max(1, math.floor(self._limit + 1e-9))

    async def _acquire(self) -> tuple[float, int]:
        import asyncio

        if not self._waiters and self._room():
            self._in_flight += 1
            return 0.0, self._generation
        started = time.monotonic()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._in_flight -= 1  # woken and cancelled at once: pass the place on
                self._wake()
            else:
                self._waiters.remove(future)
            raise
        return time.monotonic() - started, self._generation

    def _wake(self) -> None:
        while self._waiters and self._room():
            future = self._waiters.popleft()
            if not future.done():
                self._in_flight += 1
                future.set_result(None)

    def _release(self, outcome: str, generation: int) -> None:
        self._in_flight -= 1
        if self.adaptive and outcome == "success":
            self._limit = min(
                float(self.max_limit), self._limit + self._increase / self._limit
            )
        elif self.adaptive and outcome == "overloaded":
            self.overloads += 1
            if generation == self._generation:
                self._generation += 1
                self._limit = max(float(self.min_limit), self._limit * self._decrease)
        self._wake()


_DEFAULT_MAX_LIMIT = 1000
_shared: dict[str, AdaptiveLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(key: str, *, max_limit: int | None = None) -> AdaptiveLimiter:
    """The process-wide [`AdaptiveLimiter`][crucible_core.ratelimit.AdaptiveLimiter] for `key`.

    HTTP models key it by provider and base URL, so every model (an ensemble's members, a hedger's
    attempts) talking to one endpoint backs off together and hedges never amplify a 429 storm.
    The first call for a key creates the limiter with `max_limit` (default 1000); later calls
    return it as it is (HTTP models put an explicit `max_concurrency` into the key, so models
    configured alike share one limiter).

    Examples:
        >>> shared_limiter("doc-example", max_limit=4) is shared_limiter("doc-example")
        True
    """
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = AdaptiveLimiter(max_limit or _DEFAULT_MAX_LIMIT)
        return limiter

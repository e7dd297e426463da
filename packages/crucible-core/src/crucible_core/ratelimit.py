"""An async token bucket: at most `rate` tokens per second, bursts of up to `capacity`.

```python
from crucible_core.ratelimit import TokenBucket

bucket = TokenBucket(rate=5, capacity=10)   # 5 requests/s, bursts of 10
await bucket.acquire()                        # waits until a token is free
if bucket.try_acquire(): ...                  # never waits
```

Waiters are served first come, first served (a request for many tokens is not overtaken by later
small ones, so nobody starves), and a cancelled waiter takes no tokens. The clock and the sleep are
injectable, so tests can run it in virtual time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from crucible_core.exceptions import ValidationError

__all__ = ("TokenBucket",)

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

    Args:
        rate: tokens added per second.
        capacity: the most tokens held, i.e. the largest burst (default: `max(1, rate)`).
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
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._rate = _positive("rate", rate)
        self._capacity = (
            max(1.0, self._rate)
            if capacity is None
            else _positive("capacity", capacity)
        )
        self._clock = clock
        self._sleep = sleep
        self._tokens = self._capacity
        self._updated = clock()
        self._lock = asyncio.Lock()

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
        if self._lock.locked():  # others are queued: do not overtake them
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
        amount = self._check(tokens)
        started = self._clock()
        waited = self._lock.locked()  # queued behind others counts as waiting
        async with self._lock:
            while True:
                self._refill()
                if self._tokens + _EPSILON >= amount:
                    self._tokens -= amount
                    return max(0.0, self._clock() - started) if waited else 0.0
                await self._sleep((amount - self._tokens) / self._rate)
                waited = True

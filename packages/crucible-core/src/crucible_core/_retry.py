"""The retry policy: stamina's shape over tenacity (imported only when a retry loop runs)."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeAlias, TypeVar, cast

import attrs

from crucible_core.exceptions import (
    NetworkError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ValidationError,
)

if TYPE_CHECKING:
    import tenacity

__all__ = (
    "Attempt",
    "RetryContext",
    "RetryDetails",
    "RetryOn",
    "RetryPolicy",
    "is_testing",
    "is_transient",
    "retries_disabled",
    "retries_enabled",
    "retry",
    "retry_context",
    "set_testing",
)

P = ParamSpec("P")
T = TypeVar("T")

RetryOn: TypeAlias = (
    type[BaseException]
    | tuple[type[BaseException], ...]
    | Callable[[BaseException], bool]
)
"""What to retry on: an exception class, a tuple of them, or a predicate on the exception."""

_jitter_rng = (
    random.Random()
)  # jitter only spreads retries out; it never shapes a result


@attrs.define
class _Testing:
    active: bool = False
    attempts: int | None = None


_TESTING = _Testing()


class _TestingMode:
    """Returned by `set_testing`; as a context manager it restores the previous mode on exit."""

    def __init__(self, previous: tuple[bool, int | None]) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _TESTING.active, _TESTING.attempts = self._previous


def set_testing(testing: bool, *, attempts: int | None = None) -> _TestingMode:  # noqa: FBT001
    """Turn testing mode on or off for every retry policy in the process.

    In testing mode retries happen without waiting (waits, including `retry_after`, are still
    computed and reported, but not slept) and the overall `timeout` is ignored, so tests that
    exercise retries run instantly. `attempts`, if given, caps every policy's attempts (`1` turns
    retries off).

    Can be used as a context manager that restores the previous mode:

    Examples:
        >>> with set_testing(True):
        ...     is_testing()
        True
        >>> is_testing()
        False
    """
    if attempts is not None and (isinstance(attempts, bool) or attempts < 1):
        raise ValidationError(f"`attempts` must be >= 1 or None, got {attempts!r}")
    previous = (_TESTING.active, _TESTING.attempts)
    _TESTING.active, _TESTING.attempts = bool(testing), (attempts if testing else None)
    return _TestingMode(previous)


def is_testing() -> bool:
    """Whether [`set_testing`][crucible_core.retry.set_testing] turned testing mode on."""
    return _TESTING.active


_DISABLED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "crucible_retries_disabled", default=False
)


@contextlib.contextmanager
def retries_disabled() -> Iterator[None]:
    """Inside this block every retry loop makes exactly one attempt: the caller owns retries.

    A caller with its own retry policy (the harness runner, a hedger) wraps each call in it so
    that a model's built-in retries do not multiply its own: one failing task then sends at most
    the caller's `attempts` requests, not the product of both caps. The setting is a context
    variable, so it follows the call into tasks the call starts (an ensemble's members).

    Examples:
        >>> calls = []
        >>> @retry(on=ConnectionError, attempts=5, wait_initial=0, wait_jitter=0)
        ... def flaky() -> None:
        ...     calls.append(1)
        ...     raise ConnectionError("down")
        >>> with retries_disabled():
        ...     try:
        ...         flaky()
        ...     except ConnectionError:
        ...         pass
        >>> len(calls)
        1
    """
    token = _DISABLED.set(True)
    try:
        yield
    finally:
        _DISABLED.reset(token)


def retries_enabled() -> bool:
    """Whether retry loops may retry here (`False` inside [`retries_disabled`][crucible_core.retry.retries_disabled])."""
    return not _DISABLED.get()


_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def is_transient(error: BaseException) -> bool:
    """Whether a provider error is worth retrying: 429, 408/409/425, 5xx, timeouts, broken connections.

    A response that arrived and cannot be read (status 200 with bad JSON) or a 4xx client error is
    not transient: retrying would fail the same way. A server that says so itself (OpenAI's and
    Anthropic's `x-should-retry: true|false`, kept as the error's `should_retry`) is obeyed, as
    the official SDKs obey it.
    """
    told = getattr(error, "should_retry", None)
    if isinstance(told, bool) and isinstance(error, RateLimitError | ResponseError):
        return told
    if isinstance(error, RateLimitError | NetworkError | ProviderTimeoutError):
        return True
    if isinstance(error, ResponseError):
        status = getattr(error, "status", None)
        return isinstance(status, int) and (
            status in _TRANSIENT_STATUS or status >= 500
        )
    return False


@attrs.define(frozen=True, kw_only=True)
class RetryDetails:
    """What `on_retry` callbacks are told before a retry's wait."""

    attempt: int
    """The attempt that just failed (1-based)."""
    wait: float
    """The seconds the policy waits before the next attempt (not slept in testing mode)."""
    error: BaseException
    """The exception the attempt raised."""


def _check_retry_on(_: Any, __: Any, value: Any) -> None:
    if isinstance(value, type) and issubclass(value, BaseException):
        return
    if isinstance(value, tuple) and value:
        if all(isinstance(v, type) and issubclass(v, BaseException) for v in value):
            return
    elif callable(value) and not isinstance(value, type):
        return
    raise ValidationError(
        "`on` must be an exception class, a non-empty tuple of them, or a predicate taking the "
        f"exception, got {value!r}",
        on=value,
    )


def _optional_positive(
    name: str, *, integer: bool = False
) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, __: Any, value: Any) -> None:
        if value is None:
            return
        ok = (
            not isinstance(value, bool)
            and isinstance(value, int if integer else int | float)
            and math.isfinite(value)
            and value > 0
        )
        if not ok:
            kind = "a positive integer" if integer else "a positive number"
            raise ValidationError(
                f"`{name}` must be {kind} or None, got {value!r}", **{name: value}
            )

    return check


def _non_negative(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, __: Any, value: Any) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValidationError(
                f"`{name}` must be a finite number >= 0, got {value!r}", **{name: value}
            )

    return check


@attrs.define(frozen=True, kw_only=True)
class RetryPolicy:
    """When and how long to wait before trying again; stamina's parameters over tenacity.

    The wait after failed attempt `n` is `min(wait_max, wait_initial * wait_exp_base ** (n - 1) +
    uniform(0, wait_jitter))`, and at least the failed exception's `retry_after` attribute when it
    has one (a [`RateLimitError`][crucible_core.RateLimitError] from a `Retry-After` header). Retries
    stop after `attempts` attempts or when the next wait would end past `timeout` seconds since the
    first attempt, and then the last exception is raised as it was.

    A policy is a decorator (`@policy`) for sync and async callables, and
    [`context()`][crucible_core.retry.RetryPolicy.context] gives the loop form. Build one with
    [`retry`][crucible_core.retry.retry].
    """

    on: RetryOn = attrs.field(validator=_check_retry_on)
    """Exception classes (or a predicate) that trigger a retry; anything else propagates at once."""
    attempts: int | None = attrs.field(
        default=10, validator=_optional_positive("attempts", integer=True)
    )
    """The most attempts, including the first (`None`: no limit)."""
    timeout: float | None = attrs.field(
        default=45.0, validator=_optional_positive("timeout")
    )
    """The most seconds from the first attempt to the start of the last (`None`: no limit)."""
    wait_initial: float = attrs.field(
        default=0.1, validator=_non_negative("wait_initial")
    )
    """Seconds of the first backoff."""
    wait_max: float = attrs.field(default=5.0, validator=_non_negative("wait_max"))
    """The longest backoff (a larger `retry_after` is still honoured)."""
    wait_jitter: float = attrs.field(
        default=1.0, validator=_non_negative("wait_jitter")
    )
    """Up to this many random seconds are added to each backoff."""
    wait_exp_base: float = attrs.field(
        default=2.0, validator=_non_negative("wait_exp_base")
    )
    """The backoff grows by this factor per attempt."""
    full_jitter: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool)
    )
    """Wait a uniform random time in `[0, backoff]` ("full jitter", which spreads many clients
    best) instead of `backoff + uniform(0, wait_jitter)`. After a `retry_after`, the jitter is
    added on top of it, so a retry is never earlier than the server asked."""

    def retries(self, error: BaseException) -> bool:
        """Whether `error` is one this policy retries."""
        on = self.on
        if isinstance(on, type | tuple):
            return isinstance(error, on)
        return bool(on(error))

    def max_attempts(self) -> int | None:
        """`attempts`, capped by `set_testing(attempts=...)`; 1 inside `retries_disabled()`."""
        if _DISABLED.get():
            return 1
        cap = _TESTING.attempts if _TESTING.active else None
        if cap is None:
            return self.attempts
        return cap if self.attempts is None else min(cap, self.attempts)

    def wait(
        self,
        attempt: int,
        error: BaseException | None = None,
        *,
        jitter: float | None = None,
    ) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based).

        Args:
            attempt: the attempt that failed.
            error: its exception; a numeric `retry_after` attribute on it is the minimum wait.
            jitter: a number in `[0, 1)` to use instead of a random draw (for deterministic
                simulations); the jitter added is `jitter * wait_jitter` (with `full_jitter`,
                the wait is `jitter * backoff`).
        """
        fraction = _jitter_rng.random() if jitter is None else jitter
        try:
            grown = self.wait_initial * self.wait_exp_base ** (attempt - 1)
        except OverflowError:
            grown = math.inf
        found: object = getattr(error, "retry_after", None)
        retry_after = (
            float(found)
            if isinstance(found, int | float)
            and not isinstance(found, bool)
            and math.isfinite(found)
            and found >= 0
            else None
        )
        if self.full_jitter:
            spread = fraction * min(self.wait_max, grown)
            return spread if retry_after is None else retry_after + spread
        backoff = min(self.wait_max, grown + fraction * self.wait_jitter)
        if retry_after is not None:
            return max(backoff, retry_after + fraction * self.wait_jitter)
        return backoff

    def next_wait(
        self, attempt: int, error: BaseException, *, elapsed: float
    ) -> float | None:
        """The wait before retrying after failed attempt `attempt`, or `None` to give up.

        The loop a caller writes by hand (without tenacity's overhead per call) with the same
        decisions as [`context()`][crucible_core.retry.RetryPolicy.context]: `None` when `error`
        is not retried, the attempts are used up, or the next attempt would start after
        `timeout` seconds (`elapsed` is the time since the first attempt started).
        """
        if not self.retries(error):
            return None
        cap = self.max_attempts()
        if cap is not None and attempt >= cap:
            return None
        wait = self.wait(attempt, error)
        if (
            self.timeout is not None
            and not _TESTING.active
            and elapsed + wait > self.timeout
        ):
            return None
        return wait

    def context(
        self, *, on_retry: Callable[[RetryDetails], None] | None = None
    ) -> RetryContext:
        """The loop form: `for attempt in policy.context(): with attempt: ...` (or `async for`).

        Args:
            on_retry: called before each wait with the failed attempt, the wait and the error.
        """
        return RetryContext(self, on_retry=on_retry)

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate a sync or async callable so that it is retried by this policy."""
        if inspect.iscoroutinefunction(fn):
            async_fn = fn

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                async for attempt in self.context():
                    with attempt:
                        return await async_fn(*args, **kwargs)
                raise AssertionError(
                    "unreachable: the retry loop returns or raises"
                )  # pragma: no cover

            return cast(Callable[P, T], async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in self.context():
                with attempt:
                    return fn(*args, **kwargs)
            raise AssertionError(
                "unreachable: the retry loop returns or raises"
            )  # pragma: no cover

        return wrapper


class Attempt:
    """One attempt of a retry loop; use it as a context manager around the code to retry."""

    def __init__(self, manager: tenacity.AttemptManager) -> None:
        self._manager = manager

    @property
    def num(self) -> int:
        """The attempt number, starting at 1."""
        return int(self._manager.retry_state.attempt_number)

    def __repr__(self) -> str:
        return f"<Attempt num={self.num}>"

    def __enter__(self) -> Attempt:
        self._manager.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return self._manager.__exit__(exc_type, exc, tb)


def _sync_sleep(seconds: float) -> None:
    if not _TESTING.active:
        time.sleep(seconds)


async def sleep(seconds: float) -> None:
    """`asyncio.sleep`, except in testing mode (`set_testing(True)`), where it returns at once."""
    await _async_sleep(seconds)


async def _async_sleep(seconds: float) -> None:
    import asyncio

    if not _TESTING.active:
        await asyncio.sleep(seconds)


class RetryContext:
    """Iterate (`for` or `async for`) to get [`Attempt`][crucible_core.retry.Attempt]s until one succeeds.

    Examples:
        >>> from crucible_core.retry import retry_context
        >>> calls = []
        >>> for attempt in retry_context(on=ConnectionError, attempts=3, wait_initial=0, wait_jitter=0):
        ...     with attempt:
        ...         calls.append(attempt.num)
        ...         if len(calls) < 2:
        ...             raise ConnectionError("flaky")
        >>> calls
        [1, 2]
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        on_retry: Callable[[RetryDetails], None] | None = None,
    ) -> None:
        self.policy = policy
        self._on_retry = on_retry

    def _kwargs(self) -> dict[str, Any]:
        import tenacity  # imported only when a retry loop runs

        policy = self.policy
        stops: list[Any] = []
        attempts = policy.max_attempts()
        if attempts is not None:
            stops.append(tenacity.stop_after_attempt(attempts))
        if policy.timeout is not None and not _TESTING.active:
            stops.append(tenacity.stop_before_delay(policy.timeout))
        stop: Any = tenacity.stop_any(*stops) if stops else tenacity.stop_never

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            return policy.wait(state.attempt_number, error)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if self._on_retry is None:
                return
            error = state.outcome.exception() if state.outcome is not None else None
            seconds = state.next_action.sleep if state.next_action is not None else 0.0
            if error is not None:
                self._on_retry(
                    RetryDetails(
                        attempt=state.attempt_number, wait=float(seconds), error=error
                    )
                )

        return {
            "stop": stop,
            "wait": wait,
            "retry": tenacity.retry_if_exception(policy.retries),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def __iter__(self) -> Iterator[Attempt]:
        import tenacity

        for manager in tenacity.Retrying(sleep=_sync_sleep, **self._kwargs()):
            yield Attempt(manager)

    async def __aiter__(self) -> AsyncIterator[Attempt]:
        import tenacity

        async for manager in tenacity.AsyncRetrying(
            sleep=_async_sleep, **self._kwargs()
        ):
            yield Attempt(manager)


def retry(
    *,
    on: RetryOn,
    attempts: int | None = 10,
    timeout: float | None = 45.0,
    wait_initial: float = 0.1,
    wait_max: float = 5.0,
    wait_jitter: float = 1.0,
    wait_exp_base: float = 2.0,
    full_jitter: bool = False,
) -> RetryPolicy:
    """A retry policy, usable as a decorator on sync and async callables.

    Args:
        on: exception class(es) to retry on, or a predicate taking the exception.
        attempts: the most attempts including the first (`None`: unlimited).
        timeout: the most seconds of retrying, from the first attempt (`None`: unlimited).
        wait_initial: seconds of the first backoff.
        wait_max: the longest backoff (a larger `retry_after` on the error still wins).
        wait_jitter: up to this many random seconds added to each backoff.
        wait_exp_base: growth factor of the backoff per attempt.
        full_jitter: wait `uniform(0, backoff)` (plus any `retry_after`) instead of
            `backoff + uniform(0, wait_jitter)`.

    Raises:
        ValidationError: if an argument is out of range.

    Examples:
        >>> from crucible_core.retry import retry
        >>> calls = []
        >>> @retry(on=ConnectionError, attempts=3, wait_initial=0, wait_jitter=0)
        ... def fetch() -> str:
        ...     calls.append(1)
        ...     if len(calls) < 3:
        ...         raise ConnectionError("flaky")
        ...     return "ok"
        >>> fetch(), len(calls)
        ('ok', 3)
    """
    return RetryPolicy(
        on=on,
        attempts=attempts,
        timeout=timeout,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_jitter=wait_jitter,
        wait_exp_base=wait_exp_base,
        full_jitter=full_jitter,
    )


def retry_context(
    *,
    on: RetryOn,
    attempts: int | None = 10,
    timeout: float | None = 45.0,
    wait_initial: float = 0.1,
    wait_max: float = 5.0,
    wait_jitter: float = 1.0,
    wait_exp_base: float = 2.0,
    on_retry: Callable[[RetryDetails], None] | None = None,
) -> RetryContext:
    """The loop form of [`retry`][crucible_core.retry.retry], for `for`/`async for` with `with attempt:`.

    Takes the same arguments as `retry`, plus `on_retry`, called before each wait.
    """
    return retry(
        on=on,
        attempts=attempts,
        timeout=timeout,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_jitter=wait_jitter,
        wait_exp_base=wait_exp_base,
    ).context(on_retry=on_retry)

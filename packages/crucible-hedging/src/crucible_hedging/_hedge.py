"""`hedged()` and `Hedger`: the asyncio driver of the hedging decisions."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeAlias, TypeVar

import attrs

from crucible_core import events
from crucible_core.exceptions import ConfigurationError, ValidationError
from crucible_core.render import RenderMixin, View
from crucible_hedging._budget import Budget, Throttle, _to_budget
from crucible_hedging._core import Controller
from crucible_hedging._policy import Policy
from crucible_hedging._report import LEVELS, HedgingReport
from crucible_hedging.exceptions import (
    AllAttemptsFailedError,
    HedgingError,
    HedgingTimeoutError,
    InvalidHedgingConfigError,
)

__all__ = ("FatalPredicate", "HedgedResult", "Hedger", "default_fatal", "hedged")

T = TypeVar("T")

FatalPredicate: TypeAlias = (
    "Callable[[BaseException], bool] | tuple[type[BaseException], ...]"
)
"""Which attempt errors end the request at once: a predicate or a tuple of exception types."""

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


def default_fatal(error: BaseException) -> bool:
    """The default `fatal=`: errors that another attempt cannot fix.

    Fatal: `TypeError`, crucible's `ValidationError` and `ConfigurationError` (bad input or
    setup), and provider errors with a 4xx status other than 408, 409, 425 and 429 (the request
    itself is wrong). Everything else (timeouts, 5xx, 429, dropped connections) is worth a backup.

    Examples:
        >>> default_fatal(TypeError("bad argument")), default_fatal(TimeoutError())
        (True, False)
    """
    if isinstance(error, TypeError | ValidationError | ConfigurationError):
        return True
    status = getattr(error, "status", None)
    return (
        isinstance(status, int)
        and 400 <= status < 500
        and status not in _RETRYABLE_STATUS
    )


def _fatal_predicate(value: Any) -> Callable[[BaseException], bool]:
    if value is None:
        return default_fatal
    if isinstance(value, tuple) and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in value
    ):
        types = value
        return lambda err: isinstance(err, types)
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise InvalidHedgingConfigError(
        "`fatal` must be a predicate `f(error) -> bool`, a tuple of exception types, or None "
        f"(the default rule), got {value!r}",
        fatal=value,
    )


def _check_timeout(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value > 0
        or math.isnan(value)
    ):
        raise InvalidHedgingConfigError(
            f"`timeout` must be a positive number of seconds or None, got {value!r}",
            timeout=value,
        )
    return float(value)


@attrs.define(frozen=True, kw_only=True)
class HedgedResult(RenderMixin, Generic[T]):
    """The value of a hedged request and how it was obtained."""

    value: T
    """What the winning attempt returned."""
    latency_ms: float
    """Milliseconds from the first attempt's start to the winner's answer."""
    attempts: int
    """Attempts started (1 + backups)."""
    hedges_fired: int
    """Backup attempts started."""
    winner_index: int
    """Which attempt won (0: the original request)."""
    cancelled: int
    """Losing attempts cancelled when the winner answered."""
    delay_ms: float | None = None
    """The hedge delay the policy gave, in milliseconds (`None`: no timed hedge)."""

    def _view(self) -> View:
        return View(
            title="Hedged result",
            facts=(
                ("value", repr(self.value)[:80]),
                ("latency ms", self.latency_ms),
                ("attempts", self.attempts),
                ("winner", self.winner_index),
                ("cancelled", self.cancelled),
                ("delay ms", self.delay_ms),
            ),
        )


class Hedger:
    """A policy, a budget, a throttle and statistics for repeated hedged requests.

    Args:
        policy: when to send backups ([`Fixed`][crucible_hedging.Fixed],
            [`Percentile`][crucible_hedging.Percentile], [`Adaptive`][crucible_hedging.Adaptive],
            [`WorkloadAware`][crucible_hedging.WorkloadAware] or your own
            [`Policy`][crucible_hedging.Policy]).
        max_hedges: the most backups per request.
        budget: caps backups at a share of requests (a ratio such as `0.05`, a
            [`Budget`][crucible_hedging.Budget] to share, or `None` for no cap).
        throttle: stops backups while attempts fail ([`Throttle`][crucible_hedging.Throttle]) or
            `None`.
        cancel_losers: cancel the attempts still running when one succeeds.
        timeout: overall seconds per request (`None`: no limit).
        fatal: which attempt errors fail the request at once instead of triggering a backup
            (default [`default_fatal`][crucible_hedging.default_fatal]).

    Examples:
        >>> import asyncio
        >>> hedger = Hedger(policy=Fixed(delay=0.05), budget=0.1)
        >>> async def fetch() -> str:
        ...     await asyncio.sleep(0.01)
        ...     return "ok"
        >>> run_virtual(hedger.request(fetch)).value
        'ok'
    """

    def __init__(
        self,
        *,
        policy: Policy,
        max_hedges: int = 1,
        budget: Budget | float | None = None,
        throttle: Throttle | None = None,
        cancel_losers: bool = True,
        timeout: float | None = None,
        fatal: FatalPredicate | None = None,
    ) -> None:
        self._controller = Controller(
            policy, budget=_to_budget(budget), throttle=throttle, max_hedges=max_hedges
        )
        self.cancel_losers: bool = bool(cancel_losers)
        """Whether losing attempts are cancelled."""
        self.timeout: float | None = _check_timeout(timeout)
        """Overall seconds per request."""
        self._fatal = _fatal_predicate(fatal)
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def policy(self) -> Policy:
        """The delay policy."""
        return self._controller.policy

    @property
    def budget(self) -> Budget | None:
        """The hedge budget."""
        return self._controller.budget

    @property
    def throttle(self) -> Throttle | None:
        """The failure throttle."""
        return self._controller.throttle

    @property
    def max_hedges(self) -> int:
        """The most backups per request."""
        return self._controller.max_hedges

    def __repr__(self) -> str:
        c = self._controller
        return (
            f"Hedger(policy={c.policy!r}, max_hedges={c.max_hedges}, budget={c.budget!r}, "
            f"requests={c.requests}, hedges_fired={c.hedges_fired})"
        )

    def report(self, *, levels: tuple[float, ...] = LEVELS) -> HedgingReport:
        """Requests, hedge and win rates, and latency percentiles with and without hedging.

        Latency without hedging is the Kaplan–Meier estimate of the first attempt's latency,
        treating first attempts cancelled by a winning backup as right-censored.
        """
        return self._controller.report(levels=levels)

    async def request(
        self, fn: Callable[[], Awaitable[T]], *, key: Hashable | None = None
    ) -> HedgedResult[T]:
        """Call `fn`, and again after the policy's delay if it is slow; return the first success.

        Args:
            fn: an async callable, called once per attempt (with no arguments).
            key: the workload class of the request (for
                [`WorkloadAware`][crucible_hedging.WorkloadAware] and statistics).

        Returns:
            The winning value with latency and attempt counts.

        Raises:
            AllAttemptsFailedError: every attempt failed and no further backup was allowed.
            HedgingTimeoutError: no attempt succeeded within `timeout`.
            Exception: a fatal error from an attempt, re-raised as it is.
        """
        return await _run(self, fn, key)


async def hedged(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: Policy,
    max_hedges: int = 1,
    budget: Budget | None = None,
    throttle: Throttle | None = None,
    cancel_losers: bool = True,
    timeout: float | None = None,  # noqa: ASYNC109 - an overall deadline that also cancels every attempt, as the issue specifies
    fatal: FatalPredicate | None = None,
    key: Hashable | None = None,
) -> HedgedResult[T]:
    """Call `fn`; if it has not answered after the policy's delay, call it again; first success wins.

    The others are cancelled (closing their connections). A failed attempt starts the next backup
    at once unless its error is fatal; when every attempt has failed the errors are raised together.
    Learning policies and budgets keep their state across calls when the same instance is passed
    again; use a [`Hedger`][crucible_hedging.Hedger] to also keep statistics.

    Args:
        fn: an async callable, called once per attempt (with no arguments).
        policy: when to send backups.
        max_hedges: the most backups.
        budget: a [`Budget`][crucible_hedging.Budget] shared across calls (`None`: no cap).
        throttle: a [`Throttle`][crucible_hedging.Throttle] shared across calls, or `None`.
        cancel_losers: cancel attempts still running when one succeeds.
        timeout: overall seconds (`None`: no limit).
        fatal: which errors fail at once (default [`default_fatal`][crucible_hedging.default_fatal]).
        key: the request's workload class.

    Returns:
        The winning value with latency and attempt counts.

    Raises:
        AllAttemptsFailedError: every attempt failed and no further backup was allowed.
        HedgingTimeoutError: no attempt succeeded within `timeout`.
        Exception: a fatal error from an attempt, re-raised as it is.

    Examples:
        >>> import asyncio
        >>> delays = iter([10.0, 0.1])  # the first attempt is stuck, the backup is quick
        >>> async def fetch() -> str:
        ...     await asyncio.sleep(next(delays))
        ...     return "ok"
        >>> result = run_virtual(hedged(fetch, policy=Fixed(delay=0.5)))
        >>> result.value, result.winner_index, round(result.latency_ms)
        ('ok', 1, 600)
    """
    hedger = Hedger(
        policy=policy,
        max_hedges=max_hedges,
        budget=budget,
        throttle=throttle,
        cancel_losers=cancel_losers,
        timeout=timeout,
        fatal=fatal,
    )
    return await _run(hedger, fn, key)


def _outcome(task: asyncio.Task[Any]) -> BaseException | None:
    if task.cancelled():
        return HedgingError(
            "an attempt was cancelled from inside the hedged callable; it counts as a failure",
        )
    return task.exception()


async def _run(
    hedger: Hedger, fn: Callable[[], Awaitable[T]], key: Hashable | None
) -> HedgedResult[T]:
    loop = asyncio.get_running_loop()
    control = hedger._controller
    start = loop.time()
    flight = control.begin(key, start)
    base_meta = {"policy": repr(control.policy), "key": key}
    events.emit(
        events.HEDGING_REQUEST_START,
        {"delay": math.nan if flight.delay is None else flight.delay},
        base_meta,
    )
    running: dict[asyncio.Task[T], int] = {}
    started: list[float] = []
    errors: list[tuple[int, BaseException]] = []

    def launch() -> None:
        task: asyncio.Task[T] = asyncio.ensure_future(fn())
        running[task] = len(started)
        started.append(loop.time())

    def try_hedge(now: float, reason: str) -> bool:
        decision = control.hedge(flight, now)
        if decision == "fired":
            launch()
            events.emit(
                events.HEDGING_HEDGE_FIRED,
                {"delay": now - start, "attempt": float(len(started) - 1)},
                {**base_meta, "reason": reason},
            )
            return True
        if decision in ("budget", "throttle"):
            events.emit(
                events.HEDGING_BUDGET_EXHAUSTED,
                {
                    "available": control.budget.available
                    if decision == "budget" and control.budget is not None
                    else math.nan
                },
                {**base_meta, "reason": decision},
            )
        return False

    deadline = None if hedger.timeout is None else start + hedger.timeout
    next_hedge = flight.next_hedge_at()
    winner: int | None = None
    value: Any = None
    primary_latency: float | None = None
    primary_censored = False
    cancelled = 0
    launch()
    try:
        while True:
            if not running:
                raise AllAttemptsFailedError(
                    f"all {len(started)} attempt(s) of the hedged request failed and no further "
                    "backup was allowed (by `max_hedges`, the budget or the throttle); see the "
                    "grouped errors",
                    [
                        err if isinstance(err, Exception) else HedgingError(repr(err))
                        for _, err in errors
                    ],
                    attempts=len(started),
                    key=key,
                )
            now = loop.time()
            wake = next_hedge
            if deadline is not None and (wake is None or deadline < wake):
                wake = deadline
            done, _ = await asyncio.wait(
                running,
                timeout=None if wake is None else max(0.0, wake - now),
                return_when=asyncio.FIRST_COMPLETED,
            )
            now = loop.time()
            for task in sorted(done, key=running.__getitem__):
                index = running.pop(task)
                error = _outcome(task)
                control.attempt_done(success=error is None)
                if index == 0 and error is None:
                    primary_latency = now - start
                if error is None:
                    if winner is None:
                        winner, value = index, task.result()
                    continue
                errors.append((index, error))
                if winner is not None:
                    continue
                if hedger._fatal(error):
                    raise error
                if try_hedge(now, "failure"):
                    next_hedge = flight.next_hedge_at()
            if winner is not None:
                break
            if deadline is not None and now >= deadline:
                raise HedgingTimeoutError(
                    f"no attempt succeeded within the hedged request's timeout of "
                    f"{hedger.timeout} s ({len(started)} attempt(s) started); raise `timeout=` "
                    "or check the callable",
                    timeout=hedger.timeout,
                    attempts=len(started),
                )
            if next_hedge is not None and now >= next_hedge:
                next_hedge = flight.next_hedge_at() if try_hedge(now, "delay") else None
    except BaseException as err:
        now = loop.time()
        cancelled = await _stop(running, started, now, cancel=True)
        if primary_latency is None and 0 not in (i for i, _ in errors):
            primary_latency, primary_censored = now - start, True
        control.finish(
            flight,
            now,
            winner=None,
            primary_latency=primary_latency,
            primary_censored=primary_censored,
        )
        events.emit(
            events.HEDGING_REQUEST_EXCEPTION,
            {"duration": now - start, "hedges_fired": float(len(started) - 1)},
            {**base_meta, "error_type": type(err).__name__, "error": str(err)},
        )
        raise
    if primary_latency is None and 0 not in (i for i, _ in errors):
        primary_latency, primary_censored = now - start, True
    if hedger.cancel_losers:
        cancelled = await _stop(running, started, now, cancel=True)
    else:
        for task in running:
            hedger._background.add(task)
            task.add_done_callback(_forget(hedger._background))
    latency = control.finish(
        flight,
        now,
        winner=winner,
        primary_latency=primary_latency,
        primary_censored=primary_censored,
    )
    if winner:
        events.emit(
            events.HEDGING_HEDGE_WON,
            {"duration": latency, "delay": now - started[winner]},
            {**base_meta, "winner_index": winner},
        )
    events.emit(
        events.HEDGING_REQUEST_STOP,
        {
            "duration": latency,
            "hedges_fired": float(len(started) - 1),
            "cancelled": float(cancelled),
        },
        {**base_meta, "winner_index": winner},
    )
    return HedgedResult(
        value=value,
        latency_ms=latency * 1000.0,
        attempts=len(started),
        hedges_fired=len(started) - 1,
        winner_index=winner,
        cancelled=cancelled,
        delay_ms=None if flight.delay is None else flight.delay * 1000.0,
    )


def _forget(
    background: set[asyncio.Task[Any]],
) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a loser's error is expected, not worth a warning

    return done


async def _stop(
    running: dict[asyncio.Task[Any], int],
    started: list[float],
    now: float,
    *,
    cancel: bool,
) -> int:
    """Cancel the attempts still running and wait until they have cleaned up."""
    if not running or not cancel:
        return 0
    tasks = list(running)
    for task in tasks:
        task.cancel()
    for index in running.values():
        events.emit(
            events.HEDGING_HEDGE_CANCELLED,
            {"elapsed": now - started[index]},
            {"attempt": index},
        )
    await asyncio.gather(*tasks, return_exceptions=True)
    running.clear()
    return len(tasks)

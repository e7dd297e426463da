"""`hedged()` and `Hedger`: the asyncio driver of the hedging decisions."""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Awaitable, Callable, Collection, Hashable
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import attrs

from crucible_core import events
from crucible_core.exceptions import ConfigurationError, ValidationError
from crucible_core.render import RenderMixin, View
from crucible_hedging._budget import HedgeBudget, Throttle, _to_budget
from crucible_hedging._core import Controller, check_max_hedges
from crucible_hedging._policy import Policy, default_policy
from crucible_hedging._report import LEVELS, HedgingReport
from crucible_hedging.exceptions import (
    AllAttemptsFailedError,
    HedgingError,
    HedgingTimeoutError,
    InvalidHedgingConfigError,
)

__all__ = (
    "HedgeAttempt",
    "AttemptOutcome",
    "FatalPredicate",
    "HedgedResult",
    "Hedger",
    "default_fatal",
    "hedged",
)

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


AttemptOutcome: TypeAlias = Literal["won", "failed", "cancelled", "running"]
"""How an attempt ended: it `won`, `failed`, was `cancelled` (still running when the request
ended), or was left `running` in the background (`cancel_losers=False`)."""


@attrs.define(frozen=True, kw_only=True)
class HedgeAttempt:
    """One attempt of a hedged request, on the request's clock.

    Examples:
        >>> HedgeAttempt(index=1, start_ms=500.0, end_ms=600.0, outcome="won")
        HedgeAttempt(index=1, start_ms=500.0, end_ms=600.0, outcome='won')
    """

    index: int
    """0 for the original request, then 1, 2, ... for the backups, in the order they started."""
    start_ms: float
    """Milliseconds from the request's start to this attempt's."""
    end_ms: float | None
    """When it answered, failed or was cancelled (`None`: left running)."""
    outcome: AttemptOutcome
    """How it ended."""


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
    timeline: tuple[HedgeAttempt, ...] = ()
    """Every attempt, in the order started: when it started and ended, and how."""

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
            [`Policy`][crucible_hedging.Policy]; default: the `hedging.policy` setting, see
            [`default_policy`][crucible_hedging.default_policy]).
        max_hedges: the most backups per request.
        budget: caps backups at a share of requests (a ratio such as `0.05`, a
            [`HedgeBudget`][crucible_hedging.HedgeBudget] to share, or `None` for no cap).
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
        policy: Policy | None = None,
        max_hedges: int = 1,
        budget: HedgeBudget | float | None = None,
        throttle: Throttle | None = None,
        cancel_losers: bool = True,
        timeout: float | None = None,
        fatal: FatalPredicate | None = None,
    ) -> None:
        if policy is None:
            policy = default_policy()
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
    def budget(self) -> HedgeBudget | None:
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
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        key: Hashable | None = None,
        latency: Callable[[T], float | None] | None = None,
        max_hedges: int | None = None,
    ) -> HedgedResult[T]:
        """Call `fn`, and again after the policy's delay if it is slow; return the first success.

        Args:
            fn: an async callable, called once per attempt (with no arguments).
            key: the workload class of the request (for
                [`WorkloadAware`][crucible_hedging.WorkloadAware] and statistics).
            latency: the seconds an attempt took by its own account, from its value (e.g.
                `lambda completion: completion.latency` for crucible-core models); a failed
                attempt's error may report its own in a `latency` attribute. An attempt then
                ends `max(reported, elapsed)` after it started, and while nothing runs on the
                event loop the request's clock moves straight on to the next thing due. So
                attempts that return at once but report their latency (simulated models in
                virtual time) are hedged, timed out and measured as if they had taken it, the
                same decisions [`simulate`][crucible_hedging.simulate] makes on those latencies.
                `None`: the loop's clock alone.
            max_hedges: the most backups for this request (default: the hedger's `max_hedges`).

        Returns:
            The winning value with latency, attempt counts and the timeline of attempts.

        Raises:
            AllAttemptsFailedError: every attempt failed and no further backup was allowed.
            HedgingTimeoutError: no attempt succeeded within `timeout`.
            InvalidHedgingConfigError: `max_hedges` is not an integer >= 0, or `latency` gave a
                value that is not a finite number of seconds >= 0.
            Exception: a fatal error from an attempt, re-raised as it is.
        """
        if max_hedges is not None:
            check_max_hedges(max_hedges)
        return await _run(self, fn, key, latency, max_hedges)


async def hedged(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: Policy,
    max_hedges: int = 1,
    budget: HedgeBudget | None = None,
    throttle: Throttle | None = None,
    cancel_losers: bool = True,
    timeout: float | None = None,  # noqa: ASYNC109 - an overall deadline that also cancels every attempt, as the issue specifies
    fatal: FatalPredicate | None = None,
    key: Hashable | None = None,
    latency: Callable[[T], float | None] | None = None,
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
        budget: a [`HedgeBudget`][crucible_hedging.HedgeBudget] shared across calls (`None`: no cap).
        throttle: a [`Throttle`][crucible_hedging.Throttle] shared across calls, or `None`.
        cancel_losers: cancel attempts still running when one succeeds.
        timeout: overall seconds (`None`: no limit).
        fatal: which errors fail at once (default [`default_fatal`][crucible_hedging.default_fatal]).
        key: the request's workload class.
        latency: the seconds an attempt took by its own account, from its value (see
            [`Hedger.request`][crucible_hedging.Hedger.request]); `None`: the loop's clock.

    Returns:
        The winning value with latency, attempt counts and the timeline of attempts.

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
    return await _run(hedger, fn, key, latency)


def _outcome(task: asyncio.Task[Any]) -> BaseException | None:
    if task.cancelled():
        return HedgingError(
            "an attempt was cancelled from inside the hedged callable; it counts as a failure",
        )
    return task.exception()


class _Failed(Exception):
    """Why a request ended without a winner (internal: raised after the attempts are stopped)."""


async def _run(
    hedger: Hedger,
    fn: Callable[[], Awaitable[T]],
    key: Hashable | None,
    latency: Callable[[T], float | None] | None = None,
    max_hedges: int | None = None,
) -> HedgedResult[T]:
    """Drive one hedged request on the request's clock.

    The clock starts at 0 and runs with the loop's. An attempt ends `max(reported, elapsed)`
    after it started, where `elapsed` is the loop time it took and `reported` what `latency` says
    of its value (nothing without `latency`). An attempt that returns at once but reports 5 s
    thus ends at 5 s: when nothing else is running on the loop, the clock jumps ahead to the next
    thing due (an attempt's end, the next backup, the deadline), so hedging follows reported
    latencies (simulated models in virtual time) exactly as it follows real ones.
    """
    loop = asyncio.get_running_loop()
    control = hedger._controller
    wall0 = loop.time()
    ahead = 0.0  # how far the request's clock has run ahead of the loop's

    def clock() -> float:
        return loop.time() - wall0 + ahead

    flight = control.begin(key, 0.0, max_hedges=max_hedges)
    base_meta = {"policy": repr(control.policy), "key": key}
    events.emit(
        events.HEDGING_REQUEST_START,
        {"delay": math.nan if flight.delay is None else flight.delay},
        base_meta,
    )
    running: dict[asyncio.Task[T], int] = {}
    # attempts that ended on the loop, by their end on the request's clock
    ready: list[tuple[float, int, asyncio.Task[T]]] = []
    started: list[float] = []
    walls: list[float] = []
    ended: list[float | None] = []
    fates: list[AttemptOutcome] = []
    errors: list[tuple[int, BaseException]] = []

    def launch(at: float) -> None:
        task: asyncio.Task[T] = asyncio.ensure_future(fn())
        running[task] = len(started)
        started.append(at)
        walls.append(at + wall0 - ahead)  # the loop time of `at`
        ended.append(None)
        fates.append("running")

    def try_hedge(now: float, reason: str) -> bool:
        decision = control.hedge(flight, now)
        if decision == "fired":
            launch(now)
            events.emit(
                events.HEDGING_HEDGE_FIRED,
                {"delay": now, "attempt": float(len(started) - 1)},
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

    def collect(done: Collection[asyncio.Task[T]]) -> None:
        for task in sorted(done, key=running.__getitem__) if len(done) > 1 else done:
            index = running.pop(task)
            took = loop.time() - walls[index]
            if latency is not None and not task.cancelled():
                error = task.exception()
                reported = (
                    latency(task.result())
                    if error is None
                    else getattr(error, "latency", None)
                )
                if reported is not None:
                    if not 0.0 <= reported < math.inf:
                        raise InvalidHedgingConfigError(
                            f"an attempt reported the latency {reported!r}; `latency` (or an "
                            "error's `latency` attribute) must give a finite number of seconds "
                            ">= 0, or None",
                            latency=reported,
                        )
                    took = max(took, reported)
            heapq.heappush(ready, (started[index] + took, index, task))

    deadline = hedger.timeout
    next_hedge = flight.next_hedge_at()
    winner: int | None = None
    value: Any = None
    primary_latency: float | None = None
    now = 0.0
    launch(0.0)
    try:
        while True:
            now = clock()
            head = ready[0][0] if ready else math.inf
            hedge_at = math.inf if next_hedge is None else next_hedge
            dead_at = math.inf if deadline is None else deadline
            if head > now and min(hedge_at, dead_at) > now:
                # nothing due yet: wait while attempts run on the loop ...
                if running:
                    due = min(head, hedge_at, dead_at)
                    done, _ = await asyncio.wait(
                        running,
                        timeout=None if due == math.inf else max(0.0, due - now),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if done:
                        collect(done)
                    else:  # `due` has come, even if the loop's float clock is a hair short
                        ahead += max(0.0, due - clock())
                    continue
                if not ready:
                    raise _Failed("all")
                # ... else move the clock on to what is due next (an end before a timer)
                now = min(head, hedge_at, dead_at)
                ahead += now - clock()
            if head <= now:  # an attempt's end comes first (also on a tie)
                end, index, task = heapq.heappop(ready)
                error = _outcome(task)
                control.attempt_done(success=error is None)
                ended[index] = end
                if error is None:
                    winner, value = index, task.result()
                    fates[index] = "won"
                    if index == 0:
                        primary_latency = end
                    now = end
                    break
                fates[index] = "failed"
                errors.append((index, error))
                if hedger._fatal(error):
                    raise error
                if try_hedge(now, "failure"):
                    next_hedge = flight.next_hedge_at()
            elif dead_at <= now:
                raise _Failed("timeout")
            else:
                next_hedge = flight.next_hedge_at() if try_hedge(now, "delay") else None
    except BaseException as err:
        if not isinstance(err, _Failed):
            now = clock()
        if running or ready:
            await _stop(hedger, running, ready, started, ended, fates, now, cancel=True)
        primary_censored = False
        if primary_latency is None and fates[0] != "failed":
            primary_latency, primary_censored = now, True
        control.finish(
            flight,
            now,
            winner=None,
            primary_latency=primary_latency,
            primary_censored=primary_censored,
        )
        failure: BaseException = err
        if isinstance(err, _Failed):
            timeline = _timeline(started, ended, fates)
            failure = _failure(hedger, str(err), errors, started, key, timeline)
        events.emit(
            events.HEDGING_REQUEST_EXCEPTION,
            {"duration": now, "hedges_fired": float(len(started) - 1)},
            {**base_meta, "error_type": type(failure).__name__, "error": str(failure)},
        )
        if failure is err:
            raise
        raise failure from None
    cancelled = (
        await _stop(
            hedger,
            running,
            ready,
            started,
            ended,
            fates,
            now,
            cancel=hedger.cancel_losers,
        )
        if running or ready
        else 0
    )
    primary_censored = False
    if primary_latency is None and fates[0] != "failed":
        primary_latency, primary_censored = now, True
    latency_s = control.finish(
        flight,
        now,
        winner=winner,
        primary_latency=primary_latency,
        primary_censored=primary_censored,
    )
    assert winner is not None  # the loop above only breaks with a winner
    if winner:
        events.emit(
            events.HEDGING_HEDGE_WON,
            {"duration": latency_s, "delay": now - started[winner]},
            {**base_meta, "winner_index": winner},
        )
    events.emit(
        events.HEDGING_REQUEST_STOP,
        {
            "duration": latency_s,
            "hedges_fired": float(len(started) - 1),
            "cancelled": float(cancelled),
        },
        {**base_meta, "winner_index": winner},
    )
    return HedgedResult(
        value=value,
        latency_ms=latency_s * 1000.0,
        attempts=len(started),
        hedges_fired=len(started) - 1,
        winner_index=winner,
        cancelled=cancelled,
        delay_ms=None if flight.delay is None else flight.delay * 1000.0,
        timeline=_timeline(started, ended, fates),
    )


def _timeline(
    started: list[float], ended: list[float | None], fates: list[AttemptOutcome]
) -> tuple[HedgeAttempt, ...]:
    return tuple(
        HedgeAttempt(
            index=i,
            start_ms=start * 1000.0,
            end_ms=None if end is None else end * 1000.0,
            outcome=fate,
        )
        for i, (start, end, fate) in enumerate(zip(started, ended, fates, strict=True))
    )


def _failure(
    hedger: Hedger,
    why: str,
    errors: list[tuple[int, BaseException]],
    started: list[float],
    key: Hashable | None,
    timeline: tuple[HedgeAttempt, ...],
) -> HedgingError:
    if why == "timeout":
        return HedgingTimeoutError(
            f"no attempt succeeded within the hedged request's timeout of "
            f"{hedger.timeout} s ({len(started)} attempt(s) started); raise `timeout=` "
            "or check the callable",
            timeout=hedger.timeout,
            attempts=len(started),
            timeline=timeline,
        )
    return AllAttemptsFailedError(
        f"all {len(started)} attempt(s) of the hedged request failed and no further "
        "backup was allowed (by `max_hedges`, the budget or the throttle); see the "
        "grouped errors",
        [
            err if isinstance(err, Exception) else HedgingError(repr(err))
            for _, err in errors
        ],
        attempts=len(started),
        key=key,
        timeline=timeline,
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
    hedger: Hedger,
    running: dict[asyncio.Task[Any], int],
    ready: list[tuple[float, int, asyncio.Task[Any]]],
    started: list[float],
    ended: list[float | None],
    fates: list[AttemptOutcome],
    now: float,
    *,
    cancel: bool,
) -> int:
    """End the losers; return how many were cancelled.

    Losers are the attempts still running on the loop and those that ended on the loop but later
    on the request's clock (still running, as far as the request knows). With `cancel` they are
    all cancelled and end now; otherwise those still running finish in the background.
    """
    losers = sorted([*running.values(), *(index for _, index, _ in ready)])
    tasks = [*running, *(task for _, _, task in ready)]
    for _, _, task in ready:
        if not task.cancelled():
            task.exception()  # retrieved: a loser's error is expected, not worth a warning
    ready.clear()
    if not cancel:
        for task in running:
            hedger._background.add(task)
            task.add_done_callback(_forget(hedger._background))
        running.clear()
        return 0
    for task in tasks:
        task.cancel()
    for index in losers:
        fates[index] = "cancelled"
        ended[index] = now
        events.emit(
            events.HEDGING_HEDGE_CANCELLED,
            {"elapsed": now - started[index]},
            {"attempt": index},
        )
    if running:
        await asyncio.gather(*running, return_exceptions=True)
        running.clear()
    return len(losers)

"""The hedging decisions, independent of any clock.

Both drivers call this same code with their own notion of "now": the asyncio driver
([`hedged`][crucible_hedging.hedged], [`Hedger`][crucible_hedging.Hedger]) with the event loop's
clock (real, or virtual on a [`VirtualTimeLoop`][crucible_hedging.VirtualTimeLoop]), and the
discrete-event simulator ([`simulate`][crucible_hedging.simulate]) with simulated time.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, Literal

from crucible_core import stats
from crucible_hedging._budget import HedgeBudget, Throttle
from crucible_hedging._policy import Outcome, Policy, _check_policy
from crucible_hedging._report import LEVELS, HedgingReport
from crucible_hedging._survival import kaplan_meier
from crucible_hedging.exceptions import InvalidHedgingConfigError

__all__ = ("Controller", "Flight", "HedgeDecision")

HedgeDecision = Literal["fired", "max_hedges", "budget", "throttle", "no_delay"]


class Flight:
    """One hedged request in progress."""

    __slots__ = ("attempts", "delay", "key", "last_start", "max_hedges", "start")

    def __init__(
        self, key: Hashable | None, start: float, delay: float | None, max_hedges: int
    ) -> None:
        self.key = key
        self.start = start
        self.delay = delay
        self.max_hedges = max_hedges
        self.attempts = 1
        self.last_start = start

    def next_hedge_at(self) -> float | None:
        """When the next timed backup is due (`None`: never)."""
        if self.delay is None:
            return None
        return self.last_start + self.delay


def check_max_hedges(value: Any) -> int:
    """Validate `max_hedges`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidHedgingConfigError(
            f"`max_hedges` must be an integer >= 0 (1: one backup at most), got {value!r}",
            max_hedges=value,
        )
    return value


class Controller:
    """Policy, budget, throttle and statistics for a stream of hedged requests."""

    __slots__ = (
        "_latencies",
        "_primary",
        "_primary_censored",
        "attempts",
        "budget",
        "budget_denied",
        "failed",
        "hedge_wins",
        "hedges_fired",
        "max_hedges",
        "policy",
        "requests",
        "throttle",
        "throttled",
    )

    def __init__(
        self,
        policy: Policy,
        *,
        budget: HedgeBudget | None,
        throttle: Throttle | None,
        max_hedges: int,
    ) -> None:
        _check_policy(policy, "policy")
        if budget is not None and not isinstance(budget, HedgeBudget):
            raise InvalidHedgingConfigError(
                f"`budget` must be a `HedgeBudget(ratio=...)` or None, got {type(budget).__name__}",
                budget=budget,
            )
        if throttle is not None and not isinstance(throttle, Throttle):
            raise InvalidHedgingConfigError(
                f"`throttle` must be a `Throttle(...)` or None, got {type(throttle).__name__}",
                throttle=throttle,
            )
        self.policy = policy
        self.budget = budget
        self.throttle = throttle
        self.max_hedges = check_max_hedges(max_hedges)
        self.requests = 0
        self.failed = 0
        self.attempts = 0
        self.hedges_fired = 0
        self.hedge_wins = 0
        self.budget_denied = 0
        self.throttled = 0
        self._latencies: list[float] = []
        self._primary: list[float] = []
        self._primary_censored: list[bool] = []

    def begin(
        self, key: Hashable | None, now: float, *, max_hedges: int | None = None
    ) -> Flight:
        """Start a request: credit the budget and ask the policy for its delay.

        `max_hedges` caps this request's backups instead of the controller's `max_hedges`.
        """
        if self.budget is not None:
            self.budget.deposit()
        delay = self.policy.delay(key)
        if delay is not None and (not delay >= 0 or math.isinf(delay)):
            raise InvalidHedgingConfigError(
                f"policy {self.policy!r} returned the delay {delay!r}; a policy must return a "
                "finite number of seconds >= 0 or None",
                delay=delay,
            )
        self.attempts += 1
        limit = self.max_hedges if max_hedges is None else max_hedges
        return Flight(key, now, delay, limit)

    def hedge(self, flight: Flight, now: float) -> HedgeDecision:
        """Decide whether a backup attempt may start now, and count it if so."""
        if flight.attempts > flight.max_hedges:
            return "max_hedges"
        if self.throttle is not None and not self.throttle.allows():
            self.throttle.throttled += 1
            self.throttled += 1
            return "throttle"
        if self.budget is not None and not self.budget.try_spend():
            self.budget_denied += 1
            return "budget"
        flight.attempts += 1
        flight.last_start = now
        self.attempts += 1
        self.hedges_fired += 1
        return "fired"

    def attempt_done(self, *, success: bool) -> None:
        """Count a finished attempt for the throttle."""
        if self.throttle is not None:
            self.throttle.record(success=success)

    def finish(
        self,
        flight: Flight,
        now: float,
        *,
        winner: int | None,
        primary_latency: float | None,
        primary_censored: bool,
    ) -> float:
        """End a request, feed the policy and the statistics; return its latency."""
        latency = now - flight.start
        self.requests += 1
        if winner is None:
            self.failed += 1
        else:
            self._latencies.append(latency)
            if winner > 0:
                self.hedge_wins += 1
        if primary_latency is not None:
            self._primary.append(primary_latency)
            self._primary_censored.append(primary_censored)
        self.policy.observe(
            Outcome(
                key=flight.key,
                delay=flight.delay,
                latency=None if winner is None else latency,
                primary_latency=primary_latency,
                primary_censored=primary_censored,
                hedges_fired=flight.attempts - 1,
                winner_index=winner,
            )
        )
        return latency

    def report(
        self,
        *,
        levels: tuple[float, ...] = LEVELS,
        baseline: list[float] | None = None,
    ) -> HedgingReport:
        """The statistics so far; `baseline` gives exact unhedged latencies (seconds) if known."""
        nan = tuple(math.nan for _ in levels)
        hedged = (
            tuple(x * 1000 for x in stats.percentiles(self._latencies, levels))
            if self._latencies
            else nan
        )
        if baseline is not None:
            base = (
                tuple(x * 1000 for x in stats.percentiles(baseline, levels))
                if baseline
                else nan
            )
        else:
            surv = kaplan_meier(self._primary, self._primary_censored)
            base = (
                nan
                if surv is None
                else tuple(surv.quantile(level / 100) * 1000 for level in levels)
            )
        return HedgingReport(
            policy=repr(self.policy),
            requests=self.requests,
            failed=self.failed,
            attempts=self.attempts,
            hedges_fired=self.hedges_fired,
            hedge_wins=self.hedge_wins,
            budget_denied=self.budget_denied,
            throttled=self.throttled,
            levels=levels,
            latency_ms=hedged,
            baseline_ms=base,
            baseline_exact=baseline is not None,
        )

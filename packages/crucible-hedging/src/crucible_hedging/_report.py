"""`HedgingReport`: what hedging did to latency and load."""

from __future__ import annotations

import math

import attrs

from crucible_core.render import RenderMixin, Table, View

__all__ = ("LEVELS", "HedgingReport")

LEVELS: tuple[float, ...] = (50.0, 95.0, 99.0, 99.9)
"""The latency percentiles every report shows."""


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


@attrs.define(frozen=True, kw_only=True)
class HedgingReport(RenderMixin):
    """Requests, hedges and latency percentiles with and without hedging.

    From [`Hedger.report`][crucible_hedging.Hedger.report] (latency without hedging is then the
    Kaplan–Meier estimate from first attempts, some cancelled) or
    [`simulate`][crucible_hedging.simulate] (exact: the simulator knows every first attempt's
    latency). Latencies are in milliseconds, over successful requests.
    """

    policy: str
    """The policy, as its repr."""
    requests: int
    """Hedged requests finished."""
    failed: int = 0
    """Requests that failed (every attempt failed, a fatal error, or the timeout)."""
    attempts: int = 0
    """Attempts started, backups included."""
    hedges_fired: int = 0
    """Backup attempts started."""
    hedge_wins: int = 0
    """Requests won by a backup attempt."""
    budget_denied: int = 0
    """Backups not sent because the budget was spent."""
    throttled: int = 0
    """Backups not sent because the throttle was closed."""
    levels: tuple[float, ...] = LEVELS
    """The percentiles shown."""
    latency_ms: tuple[float, ...] = ()
    """Latency percentiles with hedging (R type 7), one per level."""
    baseline_ms: tuple[float, ...] = ()
    """Latency percentiles of the first attempt alone, i.e. without hedging, one per level."""
    baseline_exact: bool = False
    """Whether `baseline_ms` is exact (simulated) or estimated from censored first attempts."""

    @property
    def hedge_rate(self) -> float:
        """Backups per request."""
        return _ratio(self.hedges_fired, self.requests)

    @property
    def win_rate(self) -> float:
        """Share of backups that won."""
        return _ratio(self.hedge_wins, self.hedges_fired)

    @property
    def extra_load(self) -> float:
        """Extra attempts per request: `(attempts - requests) / requests`."""
        return _ratio(self.attempts - self.requests, self.requests)

    def latency(self, level: float) -> float:
        """The hedged latency percentile at `level` (one of `levels`), in ms."""
        return self.latency_ms[self.levels.index(level)]

    def baseline(self, level: float) -> float:
        """The unhedged latency percentile at `level` (one of `levels`), in ms."""
        return self.baseline_ms[self.levels.index(level)]

    def reduction(self, level: float) -> float:
        """The relative cut of the percentile at `level`: `1 - hedged / unhedged`."""
        return 1.0 - _ratio(self.latency(level), self.baseline(level))

    def _view(self) -> View:
        rows = []
        for i, level in enumerate(self.levels):
            hedged = self.latency_ms[i] if i < len(self.latency_ms) else math.nan
            base = self.baseline_ms[i] if i < len(self.baseline_ms) else math.nan
            rows.append((f"P{level:g}", base, hedged, 1.0 - _ratio(hedged, base)))
        return View(
            title="Hedged requests",
            facts=(
                ("policy", self.policy),
                ("requests", self.requests),
                ("failed", self.failed),
                ("hedge rate", self.hedge_rate),
                ("hedge win rate", self.win_rate),
                ("extra load", self.extra_load),
                ("denied by budget", self.budget_denied),
                ("throttled", self.throttled),
            ),
            tables=(
                Table(
                    headers=("percentile", "unhedged ms", "hedged ms", "reduction"),
                    rows=rows,
                ),
            ),
            notes=()
            if self.baseline_exact
            else (
                "Unhedged latency is a Kaplan–Meier estimate from first attempts, some cancelled.",
            ),
        )

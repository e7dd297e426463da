"""Kaplan–Meier survival of right-censored latencies, and the tail of a hedged request."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ("Survival", "choose_delay", "hedged_quantile", "kaplan_meier")


class Survival:
    """A right-continuous step survival function `S(t) = P(X > t)` on sorted event times."""

    __slots__ = ("_padded", "surv", "times")

    def __init__(self, times: NDArray[np.float64], surv: NDArray[np.float64]) -> None:
        self.times = times
        """Sorted distinct event times."""
        self.surv = surv
        """`S` just after each event time (non-increasing)."""
        self._padded = np.concatenate(([1.0], surv))

    def __call__(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """`S(t)` for each `t` (1 before the first event)."""
        return self._padded[np.searchsorted(self.times, t, side="right")]

    def quantile(self, u: float) -> float:
        """The smallest event time `t` with `1 - S(t) >= u`; the last event time when `S` stays higher."""
        hit = np.nonzero(self.surv <= 1.0 - u + 1e-12)[0]
        if hit.size == 0:
            return float(self.times[-1])
        return float(self.times[hit[0]])


def kaplan_meier(
    times: Sequence[float] | NDArray[np.float64],
    censored: Sequence[bool] | NDArray[np.bool_],
) -> Survival | None:
    """The Kaplan–Meier estimate of `S` from latencies of which some are only lower bounds.

    A censored latency (an attempt cancelled after `t` seconds) says `X > t`. Returns `None` when
    no latency is exact.
    """
    t = np.asarray(times, dtype=np.float64)
    c = np.asarray(censored, dtype=np.bool_)
    if t.size == 0 or c.all():
        return None
    # at a tie, exact times come before censored ones (a censored X > t is still at risk at t)
    order = np.lexsort((c, t))
    t, c = t[order], c[order]
    at_risk = t.size - np.arange(t.size)
    factors = np.where(c, 1.0, 1.0 - 1.0 / at_risk)
    surv_all = np.cumprod(factors)
    exact = ~c
    ev_t = t[exact]
    ev_s = surv_all[exact]
    # keep the last value at each distinct time
    last = np.r_[ev_t[1:] != ev_t[:-1], True]
    return Survival(ev_t[last], np.asarray(ev_s[last], dtype=np.float64))


def _hedged_quantiles(surv: Survival, delays: Sequence[float], q: float) -> list[float]:
    """[`hedged_quantile`][] for several delays at once (one array pass; same values).

    On the grid `times`, `P(T > t) = S(t)·S(t − d)`; on the grid `times + d` it is `S(t + d)·S(t)`
    evaluated at the event times, so `S` at the event times is `surv` itself.
    """
    times, s = surv.times, surv.surv
    d = np.asarray(delays, dtype=np.float64)[:, None]
    threshold = 1.0 - q + 1e-12
    on_times = s[None, :] * surv(times[None, :] - d) <= threshold
    on_shifted = surv(times[None, :] + d) * s[None, :] <= threshold
    first = np.where(on_times.any(axis=1), times[on_times.argmax(axis=1)], np.inf)
    shifted = np.where(
        on_shifted.any(axis=1), times[on_shifted.argmax(axis=1)] + d[:, 0], np.inf
    )
    best = np.minimum(first, shifted)
    return [
        float(b) if math.isfinite(b) else float(times[-1] + x)
        for b, x in zip(best, d[:, 0], strict=True)
    ]


def hedged_quantile(surv: Survival, delay: float, q: float) -> float:
    """The `q`-quantile (0 < q < 1) of `T = min(X0, delay + X1)` for independent `X0, X1 ~ S`.

    `P(T > t) = S(t)·S(t − delay)` is non-increasing and only drops at `t` in `times` or
    `times + delay`: the first drop to `1 − q` in each grid, the earlier of the two.
    """
    return _hedged_quantiles(surv, [delay], q)[0]


def choose_delay(
    surv: Survival, *, max_rate: float, q: float, tolerance: float, steps: int = 12
) -> float:
    """The largest hedge delay whose predicted `q`-tail is within `tolerance` of the best one.

    Candidates are the `(1 - r)`-quantiles of `S` for hedge rates `r` from `max_rate` down to
    `max_rate / 32` on a geometric grid; see [`Adaptive`][crucible_hedging.Adaptive].
    """
    rates = max_rate * np.geomspace(1.0, 1.0 / 32.0, steps)
    delays = [surv.quantile(1.0 - float(r)) for r in rates]
    tails = _hedged_quantiles(surv, delays, q)
    best = min(tails)
    chosen = delays[0]
    for d, tail in zip(delays, tails, strict=True):
        if tail <= best * (1.0 + tolerance) + 1e-12 and d > chosen:
            chosen = d
    return chosen if math.isfinite(chosen) else delays[0]

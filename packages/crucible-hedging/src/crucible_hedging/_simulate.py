"""`simulate`: the hedging decisions run by a discrete-event simulator over a latency model."""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Hashable, Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from crucible_core.models import LATENCY_CLASSES, LatencyDistribution, Profile
from crucible_core.render import RenderMixin, View
from crucible_hedging._budget import HedgeBudget, Throttle, _to_budget
from crucible_hedging._core import Controller, check_max_hedges
from crucible_hedging._policy import Policy
from crucible_hedging._report import LEVELS, HedgingReport
from crucible_hedging.exceptions import InvalidHedgingConfigError

if TYPE_CHECKING:
    import polars

__all__ = (
    "Empirical",
    "LatencyModel",
    "Parametric",
    "SimulationResult",
    "simulate",
)

_NORMAL = NormalDist()
_Z95 = _NORMAL.inv_cdf(0.95)
_Z99 = _NORMAL.inv_cdf(0.99)


@runtime_checkable
class LatencyModel(Protocol):
    """Where simulated latencies come from: a matrix of attempt latencies per request."""

    def sample(
        self, rng: np.random.Generator, n: int, attempts: int
    ) -> NDArray[np.float64]:
        """Latencies in seconds, shape `(n, attempts)`: row `i` holds request `i`'s attempts."""
        ...


def _check_correlation(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= 1
    ):
        raise InvalidHedgingConfigError(
            f"`{attribute.name}` must be in [0, 1] (0: independent attempts, 1: every attempt "
            f"of a request equally slow), got {value!r}",
            **{attribute.name: value},
        )


def _correlated_normals(
    rng: np.random.Generator, n: int, attempts: int, correlation: float
) -> NDArray[np.float64]:
    """Standard normals, equicorrelated within a row with `correlation` (a Gaussian copula)."""
    shared = rng.standard_normal((n, 1))
    own = rng.standard_normal((n, attempts))
    return math.sqrt(correlation) * shared + math.sqrt(1.0 - correlation) * own


def _to_distribution(value: Any) -> Any:
    if isinstance(value, Profile):
        return value.latency
    if isinstance(value, str):
        try:
            return LATENCY_CLASSES[value]  # type: ignore[index]
        except KeyError:
            raise InvalidHedgingConfigError(
                f"unknown latency class {value!r}; use one of {sorted(LATENCY_CLASSES)}, a "
                "`LatencyDistribution(p50=..., p95=..., p99=...)` or a `Profile`",
                distribution=value,
            ) from None
    if not isinstance(value, LatencyDistribution):
        raise InvalidHedgingConfigError(
            "`distribution` must be a `LatencyDistribution`, a `Profile` or a latency class name, "
            f"got {type(value).__name__}",
            distribution=value,
        )
    return value


@attrs.define(frozen=True, kw_only=True)
class Parametric:
    """Attempt latencies from one of crucible-core's heavy-tailed distributions.

    The distribution is a crucible-core
    [`LatencyDistribution`][crucible_core.models.LatencyDistribution] (exact P50/P95/P99), a
    simulated model's `Profile`, or a latency class name: `"fast"` (200/800/2000 ms), `"medium"`
    (500/2000/5000 ms), `"slow"` (1000/4000/8000 ms). `correlation` couples the attempts of one
    request through a Gaussian copula: 0 gives independent attempts, where hedging helps most; 1
    makes every attempt of a request equally slow (the slowness is in the request, say a long
    prompt), where hedging cannot help.

    Examples:
        >>> import numpy as np
        >>> m = Parametric(distribution="medium")
        >>> m.sample(np.random.default_rng(0), 4, 2).shape
        (4, 2)
    """

    distribution: LatencyDistribution = attrs.field(converter=_to_distribution)
    """The latency distribution of one attempt (seconds)."""
    correlation: float = attrs.field(default=0.0, validator=_check_correlation)
    """Correlation between the attempts of one request."""

    def quantile(self, z: NDArray[np.float64]) -> NDArray[np.float64]:
        """Latencies at standard-normal scores `z` (vectorised `LatencyDistribution.quantile`)."""
        d = self.distribution
        z = np.clip(z, _NORMAL.inv_cdf(1e-12), _NORMAL.inv_cdf(d.max_quantile))
        low = d.p50 * np.exp(math.log(d.p95 / d.p50) / _Z95 * z)
        high = d.p95 * np.exp(math.log(d.p99 / d.p95) / (_Z99 - _Z95) * (z - _Z95))
        return np.where(z <= _Z95, low, high)

    def sample(
        self, rng: np.random.Generator, n: int, attempts: int
    ) -> NDArray[np.float64]:
        """Latencies in seconds, shape `(n, attempts)`."""
        return self.quantile(_correlated_normals(rng, n, attempts, self.correlation))


def _to_samples(value: ArrayLike) -> NDArray[np.float64]:
    try:
        arr = np.sort(np.asarray(value, dtype=np.float64).ravel())
    except (TypeError, ValueError) as err:
        raise InvalidHedgingConfigError(
            f"`samples` must be latencies in seconds, got {type(value).__name__}",
            samples=type(value).__name__,
        ) from err
    if arr.size == 0 or not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidHedgingConfigError(
            "`samples` must be a non-empty array of finite latencies >= 0 seconds; drop NaN or "
            "negative values first",
            samples=int(arr.size),
        )
    return arr


def _normal_cdf(z: NDArray[np.float64]) -> NDArray[np.float64]:
    # Abramowitz & Stegun 7.1.26 (error < 1.5e-7): enough to pick a rank
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592
        + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


@attrs.define(frozen=True, kw_only=True, eq=False)
class Empirical:
    """Attempt latencies resampled from observed ones (seconds), e.g. from telemetry."""

    samples: NDArray[np.float64] = attrs.field(converter=_to_samples, repr=False)
    """The observed latencies, sorted."""
    correlation: float = attrs.field(default=0.0, validator=_check_correlation)
    """Correlation between the attempts of one request."""

    def sample(
        self, rng: np.random.Generator, n: int, attempts: int
    ) -> NDArray[np.float64]:
        """Latencies in seconds, shape `(n, attempts)`."""
        if self.correlation == 0:
            idx = rng.integers(0, self.samples.size, size=(n, attempts))
        else:
            u = _normal_cdf(_correlated_normals(rng, n, attempts, self.correlation))
            idx = np.minimum(
                (u * self.samples.size).astype(np.int64), self.samples.size - 1
            )
        return self.samples[idx]


@attrs.define(frozen=True, kw_only=True, eq=False)
class SimulationResult(RenderMixin):
    """What [`simulate`][crucible_hedging.simulate] measured: the report and every request."""

    report: HedgingReport
    """Rates and latency percentiles, with the exact unhedged baseline."""
    latency: NDArray[np.float64] = attrs.field(repr=False)
    """Each request's latency with hedging, in seconds (NaN: it failed)."""
    baseline: NDArray[np.float64] = attrs.field(repr=False)
    """Each request's first-attempt latency, i.e. its latency without hedging, in seconds."""
    hedges: NDArray[np.int64] = attrs.field(repr=False)
    """Backups sent for each request."""
    winner: NDArray[np.int64] = attrs.field(repr=False)
    """Which attempt won each request (-1: it failed)."""
    delay: NDArray[np.float64] = attrs.field(repr=False)
    """The hedge delay the policy gave each request, in seconds (NaN: none)."""

    def _view(self) -> View:
        return self.report._view()

    def to_polars(self) -> polars.DataFrame:
        """One row per simulated request (needs the `polars` extra)."""
        from crucible_core._optional import import_optional

        pl = import_optional("polars", extra="polars")
        return pl.DataFrame(  # type: ignore[no-any-return]
            {
                "latency": self.latency,
                "baseline": self.baseline,
                "hedges": self.hedges,
                "winner": self.winner,
                "delay": self.delay,
            }
        )


_DONE, _TIMER, _ARRIVE = 0, 1, 2


def simulate(
    latency_model: LatencyModel,
    policy: Policy,
    *,
    n: int = 10_000,
    seed: int = 0,
    max_hedges: int = 1,
    budget: HedgeBudget | float | None = None,
    throttle: Throttle | None = None,
    arrival_rate: float | None = None,
    failure_rate: float = 0.0,
    keys: Sequence[Hashable] | None = None,
    levels: tuple[float, ...] = LEVELS,
) -> SimulationResult:
    """Run the hedging decisions over `n` simulated requests, in simulated time.

    A discrete-event simulator replays attempt starts, hedge timers and attempt completions in
    time order and calls the same decision code as [`Hedger`][crucible_hedging.Hedger]: a request
    starts, the policy gives its delay, a backup starts when the delay passes (if the budget and
    throttle allow), the first successful attempt wins and the others are cancelled, and a failed
    attempt starts a backup at once. Nothing sleeps: 100,000 requests take about a second.

    The policy, budget and throttle are copied, so the objects passed in are left as they were.

    Args:
        latency_model: where attempt latencies come from ([`Parametric`][crucible_hedging.Parametric],
            [`Empirical`][crucible_hedging.Empirical], or any [`LatencyModel`][crucible_hedging.LatencyModel]).
        policy: the delay policy.
        n: how many requests.
        seed: seeds every random draw.
        max_hedges: the most backups per request.
        budget: a [`HedgeBudget`][crucible_hedging.HedgeBudget], a ratio, or `None` (no cap).
        throttle: a [`Throttle`][crucible_hedging.Throttle], or `None`.
        arrival_rate: requests per second, arriving as a Poisson process (`None`: one at a time,
            each starting when the previous one ends).
        failure_rate: the probability that an attempt fails (at the end of its latency) instead of
            answering.
        keys: the workload key of each request (length `n`), for
            [`WorkloadAware`][crucible_hedging.WorkloadAware].
        levels: the latency percentiles to report.

    Returns:
        The report and per-request arrays.

    Raises:
        InvalidHedgingConfigError: an option is out of range.

    Examples:
        >>> result = simulate(Parametric(distribution="medium"), Percentile(p=95), n=20_000, seed=1)
        >>> round(result.report.hedge_rate, 2)
        0.05
    """
    n_value: object = n
    if isinstance(n_value, bool) or not isinstance(n_value, int) or n < 1:
        raise InvalidHedgingConfigError(
            f"`n` must be a positive integer, got {n!r}", n=n
        )
    if not isinstance(latency_model, LatencyModel):
        raise InvalidHedgingConfigError(
            "`latency_model` must have `sample(rng, n, attempts)`: use `Parametric(...)` or "
            f"`Empirical(...)`, got {type(latency_model).__name__}",
            latency_model=latency_model,
        )
    rate: object = arrival_rate
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not 0 < rate < math.inf
    ):
        raise InvalidHedgingConfigError(
            f"`arrival_rate` must be a positive number of requests per second or None, got "
            f"{arrival_rate!r}",
            arrival_rate=arrival_rate,
        )
    failure: object = failure_rate
    if (
        isinstance(failure, bool)
        or not isinstance(failure, int | float)
        or not 0 <= failure < 1
    ):
        raise InvalidHedgingConfigError(
            f"`failure_rate` must be a probability in [0, 1), got {failure_rate!r}",
            failure_rate=failure_rate,
        )
    if keys is not None and len(keys) != n:
        raise InvalidHedgingConfigError(
            f"`keys` must give one key per request: {len(keys)} keys for n={n}",
            keys=len(keys),
        )
    k = check_max_hedges(max_hedges) + 1
    control = Controller(
        copy.deepcopy(policy),
        budget=copy.deepcopy(_to_budget(budget)),
        throttle=copy.deepcopy(throttle),
        max_hedges=max_hedges,
    )
    rng = np.random.default_rng(seed)
    lat = np.asarray(latency_model.sample(rng, n, k), dtype=np.float64)
    if lat.shape != (n, k) or not np.isfinite(lat).all() or (lat < 0).any():
        raise InvalidHedgingConfigError(
            f"the latency model gave an array of shape {lat.shape}; expected {(n, k)} finite "
            "latencies >= 0",
            shape=lat.shape,
        )
    fails = (
        rng.random((n, k)) < failure_rate
        if failure_rate > 0
        else np.zeros((n, k), dtype=np.bool_)
    )
    gaps = None if arrival_rate is None else rng.exponential(1.0 / arrival_rate, n)
    _run_events(control, lat.tolist(), fails.tolist(), gaps, keys, out := _Out(n))
    report = control.report(levels=levels, baseline=lat[:, 0].tolist())
    return SimulationResult(
        report=report,
        latency=out.latency,
        baseline=lat[:, 0].copy(),
        hedges=out.hedges,
        winner=out.winner,
        delay=out.delay,
    )


class _Out:
    __slots__ = ("delay", "hedges", "latency", "winner")

    def __init__(self, n: int) -> None:
        self.latency = np.full(n, np.nan)
        self.hedges = np.zeros(n, dtype=np.int64)
        self.winner = np.full(n, -1, dtype=np.int64)
        self.delay = np.full(n, np.nan)


def _run_events(
    control: Controller,
    lat: list[list[float]],
    fails: list[list[bool]],
    gaps: NDArray[np.float64] | None,
    keys: Sequence[Hashable] | None,
    out: _Out,
) -> None:
    """The discrete-event loop: `(time, kind, seq, request, attempt)` events in time order."""
    n = len(lat)
    heap: list[tuple[float, int, int, int, int]] = []
    seq = 0
    flights: list[Any] = [None] * n
    pending: list[set[int]] = [set() for _ in range(n)]
    timer_version = [0] * n
    finished = [False] * n
    primary_failed = [False] * n
    push = heapq.heappush

    def start_attempt(r: int, now: float) -> None:
        nonlocal seq
        a = flights[r].attempts - 1
        pending[r].add(a)
        seq += 1
        push(heap, (now + lat[r][a], _DONE, seq, r, a))

    def arm_timer(r: int) -> None:
        nonlocal seq
        at = flights[r].next_hedge_at()
        if at is not None:
            timer_version[r] += 1
            seq += 1
            push(heap, (at, _TIMER, seq, r, timer_version[r]))

    def arrive(r: int, now: float) -> None:
        nonlocal seq
        flight = control.begin(None if keys is None else keys[r], now)
        flights[r] = flight
        if flight.delay is not None:
            out.delay[r] = flight.delay
        start_attempt(r, now)
        arm_timer(r)
        if gaps is not None and r + 1 < n:
            seq += 1
            push(heap, (now + float(gaps[r + 1]), _ARRIVE, seq, r + 1, 0))

    def end(r: int, now: float, winner: int | None) -> None:
        nonlocal seq
        finished[r] = True
        flight = flights[r]
        if winner == 0:
            primary, censored = lat[r][0], False
        elif primary_failed[r]:
            primary, censored = None, False
        else:
            primary, censored = now - flight.start, True
        latency = control.finish(
            flight,
            now,
            winner=winner,
            primary_latency=primary,
            primary_censored=censored,
        )
        out.hedges[r] = flight.attempts - 1
        if winner is not None:
            out.latency[r] = latency
            out.winner[r] = winner
        if gaps is None and r + 1 < n:
            seq += 1
            push(heap, (now, _ARRIVE, seq, r + 1, 0))

    start = 0.0 if gaps is None else float(gaps[0])
    push(heap, (start, _ARRIVE, 0, 0, 0))
    pop = heapq.heappop
    while heap:
        now, kind, _, r, a = pop(heap)
        if kind == _ARRIVE:
            arrive(r, now)
            continue
        if finished[r]:
            continue
        if kind == _TIMER:
            if a != timer_version[r]:
                continue
            if control.hedge(flights[r], now) == "fired":
                start_attempt(r, now)
                arm_timer(r)
            continue
        pending[r].discard(a)
        failed = fails[r][a]
        control.attempt_done(success=not failed)
        if not failed:
            end(r, now, a)
            continue
        if a == 0:
            primary_failed[r] = True
        if control.hedge(flights[r], now) == "fired":
            start_attempt(r, now)
            arm_timer(r)
        elif not pending[r]:
            end(r, now, None)

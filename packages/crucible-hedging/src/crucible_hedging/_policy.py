"""Delay policies: when to send a backup request."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Hashable, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np

from crucible_hedging._survival import choose_delay, kaplan_meier
from crucible_hedging.exceptions import InvalidHedgingConfigError

__all__ = (
    "Adaptive",
    "Fixed",
    "Outcome",
    "Percentile",
    "Policy",
    "WorkloadAware",
    "default_policy",
    "parse_policy",
)


@attrs.define(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What a policy learns from one finished hedged request (times in seconds)."""

    key: Any = None
    """The request's workload key."""
    delay: float | None = None
    """The hedge delay the policy gave for the request (`None`: no timed hedge)."""
    latency: float | None = None
    """Seconds until the winning attempt answered (`None`: the request failed)."""
    primary_latency: float | None = None
    """Seconds the first attempt took, or ran before it was cancelled (`None`: it failed)."""
    primary_censored: bool = False
    """Whether the first attempt was cancelled, so `primary_latency` is only a lower bound."""
    hedges_fired: int = 0
    """Backup attempts started."""
    winner_index: int | None = None
    """Which attempt answered first (0: the original; `None`: the request failed)."""


@runtime_checkable
class Policy(Protocol):
    """What a delay policy offers: a delay per request and learning from each outcome.

    Policies hold state (what they learned) and may be shared by several hedgers, which then learn
    together. Policies are used from one event loop; they are not thread-safe.
    """

    def delay(self, key: Hashable | None = None) -> float | None:
        """Seconds to wait before each backup attempt of a request of class `key` (`None`: never)."""
        ...

    def observe(self, outcome: Outcome) -> None:
        """Learn from a finished request."""
        ...


def _check_delay(name: str, value: Any, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidHedgingConfigError(
            f"`{name}` must be a finite number of seconds >= 0"
            + (" or None" if allow_none else "")
            + f", got {value!r}",
            **{name: value},
        )


def _delay_field(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _check_delay(attribute.name, value, allow_none=False)


def _optional_delay_field(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _check_delay(attribute.name, value, allow_none=True)


def _int_at_least(low: int) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidHedgingConfigError(
                f"`{attribute.name}` must be an integer >= {low}, got {value!r}",
                **{attribute.name: value},
            )

    return check


def _open_percent(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < 100
    ):
        raise InvalidHedgingConfigError(
            f"`{attribute.name}` must be a percentile strictly between 0 and 100, got {value!r}",
            **{attribute.name: value},
        )


def _open_fraction(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value < 1
    ):
        raise InvalidHedgingConfigError(
            f"`{attribute.name}` must be a fraction strictly between 0 and 1, got {value!r}",
            **{attribute.name: value},
        )


@attrs.define(frozen=True, kw_only=True)
class Fixed:
    """Hedge after the same delay every time: `Fixed(delay=0.5)` waits 0.5 s before each backup.

    Examples:
        >>> Fixed(delay=0.5).delay()
        0.5
    """

    _delay: float = attrs.field(alias="delay", validator=_delay_field)

    def delay(self, key: Hashable | None = None) -> float | None:
        """The fixed delay, whatever the key."""
        return self._delay

    def observe(self, outcome: Outcome) -> None:
        """Nothing to learn."""

    def __repr__(self) -> str:
        return f"Fixed(delay={self._delay:g})"


@attrs.define(kw_only=True)
class Percentile:
    """Hedge at the `p`-th percentile of recently observed latencies of the first attempt.

    The delay is the R type-7 percentile of a sliding window of the last `window` first-attempt
    latencies. A first attempt cancelled because a backup won is recorded at the time it was
    cancelled: a lower bound on its latency that lies above the delay, so the share of latencies
    above the delay, and with it the estimate, stays unbiased. Until `min_samples` latencies are
    seen the delay is `initial_delay` (`None`: no timed hedge yet). Hedging at the 95th percentile
    fires on about 5% of requests.

    Examples:
        >>> policy = Percentile(p=50, window=3, min_samples=3)
        >>> for latency in (0.1, 0.2, 0.3, 0.4):
        ...     policy.observe(Outcome(latency=latency, primary_latency=latency))
        >>> policy.delay()
        0.3
    """

    p: float = attrs.field(default=95.0, validator=_open_percent)
    """The percentile of first-attempt latency to hedge at."""
    window: int = attrs.field(default=1000, validator=_int_at_least(1))
    """How many recent latencies are kept."""
    min_samples: int = attrs.field(default=50, validator=_int_at_least(1))
    """Latencies needed before the percentile is used."""
    initial_delay: float | None = attrs.field(
        default=None, validator=_optional_delay_field
    )
    """The delay before `min_samples` latencies are seen (`None`: no timed hedge)."""
    _recent: deque[float] = attrs.field(init=False, factory=deque, repr=False)
    _sorted: list[float] = attrs.field(init=False, factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.min_samples > self.window:
            raise InvalidHedgingConfigError(
                f"`min_samples` ({self.min_samples}) cannot exceed `window` ({self.window}); "
                "lower `min_samples` or raise `window`",
                min_samples=self.min_samples,
                window=self.window,
            )

    def delay(self, key: Hashable | None = None) -> float | None:
        """The current percentile of the window, or `initial_delay` while it is too small."""
        values = self._sorted
        n = len(values)
        if n < self.min_samples:
            return self.initial_delay
        h = (n - 1) * self.p / 100.0
        lo = int(h)
        if lo + 1 >= n:
            return values[-1]
        return values[lo] + (h - lo) * (values[lo + 1] - values[lo])

    def observe(self, outcome: Outcome) -> None:
        """Add the first attempt's latency (or its lower bound, if it was cancelled) to the window."""
        latency = outcome.primary_latency
        if latency is None:
            return
        recent = self._recent
        if len(recent) >= self.window:
            old = recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        recent.append(latency)
        bisect.insort(self._sorted, latency)

    @property
    def samples(self) -> int:
        """How many latencies the window holds."""
        return len(self._recent)


@attrs.define(kw_only=True)
class Adaptive:
    """Choose the delay online to minimise tail latency within a hedge rate.

    The algorithm, re-run every `update_every` requests on a sliding window of the last `window`
    first-attempt latencies:

    1. Estimate the survival function `S(t) = P(X > t)` of one attempt's latency with the
       Kaplan–Meier estimator; first attempts cancelled because a backup won are right-censored
       at the time they were cancelled, so the tail is not underestimated.
    2. For candidate hedge rates `r` on a geometric grid from `max_rate` down to `max_rate / 32`,
       take the delay `d(r) = S⁻¹(r)` (the `1 - r` quantile) and predict the `q`-th percentile of
       the hedged latency `T = min(X0, d + X1)`, using `P(T > t) = S(t) · S(t - d)` for
       independent attempts.
    3. Use the largest delay (the fewest hedges) whose predicted tail is within `tolerance` of the
       best predicted tail. With independent attempts the best tail comes at `max_rate`, but a
       heavy tail is often cut almost as well by hedging less.

    Decisions between updates cost one attribute read. The estimate converges to the delay the
    same rule picks from the true distribution (tested on the seed profiles); with strongly
    request-correlated latency the model's independence assumption fails, and hedges are wasted up
    to `max_rate` (see the guide). Keep `max_rate` at or under the hedger's budget ratio.
    """

    max_rate: float = attrs.field(default=0.05, validator=_open_fraction)
    """The largest share of requests to hedge."""
    quantile: float = attrs.field(default=99.0, validator=_open_percent)
    """The percentile of hedged latency to minimise."""
    tolerance: float = attrs.field(default=0.05)
    """Relative slack on the predicted tail that buys fewer hedges."""
    window: int = attrs.field(default=4000, validator=_int_at_least(10))
    """How many recent latencies are kept."""
    min_samples: int = attrs.field(default=200, validator=_int_at_least(10))
    """Latencies needed before the first estimate."""
    update_every: int = attrs.field(default=2000, validator=_int_at_least(1))
    """Requests between re-estimates."""
    initial_delay: float | None = attrs.field(
        default=None, validator=_optional_delay_field
    )
    """The delay before the first estimate (`None`: no timed hedge yet)."""
    _times: deque[float] = attrs.field(init=False, factory=deque, repr=False)
    _censored: deque[bool] = attrs.field(init=False, factory=deque, repr=False)
    _current: float | None = attrs.field(init=False, default=None, repr=False)
    _since_update: int = attrs.field(init=False, default=0, repr=False)

    def __attrs_post_init__(self) -> None:
        tol: object = self.tolerance
        if (
            isinstance(tol, bool)
            or not isinstance(tol, int | float)
            or not 0 <= tol < 1
        ):
            raise InvalidHedgingConfigError(
                f"`tolerance` must be a fraction in [0, 1), got {tol!r}",
                tolerance=tol,
            )
        if self.min_samples > self.window:
            raise InvalidHedgingConfigError(
                f"`min_samples` ({self.min_samples}) cannot exceed `window` ({self.window}); "
                "lower `min_samples` or raise `window`",
                min_samples=self.min_samples,
                window=self.window,
            )
        self._current = self.initial_delay

    def delay(self, key: Hashable | None = None) -> float | None:
        """The delay chosen at the last update (`initial_delay` before the first)."""
        return self._current

    def observe(self, outcome: Outcome) -> None:
        """Record the first attempt's (possibly censored) latency; re-estimate when due."""
        latency = outcome.primary_latency
        if latency is None:
            return
        if len(self._times) >= self.window:
            self._times.popleft()
            self._censored.popleft()
        self._times.append(latency)
        self._censored.append(outcome.primary_censored)
        self._since_update += 1
        if len(self._times) >= self.min_samples and (
            self._since_update >= self.update_every or self._current is None
        ):
            self.update()

    def update(self) -> None:
        """Re-estimate the delay from the window now."""
        self._since_update = 0
        surv = kaplan_meier(
            np.fromiter(self._times, dtype=np.float64, count=len(self._times)),
            np.fromiter(self._censored, dtype=np.bool_, count=len(self._censored)),
        )
        if surv is None:
            return
        self._current = choose_delay(
            surv,
            max_rate=self.max_rate,
            q=self.quantile / 100.0,
            tolerance=self.tolerance,
        )

    @property
    def samples(self) -> int:
        """How many latencies the window holds."""
        return len(self._times)


def _check_policy(value: Any, name: str) -> None:
    if not isinstance(value, Policy):
        raise InvalidHedgingConfigError(
            f"`{name}` must be a policy (`Fixed(...)`, `Percentile(...)`, `Adaptive(...)` or an "
            f"object with `delay(key)` and `observe(outcome)`), got {type(value).__name__}",
            **{name: value},
        )


def _to_policies(value: Any) -> dict[Hashable, Policy]:
    if not isinstance(value, Mapping):
        raise InvalidHedgingConfigError(
            f"`policies` must be a mapping of workload key to policy, got {type(value).__name__}",
            policies=value,
        )
    out = dict(value)
    for key, policy in out.items():
        _check_policy(policy, f"policies[{key!r}]")
    return out


@attrs.define(kw_only=True)
class WorkloadAware:
    """A separate policy per request class (a prompt-length bucket, a model, a task).

    The request's `key` picks the policy; keys without one use `default` (`None`: no timed hedge).
    Each policy learns only from its own class.

    Examples:
        >>> policy = WorkloadAware(policies={"short": Fixed(delay=0.2), "long": Fixed(delay=2.0)})
        >>> policy.delay("long"), policy.delay("other")
        (2.0, None)
    """

    policies: dict[Hashable, Policy] = attrs.field(converter=_to_policies)
    """The policy for each workload key."""
    default: Policy | None = None
    """The policy for keys not in `policies`."""

    def __attrs_post_init__(self) -> None:
        if self.default is not None:
            _check_policy(self.default, "default")

    def _for(self, key: Hashable | None) -> Policy | None:
        try:
            return self.policies.get(key, self.default)
        except TypeError:  # an unhashable key
            return self.default

    def delay(self, key: Hashable | None = None) -> float | None:
        """The delay of the policy for `key`."""
        policy = self._for(key)
        return None if policy is None else policy.delay(key)

    def observe(self, outcome: Outcome) -> None:
        """Pass the outcome to the policy for its key."""
        policy = self._for(outcome.key)
        if policy is not None:
            policy.observe(outcome)


def parse_policy(spec: str) -> Policy:
    """A policy from its text form, as the `hedging.policy` setting writes it.

    `"fixed:<seconds>"` is [`Fixed`][crucible_hedging.Fixed], `"percentile:<p>"` (or
    `"percentile"`, the 95th) [`Percentile`][crucible_hedging.Percentile], `"adaptive"`
    [`Adaptive`][crucible_hedging.Adaptive] with its defaults.

    Examples:
        >>> parse_policy("fixed:0.5").delay()
        0.5
        >>> parse_policy("percentile:90").p
        90.0
    """
    text = str(spec).strip().lower()
    kind, _, arg = text.partition(":")
    try:
        if kind == "fixed" and arg:
            return Fixed(delay=float(arg))
        if kind == "percentile":
            return Percentile(p=float(arg) if arg else 95.0)
        if kind == "adaptive" and not arg:
            return Adaptive()
    except ValueError as err:
        raise InvalidHedgingConfigError(
            f"hedging policy {spec!r}: {err}", policy=spec
        ) from err
    raise InvalidHedgingConfigError(
        f"unknown hedging policy {spec!r}: write 'fixed:<seconds>', 'percentile:<p>' or 'adaptive'",
        policy=spec,
    )


def default_policy() -> Policy:
    """A new policy from the `hedging.policy` setting.

    The setting is `CRUCIBLE_HEDGING_POLICY`, else the project file's `[tool.crucible.hedging]
    policy`, else `"percentile:95"` (see `crucible_core.settings`).
    """
    from crucible_core.settings import load_settings

    return parse_policy(str(load_settings()["hedging.policy"]))

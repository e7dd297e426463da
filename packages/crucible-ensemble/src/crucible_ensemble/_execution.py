"""Execution strategies: which members an ensemble calls, when, and when it stops.

- [`Parallel`][crucible_ensemble.Parallel]: everyone at once; wait for all (or the timeout).
- [`Sequential`][crucible_ensemble.Sequential]: as few as could settle the vote (3 of 5 for a
  majority), then more only while the outcome can still change; in-flight calls are cancelled the
  moment it cannot.
- [`Hedged`][crucible_ensemble.Hedged]: the first member alone; if it has not answered after the
  delay a crucible-hedging policy gives, the next one as a backup, and so on; the first answer
  wins, the rest are cancelled.
- [`Cascade`][crucible_ensemble.Cascade]: cheapest first; escalate to the next member while the
  agreement (or confidence) is below the threshold.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import attrs

from crucible_ensemble._checks import is_count, is_real
from crucible_ensemble.exceptions import EnsembleConfigurationError
from crucible_hedging import Fixed, HedgeBudget, Policy, Throttle

__all__ = (
    "Cascade",
    "Execution",
    "ExecutionName",
    "Hedged",
    "Parallel",
    "Sequential",
    "resolve_execution",
)

ExecutionName: TypeAlias = Literal["parallel", "sequential", "hedged", "cascade"]
"""The execution strategies by name (each with its default options)."""


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not is_real(value) or value <= 0:
        raise EnsembleConfigurationError(
            f"`{attribute.name}` must be a positive number of seconds, got {value!r}",
            **{attribute.name: value},
        )


def _optional_count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not is_count(value):
        raise EnsembleConfigurationError(
            f"`{attribute.name}` must be a non-negative integer or None, got {value!r}",
            **{attribute.name: value},
        )


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not is_count(value, minimum=1):
        raise EnsembleConfigurationError(
            f"`{attribute.name}` must be a positive integer, got {value!r}",
            **{attribute.name: value},
        )


def _share(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not is_real(value) or not 0.0 <= value <= 1.0):
        raise EnsembleConfigurationError(
            f"`{attribute.name}` must be in [0, 1], got {value!r}",
            **{attribute.name: value},
        )


@attrs.define(frozen=True, kw_only=True)
class Parallel:
    """Call every member at once and vote over everyone who answers before the timeout."""

    @property
    def name(self) -> str:
        """`"parallel"`."""
        return "parallel"


@attrs.define(frozen=True, kw_only=True)
class Sequential:
    """Call members in order, only as many as could still change the outcome.

    With a majority of five it calls three at once; if they agree it stops (the other two could
    not overturn three votes), otherwise it calls one more at a time. Calls still in flight when
    the outcome is settled are cancelled. The strategy must say when it is settled (the built-in
    ones do); a plain voting function makes this the same as parallel. The answer is always the
    one parallel execution would give, for a fraction of the calls.

    A slow member in the first wave holds the decision up; `spare=k` keeps `k` more calls in
    flight than the minimum, so the vote can settle without it (it is then cancelled), at the
    price of up to `k` extra calls.
    """

    spare: int = attrs.field(default=0, validator=_optional_count)
    """Calls kept in flight beyond the fewest that could settle the vote."""

    @property
    def name(self) -> str:
        """`"sequential"`."""
        return "sequential"


def _policy(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Policy):
        raise EnsembleConfigurationError(
            "`policy` must be a crucible-hedging policy such as `Fixed(delay=0.5)`, "
            f"`Percentile(p=95)` or `Adaptive()`, got {value!r}",
            policy=value,
        )


def _budget(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None or isinstance(value, HedgeBudget):
        return
    if not is_real(value) or not 0 < value <= 1:
        raise EnsembleConfigurationError(
            "`budget` must be a share of predictions in (0, 1] (0.05: backups for at most 5%), "
            f"a crucible-hedging `HedgeBudget`, or None, got {value!r}",
            budget=value,
        )


def _throttle(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Throttle):
        raise EnsembleConfigurationError(
            f"`throttle` must be a crucible-hedging `Throttle` or None, got {value!r}",
            throttle=value,
        )


@attrs.define(frozen=True, kw_only=True)
class Hedged:
    """The first member answers; the next members are backups, fired by a crucible-hedging policy.

    It runs through crucible-hedging's [`Hedger`][crucible_hedging.Hedger]: the first member is
    called; when the policy's delay passes without an answer, the next member is called as a
    backup (at once when a call fails or its answer cannot be read), and so on; the first answer
    wins and the calls still running are cancelled. Calls are timed by the latency their
    completions report, so simulated members in virtual time are hedged on their simulated
    latencies exactly as crucible-hedging's `simulate` would. Learning policies
    ([`Percentile`][crucible_hedging.Percentile], [`Adaptive`][crucible_hedging.Adaptive]) learn
    across the ensemble's predictions; `budget=` caps backups at a share of them (the ensemble's
    `hedger.report()` shows the rates).

    With `min_responses=k`, k hedged requests run at once: request `j` starts with member `j` and
    takes its backups from members `j + k`, `j + 2k`, ...

    Examples:
        >>> from crucible_hedging import Percentile
        >>> Hedged(policy=Percentile(p=95), budget=0.1).name
        'hedged'
    """

    delay: float | None = attrs.field(default=None, validator=_positive)
    """Seconds to wait for an answer before each backup: short for `policy=Fixed(delay)`."""
    policy: Policy | None = attrs.field(default=None, validator=_policy)
    """When to fire backups (default `Fixed(delay=1.0)`)."""
    max_hedges: int | None = attrs.field(default=None, validator=_optional_count)
    """How many backups at most (`None`: every other member)."""
    budget: HedgeBudget | float | None = attrs.field(default=None, validator=_budget)
    """Backups per prediction at most, as a share (`0.05`) or a crucible-hedging `HedgeBudget` (share
    one between ensembles to bound their combined extra load); `None`: no cap."""
    throttle: Throttle | None = attrs.field(default=None, validator=_throttle)
    """A crucible-hedging `Throttle` that stops backups while calls keep failing."""

    def __attrs_post_init__(self) -> None:
        if self.delay is not None and self.policy is not None:
            raise EnsembleConfigurationError(
                "give `delay=` (a fixed delay) or `policy=`, not both",
                delay=self.delay,
                policy=self.policy,
            )

    @property
    def name(self) -> str:
        """`"hedged"`."""
        return "hedged"

    def hedge_policy(self) -> Policy:
        """The policy to hedge with: `policy`, or `Fixed(delay)` (1 s when neither is given)."""
        if self.policy is not None:
            return self.policy
        return Fixed(delay=1.0 if self.delay is None else self.delay)


@attrs.define(frozen=True, kw_only=True)
class Cascade:
    """Cheapest member first; escalate while the members called so far do not agree enough.

    It stops once at least `min_agreeing` answers agree on the leading answer and the voting
    strategy's confidence reaches `threshold` (for a majority: the leader's share of the votes), or
    once one member reports its own confidence of at least `confidence` (when given).
    """

    order: Literal["cost", "given"] = attrs.field(
        default="cost", validator=attrs.validators.in_(("cost", "given"))
    )
    """`"cost"`: cheapest first (by the simulated price, or the pricing table; unknown prices
    last, in the given order); `"given"`: the order of `models`."""
    min_agreeing: int = attrs.field(default=2, validator=_count)
    """Answers that must agree on the leader before stopping."""
    threshold: float = attrs.field(default=0.6, validator=_share)
    """The least strategy confidence (a majority's vote share) to stop at."""
    confidence: float | None = attrs.field(default=None, validator=_share)
    """Stop as soon as one member reports at least this confidence in its answer."""

    @property
    def name(self) -> str:
        """`"cascade"`."""
        return "cascade"


Execution: TypeAlias = Parallel | Sequential | Hedged | Cascade
"""Any execution strategy."""

_BY_NAME: dict[str, Execution] = {
    "parallel": Parallel(),
    "sequential": Sequential(),
    "hedged": Hedged(),
    "cascade": Cascade(),
}


def resolve_execution(execution: ExecutionName | Execution) -> Execution:
    """The execution object for a name or an execution object.

    Raises:
        EnsembleConfigurationError: for anything else.
    """
    if isinstance(execution, Parallel | Sequential | Hedged | Cascade):
        return execution
    name: object = execution
    if isinstance(name, str) and name in _BY_NAME:
        return _BY_NAME[name]
    raise EnsembleConfigurationError(
        f"unknown execution {execution!r}; use one of {tuple(_BY_NAME)} or an object such as "
        "`Hedged(delay=0.5)` or `Cascade(threshold=0.7)`",
        execution=execution,
    )

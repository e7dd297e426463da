"""Hedge budgets (Finagle's `maxExtraLoad`) and a gRPC-style throttle."""

from __future__ import annotations

import math
from typing import Any

import attrs

from crucible_hedging.exceptions import InvalidHedgingConfigError

__all__ = ("HedgeBudget", "Throttle")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidHedgingConfigError(
            f"`{attribute.name}` must be a positive finite number, got {value!r}",
            **{attribute.name: value},
        )


def _ratio(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= 1
    ):
        raise InvalidHedgingConfigError(
            f"`{attribute.name}` must be a fraction in (0, 1] (0.05: at most 5% extra requests), "
            f"got {value!r}",
            **{attribute.name: value},
        )


@attrs.define(kw_only=True)
class HedgeBudget:
    """At most `ratio` extra attempts per request, as a token bucket filled by requests.

    Every request deposits `ratio` tokens, every backup attempt spends one, and the bucket holds at
    most `burst` tokens (it starts full). So over ANY run of `k` consecutive requests, at most
    `burst + ratio * k` backups are sent: the hedge rate never exceeds `ratio` by more than a
    burst, however the latencies behave. This is Finagle's `maxExtraLoad`. Share one budget
    between hedgers to bound their combined extra load.

    Examples:
        >>> budget = HedgeBudget(ratio=0.5, burst=1)
        >>> budget.deposit(); budget.try_spend(), budget.try_spend()
        (True, False)
    """

    ratio: float = attrs.field(validator=_ratio)
    """Extra attempts allowed per request."""
    burst: float = attrs.field(default=5.0, validator=_positive)
    """The most tokens the bucket holds."""
    requests: int = attrs.field(init=False, default=0)
    """Requests that deposited."""
    spent: int = attrs.field(init=False, default=0)
    """Backup attempts allowed."""
    denied: int = attrs.field(init=False, default=0)
    """Backup attempts refused."""
    _tokens: float = attrs.field(init=False, default=0.0, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.burst < 1:
            raise InvalidHedgingConfigError(
                f"`burst` must be at least 1 (one backup costs one token), got {self.burst!r}",
                burst=self.burst,
            )
        self._tokens = float(self.burst)

    def deposit(self) -> None:
        """Credit one request's share of backups."""
        self.requests += 1
        self._tokens = min(self.burst, self._tokens + self.ratio)

    def try_spend(self) -> bool:
        """Take a token for one backup attempt if there is one."""
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            self.spent += 1
            return True
        self.denied += 1
        return False

    @property
    def available(self) -> float:
        """Tokens in the bucket."""
        return self._tokens


def _to_budget(value: HedgeBudget | float | None) -> HedgeBudget | None:
    """A ratio becomes a fresh `HedgeBudget(ratio=value)`; budgets and `None` pass through."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return HedgeBudget(ratio=value)
    return value  # type: ignore[return-value]  # validated by the controller


@attrs.define(kw_only=True)
class Throttle:
    """Stop hedging while attempts keep failing, so hedges never amplify an overload (gRPC's throttle).

    A token count starts at `max_tokens`; every failed attempt takes one away, every successful
    attempt adds `token_ratio` back (up to `max_tokens`). Backups are sent only while the count is
    above half of `max_tokens`: after about `max_tokens / 2` failures in a row hedging stops, and
    it resumes after enough successes. A 429 therefore never triggers a stream of backups.

    Examples:
        >>> throttle = Throttle(max_tokens=4, token_ratio=0.5)
        >>> for _ in range(2):
        ...     throttle.record(success=False)
        >>> throttle.allows()
        False
    """

    max_tokens: float = attrs.field(default=10.0, validator=_positive)
    """The token count when healthy."""
    token_ratio: float = attrs.field(default=0.1, validator=_positive)
    """Tokens restored by each successful attempt."""
    throttled: int = attrs.field(init=False, default=0)
    """Backups refused because of the throttle."""
    _tokens: float = attrs.field(init=False, default=0.0, repr=False)

    def __attrs_post_init__(self) -> None:
        self._tokens = float(self.max_tokens)

    def record(self, *, success: bool) -> None:
        """Count one finished attempt."""
        if success:
            self._tokens = min(self.max_tokens, self._tokens + self.token_ratio)
        else:
            self._tokens = max(0.0, self._tokens - 1.0)

    def allows(self) -> bool:
        """Whether a backup may be sent now."""
        return self._tokens > self.max_tokens / 2

    @property
    def tokens(self) -> float:
        """The current token count."""
        return self._tokens

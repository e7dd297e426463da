"""`HedgedModel`: any crucible-core `Model`, hedged."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Self

import attrs

from crucible_core.models import Completion, Model, Request, is_simulated
from crucible_hedging._budget import HedgeBudget, Throttle
from crucible_hedging._hedge import FatalPredicate, Hedger
from crucible_hedging._policy import Policy
from crucible_hedging._report import LEVELS, HedgingReport
from crucible_hedging.exceptions import InvalidHedgingConfigError

__all__ = ("HedgedModel",)


def _reported(completion: Completion) -> float:
    return completion.latency


class HedgedModel:
    """Wrap a crucible-core [`Model`][crucible_core.models.Model] so every `complete` is hedged.

    It is itself a `Model` (same `id` and `provider`), so it drops in wherever a model goes. The
    returned `Completion` is the winner's, with `latency` set to the hedged latency. Attempts are
    timed by the latency their completions report (or the time they took, if longer), so a
    `SimulatedModel` in virtual time, which answers at once, is hedged on its simulated latencies
    (see `latency=` of [`Hedger.request`][crucible_hedging.Hedger.request]). Backup
    attempts carry `metadata["hedge"] = i` (i = 1, 2, ...) unless `tag_backups=False`: real
    providers ignore it, and a `SimulatedModel` then draws the backup's latency (and answer)
    independently, as a fresh call to a real model would be.

    Args:
        model: the model to hedge.
        policy: when to send backups (default: the `hedging.policy` setting).
        key: maps a request to its workload class (e.g. a prompt-length bucket) for
            [`WorkloadAware`][crucible_hedging.WorkloadAware]; `None`: no class.
        max_hedges: the most backups per request.
        budget: a ratio, a [`HedgeBudget`][crucible_hedging.HedgeBudget], or `None` (no cap).
        throttle: a [`Throttle`][crucible_hedging.Throttle] or `None`.
        timeout: overall seconds per request.
        fatal: which errors fail at once.
        tag_backups: add `metadata["hedge"]` to backup requests.

    Examples:
        >>> from crucible_core.models import SimulatedModel
        >>> model = HedgedModel(SimulatedModel("gpt-4"), policy=Percentile(p=95), budget=0.05)
        >>> model.id
        'sim:gpt-4'
    """

    def __init__(
        self,
        model: Model,
        *,
        policy: Policy | None = None,
        key: Callable[[Request], Hashable] | None = None,
        max_hedges: int = 1,
        budget: HedgeBudget | float | None = None,
        throttle: Throttle | None = None,
        timeout: float | None = None,
        fatal: FatalPredicate | None = None,
        tag_backups: bool = True,
    ) -> None:
        if not isinstance(model, Model):
            raise InvalidHedgingConfigError(
                "`model` must be a crucible-core `Model` (with `id`, `provider`, `complete` and "
                f"`aclose`), got {type(model).__name__}",
                model=model,
            )
        if key is not None and not callable(key):
            raise InvalidHedgingConfigError(
                f"`key` must be a function of the request, got {key!r}", key=key
            )
        self.model: Model = model
        """The wrapped model."""
        self.hedger: Hedger = Hedger(
            policy=policy,
            max_hedges=max_hedges,
            budget=budget,
            throttle=throttle,
            timeout=timeout,
            fatal=fatal,
        )
        """The hedger holding the policy state and the statistics."""
        self._key = key
        self._tag = bool(tag_backups)

    @property
    def id(self) -> str:
        """The wrapped model's id."""
        return self.model.id

    @property
    def provider(self) -> str:
        """The wrapped model's provider."""
        return self.model.provider

    @property
    def simulated(self) -> bool:
        """Whether the wrapped model is simulated."""
        return is_simulated(self.model)

    def __repr__(self) -> str:
        return f"HedgedModel({self.model!r}, policy={self.hedger.policy!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the wrapped model."""
        await self.model.aclose()

    def report(self, *, levels: tuple[float, ...] = LEVELS) -> HedgingReport:
        """The hedger's statistics so far."""
        return self.hedger.report(levels=levels)

    async def complete(self, request: Request) -> Completion:
        """Complete `request`, sending backups by the policy; return the first success.

        The completion is the winner's, with the hedged `latency`, a `cost` covering every attempt
        sent (each charged the winner's cost), and `raw["hedge"]` holding the attempt counts.

        Raises:
            AllAttemptsFailedError: every attempt failed.
            HedgingTimeoutError: nothing answered within `timeout`.
            ProviderError: a fatal provider error (e.g. a 400), as the model raised it.
        """
        attempt = 0

        async def call() -> Completion:
            nonlocal attempt
            index = attempt
            attempt += 1
            sent = request
            if index and self._tag:
                sent = attrs.evolve(
                    request, metadata={**request.metadata, "hedge": index}
                )
            return await self.model.complete(sent)

        key = None if self._key is None else self._key(request)
        result = await self.hedger.request(call, key=key, latency=_reported)
        winner = result.value
        # Every attempt sent is billed: a provider charges a cancelled request's prompt and whatever
        # it generated before the cancel. Each attempt is charged the winner's cost, which is exact
        # for per-query pricing and an upper bound for a cancelled per-token request, so budgets
        # built on completion costs never undercount hedging.
        cost = None if winner.cost is None else winner.cost * result.attempts
        raw = {**winner.raw, "hedge": {"attempts": result.attempts, "hedges_fired": result.hedges_fired,
                                       "winner_index": result.winner_index, "cancelled": result.cancelled}}  # fmt: skip
        return attrs.evolve(
            winner, latency=result.latency_ms / 1000.0, cost=cost, raw=raw
        )

"""`evaluate_ensemble`: the ensemble and every member on the same items, for paired comparisons."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crucible_core._async import run_sync
from crucible_core.models import Request
from crucible_core.render import RenderMixin, Table, View
from crucible_ensemble._checks import is_count
from crucible_ensemble._ensemble import Ensemble
from crucible_ensemble._normalize import resolve_normalizer
from crucible_ensemble._results import EnsembleResult
from crucible_ensemble._voting import log_odds_weights
from crucible_ensemble.exceptions import (
    EnsembleConfigurationError,
    InsufficientResponsesError,
)

if TYPE_CHECKING:
    import polars

__all__ = (
    "ENSEMBLE",
    "EnsembleEvaluation",
    "ItemOutcome",
    "Scorer",
    "evaluate_ensemble",
    "evaluate_ensemble_async",
)

ENSEMBLE = "ensemble"
"""The `system` name of the ensemble's own outcomes in an [`EnsembleEvaluation`][crucible_ensemble.EnsembleEvaluation]."""

Scorer = Callable[[str | None, Request], bool]
"""Decides whether a normalized answer (`None`: no answer) is correct for a request."""

_REQUEST_KEYS = frozenset(
    {"prompt", "messages", "system", "reference", "kind", "choices", "metadata"}
)


@attrs.define(frozen=True, kw_only=True)
class ItemOutcome:
    """How one system (the ensemble or one member) did on one item."""

    item: str
    """The item's id (`metadata["id"]` of its request, else its index)."""
    system: str
    """`"ensemble"` or a member's name."""
    answer: str | None
    """The normalized answer; `None` when it abstained, failed or could not be read."""
    correct: bool
    """Whether the answer is right (no answer counts as wrong)."""
    cost: float | None = None
    """USD spent on this item by this system (`None`: unknown)."""
    latency: float | None = None
    """Seconds this system took on this item."""
    error: str | None = None
    """What went wrong, when it gave no answer because of an error."""


def _as_request(item: object, index: int) -> Request:
    if isinstance(item, Request):
        request = item
    elif isinstance(item, Mapping):
        unknown = set(item) - _REQUEST_KEYS - {"id"}
        if unknown:
            raise EnsembleConfigurationError(
                f"item {index} has keys {sorted(unknown)} that a `Request` does not take; give "
                f"items as `Request`s or dicts with keys from {sorted(_REQUEST_KEYS | {'id'})}",
                item=index,
            )
        fields = {k: v for k, v in item.items() if k != "id"}
        if "id" in item:
            fields["metadata"] = {**dict(fields.get("metadata", {})), "id": item["id"]}
        request = Request(**fields)
    elif callable(getattr(item, "to_request", None)):
        request = item.to_request()  # type: ignore[attr-defined]
    else:
        raise EnsembleConfigurationError(
            f"item {index} is a {type(item).__name__}; give `Request`s, dicts such as "
            "{'prompt': ..., 'reference': ...}, or objects with a `to_request()` method",
            item=index,
        )
    if request.reference is None:
        raise EnsembleConfigurationError(
            f"item {index} has no `reference`; evaluation needs the right answer",
            item=index,
        )
    return request


@attrs.define(frozen=True, kw_only=True)
class EnsembleEvaluation(RenderMixin):
    """Per-item outcomes of the ensemble and of every member on the same items.

    Use `correct(system)` for item-aligned boolean vectors to test the ensemble against a member
    (or the best member) with a paired test in crucible-bench.
    """

    items: tuple[str, ...]
    """Item ids, in the order given."""
    members: tuple[str, ...]
    """Member names, in ensemble order."""
    outcomes: tuple[ItemOutcome, ...]
    """One outcome per item and system (the ensemble first, then each member)."""

    @property
    def systems(self) -> tuple[str, ...]:
        """`"ensemble"` followed by the member names."""
        return (ENSEMBLE, *self.members)

    def correct(self, system: str = ENSEMBLE) -> list[bool]:
        """Whether `system` was right on each item, in item order.

        Raises:
            EnsembleConfigurationError: for an unknown system name.
        """
        if system not in self.systems:
            raise EnsembleConfigurationError(
                f"unknown system {system!r}; use one of {list(self.systems)}",
                system=system,
            )
        return [o.correct for o in self.outcomes if o.system == system]

    def accuracy(self) -> dict[str, float]:
        """Share of items each system got right, by system."""
        n = max(len(self.items), 1)
        return {s: sum(self.correct(s)) / n for s in self.systems}

    def cost(self) -> dict[str, float | None]:
        """Total USD per system (`None` if any of its costs is unknown)."""
        out: dict[str, float | None] = {}
        for s in self.systems:
            costs = [o.cost for o in self.outcomes if o.system == s]
            out[s] = (
                None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
            )
        return out

    def best_member(self) -> str:
        """The member with the highest accuracy (the first listed on ties)."""
        acc = self.accuracy()
        return max(self.members, key=lambda m: acc[m])

    def log_odds_weights(self) -> dict[str, float]:
        """Weights `log(p / (1 - p))` from each member's accuracy here, smoothed as `(k + 1) / (n + 2)`.

        Pass them as `weights=` to a `"weighted"` ensemble (on other items, to avoid overfitting).
        """
        n = len(self.items)
        return log_odds_weights(
            {m: (sum(self.correct(m)) + 1) / (n + 2) for m in self.members}
        )

    def _view(self) -> View:
        acc = self.accuracy()
        cost = self.cost()
        rows = [(s, acc[s], cost[s]) for s in self.systems]
        return View(
            title="Ensemble evaluation",
            facts=(("items", len(self.items)), ("best member", self.best_member())),
            tables=(Table(headers=("system", "accuracy", "cost (USD)"), rows=rows),),
        )

    def to_polars(self) -> polars.DataFrame:
        """Every outcome as a row (item, system, answer, correct, cost, latency, error)."""
        from crucible_core._optional import import_optional

        pl = import_optional("polars", extra="polars")
        return pl.DataFrame(  # type: ignore[no-any-return]
            [attrs.asdict(o) for o in self.outcomes]
        )


def _default_scorer(normalize: Any) -> Scorer:
    def score(answer: str | None, request: Request) -> bool:
        if answer is None or request.reference is None:
            return False
        normalizer = resolve_normalizer(normalize, request)
        expected = normalizer(request.reference)
        return answer == (expected if expected is not None else request.reference)

    return score


async def evaluate_ensemble_async(
    ensemble: Ensemble,
    items: Iterable[Request | Mapping[str, Any]],
    *,
    score: Scorer | None = None,
    max_concurrency: int = 16,
) -> EnsembleEvaluation:
    """Run the ensemble and every member on the same items and score each answer.

    Members the ensemble did not call on an item (sequential, cascade and hedged execution stop
    early) are called on their own, so every system answers every item. Answers are normalized
    as the ensemble normalizes them and compared with the normalized reference.

    Args:
        ensemble: the ensemble to evaluate.
        items: `Request`s with a `reference`, or dicts of `Request` fields (plus an optional `id`).
        score: decides correctness from `(answer, request)` (default: equals the reference).
        max_concurrency: items evaluated at once.

    Raises:
        EnsembleConfigurationError: for an item without a reference or of an unknown shape.
    """
    if not is_count(max_concurrency, minimum=1):
        raise EnsembleConfigurationError(
            f"`max_concurrency` must be a positive integer, got {max_concurrency!r}",
            max_concurrency=max_concurrency,
        )
    requests = [_as_request(item, i) for i, item in enumerate(items)]
    ids = [str(r.metadata.get("id", i)) for i, r in enumerate(requests)]
    scorer = score or _default_scorer(ensemble._normalize)
    gate = asyncio.Semaphore(max_concurrency)

    async def one(index: int, request: Request) -> list[ItemOutcome]:
        async with gate:
            item = ids[index]
            result: EnsembleResult | None
            failed: str | None = None
            try:
                result = await ensemble.predict_async(request)
            except InsufficientResponsesError as err:
                found = err.context.get("result")
                result = found if isinstance(found, EnsembleResult) else None
                failed = f"{type(err).__name__}: {err}"
            answer = None if result is None else result.answer
            out = [
                ItemOutcome(
                    item=item,
                    system=ENSEMBLE,
                    answer=answer if failed is None else None,
                    correct=failed is None and scorer(answer, request),
                    cost=None if result is None else result.cost,
                    latency=None if result is None else result.latency,
                    error=failed,
                )
            ]
            seen = {
                r.member: r
                for r in (result.responses if result is not None else ())
                if r.status in ("answered", "unparsed")
            }
            normalizer = resolve_normalizer(ensemble._normalize, request)
            for name, model in zip(ensemble.names, ensemble.models, strict=True):
                if name in seen:
                    r = seen[name]
                    member_answer, cost, latency, error = (
                        r.answer,
                        r.cost,
                        r.latency,
                        None,
                    )
                else:
                    try:
                        completion = await model.complete(request)
                    except Exception as err:  # a failed member is an unanswered item
                        member_answer, cost, latency = None, None, None
                        error = f"{type(err).__name__}: {err}"
                    else:
                        member_answer = normalizer(completion.text)
                        cost, latency, error = completion.cost, completion.latency, None
                out.append(
                    ItemOutcome(
                        item=item,
                        system=name,
                        answer=member_answer,
                        correct=scorer(member_answer, request),
                        cost=cost,
                        latency=latency,
                        error=error,
                    )
                )
            return out

    per_item = await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))
    outcomes = tuple(o for group in per_item for o in group)
    ordered = tuple(
        sorted(
            outcomes,
            key=lambda o: (o.system != ENSEMBLE, _rank(o.system, ensemble.names)),
        )
    )
    return EnsembleEvaluation(
        items=tuple(ids), members=ensemble.names, outcomes=ordered
    )


def _rank(system: str, names: Sequence[str]) -> int:
    return names.index(system) if system in names else -1


def evaluate_ensemble(
    ensemble: Ensemble,
    items: Iterable[Request | Mapping[str, Any]],
    *,
    score: Scorer | None = None,
    max_concurrency: int = 16,
) -> EnsembleEvaluation:
    """Run the ensemble and every member on the same items; the sync twin of `evaluate_ensemble_async`.

    Examples:
        >>> from crucible_core.models import Request, SimulatedModel
        >>> members = [SimulatedModel(p, seed=2, virtual_time=True)
        ...            for p in ("gpt-4", "claude-3", "gemini-pro")]
        >>> items = [Request(prompt=f"q{i}", reference="A", kind="choice", choices=("A", "B"))
        ...          for i in range(50)]
        >>> result = evaluate_ensemble(Ensemble(members), items)
        >>> sorted(result.accuracy())
        ['ensemble', 'sim:claude-3', 'sim:gemini-pro', 'sim:gpt-4']
    """
    return run_sync(
        evaluate_ensemble_async(
            ensemble, items, score=score, max_concurrency=max_concurrency
        )
    )

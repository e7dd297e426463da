"""Planning a run: the items it runs on, what each condition calls, what it will cost and take."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from crucible_core.render import RenderMixin, Table, View
from crucible_harness._experiment import (
    Condition,
    Experiment,
    HarnessItem,
    dataset_source,
    is_dataset,
)
from crucible_harness._store import task_key


def _sample(
    items: tuple[HarnessItem, ...],
    size: int | None,
    *,
    seed: int,
    stratify_by: str | None,
) -> tuple[HarnessItem, ...]:
    if size is None or size >= len(items):
        return items
    rng = random.Random(seed)
    if stratify_by is None:
        chosen = rng.sample(range(len(items)), size)
        return tuple(items[i] for i in sorted(chosen))
    groups: dict[Any, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.metadata.get(stratify_by), []).append(i)
    quotas = {k: size * len(v) / len(items) for k, v in groups.items()}
    take = {k: int(q) for k, q in quotas.items()}
    for k in sorted(quotas, key=lambda k: (quotas[k] - take[k], str(k)), reverse=True)[
        : size - sum(take.values())
    ]:
        take[k] += 1  # largest remainders
    chosen = [
        i for k in sorted(groups, key=str) for i in rng.sample(groups[k], take[k])
    ]
    return tuple(items[i] for i in sorted(chosen))


def resolve_items(
    experiment: Experiment,
) -> tuple[tuple[HarnessItem, ...], dict[str, Any]]:
    """The items the experiment runs on (sampled with its seed), and where they came from."""
    if isinstance(experiment.dataset, str):
        from crucible_harness._datasets import load_items

        items, source = load_items(experiment.dataset, **experiment.dataset_options())
    elif is_dataset(experiment.dataset):
        items, source = experiment.items, dataset_source(experiment.dataset)
    else:
        items, source = (
            experiment.items,
            {"name": "inline", "items": len(experiment.items)},
        )
    chosen = _sample(
        items,
        experiment.sample_size,
        seed=experiment.run.seed,
        stratify_by=experiment.stratify_by,
    )
    return chosen, source


# -- estimate ------------------------------------------------------------------------------------


@attrs.define(frozen=True, kw_only=True)
class Estimate(RenderMixin):
    """What a run will cost and take, before anything is sent."""

    tasks: int
    """Conditions × items × repeats still to run."""
    cost: Mapping[str, float | None]
    """Estimated dollars per condition (`None`: unknown, e.g. a custom callable)."""
    seconds: float | None
    """Estimated wall-clock seconds at the configured concurrency (`None`: unknown)."""
    within_budget: bool | None
    """Whether the known costs fit the budget (`None`: no budget, or costs unknown)."""

    @property
    def total_cost(self) -> float | None:
        """Sum of known costs (`None` when every condition's cost is unknown)."""
        known = [c for c in self.cost.values() if c is not None]
        return sum(known) if known else None

    def _view(self) -> View:
        return View(
            title=f"Estimate: {self.tasks} tasks",
            facts=[
                ("estimated cost (USD)", self.total_cost),
                ("estimated time (s)", self.seconds),
                ("within budget", self.within_budget),
            ],
            tables=[
                Table(headers=("condition", "cost_usd"), rows=list(self.cost.items()))
            ],
        )


def _price_per_task(
    condition: Condition,
    model: Any,
    item_chars: float,
    *,
    worst: bool = False,
    prompt: str | None = None,
) -> float | None:
    """One task's cost: an estimate, or (`worst=True`) the bound reserved before it starts.

    For an HTTP model the bound is the model's own worst case for the task's prompt (`prompt`,
    else one of `item_chars` characters): its price at `max_tokens` of output, which every
    request carries. `None` when the price is unknown.
    """
    if condition.cost_per_task is not None:
        return condition.cost_per_task
    fallback = condition.target if isinstance(condition.target, str) else None
    return _price_of(
        model, item_chars, fallback_id=fallback, worst=worst, prompt=prompt
    )


def _worst_case(model: Any, item_chars: float, prompt: str | None) -> float | None:
    """An HTTP model's own bound: its price at `max_tokens` output for this prompt (or one this long)."""
    from crucible_core.models import Request

    text = prompt if prompt is not None else "x" * max(1, math.ceil(item_chars))
    value = model.worst_case_cost(Request(prompt=text or " "))
    return None if value is None else float(value)


def _price_of(
    model: Any,
    item_chars: float,
    *,
    fallback_id: str | None = None,
    worst: bool = False,
    prompt: str | None = None,
) -> float | None:
    profile = getattr(model, "profile", None)
    if profile is not None and getattr(profile, "price_per_query", None) is not None:
        return float(profile.price_per_query)
    inner, hedger = getattr(model, "model", None), getattr(model, "hedger", None)
    if (
        inner is not None and hedger is not None
    ):  # a HedgedModel: every attempt is billed
        one = _price_of(inner, item_chars, worst=worst, prompt=prompt)
        return (
            None if one is None else one * (1 + int(getattr(hedger, "max_hedges", 1)))
        )
    members = getattr(model, "models", None)
    if (
        isinstance(members, tuple) and members
    ):  # an Ensemble: every member may be called
        prices = [_price_of(m, item_chars, worst=worst, prompt=prompt) for m in members]
        return (
            None
            if any(p is None for p in prices)
            else float(sum(p for p in prices if p is not None))
        )
    if callable(getattr(model, "worst_case_cost", None)):  # an HTTP model
        if (
            worst
        ):  # its own bound (every request carries a `max_tokens`); None if unpriced
            return _worst_case(model, item_chars, prompt)
        price = (
            model.price_info()
        )  # `price=` or the table: an estimate of a typical answer
        if price is None:
            return None
        from crucible_core.models import Usage

        usage = Usage(
            input_tokens=int(item_chars / 4) + 16,
            output_tokens=min(512, model.max_tokens),
        )
        return float(price.cost(usage))
    upper = getattr(model, "max_cost_per_request", None)
    if callable(upper):
        try:
            return float(upper())
        except Exception:  # an estimate is best effort
            return None
    model_id = getattr(model, "id", None) or fallback_id
    if model_id:
        try:
            from crucible_core.models import Usage, cost

            value = cost(
                str(model_id).split(":", 1)[-1],
                Usage(input_tokens=int(item_chars / 4) + 16, output_tokens=512),
            )
        except Exception:  # unknown model: no estimate
            return None
        return None if value is None else float(value)
    return None


def _latency_p50(model: Any) -> float | None:
    profile = getattr(model, "profile", None)
    latency = getattr(profile, "latency", None)
    quantile = getattr(latency, "quantile", None)
    if callable(quantile):
        return float(quantile(0.5))
    return None


def build_target(condition: Condition, seed: int) -> Any:
    """What a condition calls: its model string built (a `sim:` model seeded by the run), else its target."""
    if not isinstance(condition.target, str):
        return condition.target
    from crucible_core.models import build_model

    options: dict[str, Any] = (
        {"seed": seed} if condition.target.startswith("sim:") else {}
    )
    return build_model(condition.target, **options)


def _build_targets(experiment: Experiment, *, keyless: bool = False) -> dict[str, Any]:
    """The condition targets as models.

    `keyless`: a model string whose provider has no key yet stays a string, priced from its name
    (estimating sends nothing, so it needs no key).
    """
    from crucible_core.exceptions import ConfigurationError
    from crucible_core.models import build_model

    out: dict[str, Any] = {}
    for c in experiment.conditions:
        if isinstance(c.target, str):
            options: dict[str, Any] = (
                {"seed": experiment.run.seed} if c.target.startswith("sim:") else {}
            )
            try:
                out[c.name] = build_model(c.target, **options)
            except ConfigurationError as err:
                if not (keyless and "key" in str(err).lower()):
                    raise
                out[c.name] = c.target
        else:
            out[c.name] = c.target
    return out


def _estimate(
    experiment: Experiment,
    items: Sequence[HarnessItem],
    targets: Mapping[str, Any],
    done: set[str],
) -> Estimate:
    chars = sum(len(str(i.input)) for i in items) / max(1, len(items))
    cost: dict[str, float | None] = {}
    latencies = []
    remaining = 0
    for c in experiment.conditions:
        todo = sum(
            1
            for i in items
            for r in range(experiment.repeats)
            if task_key(c.name, i.id, r) not in done
        )
        remaining += todo
        per = _price_per_task(c, targets[c.name], chars)
        cost[c.name] = None if per is None else per * todo
        p50 = _latency_p50(targets[c.name])
        if p50 is not None:
            latencies.append(p50 * todo)
    seconds = (
        sum(latencies) / experiment.run.max_concurrency
        if len(latencies) == len(experiment.conditions)
        else None
    )
    within: bool | None = None
    b = experiment.budget
    known = [v for v in cost.values() if v is not None]
    if (b.max_total is not None or b.max_per_condition is not None) and len(
        known
    ) == len(cost):
        within = (b.max_total is None or sum(known) <= b.max_total) and (
            b.max_per_condition is None or all(v <= b.max_per_condition for v in known)
        )
    return Estimate(tasks=remaining, cost=cost, seconds=seconds, within_budget=within)


def estimate(experiment: Experiment) -> Estimate:
    """Estimate cost (from prices and token estimates) and time (from latency profiles) of a run.

    Nothing is sent, so no API key is needed: a model string whose key is not set yet is priced
    from its name.
    """
    items, _ = resolve_items(experiment)
    return _estimate(experiment, items, _build_targets(experiment, keyless=True), set())


# -- results -------------------------------------------------------------------------------------

"""Running an experiment: estimate, execute durably within the budget, resume, analyse, report."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import math
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from crucible_core import context, events
from crucible_core._async import run_sync
from crucible_core.exceptions import ProviderTimeoutError
from crucible_core.ids import new_id
from crucible_core.render import RenderMixin, Table, View
from crucible_core.retry import is_transient, retry
from crucible_harness._budget import BudgetGuard
from crucible_harness._experiment import (
    Condition,
    ConditionOutput,
    Experiment,
    HarnessItem,
    TaskContext,
    dataset_source,
    is_dataset,
    references_of,
    task_seed,
)
from crucible_harness._scoring import Scorer, answer_kind, resolve_scorer
from crucible_harness._sequential import SequentialMonitor
from crucible_harness._store import RunStore, dropped_spend, task_key
from crucible_harness.exceptions import (
    BudgetStopError,
    ExperimentDefinitionError,
    RunDirectoryError,
    RunWriteError,
)

__all__ = (
    "Estimate",
    "RunResult",
    "estimate",
    "load_run",
    "resume",
    "resume_async",
    "run",
    "run_async",
)

RunStatus = Literal[
    "complete",
    "stopped",
    "budget",
    "interrupted",
    "failed",
    "running",
    "dry-run",
    "declined",
]

# -- items ---------------------------------------------------------------------------------------


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


@attrs.define(frozen=True, kw_only=True)
class RunResult(RenderMixin):
    """A finished (or stopped) run: where it is, how it ended, every task record, the analysis."""

    run_id: str
    """The run's id."""
    run_dir: Path
    """The run directory (resume from it)."""
    status: RunStatus
    """`complete`, `budget` (stopped before crossing it), `interrupted`, `failed`, `dry-run`, `declined`."""
    records: tuple[Mapping[str, Any], ...] = attrs.field(repr=False)
    """Every recorded task."""
    estimate: Estimate | None = None
    """The estimate made before running."""
    spent: float = 0.0
    """Dollars spent, all runs of this directory."""
    pending: int = 0
    """Tasks not run (budget stop, interruption)."""
    analysis: Any = attrs.field(default=None, repr=False)
    """The [`Analysis`][crucible_harness.Analysis] of the records (`None` for a dry run)."""
    reports: Mapping[str, Path] = attrs.field(factory=dict)
    """Report files written, by format."""
    reason: str | None = None
    """Why the run stopped, when it did not finish."""
    sequential: Any = attrs.field(default=None, repr=False)
    """The [`SequentialStop`][crucible_harness.SequentialStop] of a sequential run (`None` otherwise)."""

    def _view(self) -> View:
        facts: list[tuple[str, object]] = [("run", self.run_id), ("status", self.status), ("tasks recorded", len(self.records)),
                                           ("pending", self.pending), ("spent (USD)", self.spent), ("directory", str(self.run_dir)),
                                           *([("reason", self.reason)] if self.reason else [])]  # fmt: skip
        view = View(title=f"Run {self.run_id}", facts=facts)
        if self.analysis is not None:
            inner = self.analysis._view()
            tables, notes = list(inner.tables), list(inner.notes)
            if (
                self.sequential is not None
            ):  # the anytime-valid view first, then the fixed-n one
                seq = self.sequential._view()
                tables, notes = [*seq.tables, *tables], [*seq.notes, *notes]
            return View(title=view.title, facts=facts, tables=tables, notes=notes)
        return view


# -- execution -----------------------------------------------------------------------------------


def _output(value: Any) -> ConditionOutput:
    if isinstance(value, ConditionOutput):
        return value
    text = getattr(value, "text", None)
    if text is not None and hasattr(value, "usage"):  # a Completion
        usage = value.usage
        return ConditionOutput(
            prediction=text,
            cost=None if value.cost is None else float(value.cost),
            latency=getattr(value, "latency", None),
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            metadata={
                "model": getattr(value, "model", ""),
                "attempts": getattr(value, "attempts", 1),
            },
        )
    answer = getattr(value, "answer", None)
    if answer is not None and hasattr(value, "consensus"):  # an ensemble result
        spent = getattr(value, "cost", None)
        return ConditionOutput(prediction=answer, cost=None if spent is None else float(spent),
                               latency=getattr(value, "latency", None), metadata={"consensus": value.consensus})  # fmt: skip
    return ConditionOutput(prediction=value)


def _kind_for(item: HarnessItem, scorer: Scorer) -> str:
    kind = item.metadata.get("kind")
    return (
        str(kind)
        if kind in ("choice", "number", "code", "text")
        else answer_kind(scorer)
    )


def _reference(item: HarnessItem) -> str | None:
    ref = item.metadata.get("reference", item.expected)
    return None if ref is None else str(ref)


async def _call(
    condition: Condition,
    target: Any,
    item: HarnessItem,
    ctx: TaskContext,
    scorer: Scorer,
) -> ConditionOutput:
    if condition.kind == "callable":
        value = target(item, ctx)
        if inspect.isawaitable(value):
            value = await value
        return _output(value)
    from crucible_core.models import Request

    request = Request(prompt=_prompt(item), reference=_reference(item), kind=_kind_for(item, scorer),  # type: ignore[arg-type]
                      metadata={"item": item.id, "repeat": ctx.repeat})  # fmt: skip
    return _output(await target.complete(request))


def _prompt(item: HarnessItem) -> str:
    return item.input if isinstance(item.input, str) else str(item.input)


def _owns_retries(condition: Condition, target: Any) -> bool:
    """Whether the target retries its own requests (an HTTP model with a retry policy).

    The harness then makes one attempt per task: wrapping the model's retries in its own would
    multiply the requests one failing task sends (3 harness x 4 model attempts = 12).
    """
    return condition.kind != "callable" and getattr(target, "retry", None) is not None


def _wire_attempts(found: Any) -> int:
    """Requests one harness attempt sent: the model's own count.

    On a completion it is kept in the output's metadata; on an error it is `attempt`, the
    attempt that failed last.
    """
    if isinstance(found, Mapping):
        values = [found.get("attempts")]
    else:
        values = [getattr(found, "attempts", None), getattr(found, "attempt", None)]
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return 1


def _error_cost(error: BaseException, *, unpriced: bool) -> float | None:
    """A failed task's cost: what the error says, else $0 for a priced target, unknown otherwise.

    A request the provider refused is not billed; for a model without a price nothing is known.
    """
    found = getattr(error, "cost", None)
    if isinstance(found, int | float) and not isinstance(found, bool):
        return float(found)
    return None if unpriced else 0.0


def _transient(error: BaseException) -> bool:
    return isinstance(error, TimeoutError) or is_transient(error)


class _Progress:
    """A live progress display (rich) on stderr: tasks, throughput, errors, spend and ETA.

    Refreshed at most four times a second from its own timer, so ticking costs next to nothing.
    Off in quiet mode; on a stream that is not a terminal rich prints the final state only.
    """

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total, self.done, self.errors, self.spent = total, 0, 0, 0.0
        self._bar: Any = None
        self._task: Any = None
        if not enabled or total == 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]tasks"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f}/s  errors {task.fields[errors]}  ${task.fields[spent]:.4f}"),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), refresh_per_second=4, transient=False,
        )  # fmt: skip
        self._task = self._bar.add_task(
            "run", total=total, rate=0.0, errors=0, spent=0.0
        )
        self._start = time.monotonic()
        self._bar.start()

    def tick(self, spent: float, *, error: bool) -> None:
        self.done += 1
        self.errors += error
        self.spent = spent
        if self._bar is not None:
            rate = self.done / max(time.monotonic() - self._start, 1e-9)
            self._bar.update(
                self._task,
                completed=self.done,
                rate=rate,
                errors=self.errors,
                spent=spent,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


async def _execute(
    experiment: Experiment,
    items: Sequence[HarnessItem],
    targets: Mapping[str, Any],
    store: RunStore,
    scorer: Scorer,
    run_id: str,
    *,
    progress: bool,
    monitor: SequentialMonitor | None = None,
) -> BudgetGuard:
    done = store.completed_keys()
    # paid for even when `crucible repair` dropped them from the log
    spent: dict[str, float] = {
        k: v for k, v in dropped_spend(store.manifest).items() if k in {c.name for c in experiment.conditions}
    }  # fmt: skip
    for r in store.records:
        spent[r["condition"]] = spent.get(r["condition"], 0.0) + float(
            r.get("cost") or 0.0
        )
    guard = BudgetGuard(
        experiment.budget, [c.name for c in experiment.conditions], spent=spent
    )
    for r in store.records:  # a resumed run reserves what its tasks were seen to cost
        guard.largest[r["condition"]] = max(
            guard.largest[r["condition"]], float(r.get("cost") or 0.0)
        )
    queue: deque[tuple[Condition, HarnessItem, int]] = deque(
        (c, item, r) for r in range(experiment.repeats) for item in items for c in experiment.conditions
        if task_key(c.name, item.id, r) not in done
    )  # fmt: skip
    if (
        monitor is not None
    ):  # seeded random item order, every condition × repeat of an item together
        by_id = {i.id: i for i in items}
        queue = deque(
            (c, by_id[i], r) for i in monitor.schedule() for r in range(experiment.repeats)
            for c in experiment.conditions if task_key(c.name, i, r) not in done
        )  # fmt: skip
        for r in store.records:  # a resumed run: what is recorded counts first
            monitor.observe(r)
        if monitor.fired:
            queue.clear()
    cfg = experiment.run
    buckets: dict[str, Any] = {}
    if cfg.rate_limit is not None:
        from crucible_core.ratelimit import TokenBucket

        for c in experiment.conditions:
            provider = str(getattr(targets[c.name], "provider", c.name))
            buckets.setdefault(provider, TokenBucket(rate=cfg.rate_limit))
    # reservations are upper bounds: the longest prompt, and each model's worst case
    chars = max((len(str(i.input)) for i in items), default=0)
    prices = {
        c.name: _price_per_task(c, targets[c.name], chars, worst=True)
        for c in experiment.conditions
    }
    policy = retry(
        on=_transient,
        attempts=cfg.retries + 1,
        timeout=None,
        wait_initial=0.2,
        wait_max=10.0,
    )
    # attempts after the first (which runs outside any retry loop, see `one`)
    retry_rest = retry(
        on=_transient,
        attempts=max(cfg.retries, 1),
        timeout=None,
        wait_initial=0.4,
        wait_max=10.0,
    )
    bar = _Progress(len(queue), enabled=progress)
    # Tasks carry the run id; inside a crucible-telemetry experiment they keep that experiment's id
    # (so telemetry captures them), otherwise the run is the experiment.
    attribution: dict[str, Any] = {"run_id": run_id}
    if context.current().experiment_id is None:
        attribution.update(experiment_id=run_id, experiment_name=experiment.name)

    async def one(
        c: Condition, item: HarnessItem, repeat: int, reserved: float
    ) -> None:
        seed = task_seed(cfg.seed, c.name, item.id, repeat)
        ctx = TaskContext(
            experiment=experiment.name,
            run_id=run_id,
            condition=c.name,
            repeat=repeat,
            seed=seed,
            timeout=cfg.timeout,
        )
        target = targets[c.name]
        own_retries = _owns_retries(c, target)
        started = dt.datetime.now(dt.UTC)
        wall = time.perf_counter()
        attempts = 0
        record: dict[str, Any] = {
            "key": task_key(c.name, item.id, repeat),
            "condition": c.name,
            "item": item.id,
            "repeat": repeat,
            "seed": seed,
        }
        with context.use(**attribution, condition=c.name, repeat=repeat, item=item.id):
            events.emit(
                events.HARNESS_TASK_START,
                {"system_time": time.time()},
                {"condition": c.name, "item": item.id, "repeat": repeat},
            )
            try:
                bucket = buckets.get(str(getattr(target, "provider", c.name)))

                async def attempt_once() -> ConditionOutput:
                    nonlocal attempts
                    if bucket is not None:
                        await bucket.acquire()
                    try:
                        async with asyncio.timeout(cfg.timeout):
                            found = await _call(c, target, item, ctx, scorer)
                    except TimeoutError as err:
                        attempts += _wire_attempts(err)
                        raise ProviderTimeoutError(
                            f"task took longer than {cfg.timeout} s",
                            timeout=cfg.timeout,
                        ) from err
                    except Exception as err:
                        attempts += _wire_attempts(err)
                        raise
                    attempts += _wire_attempts(found.metadata)
                    return found

                try:  # the first attempt runs without the retry machinery: most tasks need no retry
                    out = await attempt_once()
                except Exception as first:
                    if cfg.retries == 0 or own_retries or not _transient(first):
                        raise
                    await asyncio.sleep(policy.wait(1, first))
                    async for attempt in retry_rest.context():
                        with attempt:
                            out = await attempt_once()
                if scorer.blocking:
                    correct, score = await asyncio.to_thread(
                        scorer, item, out.prediction
                    )
                else:
                    correct, score = scorer(item, out.prediction)
                record.update(
                    status="ok", prediction=out.prediction, correct=correct, score=score,
                    latency=out.latency if out.latency is not None else time.perf_counter() - wall,
                    cost=out.cost, input_tokens=out.input_tokens, output_tokens=out.output_tokens,
                    metadata=dict(out.metadata), error_type=None, error=None,
                )  # fmt: skip
            except (
                Exception
            ) as err:  # recorded with its error; never dropped from the denominator
                record.update(status="error", prediction=None, correct=False if item.expected is not None else None, score=None,
                              latency=time.perf_counter() - wall, cost=_error_cost(err, unpriced=prices[c.name] is None and c.kind != "callable"),
                              input_tokens=0, output_tokens=0, metadata={},
                              error_type=type(err).__name__, error=str(err)[:2000])  # fmt: skip
            record.update(attempts=attempts, wall_time=time.perf_counter() - wall, started_at=started.isoformat(),
                          finished_at=dt.datetime.now(dt.UTC).isoformat())  # fmt: skip
            name = (
                events.HARNESS_TASK_STOP
                if record["status"] == "ok"
                else events.HARNESS_TASK_EXCEPTION
            )
            measured = {"duration": record["wall_time"]}
            if record["cost"] is not None:
                measured["cost"] = float(record["cost"])
            events.emit(name, measured,
                        {"correct": record["correct"], "error_type": record["error_type"]})  # fmt: skip
        guard.settle(c.name, reserved, float(record["cost"] or 0.0))
        record = store.add(record)
        bar.tick(guard.total_spent, error=record["status"] != "ok")
        if monitor is not None and monitor.observe(record):
            queue.clear()  # the comparisons are settled: send nothing more

    async def worker() -> None:
        while queue:
            if (
                store.failure is not None
            ):  # the logs cannot be written: send nothing more
                queue.clear()
                return
            c, item, repeat = queue.popleft()
            price = prices[c.name]
            if price is not None and c.cost_per_task is None:
                price = _price_per_task(
                    c, targets[c.name], chars, worst=True, prompt=_prompt(item)
                )
            reserve = max(price if price is not None else 0.0, guard.largest[c.name])
            if not guard.try_reserve(
                c.name, reserve
            ):  # the task stays pending (resumable)
                if guard.stopped_total:
                    queue.clear()
                continue
            await one(c, item, repeat, reserve)

    try:
        await asyncio.gather(
            *(worker() for _ in range(min(cfg.max_concurrency, max(1, len(queue)))))
        )
    finally:
        bar.close()
    if guard.halted:
        events.emit(events.HARNESS_BUDGET_EXCEEDED, {"spent": guard.total_spent, "limit": experiment.budget.max_total or 0.0},
                    {"stopped_conditions": sorted(guard.stopped)})  # fmt: skip
    return guard


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for dist in ("crucible-core", "crucible-harness", "crucible-bench", "crucible-datasets", "crucible-ensemble",
                 "crucible-hedging", "numpy", "scipy"):  # fmt: skip
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _git_commit(start: Path) -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=start,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


async def run_async(
    experiment: Experiment,
    *,
    output_dir: str | Path | None = None,
    resume: str | Path | None = None,
    formats: Sequence[str] = ("markdown", "html", "json"),
    dry_run: bool = False,
    confirm: Callable[[Estimate], bool] | None = None,
    progress: bool = False,
    on_budget: Literal["stop", "raise"] = "stop",
    budget_unpriced: Literal["refuse", "allow"] = "refuse",
) -> RunResult:
    """Run an experiment (the coroutine twin of [`run`][crucible_harness.run]).

    With a budget, every condition's worst-case cost per task must be known before anything is
    sent; a condition whose model has no price makes the run refuse to start
    (`ExperimentDefinitionError` naming it and how to price it) unless `budget_unpriced="allow"`
    accepts that its spending is unknown and not counted against the budget.

    `output_dir` defaults to the `results_dir` setting: `CRUCIBLE_RESULTS_DIR`, else
    `results_dir` in the project's `crucible.toml` or `[tool.crucible]`, else `./runs`.
    """
    if budget_unpriced not in ("refuse", "allow"):
        raise ExperimentDefinitionError(
            f"budget_unpriced must be 'refuse' or 'allow', got {budget_unpriced!r}",
            field="budget_unpriced",
        )
    if output_dir is None:
        from crucible_core.settings import load_settings

        output_dir = Path(load_settings()["results_dir"])
    if not isinstance(experiment, Experiment):
        raise ExperimentDefinitionError(
            f"run() needs an Experiment, got {type(experiment).__name__}",
            field="experiment",
        )
    _check_formats(formats)
    items, source = resolve_items(experiment)
    if not items:
        raise ExperimentDefinitionError(
            "the dataset resolved to no items", field="dataset"
        )
    scorer = resolve_scorer(
        experiment.scorer,
        dataset=experiment.dataset if isinstance(experiment.dataset, str) else None,
        items=items,
    )
    targets = _build_targets(experiment)
    options = _Options(formats=formats, dry_run=dry_run, confirm=confirm, progress=progress, on_budget=on_budget)  # fmt: skip
    try:
        if not dry_run and budget_unpriced == "refuse":
            _refuse_unpriced(experiment, items, targets)
        return await _run_session(
            experiment, items, source, scorer, targets, options, output_dir=output_dir, resume=resume
        )  # fmt: skip
    finally:
        await _close(targets, experiment)


def _refuse_unpriced(
    experiment: Experiment, items: Sequence[HarnessItem], targets: Mapping[str, Any]
) -> None:
    """Refuse a budgeted run with a condition whose worst-case cost per task is unknown."""
    budget = experiment.budget
    if budget.max_total is None and budget.max_per_condition is None:
        return
    chars = sum(len(_prompt(i)) for i in items) / max(1, len(items))
    for c in experiment.conditions:
        if c.kind == "callable" and c.cost_per_task is None:
            continue  # a function's cost is what it reports; it sends no model request itself
        if _price_per_task(c, targets[c.name], chars, worst=True) is not None:
            continue
        target = targets[c.name]
        model = getattr(target, "id", None) or (
            c.target if isinstance(c.target, str) else type(target).__name__
        )
        raise ExperimentDefinitionError(
            f"condition {c.name!r} uses model {model!r}, which has no known price, and the run has a "
            "budget: crucible cannot reserve its worst case before sending, so the budget could be "
            "exceeded. Give it a price (build the model with `price=Price(input=..., output=...)` "
            "in dollars per million tokens, or `?price_input=...&price_output=...` on the model "
            "string, or add a `crucible_core.models.PRICES` entry), set the condition's "
            "`cost_per_task=`, or pass `budget_unpriced=\"allow\"` to run() to accept that its "
            "spending is unknown and not counted against the budget",
            field="budget",
            condition=c.name,
            model=model,
        )  # fmt: skip


@attrs.frozen(kw_only=True)
class _Options:
    """How one session runs (the options of `run_async` past the run directory)."""

    formats: Sequence[str]
    dry_run: bool
    confirm: Callable[[Estimate], bool] | None
    progress: bool
    on_budget: Literal["stop", "raise"]


async def _run_session(
    experiment: Experiment,
    items: tuple[HarnessItem, ...],
    source: Mapping[str, Any],
    scorer: Scorer,
    targets: Mapping[str, Any],
    options: _Options,
    *,
    output_dir: str | Path,
    resume: str | Path | None,
) -> RunResult:
    fingerprint = experiment.fingerprint()
    if resume is not None:
        store = RunStore.open(
            Path(resume),
            fingerprint=fingerprint,
            repair=not options.dry_run,
            lock=not options.dry_run,
        )
        run_id = str(store.manifest["run_id"])
        if store.manifest.get("items") != [i.id for i in items]:
            store.release()
            raise RunDirectoryError(
                f"{resume}: the resolved items differ from the run's (dataset revision changed?)",
                path=str(resume),
            )
    else:
        run_id = new_id("run")
        manifest = {
            "run_id": run_id,
            "fingerprint": fingerprint,
            "experiment": experiment.describe(),
            "items": [i.id for i in items],
            "references": references_of(items),
            "dataset": source,
            "scorer": scorer.name,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "versions": _versions(),
            "git_commit": _git_commit(Path.cwd()),
        }
        store = (
            RunStore(Path(output_dir) / f"{experiment.name}-{run_id}", manifest, [])
            if options.dry_run
            else RunStore.create(
                Path(output_dir) / f"{experiment.name}-{run_id}", manifest
            )
        )
    try:
        return await _run_locked(
            experiment, items, scorer, targets, store, run_id, options
        )
    finally:
        store.release()


def _total(experiment: Experiment, store: RunStore) -> int:
    return (
        len(experiment.conditions) * len(store.manifest["items"]) * experiment.repeats
    )


def _status_record(
    store: RunStore, status: str, total: int, **extra: Any
) -> dict[str, Any]:
    import os
    import socket

    recorded = len(store.records) - store.unwritten
    return {
        "status": status, "recorded": recorded, "pending": max(0, total - recorded),
        "spent": sum(float(r.get("cost") or 0.0) for r in store.records),
        "updated_at": dt.datetime.now(dt.UTC).isoformat(), "pid": os.getpid(), "host": socket.gethostname(),
        **extra,
    }  # fmt: skip


async def _run_locked(
    experiment: Experiment,
    items: tuple[HarnessItem, ...],
    scorer: Scorer,
    targets: Mapping[str, Any],
    store: RunStore,
    run_id: str,
    options: _Options,
) -> RunResult:
    est = _estimate(experiment, items, targets, store.completed_keys())
    if options.dry_run:
        return RunResult(
            run_id=run_id,
            run_dir=store.path,
            status="dry-run",
            records=(),
            estimate=est,
        )
    if options.confirm is not None and not options.confirm(est):
        return RunResult(
            run_id=run_id,
            run_dir=store.path,
            status="declined",
            records=tuple(store.records),
            estimate=est,
        )
    total = _total(experiment, store)
    # written first: it reserves the space a failure status needs on a disk that fills up
    store.write_status(_status_record(store, "running", total), in_place=False)
    status: RunStatus = "complete"
    reason: str | None = None
    started = time.perf_counter()
    settings = experiment.analysis.sequential
    monitor = (
        None
        if settings is None
        else SequentialMonitor(
            settings, experiment.analysis, [c.name for c in experiment.conditions], items,
            experiment.repeats, experiment.run.seed,
        )
    )  # fmt: skip

    def capture(
        name: tuple[str, ...],
        measurements: Mapping[str, float],
        metadata: Mapping[str, Any],
    ) -> None:
        ctx = context.current()
        if ctx.extra.get("run_id") == run_id or name[:3] == (
            "crucible",
            "harness",
            "run",
        ):
            # a tuple now, a JSON line in the next group write: emitters pass fresh mappings
            store.add_event(
                (name, time.time(), ctx.condition, ctx.item, ctx.repeat, measurements, metadata)
            )  # fmt: skip

    handler_id = f"crucible-harness-{run_id}-{id(store)}"
    events.attach(handler_id, [("crucible",)], capture)
    events.emit(
        events.HARNESS_RUN_START,
        {"tasks": est.tasks},
        {"experiment": experiment.name, "run_dir": str(store.path)},
    )
    store.start()
    try:
        guard = await _execute(
            experiment, items, targets, store, scorer, run_id, progress=options.progress,
            monitor=monitor,
        )  # fmt: skip
        if guard.halted:
            status = "budget"
        elif monitor is not None and monitor.fired:
            status, reason = "stopped", monitor.summary().reason
    except (asyncio.CancelledError, KeyboardInterrupt):
        status = "interrupted"
        raise
    except Exception as err:
        status, reason = "failed", f"{type(err).__name__}: {err}"
        raise
    finally:
        spent_total = sum(float(r.get("cost") or 0.0) for r in store.records)
        events.emit(events.HARNESS_RUN_STOP, {"duration": time.perf_counter() - started, "tasks": len(store.records), "cost": spent_total},
                    {"experiment": experiment.name, "status": status})  # fmt: skip
        events.detach(handler_id)
        await store.close()
        if store.failure is not None:
            status = "failed"
            reason = _write_failure_reason(store)
        extra = {} if reason is None else {"reason": reason}
        store.write_status(_status_record(store, status, total, **extra))
    if store.failure is not None:
        raise _write_error(store, total)
    result = _finish(experiment, store, status, est, options.formats, monitor=monitor)
    if status == "budget" and options.on_budget == "raise":
        raise BudgetStopError(
            f"the budget stopped the run after ${result.spent:.4f}; {result.pending} task(s) not run; "
            f"raise the budget and resume {str(store.path)!r}",
            spent=result.spent,
            limit=experiment.budget.max_total,
        )
    return result


def _write_failure_reason(store: RunStore) -> str:
    import os

    err = store.failure
    assert err is not None
    text = os.strerror(err.errno) if err.errno else str(err)
    return (
        f"the run's logs could not be written ({text}, errno {err.errno}); new tasks were "
        f"stopped, {store.unwritten} finished task(s) could not be written and will run again on resume"
    )


def _write_error(store: RunStore, total: int) -> RunWriteError:
    err = store.failure
    assert err is not None
    recorded = len(store.records) - store.unwritten
    return RunWriteError(
        f"{_write_failure_reason(store)}. {recorded} of {total} tasks are recorded in "
        f"{str(store.path)!r}; fix the disk (free space, make it writable) and resume the run "
        "to finish it",
        path=str(store.path),
        errno=err.errno,
        recorded=recorded,
        unwritten=store.unwritten,
    )


def _check_formats(formats: Sequence[str]) -> None:
    """Refuse unknown report formats before anything runs (not after paying for the run)."""
    from crucible_harness._report import FORMATS

    if isinstance(formats, str):
        raise ExperimentDefinitionError(
            f"formats must be a list of names such as ['html'], not the string {formats!r}",
            field="formats",
        )
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExperimentDefinitionError(
            f"unknown report format(s) {unknown}; choose from {sorted(FORMATS)}",
            field="formats",
        )


async def _close(targets: Mapping[str, Any], experiment: Experiment) -> None:
    """Close the connections every model target opened in this run's event loop.

    Model objects passed as targets are closed too: their `aclose` closes this loop's sessions
    only, and the model opens new ones when used again, so a model shared across runs keeps
    working while no session outlives the loop it belongs to. A failing close is logged, not
    raised, so it cannot hide the run's result.
    """
    import logging

    seen: set[int] = set()
    for c in experiment.conditions:
        target = targets[c.name]
        close = None if c.kind == "callable" else getattr(target, "aclose", None)
        if close is None or id(target) in seen:
            continue
        seen.add(id(target))
        try:
            value = close()
            if inspect.isawaitable(value):
                await value
        except Exception:
            logging.getLogger("crucible_harness").warning(
                "closing the model of condition %r failed", c.name, exc_info=True
            )


def _finish(
    experiment: Experiment,
    store: RunStore,
    status: RunStatus,
    est: Estimate | None,
    formats: Sequence[str],
    *,
    monitor: SequentialMonitor | None = None,
) -> RunResult:
    from crucible_harness._analysis import analyse
    from crucible_harness._report import write_reports

    records = tuple(store.records)
    total = _total(experiment, store)
    state = run_state(store, status)
    sequential = None if monitor is None else monitor.summary()
    if sequential is not None:
        state["sequential"] = sequential.to_dict()
        state["reason"] = state.get("reason") or sequential.reason
    analysis = analyse(
        records,
        conditions=[c.name for c in experiment.conditions],
        config=experiment.analysis,
        manifest={**store.manifest, "run_state": state},
    )
    try:
        reports = (
            write_reports(analysis, store.path, formats=formats) if formats else {}
        )
    except OSError as err:
        from crucible_harness._store import _os_error

        raise _os_error(err, store.path, doing="write the reports") from err
    return RunResult(
        run_id=str(store.manifest["run_id"]), run_dir=store.path, status=status, records=records, estimate=est,
        spent=sum(float(r.get("cost") or 0.0) for r in records), pending=max(0, total - len(records)), analysis=analysis, reports=reports,
        sequential=sequential, reason=None if sequential is None or not sequential.fired else sequential.reason,
    )  # fmt: skip


def run(experiment: Experiment, **options: Any) -> RunResult:
    """Run an experiment and return its [`RunResult`][crucible_harness.RunResult].

    Validates, estimates, (optionally) asks `confirm(estimate)`, runs conditions × items × repeats
    with bounded concurrency, timeouts, retries and rate limits, writes every finished task to the
    run directory as it completes, stops before crossing the budget, then analyses and writes
    reports. Same options as [`run_async`][crucible_harness.run_async]: `output_dir`, `resume`,
    `formats`, `dry_run`, `confirm`, `progress`, `on_budget`, `budget_unpriced`.
    """
    return run_sync(run_async(experiment, **options))


async def resume_async(
    run_dir: str | Path, experiment: Experiment, **options: Any
) -> RunResult:
    """Run the tasks missing from `run_dir` (the coroutine twin of [`resume`][crucible_harness.resume])."""
    return await run_async(experiment, resume=run_dir, **options)


def resume(run_dir: str | Path, experiment: Experiment, **options: Any) -> RunResult:
    """Run exactly the tasks missing from `run_dir`, with the same experiment definition.

    Raises:
        ResumeMismatchError: if `experiment` is not the definition the run was started with.
    """
    return run_sync(resume_async(run_dir, experiment, **options))


def _state(store: RunStore, total: int) -> tuple[str, str | None]:
    """The run's status and why (a `running` run whose process is gone was interrupted)."""
    from crucible_harness._store import lock_held

    written = store.read_status() or {}
    state = str(written.get("status", "running"))
    reason = written.get("reason")
    if state == "running" and not lock_held(store.path):
        state = "interrupted"
        reason = "the process running it stopped without finishing (killed or crashed); resume it"
    if state == "complete" and len(store.records) < total:
        state = "interrupted"  # records were removed (e.g. by `crucible repair`) after it finished
    return state, None if reason is None else str(reason)


def run_state(
    store: RunStore, status: str, reason: str | None = None
) -> dict[str, Any]:
    """How far the run got, for reports: status, reason, pending tasks per condition."""
    from crucible_harness._store import run_shape

    conditions, items, repeats = run_shape(store.manifest, store.path)
    done: dict[str, int] = dict.fromkeys(conditions, 0)
    for r in store.records:
        done[r["condition"]] += 1
    per = len(items) * repeats
    return {
        "status": status, "reason": reason, "tasks": per * len(conditions), "recorded": len(store.records),
        "pending": {c: per - done[c] for c in conditions},
    }  # fmt: skip


def load_run(run_dir: str | Path, *, formats: Sequence[str] = ()) -> RunResult:
    """Read a run directory back (no experiment definition needed) and analyse it.

    Raises:
        RunDirectoryError: not a run directory, or unreadable.
        RunRecordsError: the task log holds damaged, foreign or conflicting records (run
            `crucible repair RUN_DIR`).
    """
    from crucible_harness._analysis import analyse
    from crucible_harness._experiment import AnalysisConfig
    from crucible_harness._report import write_reports

    store = RunStore.open(Path(run_dir))
    manifest = store.manifest
    exp = manifest["experiment"]
    try:
        settings: dict[str, Any] = dict(exp["analysis"])
        if settings.get("primary"):
            settings["primary"] = tuple(settings["primary"])
        config = AnalysisConfig(**settings)
    except (KeyError, TypeError, ValueError) as err:
        raise RunDirectoryError(
            f"{store.path / 'manifest.json'} has no readable analysis settings ({err}); "
            "was it edited? restore it, or analyse the records with `analyse`",
            path=str(store.path),
        ) from err
    conditions = [c["name"] for c in exp["conditions"]]
    total = len(conditions) * len(manifest["items"]) * int(exp["repeats"])
    status, reason = _state(store, total)
    analysis = analyse(
        tuple(store.records), conditions=conditions, config=config,
        manifest={**manifest, "run_state": run_state(store, status, reason)},
    )  # fmt: skip
    try:
        reports = (
            write_reports(analysis, store.path, formats=formats) if formats else {}
        )
    except OSError as err:
        from crucible_harness._store import _os_error

        raise _os_error(err, store.path, doing="write the reports") from err
    return RunResult(run_id=str(manifest["run_id"]), run_dir=store.path, status=status,  # type: ignore[arg-type]
                     records=tuple(store.records), spent=sum(float(r.get("cost") or 0.0) for r in store.records),
                     pending=max(0, total - len(store.records)), analysis=analysis, reports=reports, reason=reason)  # fmt: skip


@attrs.define(frozen=True, kw_only=True)
class RunProgress(RenderMixin):
    """Where a run directory stands, read without the experiment definition or any analysis."""

    run_id: str
    """The run's id."""
    status: str
    """The last status written (`complete`, `budget`, `interrupted`, …; `running` while in progress)."""
    recorded: int
    """Tasks recorded."""
    pending: int
    """Tasks not recorded yet."""
    errors: int
    """Recorded tasks that failed."""
    spent: float
    """Dollars spent."""
    by_condition: Mapping[str, int]
    """Recorded tasks per condition."""
    reason: str | None = None
    """Why the run stopped, when it did not finish (`failed`, `interrupted`)."""

    def _view(self) -> View:
        return View(
            title=f"Run {self.run_id}: {self.status}",
            facts=[
                ("recorded", self.recorded),
                ("pending", self.pending),
                ("errors", self.errors),
                ("spent (USD)", self.spent),
                *([("reason", self.reason)] if self.reason else []),
            ],
            tables=[
                Table(
                    headers=("condition", "recorded"),
                    rows=sorted(self.by_condition.items()),
                )
            ],
        )


def status(run_dir: str | Path) -> RunProgress:
    """How far a run directory got: recorded, pending and failed tasks and spend (cheap; no analysis).

    A run that is still writing shows `running`; one whose process was killed shows
    `interrupted`; otherwise the status its last session wrote (and, for `failed`, why).

    Raises:
        RunRecordsError: the task log holds damaged, foreign or conflicting records (run
            `crucible repair RUN_DIR`).
    """
    store = RunStore.open(Path(run_dir))
    exp = store.manifest["experiment"]
    total = len(exp["conditions"]) * len(store.manifest["items"]) * int(exp["repeats"])
    by_condition: dict[str, int] = {c["name"]: 0 for c in exp["conditions"]}
    for r in store.records:
        by_condition[r["condition"]] += 1
    state, reason = _state(store, total)
    return RunProgress(
        run_id=str(store.manifest["run_id"]), status=state, recorded=len(store.records),
        pending=max(0, total - len(store.records)), errors=sum(r["status"] != "ok" for r in store.records),
        spent=sum(float(r.get("cost") or 0.0) for r in store.records), by_condition=by_condition, reason=reason,
    )  # fmt: skip

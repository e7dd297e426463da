"""Executing one task: call the condition (timeout, retries, rate limit), score it, make its record.

The same code runs a task in the driver's event loop (the local executor) and inside a Ray worker
(the Ray executor): a [`TaskRunner`][crucible_harness._execute.TaskRunner] holds what every task of a
run shares (the built targets, the scorer, the retry policies, the per-provider rate limits) and
turns `(condition, item, repeat)` into the record the driver writes. It never touches the run
directory, the budget or the progress display: those stay with the driver.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from crucible_core import context, events
from crucible_core.exceptions import ProviderTimeoutError
from crucible_core.retry import is_transient, retry
from crucible_harness._budget import BudgetGuard
from crucible_harness._experiment import (
    Condition,
    ConditionOutput,
    Experiment,
    HarnessItem,
    RunConfig,
    TaskContext,
    task_seed,
)
from crucible_harness._plan import _price_per_task
from crucible_harness._record import Recorder
from crucible_harness._scoring import Scorer, answer_kind
from crucible_harness._sequential import SequentialMonitor
from crucible_harness._store import RunStore, dropped_spend, task_key

__all__ = ("TaskRunner", "execute_tasks", "provider_of", "rate_buckets")


class Bucket(Protocol):
    """A rate limit a task waits on before each attempt (a `TokenBucket`, or a Ray actor's proxy)."""

    async def acquire(self, tokens: float = 1) -> float: ...


def provider_of(condition: Condition, target: Any) -> str:
    """The key a condition's requests are rate-limited under (its provider, else its name)."""
    return str(getattr(target, "provider", condition.name))


def rate_buckets(
    conditions: tuple[Condition, ...], targets: Mapping[str, Any], cfg: RunConfig
) -> dict[str, Any]:
    """One token bucket per provider at `cfg.rate_limit` requests/s (none when unlimited)."""
    if cfg.rate_limit is None:
        return {}
    from crucible_core.ratelimit import TokenBucket

    buckets: dict[str, Any] = {}
    for c in conditions:
        buckets.setdefault(
            provider_of(c, targets[c.name]), TokenBucket(rate=cfg.rate_limit)
        )
    return buckets


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


class TaskRunner:
    """Runs tasks of one run: everything but the budget, the run directory and the progress display.

    Args:
        experiment_name: the experiment's name (in each task's context).
        run_id: the run's id.
        cfg: the run settings (timeout, retries, seed).
        targets: the built target of each condition, by name.
        scorer: scores each prediction.
        buckets: the rate limit of each provider (see [`provider_of`][crucible_harness._execute.provider_of]).
        attribution: the telemetry context every task runs in (run id, experiment id and name).
    """

    def __init__(
        self,
        *,
        experiment_name: str,
        run_id: str,
        cfg: RunConfig,
        targets: Mapping[str, Any],
        scorer: Scorer,
        buckets: Mapping[str, Bucket],
        attribution: Mapping[str, Any],
    ) -> None:
        self.experiment_name, self.run_id, self.cfg = experiment_name, run_id, cfg
        self.targets, self.scorer, self.buckets = targets, scorer, buckets
        self.attribution = dict(attribution)
        self._unpriced_cache: dict[str, bool] = {}
        self._policy = retry(
            on=_transient,
            attempts=cfg.retries + 1,
            timeout=None,
            wait_initial=0.2,
            wait_max=10.0,
        )
        # attempts after the first (which runs outside any retry loop, see `run`)
        self._retry_rest = retry(
            on=_transient,
            attempts=max(cfg.retries, 1),
            timeout=None,
            wait_initial=0.4,
            wait_max=10.0,
        )

    def _unpriced(self, c: Condition) -> bool:
        """Whether a model condition's cost is unknown (its failed tasks then cost `None`, not $0)."""
        if c.name not in self._unpriced_cache:
            self._unpriced_cache[c.name] = c.kind != "callable" and (
                _price_per_task(c, self.targets[c.name], 1.0, worst=True) is None
            )
        return self._unpriced_cache[c.name]

    async def run(self, c: Condition, item: HarnessItem, repeat: int) -> dict[str, Any]:
        """Run one task to its record (a failure is recorded with its error, never raised)."""
        cfg, scorer = self.cfg, self.scorer
        seed = task_seed(cfg.seed, c.name, item.id, repeat)
        ctx = TaskContext(
            experiment=self.experiment_name,
            run_id=self.run_id,
            condition=c.name,
            repeat=repeat,
            seed=seed,
            timeout=cfg.timeout,
        )
        target = self.targets[c.name]
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
        with context.use(
            **self.attribution, condition=c.name, repeat=repeat, item=item.id
        ):
            events.emit(
                events.HARNESS_TASK_START,
                {"system_time": time.time()},
                {"condition": c.name, "item": item.id, "repeat": repeat},
            )
            try:
                bucket = self.buckets.get(provider_of(c, target))

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
                    await asyncio.sleep(self._policy.wait(1, first))
                    async for attempt in self._retry_rest.context():
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
                              latency=time.perf_counter() - wall, cost=_error_cost(err, unpriced=self._unpriced(c)),
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
        return record


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


async def execute_tasks(
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
    # reservations are upper bounds: the longest prompt, and each model's worst case
    chars = max((len(str(i.input)) for i in items), default=0)
    prices = {
        c.name: _price_per_task(c, targets[c.name], chars, worst=True)
        for c in experiment.conditions
    }
    bar = _Progress(len(queue), enabled=progress)
    # Tasks carry the run id; inside a crucible-telemetry experiment they keep that experiment's id
    # (so telemetry captures them), otherwise the run is the experiment.
    attribution: dict[str, Any] = {"run_id": run_id}
    if context.current().experiment_id is None:
        attribution.update(experiment_id=run_id, experiment_name=experiment.name)

    def recorded(record: dict[str, Any]) -> None:
        bar.tick(guard.total_spent, error=record["status"] != "ok")
        if monitor is not None and monitor.observe(record):
            queue.clear()  # the comparisons are settled: send nothing more

    record_one = Recorder(store, guard, on_recorded=recorded)
    if cfg.executor != "local":
        try:
            await cfg.executor.execute(
                experiment=experiment, items=items, targets=targets, scorer=scorer, run_id=run_id,
                attribution=attribution, queue=queue, guard=guard, prices=prices, on_record=record_one,
                should_stop=lambda: store.failure is not None or (monitor is not None and monitor.fired),
            )  # fmt: skip
        finally:
            bar.close()
        _budget_event(experiment, guard)
        return guard

    runner = TaskRunner(
        experiment_name=experiment.name, run_id=run_id, cfg=cfg, targets=targets, scorer=scorer,
        buckets=rate_buckets(experiment.conditions, targets, cfg), attribution=attribution,
    )  # fmt: skip

    async def one(
        c: Condition, item: HarnessItem, repeat: int, reserved: float
    ) -> None:
        record_one(c, reserved, await runner.run(c, item, repeat))

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
            await store.pace()

    try:
        await asyncio.gather(
            *(worker() for _ in range(min(cfg.max_concurrency, max(1, len(queue)))))
        )
    finally:
        bar.close()
    _budget_event(experiment, guard)
    return guard


def _budget_event(experiment: Experiment, guard: BudgetGuard) -> None:
    if guard.halted:
        events.emit(events.HARNESS_BUDGET_EXCEEDED, {"spent": guard.total_spent, "limit": experiment.budget.max_total or 0.0},
                    {"stopped_conditions": sorted(guard.stopped)})  # fmt: skip

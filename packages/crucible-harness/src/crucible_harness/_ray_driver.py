"""The Ray side of [`RayExecutor`][crucible_harness.RayExecutor]: worker actors, limit actors, dispatch.

Imported only when a `RayExecutor` runs: this module imports ray.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs
import ray
from ray import cloudpickle
from ray.exceptions import RayError

from crucible_core import context, events
from crucible_core.ratelimit import AdaptiveLimiter, TokenBucket
from crucible_harness._execute import TaskRunner, provider_of
from crucible_harness._experiment import Condition, HarnessItem, RunConfig
from crucible_harness._plan import build_target
from crucible_harness._ray_executor import OnRecord, RayExecutor, Task, log, reemit
from crucible_harness.exceptions import ExperimentDefinitionError

if TYPE_CHECKING:
    from crucible_harness._budget import BudgetGuard
    from crucible_harness._experiment import Experiment
    from crucible_harness._scoring import Scorer

__all__ = ("Driver",)


# -- global limits: one actor per provider -----------------------------------------------------


class ProviderLimits:
    """A provider's token bucket and AIMD concurrency limit, shared by every worker of a run."""

    def __init__(
        self, rate: float | None, max_limit: int | None, *, adaptive: bool = True
    ) -> None:
        self.bucket = TokenBucket(rate=rate) if rate else None
        self.limiter = (
            AdaptiveLimiter(max_limit, adaptive=adaptive) if max_limit else None
        )
        self.slots: dict[str, Any] = {}
        self.abandoned: set[str] = set()
        self.taken = 0

    async def take(self, tokens: float = 1) -> float:
        assert self.bucket is not None
        waited = await self.bucket.acquire(tokens)
        self.taken += 1
        return waited

    async def enter(self, token: str) -> float:
        assert self.limiter is not None
        slot = self.limiter.slot()
        await slot.__aenter__()
        if (
            token in self.abandoned
        ):  # the caller gave up while waiting: pass the place on
            self.abandoned.discard(token)
            slot.neutral()
            await slot.__aexit__(None, None, None)
        else:
            self.slots[token] = slot
        return float(slot.waited)

    async def leave(self, token: str, outcome: str) -> None:
        slot = self.slots.pop(token, None)
        if slot is None:
            self.abandoned.add(token)
            return
        if outcome == "overloaded":
            slot.overloaded()
        elif outcome == "neutral":
            slot.neutral()
        await slot.__aexit__(None, None, None)

    def state(self) -> dict[str, Any]:
        lim = self.limiter
        return {
            "taken": self.taken,
            "limit": None if lim is None else lim.limit,
            "in_flight": None if lim is None else lim.in_flight,
            "overloads": None if lim is None else lim.overloads,
        }


class RemoteBucket:
    """A worker's view of a provider's token bucket (waits on the provider's actor)."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def acquire(self, tokens: float = 1) -> float:
        return float(await self.actor.take.remote(tokens))


class RemoteLimiter:
    """Stands in for an HTTP model's `AdaptiveLimiter` on a worker: slots come from the provider's actor."""

    def __init__(self, actor: Any, max_limit: int, *, adaptive: bool) -> None:
        self.actor, self.max_limit, self.adaptive = actor, max_limit, adaptive

    def slot(self) -> RemoteSlot:
        return RemoteSlot(self.actor)


class RemoteSlot:
    """One request's place in a provider's cluster-wide AIMD limit."""

    def __init__(self, actor: Any) -> None:
        self._actor, self._outcome, self.waited = actor, "success", 0.0
        self._token = uuid.uuid4().hex

    def overloaded(self) -> None:
        self._outcome = "overloaded"

    def neutral(self) -> None:
        self._outcome = "neutral"

    async def __aenter__(self) -> RemoteSlot:
        try:
            self.waited = float(await self._actor.enter.remote(self._token))
        except BaseException:
            self._actor.leave.remote(self._token, "neutral")  # fire and forget
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        outcome = (
            self._outcome
            if exc_type is None or self._outcome != "success"
            else "neutral"
        )
        self._actor.leave.remote(self._token, outcome)


def _limited(targets: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(key, model) for every model with an adaptive limiter in the targets (ensemble members, hedged inner models too)."""
    seen: set[int] = set()
    stack = list(targets.values())
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float):
            continue
        seen.add(id(obj))
        limiter = getattr(obj, "limiter", None)
        if isinstance(limiter, AdaptiveLimiter | RemoteLimiter) and limiter.adaptive:
            key = f"{type(obj).__qualname__} {getattr(obj, 'base_url', '')} max={limiter.max_limit}"
            yield key, obj
        inner = getattr(obj, "model", None)
        if inner is not None and not isinstance(inner, str):
            stack.append(inner)
        members = getattr(obj, "models", None)
        if isinstance(members, tuple | list):
            stack.extend(members)


# -- workers -----------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class WorkerSpec:
    """Everything a worker needs, pickled once per pool (cloudpickle: callables by value)."""

    experiment_name: str
    run_id: str
    cfg: RunConfig
    conditions: tuple[Condition, ...]
    items: tuple[HarnessItem, ...]
    scorer: Any
    attribution: Mapping[str, Any]
    buckets: Mapping[str, Any]
    limiters: Mapping[str, Any]


class _Loaded:
    """A worker's state for one run: the built targets and the task runner."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.conditions = {c.name: c for c in spec.conditions}
        self.items = spec.items
        self.owned = [c.name for c in spec.conditions if isinstance(c.target, str)]
        self.targets = {c.name: build_target(c, spec.cfg.seed) for c in spec.conditions}
        for key, model in _limited(self.targets):
            actor = spec.limiters.get(key)
            if actor is not None:
                model.limiter = RemoteLimiter(
                    actor, model.limiter.max_limit, adaptive=True
                )
        self.runner = TaskRunner(
            experiment_name=spec.experiment_name, run_id=spec.run_id, cfg=spec.cfg,
            targets=self.targets, scorer=spec.scorer, attribution=spec.attribution,
            buckets={p: RemoteBucket(a) for p, a in spec.buckets.items()},
        )  # fmt: skip

    async def close(self) -> None:
        for name in self.owned:
            close = getattr(self.targets[name], "aclose", None)
            if close is not None:
                await close()


class Worker:
    """A worker process: hosts one run's conditions at a time (each target built once), runs batches.

    Every batch names the run's spec by an object reference (inside a list, so Ray passes it
    unresolved): the first batch of a run loads it, and so does the first batch a restarted worker
    gets. A driver keeps its workers between runs of the same process (no process start per run).
    """

    def __init__(self) -> None:
        self.spec_id: str | None = None
        self.loaded: _Loaded | None = None
        self._lock = asyncio.Lock()
        self.captured: list[tuple[Any, ...]] = []
        events.attach(
            f"crucible-harness-ray-worker-{os.getpid()}", [("crucible",)], self._capture
        )

    def _capture(
        self,
        name: tuple[str, ...],
        measurements: Mapping[str, float],
        metadata: Mapping[str, Any],
    ) -> None:
        ctx = context.current()
        self.captured.append((name, time.time(), ctx.condition, ctx.item, ctx.repeat,
                              dict(measurements), dict(metadata)))  # fmt: skip

    def missing(self, names: list[str]) -> list[str]:
        """The top-level modules of `names` this worker cannot import."""
        out = []
        for name in names:
            try:
                if importlib.util.find_spec(name) is None:
                    out.append(name)
            except (
                ImportError,
                ValueError,
            ):  # a module without a spec here: not importable by name
                out.append(name)
        return out

    async def _load(self, spec: list[Any]) -> _Loaded:
        async with self._lock:
            key = spec[0].hex()
            if self.spec_id != key or self.loaded is None:
                await self.release()
                self.loaded = _Loaded(cloudpickle.loads(await spec[0]))
                self.spec_id = key
            return self.loaded

    async def run_batch(
        self, spec: list[Any], tasks: Sequence[tuple[str, int, int]]
    ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        run = await self._load(spec)
        records = await asyncio.gather(
            *(run.runner.run(run.conditions[c], run.items[i], r) for c, i, r in tasks)
        )
        captured, self.captured = self.captured, []
        return list(records), captured

    async def release(self) -> None:
        """Close the run's own models (built from model strings) and forget the run."""
        loaded, self.loaded, self.spec_id = self.loaded, None, None
        if loaded is not None:
            await loaded.close()


# -- serialization -----------------------------------------------------------------------------


def _pickle_by_value(worker: Any) -> None:
    """Pickle by value the modules `worker` cannot import (an `exp.py`, a test module, a notebook's code)."""
    candidates = sorted(
        name
        for name, module in list(sys.modules.items())
        if "." not in name
        and name not in sys.stdlib_module_names
        and not name.startswith("__")
        and str(getattr(module, "__file__", "") or "").endswith(".py")
    )
    for name in ray.get(worker.missing.remote(candidates)):
        module = sys.modules.get(name)
        if module is not None:
            cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]


def _payload(spec: WorkerSpec) -> bytes:
    for c in spec.conditions:
        if isinstance(c.target, str):
            continue
        try:
            cloudpickle.dumps(c.target)  # type: ignore[no-untyped-call]
        except Exception as err:
            raise ExperimentDefinitionError(
                f"condition {c.name!r} cannot be sent to Ray workers ({type(err).__name__}: {err}); "
                "give a model string (built on each worker, its key read from the worker's "
                "environment) or a picklable target",
                field="conditions",
                condition=c.name,
            ) from err
    return bytes(cloudpickle.dumps(spec))  # type: ignore[no-untyped-call]


# -- the driver --------------------------------------------------------------------------------


@attrs.define(kw_only=True)
class _Pool:
    conditions: tuple[Condition, ...]
    resources: Mapping[str, float]
    key: str = ""
    spec: list[Any] = attrs.field(factory=list)
    actors: list[Any] = attrs.field(factory=list)
    load: list[int] = attrs.field(factory=list)
    queue: deque[Task] = attrs.field(factory=deque)


@attrs.define(kw_only=True)
class _Batch:
    pool: _Pool
    worker: int
    tasks: list[tuple[Task, float]]
    attempt: int = 0


def _actor_options(
    resources: Mapping[str, float], runtime_env: Mapping[str, Any]
) -> dict[str, Any]:
    res = dict(resources)
    options: dict[str, Any] = {
        "num_cpus": float(res.pop("CPU", 0.0)),
        "num_gpus": float(res.pop("GPU", 0.0)),
        "max_restarts": -1,
        "max_task_retries": -1,
        "max_concurrency": 1000,
        "scheduling_strategy": "SPREAD",
        "runtime_env": dict(runtime_env),
    }
    if "memory" in res:
        options["memory"] = res.pop("memory")
    if res:
        options["resources"] = res
    return options


def _fits(resources: Mapping[str, float], total: Mapping[str, float]) -> int:
    """How many workers needing `resources` the cluster holds (at least 1: an autoscaler may add nodes)."""
    counts = [
        math.floor(total.get(k, 0.0) / v + 1e-9) for k, v in resources.items() if v > 0
    ]
    return max(1, min(counts)) if counts else 1


# Workers kept between the runs of this process, by job and actor options (resources, runtime env):
# a second run on the same cluster starts no processes.
_IDLE: dict[str, list[Any]] = {}


def _workers_key(options: Mapping[str, Any]) -> str:
    import hashlib
    import json

    text = json.dumps(
        options, sort_keys=True, default=str
    )  # the runtime env's secrets: hashed
    return f"{ray.get_runtime_context().get_job_id()} {hashlib.sha256(text.encode()).hexdigest()}"


def _take_workers(options: Mapping[str, Any], size: int) -> tuple[str, list[Any]]:
    key = _workers_key(options)
    for other in [
        k for k in _IDLE if k != key
    ]:  # idle workers hold their resources: free them
        for actor in _IDLE.pop(other):
            ray.kill(actor, no_restart=True)
    idle = _IDLE.setdefault(key, [])
    actors = [idle.pop() for _ in range(min(size, len(idle)))]
    remote_worker = ray.remote(Worker)
    actors += [
        remote_worker.options(**options).remote() for _ in range(size - len(actors))
    ]
    return key, actors


class Driver:
    """Dispatches a run's tasks to worker actors and hands each record to the run once."""

    def __init__(
        self,
        executor: RayExecutor,
        *,
        experiment: Experiment,
        items: Sequence[HarnessItem],
        targets: Mapping[str, Any],
        scorer: Scorer,
        run_id: str,
        attribution: Mapping[str, Any],
    ) -> None:
        self.executor, self.attribution = executor, dict(attribution)
        self._limit_actors: list[Any] = []
        self.pools: list[_Pool] = []
        if not ray.is_initialized():
            from crucible_harness._ray_local import connect

            connect(executor.address, namespace=executor.namespace)
        cfg = experiment.run
        remote_limits = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(
            ProviderLimits
        )
        buckets: dict[str, Any] = {}
        if cfg.rate_limit is not None:
            for c in experiment.conditions:
                provider = provider_of(c, targets[c.name])
                if provider not in buckets:
                    buckets[provider] = remote_limits.remote(cfg.rate_limit, None)
        limiters: dict[str, Any] = {}
        for key, model in _limited(targets):
            if key not in limiters:
                limiters[key] = remote_limits.remote(None, model.limiter.max_limit)
        self._limit_actors = [*buckets.values(), *limiters.values()]
        self.buckets, self.limiters = buckets, limiters

        by_resources: dict[tuple[tuple[str, float], ...], list[Condition]] = {}
        for c in experiment.conditions:
            by_resources.setdefault(tuple(sorted(c.resources.items())), []).append(c)
        total = ray.cluster_resources()  # type: ignore[no-untyped-call]
        runtime_env = dict(executor.runtime_env)
        runtime_env["env_vars"] = {
            **dict(runtime_env.get("env_vars") or {}),
            **executor.secrets(),
        }
        self.pools = [
            _Pool(conditions=tuple(conds), resources=dict(key) if key else dict(executor.resources))
            for key, conds in by_resources.items()
        ]  # fmt: skip
        sizes = [
            executor.num_workers if executor.num_workers is not None and not key
            else min(executor.num_workers or 1_000_000, _fits(pool.resources, total))
            for key, pool in zip(by_resources, self.pools, strict=True)
        ]  # fmt: skip
        self.concurrency = executor.concurrency or max(
            1, math.ceil(cfg.max_concurrency / sum(sizes))
        )
        self.batch_size = min(executor.batch_size, self.concurrency)
        self.item_index = {item.id: i for i, item in enumerate(items)}
        for pool, size in zip(self.pools, sizes, strict=True):
            pool.key, pool.actors = _take_workers(
                _actor_options(pool.resources, runtime_env), size
            )
            pool.load = [0] * size
        _pickle_by_value(self.pools[0].actors[0])
        local_cfg = attrs.evolve(cfg, executor="local")
        for pool in self.pools:
            spec = WorkerSpec(
                experiment_name=experiment.name, run_id=run_id, cfg=local_cfg,
                conditions=pool.conditions, items=tuple(items), scorer=scorer,
                attribution=self.attribution, buckets=buckets, limiters=limiters,
            )  # fmt: skip
            # held by the driver for the whole run: a restarted worker fetches it again
            pool.spec = [ray.put(_payload(spec))]
        self.pool_of = {c.name: pool for pool in self.pools for c in pool.conditions}

    @property
    def workers(self) -> int:
        """Worker actors in all pools."""
        return sum(len(p.actors) for p in self.pools)

    def limits_state(self) -> dict[str, dict[str, Any]]:
        """Each provider actor's counters (tokens taken, limit, in flight, overloads)."""
        names = [
            *(f"rate {k}" for k in self.buckets),
            *(f"aimd {k}" for k in self.limiters),
        ]
        states = ray.get([a.state.remote() for a in self._limit_actors])
        return dict(zip(names, states, strict=True))

    def deliver(
        self, batch: _Batch, records: Sequence[dict[str, Any]], on_record: OnRecord
    ) -> None:
        """Hand a batch's records to the run's recorder (which records each key once)."""
        for (task, reserved), record in zip(batch.tasks, records, strict=True):
            on_record(task[0], reserved, record)

    async def run(
        self,
        queue: deque[Task],
        guard: BudgetGuard,
        prices: Mapping[str, float | None],
        on_record: OnRecord,
        should_stop: Callable[[], bool],
    ) -> None:
        for task in queue:
            self.pool_of[task[0].name].queue.append(task)
        queue.clear()
        inflight: dict[asyncio.Future[Any], _Batch] = {}
        stopped = False

        def submit(batch: _Batch) -> None:
            pool = batch.pool
            pool.load[batch.worker] += len(batch.tasks)
            calls = [
                (t[0].name, self.item_index[t[1].id], t[2]) for t, _ in batch.tasks
            ]
            ref = pool.actors[batch.worker].run_batch.remote(pool.spec, calls)
            inflight[asyncio.wrap_future(ref.future())] = batch

        def fill() -> None:
            nonlocal stopped
            for pool in self.pools:
                while pool.queue and not stopped:
                    w = min(range(len(pool.actors)), key=pool.load.__getitem__)
                    room = min(self.batch_size, self.concurrency - pool.load[w])
                    if room <= 0:
                        break
                    tasks: list[tuple[Task, float]] = []
                    while pool.queue and len(tasks) < room:
                        c, item, repeat = pool.queue.popleft()
                        price = prices[c.name]
                        reserve = max(
                            price if price is not None else 0.0, guard.largest[c.name]
                        )
                        if guard.try_reserve(c.name, reserve):
                            tasks.append(((c, item, repeat), reserve))
                        elif guard.stopped_total:  # the task stays pending (resumable)
                            queue.append((c, item, repeat))
                            stopped = True
                            break
                        else:
                            queue.append((c, item, repeat))
                    if tasks:
                        submit(_Batch(pool=pool, worker=w, tasks=tasks))
                    elif not pool.queue:
                        break
            if stopped:
                for pool in self.pools:
                    queue.extend(pool.queue)
                    pool.queue.clear()

        fill()
        try:
            while inflight:
                done, _ = await asyncio.wait(
                    inflight, return_when=asyncio.FIRST_COMPLETED
                )
                for fut in done:
                    batch = inflight.pop(fut)
                    batch.pool.load[batch.worker] -= len(batch.tasks)
                    try:
                        records, captured = fut.result()
                    except RayError as err:
                        if batch.attempt >= self.executor.max_resubmits:
                            for task, reserved in batch.tasks:
                                guard.settle(task[0].name, reserved, 0.0)
                            raise
                        log.warning("a batch of %d task(s) was lost (%s: %s); sending it again",
                                    len(batch.tasks), type(err).__name__, err)  # fmt: skip
                        batch.attempt += 1
                        batch.worker = min(
                            range(len(batch.pool.actors)),
                            key=batch.pool.load.__getitem__,
                        )
                        submit(batch)
                        continue
                    reemit(captured, self.attribution)
                    self.deliver(batch, records, on_record)
                if not stopped and should_stop():
                    stopped = True
                    for pool in self.pools:
                        queue.extend(pool.queue)
                        pool.queue.clear()
                fill()
        finally:
            for batch in inflight.values():  # cancelled: these tasks stay pending
                for task, reserved in batch.tasks:
                    guard.settle(task[0].name, reserved, 0.0)
                    queue.append(task)

    def close(self, *, keep: bool) -> None:
        """End the run's limit actors; keep the workers for this process's next run (`keep`) or end them."""
        for actor in self._limit_actors:
            ray.kill(actor, no_restart=True)
        for pool in self.pools:
            if keep:
                try:
                    ray.get([a.release.remote() for a in pool.actors], timeout=30)
                    _IDLE.setdefault(pool.key, []).extend(pool.actors)
                    continue
                except (RayError, TimeoutError) as err:
                    log.warning("releasing the workers failed (%s); ending them", err)
            for actor in pool.actors:
                ray.kill(actor, no_restart=True)
        self.pools = []

"""Running a grid on a Ray cluster: this process stays the driver, Ray workers execute tasks.

```python
from crucible_harness import Experiment, RayExecutor, RunConfig

experiment = Experiment(..., run=RunConfig(max_concurrency=256, executor=RayExecutor(address="auto")))
```

The driver keeps everything that must happen once: it owns the run directory and its durable log,
reserves every task's budget before sending it and settles it when its record comes back, and
records each task once (a record whose key is already recorded, e.g. from a task Ray ran again
after a worker died, is dropped and logged). Workers build each condition's target once (a model
string, a pickled `Model`, ensemble or hedged model, a user callable via cloudpickle), run batches
of tasks with the same code the local executor runs, and send back records and telemetry events.
Provider rate limits and the AIMD concurrency limits of HTTP models are one actor per provider, so
they hold for the whole cluster rather than per worker. Secrets (API keys) travel as environment
variables in each worker's Ray runtime env, read from the driver's environment; records never hold
them.

ray is imported only when a `RayExecutor` runs (the `crucible-harness[ray]` extra).
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crucible_core import context, events
from crucible_harness.exceptions import ExperimentDefinitionError

if TYPE_CHECKING:
    from crucible_harness._budget import BudgetGuard
    from crucible_harness._experiment import Condition, Experiment, HarnessItem
    from crucible_harness._scoring import Scorer

__all__ = ("RayExecutor",)

log = logging.getLogger("crucible_harness.ray")

# Environment variables copied from the driver to every worker by default: API keys and endpoints.
_SECRET_NAME = re.compile(r"(_API_KEY|_API_TOKEN|_BASE_URL|_API_BASE)$|^CRUCIBLE_")

Task = tuple["Condition", "HarnessItem", int]
OnRecord = Callable[["Condition", float, dict[str, Any]], None]


def _positive_int_or_none(name: str, value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < 1
    ):
        raise ExperimentDefinitionError(
            f"RayExecutor {name} must be a positive integer or None, got {value!r}",
            field=f"run.executor.{name}",
        )


@attrs.define(frozen=True, kw_only=True)
class RayExecutor:
    """Run an experiment's tasks on a Ray cluster (`RunConfig(executor=RayExecutor(...))`).

    Args:
        address: the cluster: `"auto"` (the one `ray start` started on this machine, or
            `RAY_ADDRESS`), `"ray://host:10001"` (Ray Client), `"host:port"` (the head's GCS), or
            `None` for a Ray instance of this process alone. Ignored when this process is already
            connected (`ray.init` was called).
        num_workers: worker actors of the default pool (default: as many as the cluster's CPUs
            allow at `resources` each).
        resources: what each worker of the default pool reserves (default one CPU). Conditions
            with their own `Condition.resources` get a pool of their own.
        concurrency: tasks one worker runs at once (default: `RunConfig.max_concurrency` shared
            out over the workers).
        batch_size: tasks sent to a worker in one call (amortizes Ray's per-call overhead).
        env: names of environment variables copied from the driver's environment into every
            worker's runtime env (API keys, endpoints); `None` copies those whose name ends in
            `_API_KEY`, `_API_TOKEN`, `_BASE_URL`, `_API_BASE` or starts with `CRUCIBLE_`.
        runtime_env: more of Ray's runtime env for the workers (`pip`, `working_dir`, ...).
        namespace: the Ray namespace of the run's actors.
        max_resubmits: how often a batch whose worker was lost for good is sent again.
    """

    address: str | None = "auto"
    num_workers: int | None = None
    resources: Mapping[str, float] = attrs.field(factory=lambda: {"CPU": 1.0})
    concurrency: int | None = None
    batch_size: int = 16
    env: Sequence[str] | None = None
    runtime_env: Mapping[str, Any] = attrs.field(factory=dict)
    namespace: str | None = None
    max_resubmits: int = 3

    def __attrs_post_init__(self) -> None:
        _positive_int_or_none("num_workers", self.num_workers)
        _positive_int_or_none("concurrency", self.concurrency)
        _positive_int_or_none("batch_size", self.batch_size)
        resubmits: object = self.max_resubmits  # as given, untyped
        if (
            isinstance(resubmits, bool)
            or not isinstance(resubmits, int)
            or resubmits < 0
        ):
            raise ExperimentDefinitionError(
                f"RayExecutor max_resubmits must be an integer >= 0, got {self.max_resubmits!r}",
                field="run.executor.max_resubmits",
            )
        amounts: Iterable[tuple[object, object]] = (
            self.resources.items()
        )  # as given, untyped
        for key, value in amounts:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value < 0
            ):
                raise ExperimentDefinitionError(
                    f"RayExecutor resources must map names to amounts >= 0, got {key!r}: {value!r}",
                    field="run.executor.resources",
                )

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings for the run manifest (never the environment's values)."""
        return {
            "kind": "ray",
            "address": self.address,
            "num_workers": self.num_workers,
            "resources": dict(self.resources),
            "concurrency": self.concurrency,
            "batch_size": self.batch_size,
        }

    def secrets(self) -> dict[str, str]:
        """The environment variables (name → value) every worker gets from this process's environment."""
        if self.env is None:
            return {k: v for k, v in os.environ.items() if _SECRET_NAME.search(k)}
        return {k: os.environ[k] for k in self.env if k in os.environ}

    async def execute(
        self,
        *,
        experiment: Experiment,
        items: Sequence[HarnessItem],
        targets: Mapping[str, Any],
        scorer: Scorer,
        run_id: str,
        attribution: Mapping[str, Any],
        queue: deque[Task],
        guard: BudgetGuard,
        prices: Mapping[str, float | None],
        on_record: OnRecord,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run the tasks of `queue` on the cluster; `on_record(condition, reserved, record)` per task.

        Reserves each task's budget before sending it (a task the budget refuses stays pending),
        returns when every sent task came back or was given up on. Tasks left in `queue` are the
        ones not run (budget, `should_stop`).
        """
        from crucible_harness._ray_driver import Driver

        driver = Driver(
            self, experiment=experiment, items=items, targets=targets, scorer=scorer,
            run_id=run_id, attribution=attribution,
        )  # fmt: skip
        finished = False
        try:
            await driver.run(queue, guard, prices, on_record, should_stop)
            finished = True
        finally:
            driver.close(keep=finished)


def reemit(captured: Sequence[tuple[Any, ...]], attribution: Mapping[str, Any]) -> None:
    """Emit workers' telemetry events in this process, in the run's context, so its handlers see them."""
    for name, _time, condition, item, repeat, measurements, metadata in captured:
        with context.use(**attribution, condition=condition, item=item, repeat=repeat):
            events.emit(tuple(name), measurements, metadata)

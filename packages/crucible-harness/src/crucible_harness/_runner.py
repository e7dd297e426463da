"""Running an experiment: plan it, execute it durably within the budget, record it, report it."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from crucible_core import context, events
from crucible_core._async import run_sync
from crucible_core.ids import new_id
from crucible_harness._execute import _prompt
from crucible_harness._execute import execute_tasks as _execute
from crucible_harness._experiment import (
    Experiment,
    HarnessItem,
    references_of,
)
from crucible_harness._plan import (
    Estimate,
    _build_targets,
    _estimate,
    _price_per_task,
    resolve_items,
)
from crucible_harness._record import (
    RunResult,
    RunStatus,
    _finish,
    _git_commit,
    _status_record,
    _total,
    _versions,
    _write_error,
    _write_failure_reason,
)
from crucible_harness._scoring import Scorer, resolve_scorer
from crucible_harness._sequential import SequentialMonitor
from crucible_harness._store import RunStore
from crucible_harness.exceptions import (
    BudgetStopError,
    ExperimentDefinitionError,
    RunDirectoryError,
)


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
    # written before any task: it reserves the space the final status (a failure, a sequential
    # summary) needs on a disk that fills up
    store.write_status(_status_record(store, "running", total), in_place=False,
                       reserve=0 if monitor is None else monitor.summary_size())  # fmt: skip

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
        extra: dict[str, Any] = {} if reason is None else {"reason": reason}
        if monitor is not None:  # read back by `load_run`, shown by the viewer
            extra["sequential"] = monitor.summary().to_dict()
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

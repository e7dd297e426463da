"""Recording a run: task records into the run directory once each, its status, reading it back."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from crucible_core.render import RenderMixin, Table, View
from crucible_harness._budget import BudgetGuard
from crucible_harness._experiment import (
    Condition,
    Experiment,
)
from crucible_harness._plan import Estimate
from crucible_harness._sequential import SequentialMonitor, SequentialStop
from crucible_harness._store import STATUS, RunStore
from crucible_harness.exceptions import (
    RunDirectoryError,
    RunWriteError,
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


@attrs.define(frozen=True, kw_only=True)
class RunResult(RenderMixin):
    """A finished (or stopped) run: where it is, how it ended, every task record, the analysis."""

    run_id: str
    """The run's id."""
    run_dir: Path
    """The run directory (resume from it)."""
    status: RunStatus
    """`complete`, `stopped` (early, by the sequential rule: a finished run with its answer), `budget`
    (stopped before crossing it), `interrupted`, `failed`, `dry-run`, `declined`."""
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
    """Why the run stopped, when it did not finish (or the sequential rule stopped it)."""
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
    sequential = None if monitor is None else monitor.summary()
    state = _with_sequential(run_state(store, status), sequential)
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


def _with_sequential(
    state: dict[str, Any], sequential: SequentialStop | None
) -> dict[str, Any]:
    """The run state the analysis and reports read, with a sequential run's stopping summary."""
    if sequential is not None:
        state["sequential"] = sequential.to_dict()
        state["reason"] = state.get("reason") or sequential.reason
    return state


def _read_sequential(store: RunStore) -> SequentialStop | None:
    """The stopping summary a sequential run wrote into `status.json` at its end, if any."""
    from crucible_core.exceptions import SerializationError

    written = (store.read_status() or {}).get("sequential")
    if written is None:
        return None
    try:
        return SequentialStop.from_dict(written)
    except SerializationError as err:
        path = store.path / STATUS
        raise RunDirectoryError(
            f"{path} holds a damaged sequential summary ({err.message}); was it edited? "
            "resume the run to write it again (a stopped run sends nothing more), or delete "
            'its "sequential" entry to analyse the records without it',
            path=str(path),
        ) from err


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

    A sequential run's stopping summary (`RunResult.sequential`) is read from `status.json`,
    where the run wrote it when it ended.

    Raises:
        RunDirectoryError: not a run directory, or unreadable, or its sequential summary is
            damaged.
        RunRecordsError: the task log holds damaged, foreign or conflicting records (run
            `crucible repair RUN_DIR`).
    """
    from crucible_harness._analysis import analyse
    from crucible_harness._experiment import analysis_config
    from crucible_harness._report import write_reports

    store = RunStore.open(Path(run_dir))
    manifest = store.manifest
    exp = manifest["experiment"]
    try:
        config = analysis_config(exp["analysis"])
    except (KeyError, TypeError, ValueError) as err:
        raise RunDirectoryError(
            f"{store.path / 'manifest.json'} has no readable analysis settings ({err}); "
            "was it edited? restore it, or analyse the records with `analyse`",
            path=str(store.path),
        ) from err
    conditions = [c["name"] for c in exp["conditions"]]
    total = len(conditions) * len(manifest["items"]) * int(exp["repeats"])
    status, reason = _state(store, total)
    sequential = _read_sequential(store)
    analysis = analyse(
        tuple(store.records), conditions=conditions, config=config,
        manifest={**manifest, "run_state": _with_sequential(run_state(store, status, reason), sequential)},
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
                     pending=max(0, total - len(store.records)), analysis=analysis, reports=reports, reason=reason,
                     sequential=sequential)  # fmt: skip


@attrs.define(frozen=True, kw_only=True)
class RunProgress(RenderMixin):
    """Where a run directory stands, read without the experiment definition or any analysis."""

    run_id: str
    """The run's id."""
    status: str
    """The last status written (`complete`, `stopped`, `budget`, `interrupted`, …; `running` while in progress)."""
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
    """Why the run stopped, when it did not finish (`failed`, `interrupted`) or stopped early (`stopped`)."""

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


class Recorder:
    """The driver's one way into the run directory: each task key is recorded once.

    Both executors hand every finished task here. A record whose key is already recorded (this
    session or an earlier one: a task Ray ran again after its worker died, a result delivered
    twice) is dropped and logged; its cost is still settled against the budget, since it was paid.
    """

    def __init__(
        self,
        store: RunStore,
        guard: BudgetGuard,
        *,
        on_recorded: Callable[[dict[str, Any]], None],
    ) -> None:
        self.store, self.guard, self.on_recorded = store, guard, on_recorded
        self.keys: set[str] = set(store.completed_keys())
        self.dropped = 0

    def __call__(
        self, condition: Condition, reserved: float, record: dict[str, Any]
    ) -> None:
        self.guard.settle(condition.name, reserved, float(record.get("cost") or 0.0))
        key = str(record["key"])
        if key in self.keys:
            self.dropped += 1
            logging.getLogger("crucible_harness").warning(
                "dropped a second result for task %r: it is already recorded", key
            )
            return
        self.keys.add(key)
        self.on_recorded(self.store.add(record))

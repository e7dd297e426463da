"""The in-process event bus, modelled on Erlang's `:telemetry`, and the one catalogue of event names.

Packages emit events; crucible-telemetry (or your own handler) captures them.

- [`emit`][crucible_core.events.emit]`(name, measurements, metadata)` calls every handler attached to a
  prefix of `name`, synchronously, in the emitter's thread and context, so a handler can read
  [`crucible_core.context.current`][crucible_core.context.current] to attribute the event. With no
  handler attached, `emit` returns after one dictionary look-up.
- [`attach`][crucible_core.events.attach]`(handler_id, prefixes, handler)` /
  [`detach`][crucible_core.events.detach]`(handler_id)`.
- [`span`][crucible_core.events.span]`(prefix, metadata)` emits `prefix + ("start",)`, then
  `("stop",)` with a monotonic `duration` in seconds, or `("exception",)` if the body raised.
- A handler that raises is detached and reported (logged on the `crucible` logger and listed by
  [`failed_handlers`][crucible_core.events.failed_handlers]); the emitter never sees its error.

Names are tuples of strings. Every name crucible emits is in [`CATALOGUE`][crucible_core.events.CATALOGUE]
with its meaning; your own events may use any name outside the `("crucible", …)` namespace.

Examples:
    >>> from crucible_core import events
    >>> seen = []
    >>> events.attach("doc", [("crucible", "llm")], lambda n, m, md: seen.append((n[-1], m)))
    >>> events.emit(events.LLM_REQUEST_STOP, {"duration": 0.25}, {"model": "sim:gpt-4"})
    >>> seen
    [('stop', {'duration': 0.25})]
    >>> events.detach("doc")
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias

import attrs

from crucible_core.exceptions import ValidationError

__all__ = (
    "CATALOGUE",
    "EventName",
    "Handler",
    "Span",
    "attach",
    "attached",
    "detach",
    "emit",
    "failed_handlers",
    "listening",
    "span",
    # catalogue names
    "LLM_REQUEST_START",
    "LLM_REQUEST_STOP",
    "LLM_REQUEST_EXCEPTION",
    "LLM_REQUEST_RETRY",
    "ENSEMBLE_PREDICT_START",
    "ENSEMBLE_PREDICT_STOP",
    "ENSEMBLE_PREDICT_EXCEPTION",
    "ENSEMBLE_VOTE_STOP",
    "HEDGING_REQUEST_START",
    "HEDGING_REQUEST_STOP",
    "HEDGING_REQUEST_EXCEPTION",
    "HEDGING_HEDGE_FIRED",
    "HEDGING_HEDGE_WON",
    "HEDGING_HEDGE_CANCELLED",
    "HEDGING_BUDGET_EXHAUSTED",
    "TRACE_EVENT_CREATED",
    "TRACE_CHAIN_CREATED",
    "DATASET_LOAD_START",
    "DATASET_LOAD_STOP",
    "DATASET_LOAD_EXCEPTION",
    "DATASET_DOWNLOAD_STOP",
    "DATASET_EVALUATE_STOP",
    "HARNESS_RUN_START",
    "HARNESS_RUN_STOP",
    "HARNESS_RUN_EXCEPTION",
    "HARNESS_TASK_START",
    "HARNESS_TASK_STOP",
    "HARNESS_TASK_EXCEPTION",
    "HARNESS_BUDGET_EXCEEDED",
    "HARNESS_CHECKPOINT_WRITTEN",
    "LORA_TRAIN_START",
    "LORA_TRAIN_STOP",
    "LORA_TRAIN_EXCEPTION",
    "LORA_STEP_STOP",
    "LORA_EVAL_STOP",
    "TELEMETRY_MONITOR_ALERT",
)

EventName: TypeAlias = tuple[str, ...]
"""An event name: a tuple of strings, e.g. `("crucible", "llm", "request", "stop")`."""

Handler: TypeAlias = Callable[[EventName, Mapping[str, float], Mapping[str, Any]], None]
"""A handler: called with `(name, measurements, metadata)`; its return value is ignored."""

_logger = logging.getLogger("crucible")

# ---------------------------------------------------------------------------------------------------
# The catalogue

LLM_REQUEST_START: EventName = ("crucible", "llm", "request", "start")
LLM_REQUEST_STOP: EventName = ("crucible", "llm", "request", "stop")
LLM_REQUEST_EXCEPTION: EventName = ("crucible", "llm", "request", "exception")
LLM_REQUEST_RETRY: EventName = ("crucible", "llm", "request", "retry")
ENSEMBLE_PREDICT_START: EventName = ("crucible", "ensemble", "predict", "start")
ENSEMBLE_PREDICT_STOP: EventName = ("crucible", "ensemble", "predict", "stop")
ENSEMBLE_PREDICT_EXCEPTION: EventName = ("crucible", "ensemble", "predict", "exception")
ENSEMBLE_VOTE_STOP: EventName = ("crucible", "ensemble", "vote", "stop")
HEDGING_REQUEST_START: EventName = ("crucible", "hedging", "request", "start")
HEDGING_REQUEST_STOP: EventName = ("crucible", "hedging", "request", "stop")
HEDGING_REQUEST_EXCEPTION: EventName = ("crucible", "hedging", "request", "exception")
HEDGING_HEDGE_FIRED: EventName = ("crucible", "hedging", "hedge", "fired")
HEDGING_HEDGE_WON: EventName = ("crucible", "hedging", "hedge", "won")
HEDGING_HEDGE_CANCELLED: EventName = ("crucible", "hedging", "hedge", "cancelled")
HEDGING_BUDGET_EXHAUSTED: EventName = ("crucible", "hedging", "budget", "exhausted")
TRACE_EVENT_CREATED: EventName = ("crucible", "trace", "event", "created")
TRACE_CHAIN_CREATED: EventName = ("crucible", "trace", "chain", "created")
DATASET_LOAD_START: EventName = ("crucible", "dataset", "load", "start")
DATASET_LOAD_STOP: EventName = ("crucible", "dataset", "load", "stop")
DATASET_LOAD_EXCEPTION: EventName = ("crucible", "dataset", "load", "exception")
DATASET_DOWNLOAD_STOP: EventName = ("crucible", "dataset", "download", "stop")
DATASET_EVALUATE_STOP: EventName = ("crucible", "dataset", "evaluate", "stop")
HARNESS_RUN_START: EventName = ("crucible", "harness", "run", "start")
HARNESS_RUN_STOP: EventName = ("crucible", "harness", "run", "stop")
HARNESS_RUN_EXCEPTION: EventName = ("crucible", "harness", "run", "exception")
HARNESS_TASK_START: EventName = ("crucible", "harness", "task", "start")
HARNESS_TASK_STOP: EventName = ("crucible", "harness", "task", "stop")
HARNESS_TASK_EXCEPTION: EventName = ("crucible", "harness", "task", "exception")
HARNESS_BUDGET_EXCEEDED: EventName = ("crucible", "harness", "budget", "exceeded")
HARNESS_CHECKPOINT_WRITTEN: EventName = ("crucible", "harness", "checkpoint", "written")
LORA_TRAIN_START: EventName = ("crucible", "lora", "train", "start")
LORA_TRAIN_STOP: EventName = ("crucible", "lora", "train", "stop")
LORA_TRAIN_EXCEPTION: EventName = ("crucible", "lora", "train", "exception")
LORA_STEP_STOP: EventName = ("crucible", "lora", "step", "stop")
LORA_EVAL_STOP: EventName = ("crucible", "lora", "eval", "stop")
TELEMETRY_MONITOR_ALERT: EventName = ("crucible", "telemetry", "monitor", "alert")

CATALOGUE: Mapping[EventName, str] = {
    LLM_REQUEST_START: "a model request was sent (metadata: model, provider, request_id, attempt)",
    LLM_REQUEST_STOP: "a model answered (duration, input_tokens, output_tokens, cost)",
    LLM_REQUEST_EXCEPTION: "a model request failed for good (duration; metadata: error_type, error)",
    LLM_REQUEST_RETRY: "a model request failed and will be retried (wait; metadata: attempt, error)",
    ENSEMBLE_PREDICT_START: "an ensemble started a prediction (metadata: strategy, models)",
    ENSEMBLE_PREDICT_STOP: "an ensemble finished a prediction (duration, cost, models_called)",
    ENSEMBLE_PREDICT_EXCEPTION: "an ensemble prediction failed (duration)",
    ENSEMBLE_VOTE_STOP: "an ensemble vote was counted (consensus, votes; metadata: answer, method)",
    HEDGING_REQUEST_START: "a hedged request started (metadata: policy, delay)",
    HEDGING_REQUEST_STOP: "a hedged request finished (duration, hedges_fired, cost)",
    HEDGING_REQUEST_EXCEPTION: "a hedged request failed (duration)",
    HEDGING_HEDGE_FIRED: "a backup request was sent (delay)",
    HEDGING_HEDGE_WON: "a backup answered first (duration, delay)",
    HEDGING_HEDGE_CANCELLED: "a losing request was cancelled",
    HEDGING_BUDGET_EXHAUSTED: "a hedge was not sent because the hedge budget was spent",
    TRACE_EVENT_CREATED: "a reasoning event was added to a chain (confidence; metadata: type, chain_id)",
    TRACE_CHAIN_CREATED: "a reasoning chain was created (metadata: chain_id, name)",
    DATASET_LOAD_START: "a dataset load started (metadata: name, split)",
    DATASET_LOAD_STOP: "a dataset was loaded (duration, items; metadata: name, revision, cached)",
    DATASET_LOAD_EXCEPTION: "a dataset load failed (duration)",
    DATASET_DOWNLOAD_STOP: "a dataset file was downloaded (duration, bytes)",
    DATASET_EVALUATE_STOP: "predictions were scored (duration, items, accuracy)",
    HARNESS_RUN_START: "an experiment run started (metadata: experiment, run_dir)",
    HARNESS_RUN_STOP: "an experiment run finished (duration, tasks, cost)",
    HARNESS_RUN_EXCEPTION: "an experiment run failed (duration)",
    HARNESS_TASK_START: "a condition × item × repeat task started",
    HARNESS_TASK_STOP: "a task finished (duration, cost; metadata: correct)",
    HARNESS_TASK_EXCEPTION: "a task failed for good (duration; metadata: error_type)",
    HARNESS_BUDGET_EXCEEDED: "a run stopped before crossing its budget (spent, limit)",
    HARNESS_CHECKPOINT_WRITTEN: "finished tasks were written durably (tasks)",
    LORA_TRAIN_START: "LoRA training started (metadata: backend, base_model)",
    LORA_TRAIN_STOP: "LoRA training finished (duration, steps, final_loss)",
    LORA_TRAIN_EXCEPTION: "LoRA training failed (duration)",
    LORA_STEP_STOP: "one optimisation step finished (loss, step, learning_rate)",
    LORA_EVAL_STOP: "an adapter was evaluated (duration, metric values)",
    TELEMETRY_MONITOR_ALERT: "a monitor detected a degradation (statistic, threshold, change; metadata: metric, method)",
}
"""Every event name crucible emits, with what it means and its main measurements."""

# ---------------------------------------------------------------------------------------------------
# Registry: copy-on-write under a lock, so `emit` reads without locking.


@attrs.define(frozen=True)
class _Attached:
    handler_id: str
    prefixes: tuple[EventName, ...]
    handler: Handler


_lock = threading.Lock()
_attached: dict[str, _Attached] = {}
_routes: dict[EventName, tuple[_Attached, ...]] = {}
_failed: dict[str, str] = {}


_generation = 0


def _route(name: EventName) -> tuple[_Attached, ...]:
    generation = _generation
    found = tuple(
        a
        for a in list(_attached.values())
        if any(name[: len(p)] == p for p in a.prefixes)
    )
    with _lock:
        if generation == _generation:  # nothing attached or detached meanwhile
            _routes[name] = found
    return found


def _changed() -> None:
    global _generation
    _generation += 1
    _routes.clear()


def _check_name(name: object, what: str) -> EventName:
    if not isinstance(name, tuple) or not all(isinstance(p, str) and p for p in name):
        raise ValidationError(
            f"{what} must be a tuple of non-empty strings such as ('crucible', 'llm'), got {name!r}",
            name=name,
        )
    return name


def attach(handler_id: str, prefixes: Iterable[EventName], handler: Handler) -> None:
    """Call `handler` for every event whose name starts with one of `prefixes`.

    Args:
        handler_id: a unique name for this attachment, used to detach it.
        prefixes: event-name prefixes; `()` matches every event.
        handler: called as `handler(name, measurements, metadata)` in the emitter's thread.

    Raises:
        ValidationError: if `handler_id` is already attached or a prefix is not a tuple of strings.
    """
    prefix_tuple = tuple(
        _check_name(p, "an event prefix") if p else () for p in prefixes
    )
    if not prefix_tuple:
        raise ValidationError(
            "attach() needs at least one prefix; pass [()] to receive every event",
            handler_id=handler_id,
        )
    with _lock:
        if handler_id in _attached:
            raise ValidationError(
                f"a handler is already attached as {handler_id!r}; detach it first or pick another id",
                handler_id=handler_id,
            )
        _attached[handler_id] = _Attached(handler_id, prefix_tuple, handler)
        _changed()
        _failed.pop(handler_id, None)


def detach(handler_id: str) -> bool:
    """Detach the handler attached as `handler_id`; returns whether one was attached."""
    with _lock:
        removed = _attached.pop(handler_id, None) is not None
        if removed:
            _changed()
    return removed


def attached() -> dict[str, tuple[EventName, ...]]:
    """The attached handler ids and the prefixes each listens to."""
    return {a.handler_id: a.prefixes for a in list(_attached.values())}


def failed_handlers() -> dict[str, str]:
    """Handlers detached because they raised, with the error each raised."""
    return dict(_failed)


def _fail(entry: _Attached, name: EventName, err: BaseException) -> None:
    with _lock:
        if _attached.get(entry.handler_id) is entry:
            del _attached[entry.handler_id]
            _changed()
    _failed[entry.handler_id] = f"{type(err).__name__}: {err}"
    _logger.error(
        "event handler %r raised on %r and was detached",
        entry.handler_id,
        name,
        exc_info=err,
    )


_EMPTY: Mapping[str, Any] = {}


def listening(name: EventName) -> bool:
    """Whether any attached handler would receive an event called `name`.

    For emitters whose measurements cost something to gather: `emit` itself already returns at
    once when nobody listens, but the dicts passed to it are built before the call.

    Examples:
        >>> from crucible_core import events
        >>> events.listening(("crucible", "example", "stop"))
        False
    """
    route = _routes.get(name)
    if route is None:
        if not _attached:
            return False
        route = _route(name)
    return bool(route)


def emit(
    name: EventName,
    measurements: Mapping[str, float],
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Send one event to every handler attached to a prefix of `name`.

    Handlers run synchronously in the caller's thread and context. A handler that raises is
    detached and logged; the error never reaches the caller.
    """
    route = _routes.get(name)
    if route is None:
        if not _attached:
            return
        route = _route(name)
    if not route:
        return
    meta = _EMPTY if metadata is None else metadata
    for entry in route:
        try:
            entry.handler(name, measurements, meta)
        except Exception as err:  # a handler/thread error must not escape here
            _fail(entry, name, err)


@attrs.define
class Span:
    """What a [`span`][crucible_core.events.span] body can add to its stop event."""

    measurements: dict[str, float] = attrs.Factory(dict)
    """Extra measurements for the stop event (e.g. tokens)."""
    metadata: dict[str, Any] = attrs.Factory(dict)
    """Extra metadata for the stop/exception event (e.g. the model's answer id)."""


@contextmanager
def span(
    prefix: EventName, metadata: Mapping[str, Any] | None = None
) -> Iterator[Span]:
    """Emit `prefix + ("start",)` now and `("stop",)` or `("exception",)` when the block ends.

    `start` carries `monotonic_time` and `system_time`; `stop` and `exception` carry `duration`
    (seconds, monotonic) plus what the body put in the yielded [`Span`][crucible_core.events.Span];
    `exception` adds `error_type` and `error` to the metadata. The exception is re-raised.
    """
    _check_name(prefix, "a span prefix")
    base = dict(metadata or {})
    start = time.perf_counter()
    emit(
        (*prefix, "start"), {"monotonic_time": start, "system_time": time.time()}, base
    )
    handle = Span()
    try:
        yield handle
    except BaseException as err:
        emit(
            (*prefix, "exception"),
            {"duration": time.perf_counter() - start, **handle.measurements},
            {
                **base,
                **handle.metadata,
                "error_type": type(err).__name__,
                "error": str(err),
            },
        )
        raise
    emit(
        (*prefix, "stop"),
        {"duration": time.perf_counter() - start, **handle.measurements},
        {**base, **handle.metadata},
    )

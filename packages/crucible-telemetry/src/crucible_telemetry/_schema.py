"""The enriched event schema (versioned) and the enrichment of captured events.

A captured event is seven values taken in the emitter's thread (kept cheap on purpose):
`seq, monotonic_ns, timestamp_ns, name, measurements, metadata, context_key`, where `context_key`
is `id()` of the `crucible_core.context.Context` in force, kept alive in the sink's `contexts`
table. They are added to one flat list with a single `list.extend(tuple)`, which is atomic under
the GIL, so rows from several threads never interleave; and since the temporary tuple is freed at
once, capture leaves no new object for the garbage collector to track: millions of captured events
add no GC work. Column `k` of the flat list is `flat[k::WIDTH]`. Enrichment turns a batch
of them into columns, computing latency, cost, success, model, provider and tokens; it runs when
events are read, flushed to a persistent store or exported, never in the emitter's thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import orjson

from crucible_core.context import Context
from crucible_telemetry._experiment import Experiment

__all__ = (
    "COLUMNS",
    "JSON_COLUMNS",
    "SCHEMA_VERSION",
    "Columns",
    "Flat",
    "WIDTH",
    "empty_columns",
    "enrich",
    "json_dumps",
    "json_loads",
)

SCHEMA_VERSION: Final = 1
"""Version of the event schema in stores and exports; bumped on any incompatible change."""

WIDTH: Final = 7
"""Values per captured event in a flat buffer."""

Flat: TypeAlias = Sequence[Any]
"""Captured events, `WIDTH` values each, one after the other."""
Columns: TypeAlias = dict[str, list[Any]]

COLUMNS: Final[Mapping[str, str]] = {
    "event_id": "string: `<experiment_id>-<seq>`, unique in a store",
    "experiment_id": "string",
    "experiment_name": "string",
    "seq": "int64: capture order within the experiment, from 0",
    "name": "string: the dotted event name, e.g. `crucible.llm.request.stop`",
    "timestamp_ns": "int64: wall-clock time of capture, nanoseconds since the Unix epoch (UTC)",
    "monotonic_ns": "int64: `time.perf_counter_ns()` at capture; differences are exact durations",
    "condition": "string: the context's condition, else the experiment's",
    "repeat": "int64 or null: the context's repeat",
    "item": "string or null: the context's item id",
    "tags": "list<string>: the experiment's tags",
    "latency_ms": "float64 or null: `duration` (seconds) × 1000, or a `latency_ms` measurement",
    "cost_usd": "float64 or null: the event's `cost`, else priced from tokens and model",
    "success": "bool or null: false for `exception` events, true for `stop` events",
    "model": "string or null: metadata `model`",
    "provider": "string or null: metadata `provider`, else the prefix of a `provider:model` string",
    "prompt_tokens": "int64 or null: `input_tokens` (or `prompt_tokens`)",
    "completion_tokens": "int64 or null: `output_tokens` (or `completion_tokens`)",
    "measurements": "JSON object: every measurement as emitted",
    "metadata": "JSON object: every metadata value as emitted",
    "context": "JSON object: the context's extra fields",
}
"""Every column of an enriched event, in order, with its type and meaning (schema version 1)."""

JSON_COLUMNS: Final = ("measurements", "metadata", "context")
"""Columns holding JSON objects (dicts in memory, JSON text in files and databases)."""


def empty_columns() -> Columns:
    """A dict of empty lists, one per column."""
    return {c: [] for c in COLUMNS}


def _default(value: Any) -> Any:
    # Values JSON cannot hold (an exception object, a set, a custom class) are written as their
    # repr(): capture must never fail or drop an event because of one metadata value.
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return tolist()
    return repr(value)


_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def json_dumps(value: Any) -> str:
    """JSON text of a captured mapping; values JSON cannot hold become their `repr()`."""
    return orjson.dumps(value, default=_default, option=_OPTS).decode()


def json_loads(text: str | bytes | None) -> Any:
    """Parse JSON text written by [`json_dumps`][crucible_telemetry._schema.json_dumps]."""
    if text is None:
        return {}
    return orjson.loads(text)


@functools.cache
def _pricer() -> Callable[[str, int, int], float | None] | None:
    try:
        from crucible_core.models import Usage, cost
    except (
        ImportError
    ):  # pragma: no cover - only with a crucible-core that has no pricing table
        return None

    def price(model: str, prompt: int, completion: int) -> float | None:
        return cost(model, Usage(input_tokens=prompt, output_tokens=completion))

    return price


_NUMBER = (int, float)


def _num_col(values: list[Any], scale: float = 1.0) -> list[float | None]:
    return [
        v * scale if type(v) in _NUMBER else (float(v) * scale if _is_num(v) else None)
        for v in values
    ]


def _int_col(values: list[Any]) -> list[int | None]:
    return [v if type(v) is int else (int(v) if _is_num(v) else None) for v in values]


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fallback(
    values: list[Any],
    source: list[Mapping[str, Any]],
    key: str,
    *,
    convert: bool = True,
) -> None:
    """Fill missing values from `source[k][key]`, where present (in place)."""
    if values.count(None) == 0:
        return
    for k, value in enumerate(values):
        if value is None and key in source[k]:
            found = source[k][key]
            values[k] = _num_col([found])[0] if convert else found


def _json_col(values: list[Mapping[str, Any]]) -> list[str]:
    dumps, default, opts = orjson.dumps, _default, _OPTS
    return [dumps(v, default=default, option=opts).decode() for v in values]


def enrich(
    experiment: Experiment,
    flat: Flat,
    contexts: Mapping[int, Context],
    *,
    json_text: bool = False,
) -> Columns:
    """The enriched columns of captured events (schema version 1).

    Args:
        experiment: the experiment the events belong to.
        flat: captured events, `WIDTH` values each.
        contexts: the contexts the events' `context_key`s name.
        json_text: give the JSON columns as JSON text (for files and databases) instead of dicts.
    """
    if not flat:
        return empty_columns()
    seq, mono, wall, names, meas, meta, ctx_ids = (
        list(flat[k::WIDTH]) for k in range(WIDTH)
    )
    n = len(seq)
    exp_id = experiment.id
    dotted = {nm: ".".join(nm) for nm in set(names)}
    outcome = {
        nm: (False if nm[-1] == "exception" else (True if nm[-1] == "stop" else None))
        for nm in dotted
    }
    # Contexts are shared by every event emitted under one `context.use` block: derive once each.
    by_id = {i: contexts[i] for i in set(ctx_ids)}
    cond = {
        i: (c.condition if c.condition is not None else experiment.condition)
        for i, c in by_id.items()
    }
    repeat = {i: c.repeat for i, c in by_id.items()}
    item = {i: c.item for i, c in by_id.items()}
    extra = {i: dict(c.extra) for i, c in by_id.items()}
    extra_text = {i: json_dumps(e) for i, e in extra.items()} if json_text else {}

    latency = _num_col([m.get("duration") for m in meas], 1000.0)
    _fallback(latency, meas, "latency_ms")
    raw_prompt = [m.get("input_tokens") for m in meas]
    _fallback(raw_prompt, meas, "prompt_tokens", convert=False)
    prompt = _int_col(raw_prompt)
    raw_completion = [m.get("output_tokens") for m in meas]
    _fallback(raw_completion, meas, "completion_tokens", convert=False)
    completion = _int_col(raw_completion)
    cost = _num_col([m.get("cost") for m in meas])
    _fallback(cost, meas, "cost_usd")
    model: list[str | None] = [md.get("model") for md in meta]
    provider: list[str | None] = [md.get("provider") for md in meta]
    for column in (model, provider):
        if set(map(type, column)) - {str}:  # anything but strings becomes None
            column[:] = [v if type(v) is str else None for v in column]
    price = None
    todo = [k for k in range(n) if provider[k] is None or cost[k] is None]
    for k in todo:
        mk = model[k]
        if mk is None:
            continue
        if provider[k] is None and ":" in mk:
            provider[k] = mk.split(":", 1)[0]
        if cost[k] is None and (prompt[k] or completion[k]):
            price = price or _pricer()
            if price is not None:
                cost[k] = price(mk, prompt[k] or 0, completion[k] or 0)
    success = [outcome[nm] for nm in names]
    flagged = [md.get("success") for md in meta]
    if flagged.count(None) != n:
        success = [
            f if type(f) is bool else s for f, s in zip(flagged, success, strict=True)
        ]
    tags = list(experiment.tags)
    return {
        "event_id": [f"{exp_id}-{s}" for s in seq],
        "experiment_id": [exp_id] * n,
        "experiment_name": [experiment.name] * n,
        "seq": seq,
        "name": [dotted[nm] for nm in names],
        "timestamp_ns": wall,
        "monotonic_ns": mono,
        "condition": [cond[i] for i in ctx_ids],
        "repeat": [repeat[i] for i in ctx_ids],
        "item": [item[i] for i in ctx_ids],
        "tags": [tags] * n,
        "latency_ms": latency,
        "cost_usd": cost,
        "success": success,
        "model": model,
        "provider": provider,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "measurements": _json_col(meas) if json_text else meas,
        "metadata": _json_col(meta) if json_text else meta,
        "context": [extra_text[i] for i in ctx_ids]
        if json_text
        else [extra[i] for i in ctx_ids],
    }


def rows_from_text(
    names: Sequence[str], rows: Iterable[Sequence[Any]], *, json_text: bool = False
) -> Columns:
    """Columns from database rows: JSON columns parsed (or kept as text), `tags` as lists."""
    out: Columns = {n: [] for n in names}
    lists = [out[n] for n in names]
    for row in rows:
        for target, value in zip(lists, row, strict=True):
            target.append(value)
    for c in JSON_COLUMNS:
        if c in out:
            if json_text:
                out[c] = [v if isinstance(v, str) else json_dumps(v) for v in out[c]]
            else:
                out[c] = [v if isinstance(v, dict) else json_loads(v) for v in out[c]]
    if "tags" in out:
        out["tags"] = [
            list(v) if isinstance(v, list | tuple) else json_loads(v)
            for v in out["tags"]
        ]
    if "success" in out:
        out["success"] = [None if v is None else bool(v) for v in out["success"]]
    return out

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
import itertools
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import numpy as np
import orjson

from crucible_core.context import Context
from crucible_telemetry._experiment import TelemetryExperiment

__all__ = (
    "COLUMNS",
    "JSON_COLUMNS",
    "SCHEMA_VERSION",
    "WIDTH",
    "Batch",
    "Columns",
    "Flat",
    "empty_columns",
    "enrich",
    "json_dumps",
    "json_loads",
    "joined_json",
    "json_texts",
    "valid_text",
    "valid_texts",
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
    "repeat": "int64 or null: the context's repeat (null beyond the int64 range)",
    "item": "string or null: the context's item id",
    "tags": "list<string>: the experiment's tags",
    "latency_ms": "float64 or null: `duration` (seconds) × 1000, or a `latency_ms` measurement",
    "cost_usd": "float64 or null: the event's `cost`, else priced from tokens and model",
    "success": "bool or null: false for `exception` events, true for `stop` events",
    "model": "string or null: metadata `model`",
    "provider": "string or null: metadata `provider`, else the prefix of a `provider:model` string",
    "prompt_tokens": "int64 or null: `input_tokens` (or `prompt_tokens`), if a finite int64",
    "completion_tokens": "int64 or null: `output_tokens` (or `completion_tokens`), likewise",
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
    """JSON text of a captured mapping; values JSON cannot hold become their `repr()`.

    Never raises: what orjson refuses (an integer beyond 64 bits, a key of an odd type) is written
    by the standard library's encoder, with NaN and infinities as `null` as orjson writes them.
    """
    try:
        return orjson.dumps(value, default=_default, option=_OPTS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(
            _portable(value), separators=(",", ":"), ensure_ascii=False, default=repr
        )


def _portable(value: Any) -> Any:
    """`value` with what only orjson would handle converted: keys to text, NaN/inf to None."""
    if isinstance(value, Mapping):
        return {_key(k): _portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_portable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return valid_text(value)
    if value is None or isinstance(value, int):
        return value
    return _portable(_default(value))


def _key(key: Any) -> str:
    if isinstance(key, str):
        return valid_text(key)
    if isinstance(key, bool) or key is None:
        return orjson.dumps(key).decode()
    return valid_text(str(key))


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """`text` with each lone surrogate (which UTF-8 cannot encode) replaced by U+FFFD.

    Python strings can hold them (`surrogateescape` decoding, a JSON escape of one in
    model output); files and databases cannot, and one such string once made every export of the
    experiment, and every write of its batch, fail.
    """
    return _SURROGATE.sub("\ufffd", text)


def valid_texts(values: list[Any]) -> list[Any]:
    """[`valid_text`][crucible_telemetry._schema.valid_text] on the strings of `values`.

    The same list when no string needs it (checked over the distinct values, in C).
    """
    distinct = [v for v in set(values) if type(v) is str]
    try:
        "".join(distinct).encode()
    except UnicodeEncodeError:
        return [valid_text(v) if type(v) is str else v for v in values]
    return values


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
_NUMERIC_TYPES = frozenset({int, float})


def _num_col(values: list[Any], scale: float = 1.0) -> list[float | None]:
    """Numbers (not bools) as floats times `scale`; anything else, or a float overflow, is None."""
    return _num_col_complete(values, scale)[0]


def _num_col_complete(
    values: list[Any], scale: float = 1.0
) -> tuple[list[float | None], bool]:
    """[`_num_col`][crucible_telemetry._schema._num_col], and whether it is sure no value is None."""
    kinds = set(map(type, values))
    if kinds <= _NUMERIC_TYPES:  # the common case: all numbers, no None, no bool
        if scale == 1.0 and kinds == {float}:
            return values, True
        try:
            with np.errstate(over="ignore"):
                return (np.asarray(values, dtype=np.float64) * scale).tolist(), True
        except OverflowError:  # an int beyond float range: value by value below
            pass
    return [_float(v, scale) for v in values], False


def _float(value: Any, scale: float) -> float | None:
    if not _is_num(value):
        return None
    try:
        return float(value) * scale
    except OverflowError:
        return None


_INT64 = range(-(2**63), 2**63)


def _int_col(values: list[Any]) -> list[int | None]:
    """Token counts: ints kept, finite floats truncated, the rest (and beyond int64) None."""
    if set(map(type, values)) <= {int, type(None)}:
        present = [v for v in values if v is not None] if None in values else values
        if not present or (min(present) in _INT64 and max(present) in _INT64):
            return values
    return [_int(v) for v in values]


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value if value in _INT64 else None
    if _is_num(value) and math.isfinite(value):
        truncated = int(value)
        return truncated if truncated in _INT64 else None
    return None


def _repeat(value: Any) -> int | None:
    """A context's repeat as an int64: integers (numpy's too), finite floats truncated; else None."""
    if isinstance(value, int | float):
        return None if isinstance(value, bool) else _int(value)
    index = getattr(type(value), "__index__", None)  # numpy integers
    return None if index is None else _int(int(index(value)))


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
    if None not in values:
        return
    for k, value in enumerate(values):
        if value is None and key in source[k]:
            found = source[k][key]
            values[k] = _num_col([found])[0] if convert else found


def _numbers(
    source: list[Mapping[str, Any]], key: str, alternate: str, scale: float = 1.0
) -> tuple[list[float | None], bool]:
    """`source[k][key]` as numbers × `scale`, else `source[k][alternate]`; and whether any is None."""
    values, complete = _num_col_complete([m.get(key) for m in source], scale)
    if complete or None not in values:
        return values, False
    _fallback(values, source, alternate)
    return values, None in values


def _counts(
    source: list[Mapping[str, Any]], key: str, alternate: str
) -> list[int | None]:
    """`source[k][key]`, else `source[k][alternate]`, as token counts."""
    raw = [m.get(key) for m in source]
    _fallback(raw, source, alternate, convert=False)
    return _int_col(raw)


def _strings(
    source: list[Mapping[str, Any]], key: str
) -> tuple[list[str | None], bool, bool]:
    """`source[k][key]` where it is a string, else None; whether any is None; whether any is not."""
    values = [m.get(key) for m in source]
    kinds = set(map(type, values))
    if kinds - {str}:  # anything but strings becomes None
        values = [v if type(v) is str else None for v in values]
    return values, kinds != {str}, str in kinds


_SEPARATOR: Final = orjson.Fragment(b"\x00")


def joined_json(values: Sequence[Any]) -> bytes | None:
    """`[v0,NUL,v1,NUL,…]`: every value's JSON text from one `orjson.dumps` call, NUL-separated.

    orjson escapes control characters in strings and keys, so a raw NUL byte can only be one of
    the separators; `None` if the count disagrees (a value embeds an `orjson.Fragment`), in which
    case the caller encodes value by value. One call instead of one per event: ~5x faster, and no
    per-event bytes objects (whose allocation dominated on this machine).
    """
    n = len(values)
    parts: list[Any] = [_SEPARATOR] * (2 * n - 1)
    parts[0::2] = values
    try:  # without options when it can: they cost ~40% of the call
        raw = orjson.dumps(parts)
    except orjson.JSONEncodeError:
        try:
            raw = orjson.dumps(parts, default=_default, option=_OPTS)
        except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits: value by value
            return None
    return raw if raw.count(b"\x00") == n - 1 else None


def json_texts(values: Sequence[Any]) -> list[str]:
    """The JSON text of each value (as [`json_dumps`][crucible_telemetry._schema.json_dumps])."""
    if not values:
        return []
    raw = joined_json(values)
    if raw is None:
        return [json_dumps(v) for v in values]
    return raw[1:-1].decode().split(",\x00,")


@functools.cache
def _cached_pricer() -> Callable[[str, int, int], float | None] | None:
    price = _pricer()
    return None if price is None else functools.lru_cache(maxsize=4096)(price)


class Batch:
    """Captured events split into columns, with the derived ones computed (no JSON yet).

    Shared by [`enrich`][crucible_telemetry._schema.enrich] (Python lists) and the Arrow export,
    which builds its columns from these without going through Python objects per value.
    """

    __slots__ = (
        "completion", "conditions", "context_codes", "contexts", "cost", "experiment", "flagged",
        "items", "latency", "meas", "meta", "model", "mono", "n", "name_codes", "names",
        "outcomes", "prompt", "provider", "repeats", "seq", "wall",
    )  # fmt: skip

    def __init__(
        self,
        experiment: TelemetryExperiment,
        flat: Flat,
        contexts: Mapping[int, Context],
    ) -> None:
        seq, mono, wall, names, meas, meta, ctx_ids = (
            flat[k::WIDTH] if isinstance(flat, list) else list(flat[k::WIDTH])
            for k in range(WIDTH)
        )
        n = len(seq)
        self.experiment, self.n = experiment, n
        self.seq, self.mono, self.wall, self.meas, self.meta = (
            seq,
            mono,
            wall,
            meas,
            meta,
        )
        # Names and contexts repeat: number the distinct ones and derive everything once each.
        name_index: dict[tuple[str, ...], int] = {}
        self.name_codes = [name_index.setdefault(nm, len(name_index)) for nm in names]
        self.names = valid_texts([".".join(nm) for nm in name_index])
        context_index: dict[int, int] = {}
        self.context_codes = [
            context_index.setdefault(i, len(context_index)) for i in ctx_ids
        ]
        self.contexts = [contexts[i] for i in context_index]
        # per distinct context: what its events' condition, repeat and item columns hold
        self.conditions = valid_texts([self.condition(c) for c in self.contexts])
        self.repeats = [_repeat(c.repeat) for c in self.contexts]
        self.items = valid_texts([c.item for c in self.contexts])

        latency, _ = _numbers(meas, "duration", "latency_ms", 1000.0)
        prompt = _counts(meas, "input_tokens", "prompt_tokens")
        completion = _counts(meas, "output_tokens", "completion_tokens")
        cost, cost_gaps = _numbers(meas, "cost", "cost_usd")
        model, _, any_model = _strings(meta, "model")
        provider, provider_gaps, _ = _strings(meta, "provider")
        if any_model and (provider_gaps or cost_gaps):
            self._price(model, provider, cost, prompt, completion)
        self.outcomes = [
            False if nm[-1] == "exception" else (True if nm[-1] == "stop" else None)
            for nm in name_index
        ]
        self.flagged = (
            [md.get("success") for md in meta]
            if any(map(operator.contains, meta, itertools.repeat("success")))
            else None
        )
        self.latency, self.cost = latency, cost
        self.model, self.provider = model, provider
        self.prompt, self.completion = prompt, completion

    def success(self) -> list[bool | None]:
        """False for `exception` events, true for `stop` events, or a bool metadata `success`."""
        outcome = self.outcomes
        success = [outcome[c] for c in self.name_codes]
        if self.flagged is None:
            return success
        return [
            f if type(f) is bool else s
            for f, s in zip(self.flagged, success, strict=True)
        ]

    @staticmethod
    def _price(
        model: list[str | None],
        provider: list[str | None],
        cost: list[float | None],
        prompt: list[int | None],
        completion: list[int | None],
    ) -> None:
        """Fill a missing provider from a `provider:model` string and a missing cost from tokens."""
        price = None
        for k, mk in enumerate(model):
            if mk is None or (provider[k] is not None and cost[k] is not None):
                continue
            if provider[k] is None and ":" in mk:
                provider[k] = mk.split(":", 1)[0]
            if cost[k] is None and (prompt[k] or completion[k]):
                price = price or _cached_pricer()
                if price is not None:
                    cost[k] = price(mk, prompt[k] or 0, completion[k] or 0)

    def condition(self, context: Context) -> str:
        """The condition an event in `context` is attributed to."""
        return (
            context.condition
            if context.condition is not None
            else self.experiment.condition
        )


def enrich(
    experiment: TelemetryExperiment,
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
    b = Batch(experiment, flat, contexts)
    n, codes = b.n, b.context_codes
    extras: list[Any] = [dict(c.extra) for c in b.contexts]
    if json_text:
        extras = json_texts(extras)
    exp_id, exp_name = valid_text(experiment.id), valid_text(experiment.name)
    tags = valid_texts(list(experiment.tags))
    conditions, repeats, items = b.conditions, b.repeats, b.items
    return {
        "event_id": [f"{exp_id}-{s}" for s in b.seq],
        "experiment_id": [exp_id] * n,
        "experiment_name": [exp_name] * n,
        "seq": b.seq,
        "name": [b.names[c] for c in b.name_codes],
        "timestamp_ns": b.wall,
        "monotonic_ns": b.mono,
        "condition": [conditions[c] for c in codes],
        "repeat": [repeats[c] for c in codes],
        "item": [items[c] for c in codes],
        "tags": [tags] * n,
        "latency_ms": b.latency,
        "cost_usd": b.cost,
        "success": b.success(),
        "model": valid_texts(b.model),
        "provider": valid_texts(b.provider),
        "prompt_tokens": b.prompt,
        "completion_tokens": b.completion,
        "measurements": json_texts(b.meas) if json_text else b.meas,
        "metadata": json_texts(b.meta) if json_text else b.meta,
        "context": [extras[c] for c in codes],
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

"""The enrichment of captured events through the C extension `_speedups`, when it is built.

[`scan`][crucible_telemetry._columnar.scan] walks a batch of captured events once in C and fills
fixed-width column buffers, numbering the distinct event names, contexts, models and providers;
the enriched columns are then gathered from those (Arrow `take`, numpy) with no Python object per
value. The values are those of the pure-Python enrichment in `_schema` (`Batch`), which stays the
reference and the path used without the extension: every conversion the C code does not know
exactly is handed back to `_schema`'s own converters, and `tests/test_speedups.py` checks both paths
against each other on hostile input.

`SPEEDUPS` is the extension module, or `None` when it is not built (no C compiler at install time)
or `CRUCIBLE_TELEMETRY_PURE=1` is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from crucible_core.context import Context
from crucible_telemetry._experiment import TelemetryExperiment
from crucible_telemetry._schema import (
    _OPTS,
    WIDTH,
    Columns,
    Flat,
    _cached_pricer,
    _default,
    _float,
    _int,
    _repeat,
    json_texts,
    valid_text,
    valid_texts,
)
from crucible_telemetry._schema import (
    enrich as enrich_python,
)

if TYPE_CHECKING:
    import numpy.typing as npt
    import pyarrow

__all__ = ("SPEEDUPS", "Scan", "enrich", "json_array", "scan")


def _load() -> ModuleType | None:
    if os.environ.get("CRUCIBLE_TELEMETRY_PURE") == "1":
        return None
    try:
        from crucible_telemetry import _speedups
    except ImportError:  # not built: the pure-Python enrichment is used
        return None
    return _speedups


SPEEDUPS: ModuleType | None = _load()
"""The C extension, or `None` (not built, or `CRUCIBLE_TELEMETRY_PURE=1`)."""

_NULL: Final = -1


class Scan:
    """One batch of captured events as column buffers (numpy views of the C extension's output)."""

    __slots__ = (
        "completion", "completion_ok", "conditions", "context_codes", "contexts", "cost",
        "cost_ok", "experiment", "flags", "items", "latency", "latency_ok", "meas", "meta",
        "model_codes", "models", "mono", "n", "name_codes", "names", "outcomes", "prompt",
        "prompt_ok", "provider_codes", "providers", "repeats", "seq", "wall",
    )  # fmt: skip

    def __init__(
        self,
        experiment: TelemetryExperiment,
        flat: list[Any],
        contexts: Mapping[int, Context],
        scanned: tuple[Any, ...],
    ) -> None:
        n, buffers, names, context_keys, models, providers, any_flag = scanned
        (seq, mono, wall, name_codes, ctx_codes, lat, lat_ok, cost, cost_ok, prompt, prompt_ok,
         compl, compl_ok, model_codes, provider_codes, flags) = buffers  # fmt: skip
        self.experiment, self.n = experiment, n
        self.seq = np.frombuffer(seq, np.int64)
        self.mono = np.frombuffer(mono, np.int64)
        self.wall = np.frombuffer(wall, np.int64)
        self.name_codes = np.frombuffer(name_codes, np.int32)
        self.context_codes = np.frombuffer(ctx_codes, np.int32)
        self.meas, self.meta = flat[4::WIDTH], flat[5::WIDTH]
        self.names = valid_texts([".".join(nm) for nm in names])
        self.outcomes: list[bool | None] = [
            False if nm[-1] == "exception" else (True if nm[-1] == "stop" else None)
            for nm in names
        ]
        self.contexts = [contexts[k] for k in context_keys]
        condition = experiment.condition
        self.conditions = valid_texts(
            [condition if c.condition is None else c.condition for c in self.contexts]
        )
        self.repeats = [_repeat(c.repeat) for c in self.contexts]
        self.items = valid_texts([c.item for c in self.contexts])
        self.latency, self.latency_ok = _values(lat, lat_ok, np.float64)
        self.cost, self.cost_ok = _values(cost, cost_ok, np.float64)
        self.prompt, self.prompt_ok = _values(prompt, prompt_ok, np.int64)
        self.completion, self.completion_ok = _values(compl, compl_ok, np.int64)
        self.model_codes = np.frombuffer(model_codes, np.int32)
        self.provider_codes = np.frombuffer(provider_codes, np.int32)
        self.models: list[str] = models
        self.providers: list[str] = providers
        self.flags = np.frombuffer(flags, np.int8) if any_flag else None
        if models and (
            self.cost_ok is not None or bool((self.provider_codes == _NULL).any())
        ):
            self._price()

    def _price(self) -> None:
        """Fill a missing provider from a `provider:model` string and a missing cost from tokens.

        As `_schema.Batch._price`, on the rows that need it only.
        """
        cost_missing = (
            ~self.cost_ok if self.cost_ok is not None else np.zeros(self.n, bool)
        )
        need = (self.model_codes != _NULL) & (
            (self.provider_codes == _NULL) | cost_missing
        )
        rows = np.flatnonzero(need)
        if not rows.size:
            return
        provider_index = {p: k for k, p in enumerate(self.providers)}
        price = None
        for k in rows.tolist():
            mk = self.models[self.model_codes[k]]
            if self.provider_codes[k] == _NULL and ":" in mk:
                prefix = mk.split(":", 1)[0]
                code = provider_index.setdefault(prefix, len(provider_index))
                if code == len(self.providers):
                    self.providers.append(prefix)
                self.provider_codes[k] = code
            if cost_missing[k]:
                prompt = int(self.prompt[k]) if self._present(self.prompt_ok, k) else 0
                completion = (
                    int(self.completion[k])
                    if self._present(self.completion_ok, k)
                    else 0
                )
                if prompt or completion:
                    price = price or _cached_pricer()
                    if price is not None:
                        found = price(mk, prompt, completion)
                        if found is not None:
                            assert (
                                self.cost_ok is not None
                            )  # cost_missing[k] implies it
                            self.cost[k] = found
                            self.cost_ok[k] = True

    @staticmethod
    def _present(ok: npt.NDArray[np.bool_] | None, k: int) -> bool:
        return ok is None or bool(ok[k])

    def success_codes(self) -> npt.NDArray[np.int8]:
        """Per event: 1 (true), 0 (false) or -1 (null), as `_schema.Batch.success`."""
        outcome = np.array(
            [_NULL if o is None else int(o) for o in self.outcomes], np.int8
        )
        codes: npt.NDArray[np.int8] = outcome[self.name_codes]
        if self.flags is not None:
            codes = np.where(self.flags == 2, codes, self.flags).astype(np.int8)
        return codes

    # -- Arrow ------------------------------------------------------------------------------------

    def arrow_columns(self, pa: Any, pc: Any) -> dict[str, pyarrow.Array]:
        """Every enriched column but the JSON and list ones, as Arrow arrays."""
        names_codes = pa.array(self.name_codes)
        ctx_codes = pa.array(self.context_codes)
        seq = pa.array(self.seq)
        n = self.n
        exp_id = valid_text(self.experiment.id)
        exp_name = valid_text(self.experiment.name)
        success = self.success_codes()

        def per_context(values: list[Any], type: Any) -> pyarrow.Array:
            return pa.array(values, type).take(ctx_codes)

        return {
            "event_id": _event_ids(pa, pc, exp_id, self.seq, seq),
            "experiment_id": pa.repeat(pa.scalar(exp_id, pa.string()), n),
            "experiment_name": pa.repeat(pa.scalar(exp_name, pa.string()), n),
            "seq": seq,
            "name": pa.array(self.names, pa.string()).take(names_codes),
            "timestamp_ns": pa.array(self.wall),
            "monotonic_ns": pa.array(self.mono),
            "condition": per_context(self.conditions, pa.string()),
            "repeat": per_context(self.repeats, pa.int64()),
            "item": per_context(self.items, pa.string()),
            "latency_ms": _masked(pa, self.latency, self.latency_ok),
            "cost_usd": _masked(pa, self.cost, self.cost_ok),
            "success": pa.array(success == 1, mask=success == _NULL),
            "model": _coded(pa, self.models, self.model_codes),
            "provider": _coded(pa, self.providers, self.provider_codes),
            "prompt_tokens": _masked(pa, self.prompt, self.prompt_ok),
            "completion_tokens": _masked(pa, self.completion, self.completion_ok),
        }

    # -- Python lists -----------------------------------------------------------------------------

    def list_columns(self, *, json_text: bool) -> Columns:
        """The enriched columns as Python lists, as `_schema.enrich` gives them."""
        speed = SPEEDUPS
        assert speed is not None
        n, codes = self.n, self.context_codes
        extras: list[Any] = [dict(c.extra) for c in self.contexts]
        if json_text:
            extras = json_texts(extras)
        exp_id, exp_name = (
            valid_text(self.experiment.id),
            valid_text(self.experiment.name),
        )
        tags = valid_texts(list(self.experiment.tags))
        success = self.success_codes()
        seq = self.seq.tolist()
        return {
            "event_id": speed.event_ids(exp_id, self.seq),
            "experiment_id": [exp_id] * n,
            "experiment_name": [exp_name] * n,
            "seq": seq,
            "name": speed.take(self.name_codes, self.names),
            "timestamp_ns": self.wall.tolist(),
            "monotonic_ns": self.mono.tolist(),
            "condition": speed.take(codes, self.conditions),
            "repeat": speed.take(codes, self.repeats),
            "item": speed.take(codes, self.items),
            "tags": [tags] * n,
            "latency_ms": speed.numbers(self.latency, self.latency_ok, "d"),
            "cost_usd": speed.numbers(self.cost, self.cost_ok, "d"),
            "success": speed.take(success.astype(np.int32), [False, True]),
            "model": speed.take(self.model_codes, valid_texts(self.models)),
            "provider": speed.take(self.provider_codes, valid_texts(self.providers)),
            "prompt_tokens": speed.numbers(self.prompt, self.prompt_ok, "q"),
            "completion_tokens": speed.numbers(
                self.completion, self.completion_ok, "q"
            ),
            "measurements": json_texts(self.meas) if json_text else self.meas,
            "metadata": json_texts(self.meta) if json_text else self.meta,
            "context": speed.take(codes, extras),
        }


def _values(
    values: bytearray, ok: bytearray, dtype: type[np.generic]
) -> tuple[Any, npt.NDArray[np.bool_] | None]:
    """A writable numpy view of a column and its validity (`None` when every value is present)."""
    valid = np.frombuffer(ok, np.bool_)
    return np.frombuffer(values, dtype), None if valid.all() else valid


def _event_ids(
    pa: Any, pc: Any, exp_id: str, seq: npt.NDArray[np.int64], seq_array: Any
) -> pyarrow.Array:
    """`<exp_id>-<seq>` per event, written by the C extension straight into Arrow's buffers."""
    speed = SPEEDUPS
    cut = None if speed is None else speed.event_id_buffers(exp_id.encode(), seq)
    if cut is None:
        joined: pyarrow.Array = pc.binary_join_element_wise(
            exp_id, pc.cast(seq_array, pa.string()), "-"
        )
        return joined
    offsets, data = cut
    array: pyarrow.Array = pa.Array.from_buffers(
        pa.string(), len(seq), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    return array


def _masked(pa: Any, values: Any, ok: npt.NDArray[np.bool_] | None) -> pyarrow.Array:
    array: pyarrow.Array = pa.array(values, mask=None if ok is None else ~ok)
    return array


def _coded(pa: Any, values: list[str], codes: npt.NDArray[np.int32]) -> pyarrow.Array:
    """`values[code]` per event, null where the code is -1; lone surrogates replaced."""
    try:
        dictionary = pa.array(values, pa.string())
    except UnicodeEncodeError:
        dictionary = pa.array(valid_texts(values), pa.string())
    array: pyarrow.Array = dictionary.take(pa.array(codes, mask=codes == _NULL))
    return array


def scan(
    experiment: TelemetryExperiment, flat: Flat, contexts: Mapping[int, Context]
) -> Scan | None:
    """The batch scanned by the C extension, or `None` (not built, or a batch it declines)."""
    speed = SPEEDUPS
    if speed is None or not flat:
        return None
    rows = flat if type(flat) is list else list(flat)
    scanned = speed.scan(rows, _float, _int)
    return None if scanned is None else Scan(experiment, rows, contexts, scanned)


def json_array(pa: Any, values: list[Any]) -> pyarrow.Array | None:
    """Each value's JSON text as an Arrow string array, from one `orjson.dumps` of the list.

    The C extension cuts orjson's text of the list at its top-level commas into Arrow's buffers.
    `None` without the extension, or when the text cannot be cut (a value embedding an
    `orjson.Fragment`, which is written verbatim): the caller then encodes value by value.
    """
    speed = SPEEDUPS
    if speed is None or not values:
        return None
    try:
        raw = orjson.dumps(values)
    except orjson.JSONEncodeError:
        try:
            raw = orjson.dumps(values, default=_default, option=_OPTS)
        except orjson.JSONEncodeError:
            return None
    cut = speed.split_json(raw, len(values))
    if cut is None:
        return None
    offsets, data = cut
    array: pyarrow.Array = pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    try:
        array.validate(full=True)  # orjson writes UTF-8; a Fragment may not
    except pa.ArrowInvalid:
        return None
    return array


def enrich(
    experiment: TelemetryExperiment,
    flat: Flat,
    contexts: Mapping[int, Context],
    *,
    json_text: bool = False,
) -> Columns:
    """The enriched columns of captured events, as [`_schema.enrich`][crucible_telemetry._schema.enrich].

    Through the C extension when it is built and takes the batch; else the pure-Python reference.
    """
    scanned = scan(experiment, flat, contexts)
    if scanned is None:
        return enrich_python(experiment, flat, contexts, json_text=json_text)
    return scanned.list_columns(json_text=json_text)

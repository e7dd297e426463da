"""One cattrs converter (orjson preset) for every crucible package, and JSON round-trips.

Packages register their hooks on [`converter`][crucible_core.serde.converter]; never use cattrs' global
converter. Handled beyond the preset: numpy scalars and arrays, and non-finite floats, which JSON
cannot hold, written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` so that a result with a NaN
p-value reads back exactly.

Examples:
    >>> import attrs
    >>> from crucible_core.serde import from_json, to_json
    >>> @attrs.define(frozen=True)
    ... class P:
    ...     x: float
    >>> to_json(P(float("nan")))
    '{"x":"NaN"}'
    >>> from_json(to_json(P(1.5)), P)
    P(x=1.5)
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, TypeVar

import cattrs
import numpy as np
import orjson
from cattrs.preconf.orjson import make_converter

from crucible_core.exceptions import SerializationError

__all__ = ("converter", "dumps", "from_json", "loads", "to_json")

T = TypeVar("T")

converter: cattrs.Converter = make_converter()
"""The converter every package registers its hooks on."""

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _unstructure_float(x: float) -> float | str:
    if math.isfinite(x):
        return float(x)
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, str):
        if value in _NONFINITE:
            return _NONFINITE[value]
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a bool, not a number")
    return float(value)


def _unstructure_any(value: Any) -> Any:
    # Exact-type dispatch first: task records and events are plain dicts of str/int/float/bool,
    # and this runs once per record written, so the common cases must not walk isinstance chains.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else _unstructure_float(value)
    if kind is dict:
        return {k: _unstructure_any(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_unstructure_any(v) for v in value]
    if isinstance(value, float):
        return _unstructure_float(value)
    if isinstance(value, np.generic):
        return _unstructure_any(value.item())
    if isinstance(value, np.ndarray):
        return (
            [_unstructure_any(v) for v in value.tolist()]
            if value.dtype.kind == "f"
            else value.tolist()
        )
    if isinstance(value, dict):
        return {k: _unstructure_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unstructure_any(v) for v in value]
    return converter.unstructure(value)


converter.register_unstructure_hook(float, _unstructure_float)
converter.register_structure_hook(float, _structure_float)
converter.register_unstructure_hook(np.generic, lambda v: _unstructure_any(v.item()))
converter.register_unstructure_hook(np.ndarray, _unstructure_any)
converter.register_structure_hook(
    np.ndarray,
    lambda v, _: np.asarray(
        [_structure_float(x, float) if isinstance(x, str) else x for x in v]
    ),
)
converter.register_unstructure_hook(
    dt.datetime, lambda d: d.isoformat()
)  # the preset does this too; stated here so naive datetimes keep their (absent) zone
converter.register_unstructure_hook(Any, _unstructure_any)


def _raise(err: Exception, cls: object) -> SerializationError:
    if isinstance(err, cattrs.BaseValidationError):
        detail = "; ".join(cattrs.transform_error(err))
    else:
        detail = str(err)
    name = getattr(cls, "__name__", repr(cls))
    return SerializationError(f"cannot read JSON as {name}: {detail}", target=name)


def dumps(value: Any) -> bytes:
    """Serialize already-unstructured data (dicts, lists, numbers, strings, numpy) to JSON bytes."""
    try:
        return orjson.dumps(_unstructure_any(value))
    except (TypeError, orjson.JSONEncodeError) as err:
        raise SerializationError(f"cannot write as JSON: {err}") from err


def loads(data: str | bytes) -> Any:
    """Parse JSON text, raising `SerializationError` with the position on malformed input."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise SerializationError(f"malformed JSON: {err}", position=err.pos) from err


def to_json(value: Any) -> str:
    """The JSON text of any value the converter knows (attrs classes, enums, datetimes, numpy)."""
    try:
        plain = converter.unstructure(value)
    except Exception as err:
        raise SerializationError(
            f"cannot serialize {type(value).__name__}: {err}; register a hook on "
            "`crucible_core.serde.converter`",
            target=type(value).__name__,
        ) from err
    try:
        return dumps(plain).decode()
    except SerializationError as err:
        raise SerializationError(
            f"{err.message}; register an unstructure hook for {type(value).__name__} on "
            "`crucible_core.serde.converter`",
            target=type(value).__name__,
        ) from err


def from_json(data: str | bytes, cls: type[T]) -> T:
    """Read JSON text as `cls`, raising `SerializationError` naming each field that does not fit."""
    plain = loads(data)
    try:
        return converter.structure(plain, cls)
    except Exception as err:
        raise _raise(err, cls) from err

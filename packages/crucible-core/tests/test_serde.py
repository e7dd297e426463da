from __future__ import annotations

import datetime as dt
import enum
import math

import attrs
import numpy as np
import pytest

from crucible_core.exceptions import SerializationError
from crucible_core.serde import converter, from_json, loads, to_json


class Kind(enum.Enum):
    A = "a"
    B = "b"


@attrs.define(frozen=True, kw_only=True)
class Inner:
    values: tuple[float, ...]


@attrs.define(frozen=True, kw_only=True)
class Outer:
    name: str
    kind: Kind
    at: dt.datetime
    p: float
    inner: Inner
    extra: dict[str, float] = attrs.field(factory=dict)
    note: str | None = None


def test_round_trip_exact() -> None:
    value = Outer(
        name="x",
        kind=Kind.B,
        at=dt.datetime(2026, 11, 22, 5, 30, tzinfo=dt.UTC),
        p=math.inf,
        inner=Inner(values=(0.1, -0.0, 1e-300)),
        extra={"nan": math.nan},
    )
    text = to_json(value)
    back = from_json(text, Outer)
    assert back.inner == value.inner
    assert back.at == value.at and back.kind is Kind.B and back.p == math.inf
    assert math.isnan(back.extra["nan"])
    assert to_json(back) == text


def test_numpy_values() -> None:
    assert loads(
        to_json({"a": np.float64(1.5), "b": np.int64(3), "c": np.array([1.0, np.nan])})
    ) == {
        "a": 1.5,
        "b": 3,
        "c": [1.0, "NaN"],
    }
    arr = converter.structure([1.0, "NaN"], np.ndarray)
    assert np.isnan(arr[1])


def test_errors_name_the_field() -> None:
    with pytest.raises(SerializationError, match="malformed JSON"):
        from_json('{"name": ', Outer)
    with pytest.raises(
        SerializationError, match=r"cannot read JSON as Outer.*kind"
    ) as info:
        from_json(
            '{"name": "x", "kind": "zzz", "at": "2026-01-01T00:00:00", "p": 1, "inner": {"values": []}}',
            Outer,
        )
    assert info.value.target == "Outer"
    with pytest.raises(SerializationError, match="register an unstructure hook"):
        to_json(object())

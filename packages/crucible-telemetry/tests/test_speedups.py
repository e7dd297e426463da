"""The C extension (`_speedups`) against the pure-Python enrichment and capture it speeds up.

`_schema.enrich` and `_capture._handle` are the reference; every test here runs the same input
through both paths and requires the same columns, value for value (NaN compared as NaN), on
hostile input: numpy scalars, float and int subclasses, ints beyond 64 bits and beyond float
range, infinities, bools where numbers belong, lone surrogates, mappings that are not dicts.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import os
import threading
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crucible_telemetry as ct
from crucible_core import context, events
from crucible_core.context import Context
from crucible_telemetry import _capture, _columnar
from crucible_telemetry._experiment import TelemetryExperiment
from crucible_telemetry._export import enrich_arrow
from crucible_telemetry._schema import WIDTH
from crucible_telemetry._schema import enrich as enrich_python

speedups = pytest.mark.skipif(
    _columnar.SPEEDUPS is None,
    reason="the C extension is not built (no compiler at install time, or "
    "CRUCIBLE_TELEMETRY_PURE=1); the pure-Python path is tested everywhere else",
)


def test_the_extension_is_built_where_it_is_required() -> None:
    # scripts/test sets CRUCIBLE_REQUIRE_SPEEDUPS=1, so CI cannot silently test only one path.
    if os.environ.get("CRUCIBLE_REQUIRE_SPEEDUPS") == "1":
        assert _columnar.SPEEDUPS is not None, (
            "CRUCIBLE_REQUIRE_SPEEDUPS=1 but crucible_telemetry._speedups is not built: "
            "reinstall crucible-telemetry with a C compiler and Python's headers"
        )
    elif _columnar.SPEEDUPS is None:
        pytest.skip("the C extension is not built here")


class FloatSub(float):
    def __float__(self) -> float:  # float() of it differs from its value
        return 42.0


class IntSub(int):
    """An int subclass: a number, but not `type(v) is int`."""


class Level(enum.IntEnum):
    HIGH = 3


_numbers = st.sampled_from(
    [
        0, 1, -1, 120, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**70, 2**1100,
        0.0, -0.0, 0.25, 1e-300, 1e308, -1e308, math.inf, -math.inf, math.nan, 9.3e18, -9.3e18,
        np.float64(1.5), np.float32(2.5), np.int64(7), np.bool_(True), FloatSub(2.0), IntSub(5),
        Level.HIGH, True, False, None, "12", "", [1], {"a": 1},
    ]
)  # fmt: skip
_MEASURED = (
    "duration", "latency_ms", "input_tokens", "prompt_tokens", "output_tokens",
    "completion_tokens", "cost", "cost_usd", "other",
)  # fmt: skip
_measurements = st.dictionaries(st.sampled_from(_MEASURED), _numbers, max_size=6)
_text = st.text(st.characters(exclude_categories=()), max_size=6)
_metadata = st.dictionaries(
    st.sampled_from(["model", "provider", "success", "note"]) | _text,
    st.sampled_from(
        ["sim:gpt-4", "openai:gpt-4o", "gpt-4o", "sim", "m\udfff", "a:b:c", ":x"]
    )
    | _numbers
    | _text,
    max_size=4,
)
_names = st.sampled_from(
    [
        ("crucible", "llm", "request", "stop"),
        ("crucible", "llm", "request", "exception"),
        ("crucible", "ensemble", "vote"),
        ("user", "stop\ud800"),
    ]
)
_contexts = st.lists(
    st.builds(
        Context,
        condition=st.none() | st.sampled_from(["a", "b\ud800"]),
        repeat=st.none() | st.sampled_from([0, 2**63, np.int64(4), 2.5, True]),
        item=st.none() | _text,
    ),
    min_size=1,
    max_size=3,
)
_EXPERIMENT = TelemetryExperiment(
    id="exp_c",
    name="c\ud800",
    condition="base",
    tags=("t", "u\udfff"),
    started_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
)


def _flat(events_: list[Any], contexts: list[Context]) -> list[Any]:
    flat: list[Any] = []
    for seq, (name, meas, meta, ctx) in enumerate(events_):
        flat.extend((seq, 10 + seq, 1_700_000_000_000_000_000 + seq, name, meas, meta,
                     id(contexts[ctx % len(contexts)])))  # fmt: skip
    return flat


def _canon(value: Any) -> Any:
    """Values with NaN made comparable (NaN != NaN) and types kept apart (1 vs 1.0 vs True)."""
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value)
    return (type(value).__name__, value)


@pytest.fixture
def pure() -> Iterator[None]:
    """Run the block on the pure-Python path."""
    saved = _columnar.SPEEDUPS
    _columnar.SPEEDUPS = None
    try:
        yield
    finally:
        _columnar.SPEEDUPS = saved


@speedups
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events_=st.lists(
        st.tuples(_names, _measurements, _metadata, st.integers(0, 2)), max_size=10
    ),
    contexts=_contexts,
    json_text=st.booleans(),
)
def test_enrich_in_c_equals_the_python_reference(
    events_: list[Any], contexts: list[Context], json_text: bool
) -> None:
    flat = _flat(events_, contexts)
    by_key = {id(c): c for c in contexts}
    fast = _columnar.enrich(_EXPERIMENT, flat, by_key, json_text=json_text)
    slow = enrich_python(_EXPERIMENT, flat, by_key, json_text=json_text)
    assert list(fast) == list(slow)
    for column in slow:
        assert _canon(fast[column]) == _canon(slow[column]), column


@speedups
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events_=st.lists(
        st.tuples(_names, _measurements, _metadata, st.integers(0, 2)),
        min_size=1,
        max_size=10,
    ),
    contexts=_contexts,
)
def test_arrow_enrichment_in_c_equals_the_python_path(
    events_: list[Any], contexts: list[Context]
) -> None:
    flat = _flat(events_, contexts)
    by_key = {id(c): c for c in contexts}
    fast = enrich_arrow(_EXPERIMENT, flat, by_key)
    saved, _columnar.SPEEDUPS = _columnar.SPEEDUPS, None
    try:
        slow = enrich_arrow(_EXPERIMENT, flat, by_key)
    finally:
        _columnar.SPEEDUPS = saved
    assert fast.schema.equals(slow.schema, check_metadata=True)
    for name in slow.column_names:
        assert _canon(fast[name].to_pylist()) == _canon(slow[name].to_pylist()), name
    fast.validate(full=True)


@speedups
def test_a_batch_the_extension_declines_takes_the_python_path() -> None:
    ctx = Context()
    meas = types.MappingProxyType({"duration": 0.5})  # a Mapping, not a dict
    flat = [0, 1, 2, ("crucible", "llm", "request", "stop"), meas, {}, id(ctx)]
    assert _columnar.scan(_EXPERIMENT, flat, {id(ctx): ctx}) is None
    got = _columnar.enrich(_EXPERIMENT, flat, {id(ctx): ctx})
    assert got["latency_ms"] == [500.0]
    assert got == enrich_python(_EXPERIMENT, flat, {id(ctx): ctx})


@speedups
def test_the_converters_run_python_code_safely() -> None:
    # A float subclass whose __float__ empties the event's own dict while it is being read.
    ctx = Context()
    meas: dict[str, Any] = {}

    class Mean(float):
        def __float__(self) -> float:
            meas.clear()
            return 1.0

    meas.update(duration=Mean(3.0), input_tokens=5, cost=0.5)
    flat = [0, 1, 2, ("crucible", "llm", "request", "stop"), meas, {}, id(ctx)]
    got = _columnar.enrich(_EXPERIMENT, flat, {id(ctx): ctx})
    assert got["latency_ms"] == [1000.0]
    assert got["prompt_tokens"] == [
        None
    ]  # read after the dict was emptied, as in Python


@speedups
@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            _text,
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**64 - 1)
                | _text
                | st.sampled_from(["\\", '\\"', '"]}', ",", "[{"]),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(_text, inner, max_size=3)
                ),
                max_leaves=6,
            ),
            max_size=4,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_split_json_cuts_orjsons_list_text_into_its_elements(
    values: list[dict[str, Any]],
) -> None:
    speed = _columnar.SPEEDUPS
    assert speed is not None
    try:
        raw = orjson.dumps(values)
    except orjson.JSONEncodeError:  # lone surrogates: the caller encodes value by value
        return
    cut = speed.split_json(raw, len(values))
    assert cut is not None
    offsets, data = cut
    array = pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    array.validate(full=True)
    assert array.to_pylist() == [orjson.dumps(v).decode() for v in values]


@speedups
def test_split_json_refuses_text_it_cannot_cut() -> None:
    speed = _columnar.SPEEDUPS
    assert speed is not None
    assert speed.split_json(b"[1,2]", 3) is None  # fewer elements
    assert speed.split_json(b"[1,2,3]", 2) is None  # more elements
    assert speed.split_json(b'[1,"a]', 2) is None  # an unclosed string
    assert speed.split_json(b"[{1,2]", 1) is None  # unbalanced
    assert speed.split_json(b"1,2", 2) is None  # not an array
    fragment = [
        {"a": orjson.Fragment(b"},{")}
    ]  # written verbatim: cut wrongly, refused
    assert _columnar.json_array(pa, fragment) is None


# -- capture ------------------------------------------------------------------------------------


def _capture_script(store: ct.MemoryStore) -> list[Any]:
    """Emit a mix of events: routed, not routed, other experiments', context-less, catch-all."""
    catch_all = ct.start_experiment("all", store=store, capture="all")
    try:
        with ct.experiment(
            "main", store=store, events=[("crucible", "llm"), ("app",)]
        ) as exp:
            events.emit(events.LLM_REQUEST_STOP, {"duration": 0.1}, {"model": "sim:a"})
            events.emit(("crucible", "ensemble", "vote"), {"n": 1}, {})  # not routed
            events.emit(("app", "x"), {"k": 2.0}, {"model": 3})
            with context.use(condition="b", repeat=2, item="q1", note="n"):
                events.emit(events.LLM_REQUEST_STOP, {"duration": 0.2}, {})
                events.emit(events.LLM_REQUEST_STOP, {"duration": 0.3}, {})
            with context.use(experiment_id=None):
                events.emit(events.LLM_REQUEST_STOP, {"duration": 9.0}, {})  # catch-all
            with context.use(experiment_id="exp_not_running"):
                events.emit(events.LLM_REQUEST_STOP, {"duration": 8.0}, {})  # dropped
    finally:
        ct.stop_experiment(catch_all.id)
    return [
        {
            c: ct.get_events(e.id, store=store).column(c)
            for c in (
                "seq",
                "name",
                "condition",
                "repeat",
                "item",
                "latency_ms",
                "model",
            )
        }
        for e in (exp, catch_all)
    ]


@speedups
def test_capture_in_c_keeps_what_the_python_handler_keeps() -> None:
    assert not isinstance(_capture._handler(), types.FunctionType)
    fast = _capture_script(ct.MemoryStore())
    saved, _columnar.SPEEDUPS = _columnar.SPEEDUPS, None
    try:
        assert _capture._handler() is _capture._handle
        slow = _capture_script(ct.MemoryStore())
    finally:
        _columnar.SPEEDUPS = saved
    assert fast == slow
    assert slow[0]["latency_ms"] == [100.0, None, 200.0, 300.0]
    assert slow[1]["latency_ms"] == [9000.0]


@speedups
def test_capture_in_c_keeps_rows_whole_across_threads() -> None:
    store = ct.MemoryStore()
    n, threads = 3000, 6
    with ct.experiment("threads", store=store) as exp:

        def work(k: int) -> None:
            name = ("crucible", "llm", "request", "stop")
            for i in range(n):
                events.emit(name, {"duration": float(k), "input_tokens": i}, {"t": k})

        pool = [
            threading.Thread(target=context.bind(work), args=(k,))
            for k in range(threads)
        ]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    got = ct.get_events(exp.id, store=store)
    assert len(got) == n * threads
    assert sorted(got.column("seq")) == list(range(n * threads))
    seen: dict[int, list[int]] = {}
    for latency, tokens, meta in zip(
        got.column("latency_ms"),
        got.column("prompt_tokens"),
        got.column("metadata"),
        strict=True,
    ):
        assert latency == meta["t"] * 1000.0  # a row's values belong to one event
        seen.setdefault(meta["t"], []).append(tokens)
    assert all(sorted(v) == list(range(n)) for v in seen.values())
    raw = store._sinks[exp.id].rows
    assert len(raw) == WIDTH * n * threads


@speedups
@given(
    prefix=st.text(max_size=5).map(lambda t: f"exp_{t}"),
    seq=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8),
)
def test_event_ids_in_c_equal_the_f_string(prefix: str, seq: list[int]) -> None:
    speed = _columnar.SPEEDUPS
    assert speed is not None
    values = np.array(seq, np.int64)
    expected = [f"{prefix}-{s}" for s in seq]
    assert speed.event_ids(prefix, values) == expected
    cut = speed.event_id_buffers(prefix.encode("utf-8", "surrogatepass"), values)
    assert cut is not None
    offsets, data = cut
    array = pa.Array.from_buffers(
        pa.string(), len(seq), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    try:
        prefix.encode()
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8, Arrow cannot read it back
        return
    assert array.to_pylist() == expected

"""The column-wise enrichment paths agree with the event-by-event definitions, on any input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crucible_core.context import Context
from crucible_telemetry._experiment import TelemetryExperiment
from crucible_telemetry._export import _write_overlapped, enrich_arrow, to_arrow
from crucible_telemetry._schema import WIDTH, enrich, json_dumps, json_texts

_STARTED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# Text with lone surrogates too (hypothesis leaves them out by default): files and databases
# cannot hold them, so every path must replace them the same way.
_any_text = st.text(st.characters(exclude_categories=()))
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()  # includes NUL, quotes, backslashes, the separator text ",\x00," itself
    | _any_text
    | st.sampled_from([",\x00,", "\x00", '"}', "\\", "é✓", "\U0001f600", "\ud800"])
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_any_text, inner, max_size=3)
    ),
    max_leaves=6,
)
_MEASURED = (
    "duration", "latency_ms", "input_tokens", "prompt_tokens", "output_tokens",
    "completion_tokens", "cost", "cost_usd", "other",
)  # fmt: skip
_measurements = st.dictionaries(
    st.sampled_from(_MEASURED),
    _scalars,
    max_size=5,
)
_metadata = st.dictionaries(
    st.sampled_from(["model", "provider", "success", "note", "request_id"]) | _any_text,
    st.sampled_from(["sim:gpt-4", "openai:gpt-4o", "gpt-4o", "sim", "m\udfff"])
    | _values,
    max_size=4,
)
_names = st.sampled_from(
    [
        ("crucible", "llm", "request", "stop"),
        ("crucible", "llm", "request", "exception"),
        ("crucible", "ensemble", "vote"),
        ("user", "custom"),
    ]
)
_contexts = st.lists(
    st.builds(
        Context,
        condition=st.none() | st.sampled_from(["a", "b", "c\ud800"]),
        repeat=st.none()
        | st.integers(0, 3)
        | st.sampled_from([2**63 - 1, 2**63, 2**80]),
        item=st.none() | st.text(st.characters(exclude_categories=()), max_size=5),
    ),
    min_size=1,
    max_size=3,
)


def _flat(
    events: list[tuple[tuple[str, ...], dict[str, Any], dict[str, Any], int]],
    contexts: list[Context],
) -> list[Any]:
    flat: list[Any] = []
    for seq, (name, meas, meta, ctx) in enumerate(events):
        flat.extend((seq, 10 + seq, 1_700_000_000_000_000_000 + seq, name, meas, meta,
                     id(contexts[ctx % len(contexts)])))  # fmt: skip
    return flat


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.tuples(_names, _measurements, _metadata, st.integers(0, 2)), max_size=12
    ),
    contexts=_contexts,
    tags=st.lists(st.text(max_size=4), max_size=3),
)
def test_arrow_enrichment_equals_enrich_then_convert(
    events: list[Any], contexts: list[Context], tags: list[str]
) -> None:
    experiment = TelemetryExperiment(
        id="exp_prop",
        name="prop",
        condition="base",
        tags=tuple(tags),
        started_at=_STARTED,
    )
    flat = _flat(events, contexts)
    by_key = {id(c): c for c in contexts}
    assert len(flat) == WIDTH * len(events)
    fast = enrich_arrow(experiment, flat, by_key)
    slow = to_arrow(enrich(experiment, flat, by_key, json_text=True))
    assert fast.schema.equals(slow.schema, check_metadata=True)
    assert fast.to_pylist() == slow.to_pylist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(_any_text, _values, max_size=4), max_size=8))
def test_json_texts_equal_one_dump_per_value(values: list[dict[str, Any]]) -> None:
    texts = json_texts(values)
    assert texts == [json_dumps(v) for v in values]
    assert all(t.encode() for t in texts)  # valid UTF-8: lone surrogates replaced
    assert [orjson.loads(t) for t in texts] == [
        orjson.loads(json_dumps(v)) for v in values
    ]


def test_json_texts_fall_back_when_a_value_embeds_a_raw_nul() -> None:
    # An orjson.Fragment is written verbatim, so it can hold the NUL the fast path splits on.
    values = [{"a": orjson.Fragment(b'"x\x00y"')}, {"b": 1}]
    assert json_texts(values) == [json_dumps(v) for v in values]


def test_values_json_cannot_hold_take_the_slow_path() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    values = [{"t": Thing(), 1: {2, 1}}, {"ok": True}]
    assert json_texts(values) == ['{"t":"<Thing>","1":[1,2]}', '{"ok":true}']


def test_overlapped_writes_keep_order_and_raise_errors() -> None:
    written: list[int] = []
    _write_overlapped(written.append, iter(range(5)))
    assert written == [0, 1, 2, 3, 4]

    def refuse(table: Any) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _write_overlapped(refuse, iter([pa.table({"a": [1]})]))

    def broken() -> Any:
        yield 1
        raise ValueError("enrichment failed")

    with pytest.raises(ValueError, match="enrichment failed"):
        _write_overlapped(lambda _: None, broken())

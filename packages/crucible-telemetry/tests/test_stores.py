"""Round-trips through every store, cross-experiment queries, persistence."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crucible_telemetry as ct
from crucible_core import context, events
from crucible_telemetry._schema import COLUMNS, JSON_COLUMNS


def _emit_mix(emit: Any, n: int) -> None:
    for i in range(n):
        with context.use(repeat=i % 3, item=f"item{i % 4}", fold=i % 2):
            if i % 10 == 9:
                emit.exception(0.5 + i / 100)
            else:
                emit.stop(
                    i / 100, model="sim:gpt-4" if i % 2 else "sim:claude-3", note="é✓"
                )


def test_round_trip_through_every_store(store: ct.Store, emit: Any) -> None:
    memory = ct.MemoryStore()
    with ct.experiment("rt", store=store, tags=["x"]) as exp:
        _emit_mix(emit, 250)
    with ct.experiment("rt", store=memory, tags=["x"]) as ref:
        _emit_mix(emit, 250)
    got = ct.get_events(exp.id, store=store).columns
    want = ct.get_events(ref.id, store=memory).columns
    assert ct.get_experiment(exp.id, store=store).event_count == 250
    for column in COLUMNS:
        if column in ("event_id", "experiment_id", "timestamp_ns", "monotonic_ns"):
            continue
        assert got[column] == want[column], column
    assert got["event_id"] == [f"{exp.id}-{i}" for i in range(250)]
    record = ct.get_experiment(exp.id, store=store)
    assert (record.name, record.tags, record.status) == ("rt", ("x",), "stopped")
    assert record.store == store.description


def test_batches_stream_in_order(store: ct.Store, emit: Any) -> None:
    with ct.experiment("batches", store=store) as exp:
        for i in range(1000):
            emit.stop(i / 1000)
    sizes = [len(b["seq"]) for b in store.batches(exp.id, batch_size=300)]
    assert sizes == [300, 300, 300, 100]
    seqs = [s for b in store.batches(exp.id, batch_size=300) for s in b["seq"]]
    assert seqs == list(range(1000))
    text = next(store.batches(exp.id, batch_size=5, json_text=True))
    assert all(isinstance(v, str) for c in JSON_COLUMNS for v in text[c])
    with pytest.raises(ct.InvalidOptionError, match="batch_size"):
        next(store.batches(exp.id, batch_size=0))


def test_queries_across_experiments(store: ct.Store, emit: Any) -> None:
    with ct.experiment("q", condition="control", tags=["sweep"], store=store) as a:
        emit.stop(0.1)
        emit.exception(0.2)
    middle = dt.datetime.now(dt.UTC)
    with ct.experiment("q", condition="treatment", tags=["sweep"], store=store) as b:
        emit.stop(0.3)
        with context.use(condition="control"):
            emit.stop(0.4)
    with ct.experiment("other", tags=["solo"], store=store):
        emit.stop(0.5)
    assert {e.id for e in ct.list_experiments(name="q", store=store)} == {a.id, b.id}
    assert {e.id for e in ct.list_experiments(tag="sweep", store=store)} == {a.id, b.id}
    assert [e.id for e in ct.list_experiments(condition="treatment", store=store)] == [
        b.id
    ]
    assert [e.id for e in ct.list_experiments(started_after=middle, store=store)] != []
    assert a.id not in {
        e.id for e in ct.list_experiments(started_after=middle, store=store)
    }
    assert [e.id for e in ct.list_experiments(started_before=middle, store=store)] == [
        a.id
    ]

    by_name = ct.query_events(experiment="q", store=store)
    assert sorted(by_name.column("latency_ms")) == [100.0, 200.0, 300.0, 400.0]
    control = ct.query_events(tag="sweep", condition="control", store=store)
    assert sorted(control.column("latency_ms")) == [100.0, 200.0, 400.0]
    failures = ct.query_events(event="crucible.llm.request.exception", store=store)
    assert failures.column("latency_ms") == [200.0]
    assert len(ct.query_events(event="crucible.llm", store=store)) == 5
    assert len(ct.query_events(event="crucible.ll", store=store)) == 0
    late = ct.query_events(since=middle, store=store)
    assert sorted(late.column("latency_ms")) == [300.0, 400.0, 500.0]
    early = ct.query_events(until=middle, store=store)
    assert sorted(early.column("latency_ms")) == [100.0, 200.0]
    assert len(ct.get_events(a.id, since=middle, store=store)) == 0


def test_sqlite_persists_across_processes_and_reopen(tmp_path: Path, emit: Any) -> None:
    path = tmp_path / "nested" / "t.db"
    store = ct.SQLiteStore(path)
    with ct.experiment("persist", store=store, metadata={"seed": 7}) as exp:
        for i in range(100):
            emit.stop(i / 10)
    store.close()
    reopened = ct.open_store(f"sqlite:///{path}")
    record = ct.get_experiment(exp.id, store=reopened)
    assert record.metadata == {"seed": 7} and record.event_count == 100
    assert ct.get_events(exp.id, store=reopened).column("latency_ms") == [
        i * 100.0 for i in range(100)
    ]
    reopened.close()
    same = ct.open_store(str(path))
    assert ct.calculate_metrics(exp.id, store=same).reliability.requests == 100
    same.close()


def test_sqlite_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ct.InvalidOptionError, match="is a directory"):
        ct.SQLiteStore(tmp_path)


def test_store_urls(tmp_path: Path) -> None:
    assert isinstance(ct.open_store("memory"), ct.MemoryStore)
    for url in (
        f"sqlite:///{tmp_path}/a.db",
        f"{tmp_path}/b.sqlite",
        f"sqlite:{tmp_path}/c.db",
    ):
        made = ct.open_store(url)
        assert isinstance(made, ct.SQLiteStore)
        made.close()
    with pytest.raises(ct.InvalidOptionError, match="flush_interval"):
        ct.SQLiteStore(tmp_path / "x.db", flush_interval=0)
    # a URL given to start_experiment is opened once and reused
    with ct.experiment("by-url", store=f"{tmp_path}/d.db") as exp:
        events.emit(events.LLM_REQUEST_STOP, {"duration": 1.0})
    assert ct.get_experiment(exp.id).store == f"sqlite:{tmp_path}/d.db"
    assert ct.get_events(exp.id).column("latency_ms") == [1000.0]


def test_unserializable_event_metadata_is_kept_as_text(tmp_path: Path) -> None:
    store = ct.SQLiteStore(tmp_path / "t.db")

    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    with ct.experiment("odd", store=store) as exp:
        events.emit(events.LLM_REQUEST_EXCEPTION, {"duration": 1.0}, {"error": Thing()})
    assert ct.get_events(exp.id, store=store)[0].metadata == {"error": "<Thing>"}
    store.close()


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    measurements=st.dictionaries(
        st.text(min_size=1),
        st.floats(allow_nan=False, allow_infinity=False),
        max_size=4,
    ),
    metadata=st.dictionaries(st.text(min_size=1), _json_values, max_size=4),
)
def test_any_json_event_round_trips_through_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
    measurements: dict[str, float],
    metadata: dict[str, Any],
) -> None:
    store = ct.SQLiteStore(tmp_path_factory.mktemp("h") / "t.db")
    with ct.experiment("prop", store=store) as exp:
        events.emit(events.LLM_REQUEST_STOP, measurements, metadata)
    got = ct.get_events(exp.id, store=store)[0]
    store.close()
    assert got.measurements == measurements
    assert got.metadata == metadata
    duration = measurements.get("duration")
    if duration is not None:
        assert got.latency_ms is not None and math.isclose(
            got.latency_ms, duration * 1000
        )


def test_numpy_and_set_metadata_are_written_as_json(tmp_path: Path) -> None:
    import numpy as np

    store = ct.SQLiteStore(tmp_path / "t.db")
    with ct.experiment("np", store=store) as exp:
        events.emit(
            events.LLM_REQUEST_STOP,
            {"duration": np.float64(0.5)},
            {"scores": np.array([1.5, 2.5]), "labels": {"b", "a"}, "n": np.int64(3)},
        )
    got = ct.get_events(exp.id, store=store)[0]
    store.close()
    assert got.metadata == {"scores": [1.5, 2.5], "labels": ["a", "b"], "n": 3}
    assert got.latency_ms == 500.0


def test_sqlite_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE crucible_telemetry_meta (key TEXT PRIMARY KEY, value TEXT)"
        )
        conn.execute(
            "INSERT INTO crucible_telemetry_meta VALUES ('schema_version', '99')"
        )
    with pytest.raises(ct.InvalidOptionError, match="schema version 99") as info:
        ct.SQLiteStore(path)
    assert info.value.schema_version == 99


def test_lone_surrogates_and_huge_repeats_never_poison_a_store(
    store: ct.Store, tmp_path: Path
) -> None:
    # A lone surrogate (UTF-8 cannot encode it: it comes from `surrogateescape` decoding or a
    # JSON escape in model output) and a repeat beyond int64 once made every export fail and a
    # database store retry the batch for ever, calling the database unreachable.
    bad = "m\ud800"
    for option in ({"name": "e\udfff"}, {"name": "e", "tags": ["t\ud800"]}):
        with pytest.raises(ct.InvalidOptionError, match="lone surrogate"):
            ct.start_experiment(**option, store=store)  # type: ignore[arg-type]
    with ct.experiment("e", store=store, tags=["t"]) as exp:
        events.emit(events.LLM_REQUEST_STOP, {"duration": 1.0}, {"model": "ok"})
        with context.use(repeat=2**80, item="i\udc80", condition="c\ud800"):
            events.emit(
                events.LLM_REQUEST_STOP,
                {"duration": 2.0, "note\ud800": 1},
                {"model": bad, "provider": bad, "answer": ["x\udfff", {"k": bad}]},
            )
        events.emit(events.LLM_REQUEST_STOP, {"duration": 3.0}, {"model": "ok"})
    got = ct.get_events(exp.id, store=store)
    assert len(got) == 3 and got.columns["latency_ms"] == [1000.0, 2000.0, 3000.0]
    second = got[1]
    assert (second.model, second.provider) == ("m\ufffd", "m\ufffd")
    assert (second.item, second.condition, second.repeat) == (
        "i\ufffd",
        "c\ufffd",
        None,
    )
    if not isinstance(store, ct.MemoryStore):  # read back from JSON text
        assert second.metadata["answer"] == ["x\ufffd", {"k": "m\ufffd"}]
        assert second.measurements == {"duration": 2.0, "note\ufffd": 1}
    for suffix in (".parquet", ".csv", ".jsonl"):
        path = ct.export(exp.id, tmp_path / f"e{suffix}", store=store)
        text = path.read_bytes()
        assert text.decode("utf-8", errors="strict") if suffix != ".parquet" else text
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column("model").to_pylist() == ["ok", "m\ufffd", "ok"]
    assert table.column("repeat").to_pylist() == [None, None, None]
    assert "x\ufffd" in table.column("metadata").to_pylist()[1]


def test_hostile_values_never_poison_a_store(
    store: ct.Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # NUL characters (which PostgreSQL cannot store) and integers beyond 64 bits (which orjson
    # refuses) once made every write of the batch fail and be retried for ever.
    metadata = {"text": "a\x00b", "big": 2**80, "k\x00": ["\\u0000", "\x00"]}
    with (
        ct.experiment("hostile", store=store, tags=["t\x00"]) as exp,
        context.use(item="q\x00"),
    ):
        events.emit(events.LLM_REQUEST_STOP, {"duration": 1.0}, metadata)
    got = ct.get_events(exp.id, store=store)[0]
    if isinstance(store, ct.PostgresStore):
        assert got.metadata == {
            "text": "a\ufffdb",
            "big": 2**80,
            "k\ufffd": ["\\u0000", "\ufffd"],  # the literal text `\u0000` is not a NUL
        }
        assert (got.item, got.tags) == ("q\ufffd", ("t\ufffd",))
        assert "cannot store the character U+0000" in caplog.text
    else:
        assert got.metadata == metadata
        assert (got.item, got.tags) == ("q\x00", ("t\x00",))
    for suffix in (".parquet", ".csv", ".jsonl"):
        assert ct.export(exp.id, tmp_path / f"e{suffix}", store=store).stat().st_size


def _run_sql(store: ct.Store, sql: str) -> None:
    """Run DDL on the database behind a SQLite or PostgreSQL store, as its owner would."""
    if isinstance(store, ct.SQLiteStore):
        import sqlite3

        with sqlite3.connect(store.path) as conn:
            conn.execute(sql)
        return
    import psycopg

    assert isinstance(store, ct.PostgresStore) and store.schema is not None
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {store.schema}")
        conn.execute(sql)


def _refuse(store: ct.Store, condition: str) -> None:
    """Make the events table refuse the rows matching `condition` (an SQL expression)."""
    if isinstance(store, ct.SQLiteStore):
        _run_sql(
            store,
            "CREATE TRIGGER refuse BEFORE INSERT ON crucible_telemetry_events "
            f"WHEN {condition.replace('item', 'NEW.item')} "
            "BEGIN SELECT RAISE(ABORT, 'refused by the table'); END",
        )
    else:
        _run_sql(
            store,
            "ALTER TABLE crucible_telemetry_events ADD CONSTRAINT refuse "
            f"CHECK (NOT ({condition})) NOT VALID",
        )


def _allow(store: ct.Store) -> None:
    if isinstance(store, ct.SQLiteStore):
        _run_sql(store, "DROP TRIGGER refuse")
    else:
        _run_sql(store, "ALTER TABLE crucible_telemetry_events DROP CONSTRAINT refuse")


def test_events_the_database_refuses_are_set_aside_and_the_rest_written(
    store: ct.Store, caplog: pytest.LogCaptureFixture
) -> None:
    if isinstance(store, ct.MemoryStore):
        pytest.skip("the memory store refuses nothing")
    assert isinstance(store, ct.SQLiteStore | ct.PostgresStore)
    _refuse(store, "item = 'poison'")
    poisoned = {7, 30, 31}
    with ct.experiment("refusals", store=store) as exp:
        for i in range(40):
            with context.use(item="poison" if i in poisoned else f"q{i}"):
                events.emit(events.LLM_REQUEST_STOP, {"duration": i / 10}, {"n": i})
    got = ct.get_events(exp.id, store=store)
    assert got.columns["seq"] == [i for i in range(40) if i not in poisoned]
    assert store.pending() == 0 and store.count(exp.id) == 37
    refused = store.rejected()
    assert [r["seq"] for r in refused] == sorted(poisoned)
    assert all(
        r["item"] == "poison" and r["metadata"]["n"] == r["seq"] for r in refused
    )
    assert all(r["error"] and r["experiment_id"] == exp.id for r in refused)
    assert caplog.text.count("refused an event of experiment") == 3


def test_a_database_refusing_everything_keeps_every_event_buffered(
    store: ct.Store,
) -> None:
    if isinstance(store, ct.MemoryStore):
        pytest.skip("the memory store refuses nothing")
    assert isinstance(store, ct.SQLiteStore | ct.PostgresStore)
    store.retry_timeout = 1.0
    _refuse(store, "true")  # e.g. a permission or a constraint the owner has to fix
    exp = ct.start_experiment("refused", store=store)
    with ct.activate(exp):
        for i in range(5):
            events.emit(events.LLM_REQUEST_STOP, {"duration": i / 10})
    with pytest.raises(ct.StoreUnavailableError, match="5 events are still buffered"):
        store.flush()
    assert store.rejected() == [] and store.pending() == 5
    _allow(store)
    ct.stop_experiment(exp.id)
    assert ct.get_events(exp.id, store=store).columns["seq"] == [0, 1, 2, 3, 4]


def test_repeats_of_any_integer_type_are_stored_as_integers(
    store: ct.Store, tmp_path: Path
) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    repeats: list[Any] = [np.int64(2), np.uint8(3), 4.0, True, "5", None]
    with ct.experiment("repeats", store=store) as exp:
        for repeat in repeats:
            with context.use(repeat=repeat):
                events.emit(events.LLM_REQUEST_STOP, {"duration": 1.0})
    want = [2, 3, 4, None, None, None]
    got = ct.get_events(exp.id, store=store).columns["repeat"]
    assert got == want and all(type(r) is int for r in got if r is not None)
    path = ct.export(exp.id, tmp_path / "r.parquet", store=store)
    assert pq.read_table(path).column("repeat").to_pylist() == want


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_sqlite_notices_its_file_deleted_mid_run(
    tmp_path: Path, emit: Any, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import sqlite3

    path = tmp_path / "t.db"
    store = ct.SQLiteStore(path, flush_interval=0.01, retry_timeout=0.3)
    exp = ct.start_experiment("lost", store=store)
    with ct.activate(exp):
        for i in range(50):
            emit.stop(i / 10)
    store.flush()
    assert store.count(exp.id) == 50
    path.unlink()
    if how == "replaced":
        sqlite3.connect(path).close()  # another, empty database at the same path
    with ct.activate(exp):
        for i in range(30):
            emit.stop(i / 10)
    with (
        caplog.at_level(logging.ERROR, logger="crucible.telemetry"),
        pytest.raises(ct.StoreUnavailableError, match=f"was {how}") as info,
    ):
        store.flush()
    assert info.value.pending == 30  # kept in memory, not written into the void
    assert any(f"was {how}" in r.message for r in caplog.records)
    assert path.exists() == (how == "replaced")  # no file silently made in its place
    with pytest.raises(ct.StoreUnavailableError, match=f"was {how}"):
        store.count(exp.id)  # reads refuse too: they would read another file
    with pytest.raises(ct.StoreUnavailableError, match=f"was {how}"):
        ct.stop_experiment(exp.id)  # it cannot be recorded as stopped either
    if how == "replaced":
        with sqlite3.connect(path) as other:  # the stranger's file got nothing
            tables = other.execute("SELECT name FROM sqlite_master").fetchall()
        assert tables == []
    from crucible_telemetry import _capture, _stores

    with _capture._lock:  # let the experiment go: its store is gone for good
        _capture._live.pop(exp.id)
        _capture._sync_handler()
    _stores._open_stores.discard(store)

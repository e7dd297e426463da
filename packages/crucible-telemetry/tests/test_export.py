"""Export to CSV, JSONL and Parquet, and the polars / pyarrow views."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import crucible_telemetry as ct
from crucible_core import context, events
from crucible_telemetry._schema import COLUMNS, JSON_COLUMNS


@pytest.fixture
def captured(store: ct.Store, emit: Any) -> tuple[str, ct.Store]:
    with ct.experiment("export", store=store, tags=["a", "b"]) as exp:
        for i in range(120):
            with context.use(item=f"q{i}", repeat=i % 2):
                if i % 7 == 0:
                    emit.exception(1.0 + i)
                else:
                    emit.stop(i / 10, note=f"<b>{i}</b>", nested={"k": [i, None]})
        events.emit(("crucible", "trace", "event", "created"), {"confidence": 0.5})
    return exp.id, store


def _captured_rows(exp_id: str, store: ct.Store) -> list[dict[str, Any]]:
    got = ct.get_events(exp_id, store=store)
    return [{c: got.columns[c][i] for c in COLUMNS} for i in range(len(got))]


def test_parquet_read_back_equals_capture(
    captured: tuple[str, ct.Store], tmp_path: Path
) -> None:
    exp_id, store = captured
    path = ct.export(exp_id, tmp_path / "events.parquet", store=store, batch_size=50)
    table = pq.read_table(path)
    assert table.schema.equals(ct.arrow_schema(), check_metadata=False)
    assert table.schema.metadata[b"crucible_telemetry.schema_version"] == b"1"
    assert pq.ParquetFile(path).num_row_groups == 3  # streamed in batches of 50
    rows = table.to_pylist()
    for row in rows:
        for c in JSON_COLUMNS:
            row[c] = json.loads(row[c])
    want = _captured_rows(exp_id, store)
    for row in want:
        row["tags"] = list(row["tags"])
    assert rows == want
    assert len(rows) == 121


def test_jsonl_and_csv_read_back(
    captured: tuple[str, ct.Store], tmp_path: Path
) -> None:
    exp_id, store = captured
    want = _captured_rows(exp_id, store)
    jsonl = ct.export(exp_id, tmp_path / "events.jsonl", store=store, batch_size=7)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    for row in want:
        row["tags"] = list(row["tags"])
    assert lines == want
    path = ct.export(exp_id, tmp_path / "events.csv", store=store)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == len(want)
    for got, expected in zip(rows, want, strict=True):
        assert got["event_id"] == expected["event_id"]
        for column in ("latency_ms", "repeat", "item", "success"):
            value = expected[column]
            assert got[column] == ("" if value is None else str(value))
        assert json.loads(got["metadata"]) == expected["metadata"]
        assert json.loads(got["tags"]) == ["a", "b"]


def test_to_polars_and_arrow(captured: tuple[str, ct.Store]) -> None:
    exp_id, store = captured
    got = ct.get_events(exp_id, store=store)
    frame = got.to_polars()
    assert frame.columns == list(COLUMNS) and frame.height == 121
    assert frame["latency_ms"].to_list() == got.column("latency_ms")
    assert [json.loads(m) for m in frame["metadata"].to_list()] == got.column(
        "metadata"
    )
    assert got.to_arrow().num_rows == 121


def test_export_errors(tmp_path: Path) -> None:
    with ct.experiment("errs") as exp:
        pass
    with pytest.raises(ct.InvalidOptionError, match="cannot tell the format"):
        ct.export(exp.id, tmp_path / "x.txt")
    with pytest.raises(ct.InvalidOptionError, match="format must be"):
        ct.export(exp.id, tmp_path / "x.parquet", format="xlsx")  # type: ignore[arg-type]
    with pytest.raises(ct.ExperimentNotFoundError):
        ct.export("exp_missing", tmp_path / "x.csv")
    assert not list(tmp_path.iterdir())  # nothing half-written
    empty = ct.export(exp.id, tmp_path / "empty.parquet")
    assert pq.read_table(empty).num_rows == 0


def test_parquet_statistics_only_where_they_serve_queries(
    captured: tuple[str, ct.Store], tmp_path: Path
) -> None:
    exp_id, store = captured
    path = ct.export(exp_id, tmp_path / "events.parquet", store=store)
    group = pq.ParquetFile(path).metadata.row_group(0)
    stats = {
        group.column(i).path_in_schema: group.column(i).is_stats_set
        for i in range(group.num_columns)
    }
    assert stats["timestamp_ns"] and stats["latency_ms"] and stats["name"]
    assert not any(stats[c] for c in ("event_id", *JSON_COLUMNS))


def test_parquet_is_written_to_a_native_file_and_renamed_only_when_complete(
    captured: tuple[str, ct.Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crucible_telemetry import _export

    exp_id, store = captured
    out = tmp_path / "out"
    out.mkdir()
    target = out / "events.parquet"
    target.write_bytes(b"the previous export")
    seen: list[Any] = []
    real = pq.ParquetWriter

    def spy(where: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(where)
        return real(where, *args, **kwargs)

    monkeypatch.setattr(pq, "ParquetWriter", spy)

    batches = _export._arrow_batches

    def broken(*args: Any, **kwargs: Any) -> Any:
        yield from batches(*args, **kwargs)
        raise RuntimeError("the store failed mid-export")

    monkeypatch.setattr(_export, "_arrow_batches", broken)
    with pytest.raises(RuntimeError, match="mid-export"):
        ct.export(exp_id, target, store=store, batch_size=50)
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet"]
    # a path (str), not a Python file object: the encoder writes without the GIL
    assert len(seen) == 1 and isinstance(seen[0], str)
    assert Path(seen[0]).parent == out

    monkeypatch.undo()
    ct.export(exp_id, target, store=store, batch_size=50)
    assert pq.read_table(target).num_rows == 121
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet"]


def test_csv_export_makes_formula_cells_inert(tmp_path: Path, emit: Any) -> None:
    from crucible_core import context
    from crucible_core.testing import (
        CSV_INERT_TEXTS,
        CSV_INJECTION_PAYLOADS,
        check_csv_inert,
    )

    texts = [*CSV_INJECTION_PAYLOADS, *CSV_INERT_TEXTS]
    store = ct.MemoryStore()
    with ct.experiment("injection", store=store) as exp:
        for text in texts:
            with context.use(item=text or None):
                emit.stop(0.25)
    path = ct.export(exp.id, tmp_path / "events.csv", store=store)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    check_csv_inert([r["item"] for r in rows], sent=texts)
    assert {r["latency_ms"] for r in rows} == {"250.0"}
    raw = ct.export(
        exp.id, tmp_path / "raw.csv", store=store, neutralize_formulas=False
    )
    with raw.open(newline="", encoding="utf-8") as fh:
        assert [r["item"] for r in csv.DictReader(fh)] == texts

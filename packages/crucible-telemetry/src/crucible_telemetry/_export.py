"""Export an experiment's events to CSV, JSONL or Parquet, streaming batch by batch."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import orjson

from crucible_core._optional import import_optional
from crucible_core.export import CsvWriter, atomic_write
from crucible_telemetry._capture import StoreLike, store_of
from crucible_telemetry._columnar import json_array, scan
from crucible_telemetry._experiment import TelemetryExperiment
from crucible_telemetry._schema import (
    COLUMNS,
    JSON_COLUMNS,
    SCHEMA_VERSION,
    Batch,
    Columns,
    Flat,
    joined_json,
    json_texts,
    valid_text,
    valid_texts,
)
from crucible_telemetry._stores import Store, check_batch_size
from crucible_telemetry.exceptions import InvalidOptionError

if TYPE_CHECKING:
    import pyarrow

    from crucible_core.context import Context

__all__ = ("ExportFormat", "arrow_schema", "enrich_arrow", "export", "to_arrow")

ExportFormat: TypeAlias = Literal["csv", "jsonl", "parquet"]
"""The formats events export to."""

_SUFFIXES: dict[str, ExportFormat] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


# Low-cardinality columns get dictionary encoding; trying it on unique values (ids, JSON) only
# costs time before the writer falls back.
_DICTIONARY = (
    "experiment_id", "experiment_name", "name", "condition", "item", "tags", "model", "provider",
)  # fmt: skip


# Min/max statistics of unique ids and JSON text serve no query and cost ~25% of the write.
_NO_STATISTICS = ("event_id", *JSON_COLUMNS)


def _pa() -> Any:
    return import_optional(
        "pyarrow", extra="pyarrow", distribution="crucible-telemetry"
    )


def arrow_schema() -> pyarrow.Schema:
    """The pyarrow schema of exported events (schema version 1; JSON columns as JSON text)."""
    pa = _pa()
    types = {
        "seq": pa.int64(),
        "timestamp_ns": pa.int64(),
        "monotonic_ns": pa.int64(),
        "repeat": pa.int64(),
        "tags": pa.list_(pa.string()),
        "latency_ms": pa.float64(),
        "cost_usd": pa.float64(),
        "success": pa.bool_(),
        "prompt_tokens": pa.int64(),
        "completion_tokens": pa.int64(),
    }
    schema: pyarrow.Schema = pa.schema(
        [pa.field(c, types.get(c, pa.string())) for c in COLUMNS],
        metadata={
            b"crucible_telemetry.schema_version": str(SCHEMA_VERSION).encode(),
            b"crucible_telemetry.json_columns": ",".join(JSON_COLUMNS).encode(),
        },
    )
    return schema


def to_arrow(columns: Columns) -> pyarrow.Table:
    """A pyarrow Table of enriched columns (dicts in JSON columns are written as JSON text)."""
    pa = _pa()
    schema = arrow_schema()
    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.name in JSON_COLUMNS and values and not isinstance(values[0], str):
            values = json_texts(values)
        arrays.append(pa.array(values, type=field.type))
    table: pyarrow.Table = pa.Table.from_arrays(arrays, schema=schema)
    return table


def _json_array(pa: Any, pc: Any, values: list[Any]) -> pyarrow.Array:
    """The JSON text of each value as an Arrow string array, with no Python object per value.

    One `orjson.dumps` call gives every text, NUL-separated
    ([`joined_json`][crucible_telemetry._schema.joined_json]); Arrow splits it in C++.
    """
    raw = joined_json(values) if values else None
    if raw is None:
        return pa.array(json_texts(values), pa.string())
    text = pa.array([memoryview(raw)[1:-1]], pa.large_binary())
    parts = pc.split_pattern(text, ",\x00,").flatten()
    array: pyarrow.Array = parts.cast(pa.string())
    return array


def _text_array(pa: Any, values: list[str | None]) -> pyarrow.Array:
    """A string array of `values`; lone surrogates replaced (checked only if Arrow refuses)."""
    try:
        array: pyarrow.Array = pa.array(values, pa.string())
    except UnicodeEncodeError:
        array = pa.array(valid_texts(values), pa.string())
    return array


def _repeated_list(pa: Any, values: list[str], n: int) -> pyarrow.Array:
    """A `list<string>` array holding `values` in each of `n` rows (10x faster than `pa.repeat`)."""
    k = len(values)
    offsets = pa.array(np.arange(0, (n + 1) * k, k or 1, dtype=np.int32)[: n + 1])
    if not k:
        offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
    items = pa.array(values, pa.string()).take(np.tile(np.arange(k), n))
    array: pyarrow.Array = pa.ListArray.from_arrays(offsets, items)
    return array


def _success(pa: Any, b: Batch, codes: pyarrow.Array) -> pyarrow.Array:
    if b.flagged is not None:
        return pa.array(b.success(), pa.bool_())
    array: pyarrow.Array = pa.array(b.outcomes, pa.bool_()).take(codes)
    return array


def enrich_arrow(
    experiment: TelemetryExperiment, flat: Flat, contexts: Mapping[int, Context]
) -> pyarrow.Table:
    """The enriched events as a pyarrow Table of [`arrow_schema`][crucible_telemetry.arrow_schema].

    The same values as [`enrich`][crucible_telemetry._schema.enrich] with `json_text=True`, built
    column-wise: distinct names and contexts are converted once and gathered with `take`, JSON
    text goes straight into Arrow buffers, event ids are joined by Arrow.
    """
    pa, pc = (
        _pa(),
        import_optional(
            "pyarrow.compute", extra="pyarrow", distribution="crucible-telemetry"
        ),
    )
    schema = arrow_schema()
    if not flat:
        return schema.empty_table()
    scanned = scan(experiment, flat, contexts)
    if scanned is not None:
        columns = scanned.arrow_columns(pa, pc)
        ctx_codes = pa.array(scanned.context_codes)
        ctx, meas, meta, n = scanned.contexts, scanned.meas, scanned.meta, scanned.n
    else:
        b = Batch(experiment, flat, contexts)
        columns = _batch_columns(pa, pc, experiment, b)
        ctx_codes = pa.array(b.context_codes, pa.int32())
        ctx, meas, meta, n = b.contexts, b.meas, b.meta, b.n
    columns["tags"] = _repeated_list(pa, valid_texts(list(experiment.tags)), n)
    for column, values in (("measurements", meas), ("metadata", meta)):
        array = json_array(pa, values)  # None without the C extension
        columns[column] = _json_array(pa, pc, values) if array is None else array
    extras = json_texts([dict(c.extra) for c in ctx])
    columns["context"] = pa.array(extras, pa.string()).take(ctx_codes)
    table: pyarrow.Table = pa.Table.from_arrays(
        [columns[f.name] for f in schema], schema=schema
    )
    return table


def _batch_columns(
    pa: Any, pc: Any, experiment: TelemetryExperiment, b: Batch
) -> dict[str, pyarrow.Array]:
    """The columns of the pure-Python path but the JSON and list ones (see `Scan.arrow_columns`)."""
    n = b.n
    names_codes = pa.array(b.name_codes, pa.int32())
    ctx_codes = pa.array(b.context_codes, pa.int32())

    def per_context(values: list[Any], type: Any) -> pyarrow.Array:
        return pa.array(values, type).take(ctx_codes)

    seq = pa.array(b.seq, pa.int64())
    exp_id, exp_name = valid_text(experiment.id), valid_text(experiment.name)
    return {
        "event_id": pc.binary_join_element_wise(exp_id, pc.cast(seq, pa.string()), "-"),
        "experiment_id": pa.repeat(pa.scalar(exp_id, pa.string()), n),
        "experiment_name": pa.repeat(pa.scalar(exp_name, pa.string()), n),
        "seq": seq,
        "name": pa.array(b.names, pa.string()).take(names_codes),
        "timestamp_ns": pa.array(b.wall, pa.int64()),
        "monotonic_ns": pa.array(b.mono, pa.int64()),
        "condition": per_context(b.conditions, pa.string()),
        "repeat": per_context(b.repeats, pa.int64()),
        "item": per_context(b.items, pa.string()),
        "latency_ms": pa.array(b.latency, pa.float64()),
        "cost_usd": pa.array(b.cost, pa.float64()),
        "success": _success(pa, b, names_codes),
        "model": _text_array(pa, b.model),
        "provider": _text_array(pa, b.provider),
        "prompt_tokens": pa.array(b.prompt, pa.int64()),
        "completion_tokens": pa.array(b.completion, pa.int64()),
    }


def _arrow_batches(
    store: Store, experiment_id: str, batch_size: int
) -> Iterator[pyarrow.Table]:
    """Tables of the experiment's events: the store's own `arrow_batches` if it has one."""
    own = getattr(store, "arrow_batches", None)
    if callable(own):
        yield from own(experiment_id, batch_size=batch_size)
        return
    for batch in store.batches(experiment_id, batch_size=batch_size, json_text=True):
        yield to_arrow(batch)


def _write_overlapped(write: Callable[[Any], None], tables: Iterator[Any]) -> None:
    """`write` every table in order, each in a worker thread while the next one is built.

    Arrow's Parquet encoder releases the GIL, so writing row group k overlaps building row group
    k + 1 in Python; at most two tables are alive at once. An error from either side propagates.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="crucible-parquet") as pool:
        pending: Future[None] | None = None
        for table in tables:
            if pending is not None:
                pending.result()
            pending = pool.submit(write, table)
        if pending is not None:
            pending.result()


def _write_parquet(target: Path, tables: Iterator[pyarrow.Table]) -> None:
    """Write `tables` as the row groups of a Parquet file at `target`, atomically.

    The encoder writes to a native file (a path, not a Python file object), so it never waits for
    the GIL while the next table is built; the file is fsynced and renamed over `target` when
    complete, and removed if anything fails.
    """
    pq = import_optional(
        "pyarrow.parquet", extra="pyarrow", distribution="crucible-telemetry"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        with pq.ParquetWriter(
            str(tmp),
            arrow_schema(),
            use_dictionary=list(_DICTIONARY),
            write_statistics=[c for c in COLUMNS if c not in _NO_STATISTICS],
        ) as writer:
            _write_overlapped(writer.write_table, tables)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _format_of(path: Path, format: ExportFormat | None) -> ExportFormat:
    if format is not None:
        if format not in ("csv", "jsonl", "parquet"):
            raise InvalidOptionError(
                f"format must be 'csv', 'jsonl' or 'parquet', got {format!r}",
                format=format,
            )
        return format
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidOptionError(
            f"cannot tell the format of {str(path)!r} from its suffix; use .csv, .jsonl or "
            ".parquet, or pass format=",
            path=str(path),
        )
    return found


def export(
    experiment_id: str,
    path: str | os.PathLike[str],
    *,
    format: ExportFormat | None = None,
    store: StoreLike | None = None,
    batch_size: int = 100_000,
    neutralize_formulas: bool = True,
) -> Path:
    """Write an experiment's events to a file, batch by batch, atomically.

    Memory use is bounded by `batch_size` events whatever the experiment's size, so experiments
    larger than memory (in SQLite or PostgreSQL) export too. The file appears only when complete.

    - CSV: one column per [`COLUMNS`][crucible_telemetry.COLUMNS] entry; `tags` and the JSON
      columns as JSON text; missing values empty; text a spreadsheet would run as a formula
      (`=…`, `+…`, `-…`, `@…`) gets a leading `'` (crucible-core's `CsvWriter`).
    - JSONL: one JSON object per event, JSON columns as nested objects.
    - Parquet (needs the `pyarrow` extra): the schema of
      [`arrow_schema`][crucible_telemetry.arrow_schema], one row group per batch, with
      `crucible_telemetry.schema_version` in the file's metadata.

    Args:
        experiment_id: the experiment.
        path: the file to write.
        format: `"csv"`, `"jsonl"` or `"parquet"`; by default from the suffix.
        store: where the experiment is; by default the stores this process has used.
        batch_size: events per batch (per Parquet row group).
        neutralize_formulas: CSV only: `False` writes text exactly as captured.

    Returns:
        The path written.

    Raises:
        ExperimentNotFoundError: no store searched holds the experiment.
        InvalidOptionError: an unknown format or suffix, or a bad batch size.
    """
    target = Path(path)
    fmt = _format_of(target, format)
    check_batch_size(batch_size)
    found, _ = store_of(experiment_id, store)
    if fmt == "parquet":
        _write_parquet(target, _arrow_batches(found, experiment_id, batch_size))
    elif fmt == "jsonl":
        with atomic_write(target, binary=True) as fh:
            for batch in found.batches(experiment_id, batch_size=batch_size):
                cols = [batch[c] for c in COLUMNS]
                rows = [
                    dict(zip(COLUMNS, row, strict=True))
                    for row in zip(*cols, strict=True)
                ]
                for text in json_texts(rows):
                    fh.write(text.encode())
                    fh.write(b"\n")
    else:
        with atomic_write(target) as fh:
            CsvWriter(fh).writerow(COLUMNS)
            for batch in found.batches(
                experiment_id, batch_size=batch_size, json_text=True
            ):
                buf = io.StringIO()
                chunk = CsvWriter(buf, neutralize_formulas=neutralize_formulas)
                tags = [orjson.dumps(t).decode() for t in batch["tags"]]
                cols = [tags if c == "tags" else batch[c] for c in COLUMNS]
                chunk.writerows(zip(*cols, strict=True))
                fh.write(buf.getvalue())
    return target

"""Export an experiment's events to CSV, JSONL or Parquet, streaming batch by batch."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import orjson

from crucible_core._optional import import_optional
from crucible_core.export import atomic_write
from crucible_telemetry._capture import StoreLike, store_of
from crucible_telemetry._schema import COLUMNS, JSON_COLUMNS, SCHEMA_VERSION, Columns
from crucible_telemetry._stores import check_batch_size
from crucible_telemetry.exceptions import InvalidOptionError

if TYPE_CHECKING:
    import pyarrow

__all__ = ("ExportFormat", "arrow_schema", "export", "to_arrow")

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
    from crucible_telemetry._schema import json_dumps

    pa = _pa()
    schema = arrow_schema()
    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.name in JSON_COLUMNS and values and not isinstance(values[0], str):
            values = [json_dumps(v) for v in values]
        if values and values.count(values[0]) == len(
            values
        ):  # e.g. experiment_id, tags
            arrays.append(pa.repeat(pa.scalar(values[0], type=field.type), len(values)))
        else:
            arrays.append(pa.array(values, type=field.type))
    table: pyarrow.Table = pa.Table.from_arrays(arrays, schema=schema)
    return table


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
) -> Path:
    """Write an experiment's events to a file, batch by batch, atomically.

    Memory use is bounded by `batch_size` events whatever the experiment's size, so experiments
    larger than memory (in SQLite or PostgreSQL) export too. The file appears only when complete.

    - CSV: one column per [`COLUMNS`][crucible_telemetry.COLUMNS] entry; `tags` and the JSON
      columns as JSON text; missing values empty.
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
        pq = import_optional(
            "pyarrow.parquet", extra="pyarrow", distribution="crucible-telemetry"
        )
        schema = arrow_schema()
        with (
            atomic_write(target, binary=True) as fh,
            pq.ParquetWriter(fh, schema, use_dictionary=list(_DICTIONARY)) as writer,
        ):
            for batch in found.batches(
                experiment_id, batch_size=batch_size, json_text=True
            ):
                writer.write_table(to_arrow(batch))
    elif fmt == "jsonl":
        with atomic_write(target, binary=True) as fh:
            for batch in found.batches(experiment_id, batch_size=batch_size):
                cols = [batch[c] for c in COLUMNS]
                fh.writelines(
                    orjson.dumps(
                        dict(zip(COLUMNS, row, strict=True)),
                        default=repr,
                        option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY,
                    )
                    for row in zip(*cols, strict=True)
                )
    else:
        with atomic_write(target) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS)
            for batch in found.batches(
                experiment_id, batch_size=batch_size, json_text=True
            ):
                buf = io.StringIO()
                rows = csv.writer(buf, lineterminator="\n")
                tags = [orjson.dumps(t).decode() for t in batch["tags"]]
                cols = [tags if c == "tags" else batch[c] for c in COLUMNS]
                rows.writerows(
                    ["" if v is None else v for v in row]
                    for row in zip(*cols, strict=True)
                )
                fh.write(buf.getvalue())
    return target

"""Readers for JSON Lines, JSON, CSV and Parquet whose errors name the file, line and field."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from crucible_core._optional import import_optional
from crucible_datasets.exceptions import MalformedDataError

__all__ = (
    "Row",
    "field",
    "parse_csv",
    "read_csv",
    "read_json",
    "read_jsonl",
    "read_parquet",
    "read_rows",
    "read_table",
    "rows_of",
)

Row = dict[str, Any]
"""One record, with its 1-based line number (or row number) under the key `"__line__"`."""

LINE = "__line__"


def _text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise MalformedDataError(
                f"{str(path)!r} is not a valid gzip file ({err}); download it again",
                path=str(path),
                line=None,
                field=None,
            ) from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise MalformedDataError(
            f"{str(path)!r} line {line} is not UTF-8 text ({err.reason}); "
            "re-save the file as UTF-8",
            path=str(path),
            line=line,
            field=None,
        ) from err


def read_jsonl(path: Path) -> list[Row]:
    """Every object of a JSON Lines file (optionally `.gz`); blank lines are skipped."""
    rows: list[Row] = []
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            raise MalformedDataError(
                f"{str(path)!r} line {number} is not valid JSON ({err}); "
                "each line of a JSON Lines file must be one JSON object",
                path=str(path),
                line=number,
                field=None,
            ) from err
        if not isinstance(value, dict):
            raise MalformedDataError(
                f"{str(path)!r} line {number} is a JSON {type(value).__name__}, not an "
                "object; each line of a JSON Lines file must be one JSON object",
                path=str(path),
                line=number,
                field=None,
            )
        value[LINE] = number
        rows.append(value)
    return rows


def read_json(path: Path) -> list[Row]:
    """The objects of a JSON file holding an array of objects (or `{"data": [...]}`)."""
    try:
        value = orjson.loads(_text(path))
    except orjson.JSONDecodeError as err:
        raise MalformedDataError(
            f"{str(path)!r} is not valid JSON ({err})",
            path=str(path),
            line=None,
            field=None,
        ) from err
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise MalformedDataError(
            f"{str(path)!r} holds a JSON {type(value).__name__}; expected an array of "
            "objects (or an object with a `data` array)",
            path=str(path),
            line=None,
            field=None,
        )
    rows: list[Row] = []
    for number, obj in enumerate(value, start=1):
        if not isinstance(obj, dict):
            raise MalformedDataError(
                f"{str(path)!r} element {number} is not an object",
                path=str(path),
                line=number,
                field=None,
            )
        rows.append({**obj, LINE: number})
    return rows


def read_csv(
    path: Path, *, header: bool = True, columns: int | None = None
) -> list[Row]:
    """The rows of a CSV file, read with a real CSV parser (quoted commas and newlines).

    Args:
        path: the file.
        header: whether the first row names the columns; without one, columns are `"0"`, `"1"`…
        columns: if given, every row must have exactly this many fields.
    """
    return parse_csv(_text(path), path, header=header, columns=columns)


def parse_csv(
    text: str, path: Path | str, *, header: bool = True, columns: int | None = None
) -> list[Row]:
    """The rows of CSV `text` read from `path` (named in errors); see `read_csv`."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[Row] = []
    names: list[str] | None = None
    try:
        for record in reader:
            number = reader.line_num
            if not record:
                continue
            if header and names is None:
                names = record
                continue
            if columns is not None and len(record) != columns:
                raise MalformedDataError(
                    f"{str(path)!r} line {number} has {len(record)} fields, expected "
                    f"{columns}",
                    path=str(path),
                    line=number,
                    field=None,
                )
            keys = names if names is not None else [str(i) for i in range(len(record))]
            if len(record) != len(keys):
                raise MalformedDataError(
                    f"{str(path)!r} line {number} has {len(record)} fields but the header "
                    f"names {len(keys)}",
                    path=str(path),
                    line=number,
                    field=None,
                )
            row: Row = dict(zip(keys, record, strict=True))
            row[LINE] = number
            rows.append(row)
    except csv.Error as err:
        raise MalformedDataError(
            f"{str(path)!r} line {reader.line_num} is not valid CSV ({err})",
            path=str(path),
            line=reader.line_num,
            field=None,
        ) from err
    return rows


def read_table(path: Path) -> Any:
    """A Parquet file as a pyarrow Table (needs the `pyarrow` extra).

    Decoded by polars when it is installed (four times faster than pyarrow's reader on MMLU's
    file here) and converted to Arrow at the oldest compat level, which copies string columns
    (polars' string views become Arrow large strings; about 0.9 ms on MMLU test); else, or if
    polars declines the file, by pyarrow.
    """
    try:
        import polars as pl
    except ImportError:
        pass
    else:
        try:
            frame = pl.read_parquet(path)
        except Exception:
            pass
        else:
            return frame.to_arrow(compat_level=pl.CompatLevel.oldest())
    pq = import_optional(
        "pyarrow.parquet", extra="pyarrow", distribution="crucible-datasets"
    )
    try:
        return pq.read_table(path)
    except Exception as err:  # pyarrow raises ArrowInvalid/OSError for bad files
        raise MalformedDataError(
            f"{str(path)!r} is not a readable Parquet file ({err}); download it again",
            path=str(path),
            line=None,
            field=None,
        ) from err


def rows_of(table: Any, lines: Any = None) -> list[Row]:
    """A table's rows; `lines` gives their row numbers (default: 1, 2, … in order)."""
    names = [*table.column_names, LINE]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    columns.append(range(1, table.num_rows + 1) if lines is None else lines)
    return [
        dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)
    ]


def read_parquet(path: Path) -> list[Row]:
    """The rows of a Parquet file (needs the `pyarrow` extra); row numbers count from 1."""
    return rows_of(read_table(path))


def read_rows(path: Path) -> list[Row]:
    """Rows of a `.jsonl`, `.jsonl.gz`, `.json`, `.csv` or `.parquet` file, chosen by suffix."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
        return read_jsonl(path)
    if name.endswith(".json"):
        return read_json(path)
    if name.endswith((".csv", ".csv.gz")):
        return read_csv(path)
    if name.endswith(".parquet"):
        return read_parquet(path)
    raise MalformedDataError(
        f"cannot tell the format of {str(path)!r}; use a .jsonl, .json, .csv or .parquet file",
        path=str(path),
        line=None,
        field=None,
    )


def field(
    row: Row, name: str, path: str, *, kind: type | tuple[type, ...] | None = None
) -> Any:
    """`row[name]`, or a `MalformedDataError` naming the file, line and missing field."""
    try:
        value = row[name]
    except KeyError:
        present = sorted(k for k in row if k != LINE)
        raise MalformedDataError(
            f"{path!r} line {row.get(LINE)} has no field {name!r} (it has {present}); "
            "fix the file or map the field with `fields=`",
            path=path,
            line=row.get(LINE),
            field=name,
        ) from None
    if kind is not None and not isinstance(value, kind):
        raise MalformedDataError(
            f"{path!r} line {row.get(LINE)} field {name!r} is {type(value).__name__} "
            f"{value!r:.40}, expected {_kind_name(kind)}",
            path=path,
            line=row.get(LINE),
            field=name,
        )
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def iter_lines(rows: list[Row]) -> Iterator[tuple[int, Row]]:
    """(line, row) pairs."""
    for row in rows:
        yield int(row.get(LINE, 0)), row

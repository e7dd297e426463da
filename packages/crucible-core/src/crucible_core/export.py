"""Write and read record batches as CSV, JSONL or Parquet, atomically.

Records are a sequence of mappings (rows) or a mapping of equal-length sequences (columns). Writes go
to a temporary file in the target directory, are flushed to disk, then renamed over the target, so a
reader never sees a half-written file and a crash never destroys the previous one. Parquet needs the
`pyarrow` extra and is imported only when used.

CSV cells are made inert for spreadsheets by [`csv_cell`][crucible_core.export.csv_cell] (OWASP's
rule against CSV injection); every CSV writer of crucible writes through
[`CsvWriter`][crucible_core.export.CsvWriter], which applies it, with `neutralize_formulas=False`
to write text exactly as given.

Examples:
    >>> import tempfile, pathlib
    >>> from crucible_core.export import save_records, load_records
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> _ = save_records([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}], path)
    >>> load_records(path)
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'y'}]
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias

from crucible_core._optional import import_optional
from crucible_core.exceptions import SerializationError, ValidationError
from crucible_core.serde import dumps, loads

__all__ = (
    "CsvWriter",
    "Format",
    "Records",
    "atomic_write",
    "csv_cell",
    "load_records",
    "save_records",
)

Format: TypeAlias = Literal["csv", "jsonl", "parquet"]
"""The formats records can be written in."""

Records: TypeAlias = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]
"""Rows (a sequence of mappings) or columns (a mapping of equal-length sequences)."""

_SUFFIXES: dict[str, Format] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, binary: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync it and rename it over `path`.

    If the block raises, the temporary file is removed and `path` is left as it was. The file
    gets the permissions a plain `open(path, "w")` would give it: those of the file it replaces,
    or `0o666` less the process umask for a new one (not `mkstemp`'s private `0o600`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        os.fchmod(fd, _mode_for(target))
        handle: IO[Any] = (
            os.fdopen(fd, "wb")
            if binary
            else os.fdopen(fd, "w", encoding="utf-8", newline="")
        )
        with handle as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()
        raise


def _umask() -> int:
    """The process umask, read without changing it where the platform allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # no read-only API elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


_FORMULA_CHARS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def csv_cell(value: Any, *, neutralize_formulas: bool = True) -> Any:
    r"""A value as a CSV cell that a spreadsheet shows as text instead of running it.

    Text starting with `=`, `+`, `-`, `@`, a tab or a carriage return is what Excel, LibreOffice
    and Google Sheets read as a formula (`=HYPERLINK(…)`, `+cmd|' /C calc'!A0`, `@SUM(…)`), so
    it gets a leading `'` (OWASP's rule for CSV injection); the csv module quotes the cell as
    needed. A plain number written as text (`"-1.5"`) cannot be a formula and is left alone, as
    are numbers, booleans and every other value. `None` becomes the empty cell.

    Args:
        value: the cell's value.
        neutralize_formulas: `False` writes text exactly as given (for files no spreadsheet opens).

    Examples:
        >>> csv_cell("=HYPERLINK(\"http://x\")")
        '\'=HYPERLINK("http://x")'
        >>> csv_cell("-2.5"), csv_cell(-2.5), csv_cell(None)
        ('-2.5', -2.5, '')
    """
    if value is None:
        return ""
    if neutralize_formulas and isinstance(value, str):
        return _inert(value)
    return value


class CsvWriter:
    r"""Rows to a CSV stream, each cell through [`csv_cell`][crucible_core.export.csv_cell].

    Lines end in `\n`. A row holding a carriage return in some cell is written with every cell
    quoted (Python 3.11's csv module does not quote a lone `\r` when lines end in `\n`, and a
    reader would split the row there).

    Args:
        stream: a text stream opened with `newline=""`.
        neutralize_formulas: `False` writes text exactly as given.
    """

    def __init__(self, stream: IO[str], *, neutralize_formulas: bool = True) -> None:
        self._minimal = csv.writer(stream, lineterminator="\n")
        self._quoted = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
        self.neutralize_formulas = neutralize_formulas
        """Whether text that starts a formula gets a leading `'`."""

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row."""
        if self.neutralize_formulas:
            cells = [_inert(v) if type(v) is str else v for v in row]
        else:
            cells = list(row)
        cells = ["" if v is None else v for v in cells]
        if any("\r" in v for v in cells if type(v) is str):
            self._quoted.writerow(cells)
        else:
            self._minimal.writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write rows."""
        for row in rows:
            self.writerow(row)


def _inert(text: str) -> str:
    if text[:1] in _FORMULA_CHARS and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _format_of(path: Path, format: Format | None) -> Format:
    if format is not None:
        if format not in ("csv", "jsonl", "parquet"):
            raise ValidationError(
                f"format must be 'csv', 'jsonl' or 'parquet', got {format!r}",
                format=format,
            )
        return format
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ValidationError(
            f"cannot tell the format of {str(path)!r} from its suffix; use .csv, .jsonl or .parquet "
            "or pass format=",
            path=str(path),
        )
    return found


def _columns(records: Records) -> dict[str, list[Any]]:
    if isinstance(records, Mapping):
        cols = {str(k): list(v) for k, v in records.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise ValidationError(
                f"columns have different lengths {sorted(lengths)}; every column needs one value per row",
            )
        return cols
    names: dict[str, None] = {}
    for row in records:
        if not isinstance(row, Mapping):
            raise ValidationError(
                f"each record must be a mapping, got {type(row).__name__}"
            )
        names.update(dict.fromkeys(row))
    return {n: [row.get(n) for row in records] for n in names}


def _rows(cols: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    n = len(next(iter(cols.values()))) if cols else 0
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def save_records(
    records: Records,
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    neutralize_formulas: bool = True,
) -> Path:
    """Write records to `path` atomically, in the format named or given by the suffix.

    CSV writes nested values as JSON text, and text a spreadsheet would run as a formula with a
    leading `'` (see [`csv_cell`][crucible_core.export.csv_cell]; `neutralize_formulas=False`
    turns that off); JSONL and Parquet keep types and text as given (Parquet infers a schema from
    the values; a column mixing types is an error naming the column).

    Returns:
        The path written.
    """
    target = Path(path)
    fmt = _format_of(target, format)
    cols = _columns(records)
    if fmt == "jsonl":
        with atomic_write(target, binary=True) as fh:
            for row in _rows(cols):
                fh.write(dumps(row) + b"\n")
    elif fmt == "csv":
        buf = io.StringIO()
        writer = CsvWriter(buf, neutralize_formulas=neutralize_formulas)
        writer.writerow(cols)
        for row in _rows(cols):
            writer.writerow(
                dumps(v).decode() if isinstance(v, Mapping | list | tuple) else v
                for v in row.values()
            )
        with atomic_write(target) as fh:
            fh.write(buf.getvalue())
    else:
        pa = import_optional("pyarrow", extra="pyarrow")
        pq = import_optional("pyarrow.parquet", extra="pyarrow")
        try:
            table = pa.table(cols)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise SerializationError(
                f"cannot write these records as Parquet: {err}"
            ) from err
        with atomic_write(target, binary=True) as fh:
            pq.write_table(table, fh)
    return target


def load_records(
    path: str | os.PathLike[str], *, format: Format | None = None
) -> list[dict[str, Any]]:
    """Read records written by [`save_records`][crucible_core.export.save_records] (or any such file).

    CSV values come back as strings (CSV has no types). A malformed JSONL line raises
    `SerializationError` naming the file and line.
    """
    source = Path(path)
    fmt = _format_of(source, format)
    if not source.exists():
        raise FileNotFoundError(f"no such file: {str(source)!r}")
    if fmt == "jsonl":
        out = []
        with source.open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    out.append(loads(line))
                except SerializationError as err:
                    raise SerializationError(
                        f"{source}:{number}: {err.message}",
                        path=str(source),
                        line=number,
                    ) from err
        return out
    if fmt == "csv":
        with source.open(encoding="utf-8", newline="") as fh:
            return [dict(r) for r in csv.DictReader(fh)]
    pq = import_optional("pyarrow.parquet", extra="pyarrow")
    rows: list[dict[str, Any]] = pq.read_table(source).to_pylist()
    return rows

"""The SQLite store: one embedded database file, persistent, no server."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from crucible_telemetry._experiment import TelemetryExperiment
from crucible_telemetry._schema import (
    SCHEMA_VERSION,
    Columns,
    json_dumps,
    rows_from_text,
)
from crucible_telemetry._stores import (
    EVENT_COLUMNS,
    EXPERIMENT_FIELDS,
    BufferedStore,
    check_batch_size,
    experiment_from_row,
    experiment_row,
)
from crucible_telemetry.exceptions import InvalidOptionError

__all__ = ("SQLiteFileLostError", "SQLiteStore")

_logger = logging.getLogger("crucible.telemetry")

_TYPES = {
    "seq": "INTEGER NOT NULL",
    "timestamp_ns": "INTEGER NOT NULL",
    "monotonic_ns": "INTEGER NOT NULL",
    "repeat": "INTEGER",
    "latency_ms": "REAL",
    "cost_usd": "REAL",
    "success": "INTEGER",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS crucible_telemetry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO crucible_telemetry_meta VALUES ('schema_version', '{SCHEMA_VERSION}');
CREATE TABLE IF NOT EXISTS crucible_telemetry_experiments (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hypothesis TEXT, condition TEXT NOT NULL,
    tags TEXT NOT NULL, metadata TEXT NOT NULL, started_at TEXT NOT NULL, stopped_at TEXT,
    status TEXT NOT NULL, sample_size INTEGER, event_count INTEGER NOT NULL, store TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS crucible_telemetry_events (
    {", ".join(f'"{c}" {_TYPES.get(c, "TEXT")}' for c in EVENT_COLUMNS)},
    PRIMARY KEY (experiment_id, seq)
);
CREATE INDEX IF NOT EXISTS crucible_telemetry_events_time
    ON crucible_telemetry_events (experiment_id, timestamp_ns);
"""

_QUOTED = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
_INSERT = (
    f"INSERT OR IGNORE INTO crucible_telemetry_events ({_QUOTED}) "
    f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
)


class SQLiteFileLostError(sqlite3.OperationalError):
    """The store's file was deleted or replaced while the store had it open.

    A subclass of `sqlite3.OperationalError`, so the store treats it as an outage: events stay
    buffered, `flush()` raises `StoreUnavailableError` naming it, and nothing is written to a
    file that is no longer the one opened (nor to a new file silently created in its place).
    """


class SQLiteStore(BufferedStore):
    """Events in one SQLite file: embedded, persistent, readable by any SQLite tool.

    Events are buffered and written in batches (one transaction each) by a background thread;
    reads and [`flush`][crucible_telemetry.Store.flush] first write what is buffered. The schema is
    created on first use. Tables: `crucible_telemetry_experiments`, `crucible_telemetry_events`
    (the columns of [`COLUMNS`][crucible_telemetry.COLUMNS]; JSON columns as text).

    Args:
        path: the database file (created with its directory if missing).
        batch_size: most events per insert.
        flush_interval: seconds between background writes.
        retry_timeout: seconds `flush()` waits on a locked or failing database before raising.

    Examples:
        >>> import tempfile, pathlib, crucible_telemetry as ct
        >>> store = ct.SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "t.db")
        >>> with ct.experiment("doc", store=store) as exp:
        ...     pass
        >>> ct.get_experiment(exp.id, store=store).status
        'stopped'
        >>> store.close()
    """

    _retryable = (sqlite3.OperationalError,)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 10_000,
        flush_interval: float = 0.2,
        retry_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            flush_interval=flush_interval,
            retry_timeout=retry_timeout,
        )
        self.path = Path(path)
        if self.path.is_dir():
            raise InvalidOptionError(
                f"SQLiteStore needs a file path, and {str(self.path)!r} is a directory; "
                "pass e.g. `path / 'telemetry.db'`",
                path=str(self.path),
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        """(device, inode) of the file as first opened: it must stay that file."""
        self._lost_logged = False
        self._retry_sync(lambda: self._connection())

    @property
    def description(self) -> str:
        """`"sqlite:<path>"`."""
        return f"sqlite:{self.path}"

    def _check_file(self) -> None:
        """Raise `SQLiteFileLostError` unless the path is still the file first opened.

        Checked before every write and read (one `stat`), so a file deleted or replaced mid-run
        is noticed at the next flush instead of swallowing every later event.
        """
        if self._identity is None:
            return
        try:
            st = self.path.stat()
            now: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            now = None
        if now == self._identity:
            return
        what = "deleted" if now is None else "replaced by another file"
        message = (
            f"{str(self.path)!r} was {what} while this store had it open: the events written "
            "before went with the old file, and nothing more is written (no new file is made in "
            "its place); the events since are kept in memory (see `pending()`). Open a new "
            "SQLiteStore for new experiments"
        )
        if not self._lost_logged:
            self._lost_logged = True
            _logger.error("%s", message)
        raise SQLiteFileLostError(message)

    def _connection(self) -> sqlite3.Connection:
        self._check_file()
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=5.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            version = conn.execute(
                "SELECT value FROM crucible_telemetry_meta WHERE key = 'schema_version'"
            ).fetchone()[0]
            if int(version) != SCHEMA_VERSION:
                conn.close()
                raise InvalidOptionError(
                    f"{str(self.path)!r} holds telemetry schema version {version}, and this "
                    f"crucible-telemetry reads version {SCHEMA_VERSION}; use a new file or the "
                    "crucible-telemetry version that wrote it",
                    path=str(self.path),
                    schema_version=int(version),
                )
            st = self.path.stat()
            self._identity = (st.st_dev, st.st_ino)
            self._conn = conn
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _disconnect(self) -> None:
        self._reset()

    def _write(self, columns: Columns) -> None:
        conn = self._connection()
        tags = columns["tags"]
        if tags:
            columns["tags"] = [json_dumps(tags[0])] * len(
                tags
            )  # one experiment per batch
        rows = zip(*(columns[c] for c in EVENT_COLUMNS), strict=True)
        conn.execute("BEGIN")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        rows: list[Any] = self._retry_sync(
            lambda: self._connection().execute(sql, args).fetchall()
        )
        return rows

    # -- experiments -----------------------------------------------------------------------------

    def save_experiment(self, experiment: TelemetryExperiment) -> None:
        """Insert or replace an experiment's record."""
        row = experiment_row(experiment)
        sql = (
            f"INSERT OR REPLACE INTO crucible_telemetry_experiments ({', '.join(EXPERIMENT_FIELDS)}) "
            f"VALUES ({', '.join('?' for _ in EXPERIMENT_FIELDS)})"
        )
        self._retry_sync(lambda: self._connection().execute(sql, list(row.values())))

    def load_experiment(self, experiment_id: str) -> TelemetryExperiment | None:
        """The stored record of an experiment, or `None`."""
        sql = f"SELECT {', '.join(EXPERIMENT_FIELDS)} FROM crucible_telemetry_experiments WHERE id = ?"
        row = self._retry_sync(
            lambda: self._connection().execute(sql, (experiment_id,)).fetchone()
        )
        return None if row is None else experiment_from_row(row)

    def experiments(self) -> list[TelemetryExperiment]:
        """Every experiment in the file."""
        sql = (
            f"SELECT {', '.join(EXPERIMENT_FIELDS)} FROM crucible_telemetry_experiments"
        )
        rows = self._retry_sync(lambda: self._connection().execute(sql).fetchall())
        return [experiment_from_row(r) for r in rows]

    # -- events ----------------------------------------------------------------------------------

    def count(self, experiment_id: str) -> int:
        """Events in the file plus those still buffered."""
        sql = "SELECT count(*) FROM crucible_telemetry_events WHERE experiment_id = ?"
        stored: int = self._retry_sync(
            lambda: self._connection().execute(sql, (experiment_id,)).fetchone()[0]
        )
        return stored + self.pending()

    def batches(
        self,
        experiment_id: str,
        *,
        batch_size: int = 100_000,
        since_ns: int | None = None,
        until_ns: int | None = None,
        json_text: bool = False,
    ) -> Iterator[Columns]:
        """The experiment's events in `seq` order, after writing what is buffered."""
        check_batch_size(batch_size)
        self.flush()
        where = ["experiment_id = ?"]
        params: list[Any] = [experiment_id]
        if since_ns is not None:
            where.append("timestamp_ns >= ?")
            params.append(since_ns)
        if until_ns is not None:
            where.append("timestamp_ns < ?")
            params.append(until_ns)
        last = -1
        while True:
            sql = (
                f"SELECT {_QUOTED} FROM crucible_telemetry_events "
                f"WHERE {' AND '.join(where)} AND seq > ? ORDER BY seq LIMIT ?"
            )
            args = (*params, last, batch_size)
            rows = self._fetch(sql, args)
            if not rows:
                return
            last = rows[-1][EVENT_COLUMNS.index("seq")]
            yield rows_from_text(EVENT_COLUMNS, rows, json_text=json_text)
            if len(rows) < batch_size:
                return

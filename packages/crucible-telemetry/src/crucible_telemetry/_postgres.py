"""The PostgreSQL store (psycopg 3): a shared team store, batched inserts, survives restarts."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from crucible_core._optional import import_optional
from crucible_telemetry._experiment import TelemetryExperiment
from crucible_telemetry._schema import (
    JSON_COLUMNS,
    SCHEMA_VERSION,
    Columns,
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

if TYPE_CHECKING:
    import psycopg

__all__ = ("PostgresStore", "redact")

_logger = logging.getLogger("crucible.telemetry")

_TYPES = {
    "seq": "bigint NOT NULL",
    "timestamp_ns": "bigint NOT NULL",
    "monotonic_ns": "bigint NOT NULL",
    "repeat": "bigint",
    "tags": "text[] NOT NULL",
    "latency_ms": "double precision",
    "cost_usd": "double precision",
    "success": "boolean",
    "prompt_tokens": "bigint",
    "completion_tokens": "bigint",
    "measurements": "jsonb NOT NULL",
    "metadata": "jsonb NOT NULL",
    "context": "jsonb NOT NULL",
}

_SCHEMA = f"""
SELECT pg_advisory_xact_lock(7204917331);
CREATE TABLE IF NOT EXISTS crucible_telemetry_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO crucible_telemetry_meta VALUES ('schema_version', '{SCHEMA_VERSION}')
    ON CONFLICT (key) DO NOTHING;
CREATE TABLE IF NOT EXISTS crucible_telemetry_experiments (
    id text PRIMARY KEY, name text NOT NULL, hypothesis text, condition text NOT NULL,
    tags text NOT NULL, metadata text NOT NULL, started_at text NOT NULL, stopped_at text,
    status text NOT NULL, sample_size bigint, event_count bigint NOT NULL, store text NOT NULL
);
CREATE TABLE IF NOT EXISTS crucible_telemetry_events (
    {", ".join(f'"{c}" {_TYPES.get(c, "text")}' for c in EVENT_COLUMNS)},
    PRIMARY KEY (experiment_id, seq)
);
CREATE INDEX IF NOT EXISTS crucible_telemetry_events_time
    ON crucible_telemetry_events (experiment_id, timestamp_ns);
"""

_QUOTED = ", ".join(f'"{c}"' for c in EVENT_COLUMNS)
_QUOTED_TEXT = ", ".join(
    f'"{c}"::text' if c in JSON_COLUMNS else f'"{c}"' for c in EVENT_COLUMNS
)
_INSERT = (
    f"INSERT INTO crucible_telemetry_events ({_QUOTED}) VALUES ("
    + ", ".join("%s::jsonb" if c in JSON_COLUMNS else "%s" for c in EVENT_COLUMNS)
    + ") ON CONFLICT (experiment_id, seq) DO NOTHING"
)


# A `\u0000` escape in JSON text: preceded by an even number of backslashes (escaped ones).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _replace_nul(columns: Columns) -> bool:
    """Replace U+0000, which PostgreSQL text and jsonb cannot hold, by U+FFFD (in place).

    Returns whether any was found. Other stores and exports keep the character.
    """
    found = False
    for name, values in columns.items():
        if name in JSON_COLUMNS:
            if any("\\u0000" in v for v in values):
                found = True
                columns[name] = [_NUL_ESCAPE.sub(r"\1\\ufffd", v) for v in values]
        elif name == "tags":
            if any("\x00" in t for tags in values for t in tags):
                found = True
                columns[name] = [
                    [t.replace("\x00", "\ufffd") for t in tags] for tags in values
                ]
        elif any(type(v) is str and "\x00" in v for v in values):
            found = True
            columns[name] = [
                v.replace("\x00", "\ufffd") if type(v) is str else v for v in values
            ]
    return found


def _is_identifier(value: object) -> bool:
    return (
        isinstance(value, str)
        and re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value) is not None
    )


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def redact(url: str) -> str:
    """`url` without its password, for messages and `TelemetryExperiment.store`."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", url)


class PostgresStore(BufferedStore):
    """Events in a PostgreSQL database, shared by a team (needs the `postgres` extra: psycopg 3).

    Events are buffered per experiment and inserted in batches (one transaction each, idempotent on
    `(experiment_id, seq)`) by a background thread. If the server goes away, batches are kept and
    retried with backoff until it is back; [`flush`][crucible_telemetry.Store.flush] (and
    `stop_experiment`) raise [`StoreUnavailableError`][crucible_telemetry.StoreUnavailableError]
    only after `retry_timeout` seconds. The schema is created on first use.

    Args:
        url: a libpq connection string or URL, e.g. `"postgresql://user:pw@127.0.0.1:5432/db"`.
        batch_size: most events per insert.
        flush_interval: seconds between background writes.
        retry_timeout: seconds `flush()` waits for an unreachable server before raising.
        connect_timeout: seconds one connection attempt may take.
        schema: a PostgreSQL schema (namespace) for the tables, created if missing; by default
            the connection's `search_path` decides (usually `public`).
    """

    def __init__(
        self,
        url: str,
        *,
        batch_size: int = 10_000,
        flush_interval: float = 0.2,
        retry_timeout: float = 30.0,
        connect_timeout: float = 2.0,
        schema: str | None = None,
    ) -> None:
        if not _is_text(url):
            raise InvalidOptionError(
                f"PostgresStore needs a connection URL such as "
                f"'postgresql://user:password@127.0.0.1:5432/db', got {url!r}",
                url=url,
            )
        if schema is not None and not _is_identifier(schema):
            raise InvalidOptionError(
                f"schema must be a lowercase SQL identifier such as 'telemetry', got {schema!r}",
                schema=schema,
            )
        self.schema = schema
        self._pg = import_optional(
            "psycopg", extra="postgres", distribution="crucible-telemetry"
        )
        self._retryable = (self._pg.OperationalError, self._pg.InterfaceError)
        super().__init__(
            batch_size=batch_size,
            flush_interval=flush_interval,
            retry_timeout=retry_timeout,
        )
        self.url = url
        self.connect_timeout = connect_timeout
        self._warned_nul = False
        self._conn: psycopg.Connection[Any] | None = None
        self._retry_sync(self._connection)

    @property
    def description(self) -> str:
        """The URL without its password (and the schema, if one was given)."""
        where = redact(self.url)
        return where if self.schema is None else f"{where} (schema {self.schema})"

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = self._pg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
            )
            try:
                if self.schema is not None:  # validated identifier: safe to interpolate
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                    conn.execute(f"SET search_path TO {self.schema}")
                with conn.transaction():
                    conn.execute(_SCHEMA)
                version = conn.execute(
                    "SELECT value FROM crucible_telemetry_meta WHERE key = 'schema_version'"
                ).fetchone()
            except BaseException:
                conn.close()
                raise
            if version is None or int(version[0]) != SCHEMA_VERSION:
                conn.close()
                raise InvalidOptionError(
                    f"{self.description} holds telemetry schema version "
                    f"{None if version is None else version[0]}, and this crucible-telemetry "
                    f"reads version {SCHEMA_VERSION}; use another database or the "
                    "crucible-telemetry version that wrote it",
                    store=self.description,
                )
            self._conn = conn
        return self._conn

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _disconnect(self) -> None:
        self._reset()

    def _write(self, columns: Columns) -> None:
        conn = self._connection()
        if _replace_nul(columns) and not self._warned_nul:
            self._warned_nul = True
            _logger.warning(
                "%s: PostgreSQL cannot store the character U+0000; it is written as U+FFFD",
                self.description,
            )
        rows = list(zip(*(columns[c] for c in EVENT_COLUMNS), strict=True))
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_INSERT, rows)

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        rows: list[Any] = self._retry_sync(
            lambda: self._connection().execute(sql, args).fetchall()
        )
        return rows

    # -- experiments -----------------------------------------------------------------------------

    def save_experiment(self, experiment: TelemetryExperiment) -> None:
        """Insert or update an experiment's record."""
        row = {
            k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v
            for k, v in experiment_row(experiment).items()
        }
        sql = (
            f"INSERT INTO crucible_telemetry_experiments ({', '.join(EXPERIMENT_FIELDS)}) "
            f"VALUES ({', '.join('%s' for _ in EXPERIMENT_FIELDS)}) ON CONFLICT (id) DO UPDATE SET "
            + ", ".join(f"{f} = EXCLUDED.{f}" for f in EXPERIMENT_FIELDS[1:])
        )
        self._retry_sync(lambda: self._connection().execute(sql, list(row.values())))

    def load_experiment(self, experiment_id: str) -> TelemetryExperiment | None:
        """The stored record of an experiment, or `None`."""
        sql = f"SELECT {', '.join(EXPERIMENT_FIELDS)} FROM crucible_telemetry_experiments WHERE id = %s"
        row = self._retry_sync(
            lambda: self._connection().execute(sql, (experiment_id,)).fetchone()
        )
        return None if row is None else experiment_from_row(row)

    def experiments(self) -> list[TelemetryExperiment]:
        """Every experiment in the database."""
        sql = (
            f"SELECT {', '.join(EXPERIMENT_FIELDS)} FROM crucible_telemetry_experiments"
        )
        rows = self._retry_sync(lambda: self._connection().execute(sql).fetchall())
        return [experiment_from_row(r) for r in rows]

    # -- events ----------------------------------------------------------------------------------

    def count(self, experiment_id: str) -> int:
        """Events in the database plus those still buffered."""
        sql = "SELECT count(*) FROM crucible_telemetry_events WHERE experiment_id = %s"
        row = self._retry_sync(
            lambda: self._connection().execute(sql, (experiment_id,)).fetchone()
        )
        stored = int(row[0])
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
        where = ["experiment_id = %s"]
        params: list[Any] = [experiment_id]
        if since_ns is not None:
            where.append("timestamp_ns >= %s")
            params.append(since_ns)
        if until_ns is not None:
            where.append("timestamp_ns < %s")
            params.append(until_ns)
        last = -1
        seq_at = EVENT_COLUMNS.index("seq")
        while True:
            sql = (
                f"SELECT {_QUOTED_TEXT if json_text else _QUOTED} FROM crucible_telemetry_events "
                f"WHERE {' AND '.join(where)} AND seq > %s ORDER BY seq LIMIT %s"
            )
            args = (*params, last, batch_size)
            rows = self._fetch(sql, args)
            if not rows:
                return
            last = rows[-1][seq_at]
            yield rows_from_text(EVENT_COLUMNS, rows, json_text=json_text)
            if len(rows) < batch_size:
                return

"""Stores: where experiments and their events live.

- [`MemoryStore`][crucible_telemetry.MemoryStore] (the default) keeps captured events as they came,
  one list per experiment (an append is one `list.append` in the emitter's thread), and enriches
  them into columns when they are read.
- [`SQLiteStore`][crucible_telemetry.SQLiteStore] and
  [`PostgresStore`][crucible_telemetry.PostgresStore] buffer events per experiment and write them in
  batches from a background thread, retrying while the database is unreachable.
"""

from __future__ import annotations

import atexit
import collections
import datetime as dt
import itertools
import logging
import operator
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from crucible_core.context import Context
from crucible_telemetry._columnar import enrich
from crucible_telemetry._experiment import TelemetryExperiment
from crucible_telemetry._schema import COLUMNS, WIDTH, Columns
from crucible_telemetry.exceptions import InvalidOptionError, StoreUnavailableError

if TYPE_CHECKING:
    import pyarrow

__all__ = ("BufferedStore", "MemoryStore", "Sink", "Store", "check_batch_size")

_logger = logging.getLogger("crucible.telemetry")


class Sink:
    """Where capture puts one experiment's raw events.

    `rows` is a flat list or deque to which capture adds each event's seven values with one atomic
    `extend`; `contexts` maps the context keys in those values to contexts. A
    [`Store`][crucible_telemetry.Store] hands one out per experiment from `writer()`.
    """

    __slots__ = ("contexts", "experiment", "rows")

    def __init__(
        self, experiment: TelemetryExperiment, rows: list[Any] | collections.deque[Any]
    ) -> None:
        self.experiment = experiment
        """The experiment the events belong to."""
        self.rows = rows
        """The raw events, flat; capture calls `rows.extend` from any thread."""
        self.contexts: dict[int, Context] = {}
        """`id(context)` → context, for every context a row names."""


@runtime_checkable
class Store(Protocol):
    """What every store does. Implement it to keep events somewhere else.

    A store may also offer `arrow_batches(experiment_id, *, batch_size)` yielding pyarrow Tables of
    [`arrow_schema`][crucible_telemetry.arrow_schema]; Parquet export uses it when present (the
    memory store's builds them column-wise), else it converts `batches(..., json_text=True)`.
    """

    @property
    def description(self) -> str:
        """A short, password-free description, e.g. `"memory"` or `"sqlite:/tmp/t.db"`."""
        ...

    def save_experiment(self, experiment: TelemetryExperiment) -> None:
        """Insert or replace an experiment's record."""
        ...

    def load_experiment(self, experiment_id: str) -> TelemetryExperiment | None:
        """The stored record of an experiment, or `None` if this store does not hold it."""
        ...

    def experiments(self) -> list[TelemetryExperiment]:
        """Every experiment this store holds."""
        ...

    def writer(self, experiment: TelemetryExperiment) -> Sink:
        """The sink capture appends `experiment`'s raw events to (from any thread)."""
        ...

    def count(self, experiment_id: str) -> int:
        """How many events of the experiment this store holds (including buffered ones)."""
        ...

    def batches(
        self,
        experiment_id: str,
        *,
        batch_size: int = 100_000,
        since_ns: int | None = None,
        until_ns: int | None = None,
        json_text: bool = False,
    ) -> Iterator[Columns]:
        """The experiment's enriched events in capture order, `batch_size` rows at a time.

        `since_ns`/`until_ns` bound `timestamp_ns` (inclusive, exclusive). With `json_text`, the
        JSON columns hold JSON text rather than dicts.
        """
        ...

    def flush(self, *, timeout: float | None = None) -> None:
        """Write everything buffered; raise `StoreUnavailableError` if that cannot finish in time."""
        ...

    def close(self) -> None:
        """Flush and release connections and threads."""
        ...


def is_positive(value: object, *, integer: bool = False) -> bool:
    """Whether `value` is a positive number (an int, if `integer`), not a bool."""
    kinds = int if integer else (int, float)
    return not isinstance(value, bool) and isinstance(value, kinds) and value > 0


def check_batch_size(batch_size: int) -> None:
    """Raise `InvalidOptionError` unless `batch_size` is a positive int."""
    if not is_positive(batch_size, integer=True):
        raise InvalidOptionError(
            f"batch_size must be a positive integer, got {batch_size!r}",
            batch_size=batch_size,
        )


def _ascending(seqs: list[int]) -> bool:
    """Whether the sequence numbers are strictly increasing (capture order is seq order)."""
    return all(map(operator.lt, seqs, itertools.islice(seqs, 1, None)))


def _select(flat: list[Any], since_ns: int | None, until_ns: int | None) -> list[Any]:
    """Rows of `flat` in `seq` order and within the time window, still flat."""
    seqs = flat[0::WIDTH]
    in_order = _ascending(seqs)
    if in_order and since_ns is None and until_ns is None:
        return flat
    walls = flat[2::WIDTH]
    keep = [
        i
        for i in range(len(seqs))
        if (since_ns is None or walls[i] >= since_ns)
        and (until_ns is None or walls[i] < until_ns)
    ]
    if not in_order:  # threads can take seq numbers and append in a different order
        keep.sort(key=seqs.__getitem__)
    out: list[Any] = []
    for i in keep:
        out.extend(flat[i * WIDTH : (i + 1) * WIDTH])
    return out


@attrs.define
class MemoryStore:
    """Events in this process's memory: the default store, fast and gone when the process ends.

    Examples:
        >>> import crucible_telemetry as ct
        >>> store = ct.MemoryStore()
        >>> with ct.experiment("doc", store=store) as exp:
        ...     pass
        >>> [e.name for e in store.experiments()]
        ['doc']
    """

    _experiments: dict[str, TelemetryExperiment] = attrs.field(factory=dict, init=False)
    _sinks: dict[str, Sink] = attrs.field(factory=dict, init=False)

    @property
    def description(self) -> str:
        """Always `"memory"`."""
        return "memory"

    def save_experiment(self, experiment: TelemetryExperiment) -> None:
        """Insert or replace an experiment's record."""
        self._experiments[experiment.id] = experiment
        if experiment.id not in self._sinks:
            self._sinks[experiment.id] = Sink(experiment, [])

    def load_experiment(self, experiment_id: str) -> TelemetryExperiment | None:
        """The record of an experiment, or `None`."""
        return self._experiments.get(experiment_id)

    def experiments(self) -> list[TelemetryExperiment]:
        """Every experiment held here."""
        return list(self._experiments.values())

    def writer(self, experiment: TelemetryExperiment) -> Sink:
        """The experiment's sink: a list (whose `append` is atomic under the GIL)."""
        if experiment.id not in self._sinks:
            self._sinks[experiment.id] = Sink(experiment, [])
        return self._sinks[experiment.id]

    def count(self, experiment_id: str) -> int:
        """Events held for the experiment."""
        sink = self._sinks.get(experiment_id)
        return 0 if sink is None else len(sink.rows) // WIDTH

    def batches(
        self,
        experiment_id: str,
        *,
        batch_size: int = 100_000,
        since_ns: int | None = None,
        until_ns: int | None = None,
        json_text: bool = False,
    ) -> Iterator[Columns]:
        """Enriched events, `batch_size` rows at a time (a snapshot taken when iteration starts)."""
        for experiment, flat, contexts in self._slices(
            experiment_id, batch_size, since_ns, until_ns
        ):
            yield enrich(experiment, flat, contexts, json_text=json_text)

    def arrow_batches(
        self,
        experiment_id: str,
        *,
        batch_size: int = 100_000,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> Iterator[pyarrow.Table]:
        """As [`batches`][crucible_telemetry.Store.batches], as pyarrow Tables of the export schema.

        Built column-wise from the raw events (no Python object per JSON value), which is what
        makes Parquet export fast; needs the `pyarrow` extra.
        """
        from crucible_telemetry._export import enrich_arrow

        for experiment, flat, contexts in self._slices(
            experiment_id, batch_size, since_ns, until_ns
        ):
            yield enrich_arrow(experiment, flat, contexts)

    def _slices(
        self,
        experiment_id: str,
        batch_size: int,
        since_ns: int | None,
        until_ns: int | None,
    ) -> Iterator[tuple[TelemetryExperiment, list[Any], dict[int, Context]]]:
        """A snapshot of the experiment's raw events, `batch_size` events a slice."""
        check_batch_size(batch_size)
        experiment = self._experiments.get(experiment_id)
        sink = self._sinks.get(experiment_id)
        if experiment is None or sink is None:
            return
        rows = sink.rows  # append-only, a whole number of events at any moment
        assert isinstance(rows, list)  # this store's sinks hold lists
        end = len(rows)
        contexts = dict(sink.contexts)
        step = batch_size * WIDTH
        seqs = rows[0:end:WIDTH]
        if since_ns is None and until_ns is None and _ascending(seqs):
            # The common case: the first `end` values are a snapshot already; slice them as
            # they are, without copying the whole buffer first.
            for start in range(0, end, step):
                yield experiment, rows[start : min(start + step, end)], contexts
            return
        snapshot = _select(rows[:end], since_ns, until_ns)
        for start in range(0, len(snapshot), step):
            yield experiment, snapshot[start : start + step], contexts

    def flush(self, *, timeout: float | None = None) -> None:
        """Nothing to do: memory is written at capture."""

    def close(self) -> None:
        """Nothing to release."""


# ---------------------------------------------------------------------------------------------------
# Buffered stores: a background thread writes batches and retries while the database is away.

_open_stores: weakref.WeakSet[BufferedStore] = weakref.WeakSet()


def _flush_all_at_exit() -> None:  # pragma: no cover - runs at interpreter exit
    for store in list(_open_stores):
        try:
            store.close()
        except Exception as err:  # at exit, report and carry on with the other stores
            _logger.error("could not flush %s at exit: %s", store.description, err)


atexit.register(_flush_all_at_exit)


def _halves(batch: list[Any]) -> list[list[Any]]:
    """`[second half, first half]` of a batch of events (so a stack pops the first half first)."""
    middle = len(batch) // WIDTH // 2 * WIDTH
    return [batch[middle:], batch[:middle]]


class BufferedStore:
    """Base of stores that write to a database from a background thread.

    Subclasses implement `_connect()`, `_write(columns)`, `_save(experiment)` and the read methods;
    this class owns the per-experiment buffers, the writer thread, batching and the retry window.

    A write that fails with a connection error is retried with backoff (0.05 s doubling to 2 s),
    keeping the batch, for ever in the background; [`flush`][crucible_telemetry.Store.flush] raises
    [`StoreUnavailableError`][crucible_telemetry.StoreUnavailableError] when it cannot finish within
    `retry_timeout` seconds. Nothing buffered is dropped.

    A write the database refuses for what the batch holds (a constraint or trigger of the table,
    a value it cannot take) is split in halves until the events it refuses are found: the others
    are written, and each refused event is set aside, logged as an error and kept in memory, in
    [`rejected`][crucible_telemetry.SQLiteStore.rejected], so one bad event never holds up the
    rest. Events are only set aside once the database has shown it takes others; a refusal of
    everything (a missing permission, say) keeps them buffered and retried like an outage.
    """

    _retryable: tuple[type[BaseException], ...] = (OSError,)

    def __init__(
        self, *, batch_size: int, flush_interval: float, retry_timeout: float
    ) -> None:
        check_batch_size(batch_size)
        for option, value in (
            ("flush_interval", flush_interval),
            ("retry_timeout", retry_timeout),
        ):
            if not is_positive(value):
                raise InvalidOptionError(
                    f"{option} must be a positive number of seconds, got {value!r}",
                    **{option: value},
                )
        self.batch_size = batch_size
        self.flush_interval = float(flush_interval)
        self.retry_timeout = float(retry_timeout)
        self._queues: dict[str, Sink] = {}
        self._inflight: list[tuple[Sink, list[Any]]] = []
        self._cond = threading.Condition()
        self._io_lock = threading.RLock()  # one database operation at a time
        self._last_error: BaseException | None = None
        self._failing_since: float | None = None
        self._rejected: list[tuple[Sink, list[Any], BaseException]] = []
        self._written_any = (
            False  # the database has taken a write: refusals are the data's
        )
        self._closed = False
        self._thread: threading.Thread | None = None
        _open_stores.add(self)

    # -- subclass hooks --------------------------------------------------------------------------

    @property
    def description(self) -> str:  # pragma: no cover - every subclass defines it
        """A short, password-free description of the store."""
        raise NotImplementedError

    def _write(self, columns: Columns) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _reset(self) -> None:
        """Drop a broken connection so the next operation reconnects."""

    # -- capture side ----------------------------------------------------------------------------

    def writer(self, experiment: TelemetryExperiment) -> Sink:
        """The experiment's sink: a deque the writer thread drains."""
        with self._cond:
            if experiment.id not in self._queues:
                self._queues[experiment.id] = Sink(experiment, collections.deque())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run,
                    name=f"crucible-telemetry {self.description}",
                    daemon=True,
                )
                self._thread.start()
            return self._queues[experiment.id]

    def pending(self) -> int:
        """Events captured and not yet written to the database."""
        with self._cond:
            return (
                sum(len(q.rows) for q in self._queues.values())
                + sum(len(b) for _, b in self._inflight)
            ) // WIDTH

    def _take(self) -> list[tuple[Sink, list[Any]]]:
        batches = []
        for sink in list(self._queues.values()):
            queue = sink.rows
            pop = queue.popleft if isinstance(queue, collections.deque) else None
            assert pop is not None
            while queue:
                # extends are atomic, so the length is a whole number of rows
                count = min(len(queue), self.batch_size * WIDTH)
                batches.append((sink, [pop() for _ in range(count)]))
        return batches

    def rejected(self) -> list[dict[str, Any]]:
        """Events the database refused for what they hold, each with the `error` it gave.

        Each is a dict of the event's [`COLUMNS`][crucible_telemetry.COLUMNS] (JSON columns as
        dicts) plus `"error"`. They are not in the database, nor counted by `count`; write them
        elsewhere (for example `json.dumps(store.rejected(), default=str)`) to keep them.
        """
        with self._cond:
            refused = list(self._rejected)
        rows = []
        for sink, event, err in refused:
            why = {"error": f"{type(err).__name__}: {err}"}
            try:
                columns = enrich(sink.experiment, event, sink.contexts)
            except Exception:  # the event breaks enrichment itself: its raw values
                seq, mono, wall, name, meas, meta, _ = event
                rows.append(
                    {"experiment_id": sink.experiment.id, "seq": seq, "name": ".".join(name),
                     "timestamp_ns": wall, "monotonic_ns": mono, "measurements": meas,
                     "metadata": meta} | why
                )  # fmt: skip
                continue
            rows.append({c: v[0] for c, v in columns.items()} | why)
        return rows

    def _write_batch(self, sink: Sink, batch: list[Any]) -> None:
        columns = enrich(sink.experiment, batch, sink.contexts, json_text=True)
        with self._io_lock:
            self._write(columns)
        self._written_any = True

    def _isolate(self, sink: Sink, batch: list[Any]) -> list[Any] | None:
        """Write the refused `batch` in halves, down to the single events refused.

        Returns what is left to write: nothing when every event was written or set aside; the
        unwritten rest when the database became unreachable meanwhile; or `None` when it wrote
        nothing and never has, so the refusal may not be the data's (the batch is kept whole).
        """
        stack = [h for h in _halves(batch) if h]  # the first half is on top
        refused: list[tuple[list[Any], BaseException]] = []
        wrote = False
        while stack:
            part = stack.pop()
            try:
                self._write_batch(sink, part)
            except self._retryable:
                # unreachable now: keep what is not written, in order, for the retries
                with self._io_lock:
                    self._reset()
                rest = [part, *reversed(stack), *(event for event, _ in refused)]
                return [value for chunk in rest for value in chunk]
            except Exception as refusal:
                if len(part) == WIDTH:
                    refused.append((part, refusal))
                else:
                    stack += _halves(part)
            else:
                wrote = True
        if refused and not wrote and not self._written_any:
            return None  # nothing was written: the batch is still whole
        if (
            wrote
        ):  # a second chance, in case the database changed (a fix) while we split
            again, refused = refused, []
            for k, (event, _) in enumerate(again):
                try:
                    self._write_batch(sink, event)
                except self._retryable:
                    with self._io_lock:
                        self._reset()
                    left = [
                        event,
                        *(e for e, _ in again[k + 1 :]),
                        *(e for e, _ in refused),
                    ]
                    return [value for chunk in left for value in chunk]
                except Exception as refusal:
                    refused.append((event, refusal))
        for _, why in refused:
            _logger.error(
                "%s refused an event of experiment %s (%s: %s); it is kept in memory: see "
                "the store's rejected()",
                self.description,
                sink.experiment.id,
                type(why).__name__,
                why,
            )
        with self._cond:
            self._rejected += [(sink, event, why) for event, why in refused]
        return []

    def _write_pending(self) -> bool:
        """Write in-flight and queued batches; return False if the database failed."""
        with self._cond:
            self._inflight.extend(self._take())
        while True:
            with self._cond:
                if not self._inflight:
                    return True
                sink, batch = self._inflight[0]
            try:
                self._write_batch(sink, batch)
            except (
                Exception
            ) as err:  # keep the batch and retry; flush() reports the error
                rest: list[Any] | None = None
                if not isinstance(err, self._retryable) and len(batch) > 0:
                    with self._io_lock:
                        self._reset()  # a failed transaction must not leak into the next
                    rest = self._isolate(sink, batch)
                if rest == []:  # written, but for the events set aside
                    self._written(batch)
                    continue
                with self._cond:
                    if rest:
                        self._inflight[0] = (sink, rest)
                    if self._failing_since is None:
                        self._failing_since = time.monotonic()
                        _logger.warning(
                            "%s %s (%s: %s); keeping %d events and retrying",
                            self.description,
                            "is unreachable"
                            if isinstance(err, self._retryable) or rest
                            else "refuses every event written",
                            type(err).__name__,
                            err,
                            self.pending(),
                        )
                    self._last_error = err
                    self._cond.notify_all()
                with self._io_lock:
                    self._reset()
                return False
            self._written(batch)

    def _written(self, batch: list[Any]) -> None:
        """The in-flight batch is done: drop it, and clear the failure state."""
        with self._cond:
            assert (
                self._inflight[0][1] is batch
            )  # only this thread takes from the front
            self._inflight.pop(0)
            if self._failing_since is not None:
                _logger.warning(
                    "%s is reachable again; writing buffered events", self.description
                )
            self._failing_since = None
            self._last_error = None
            self._cond.notify_all()

    def _run(self) -> None:
        backoff = 0.05
        while True:
            ok = self._write_pending()
            with self._cond:
                if self._closed and ok and not self.pending():
                    return
                if ok:
                    backoff = 0.05
                    self._cond.wait(self.flush_interval)
                else:
                    self._cond.wait(backoff)
                    backoff = min(backoff * 2, 2.0)

    def flush(self, *, timeout: float | None = None) -> None:
        """Wait until every captured event is in the database.

        Args:
            timeout: seconds to wait; defaults to the store's `retry_timeout`.

        Raises:
            StoreUnavailableError: the database could not be written within `timeout` seconds.
                The events stay buffered and are still retried; call `flush()` again later.
        """
        limit = self.retry_timeout if timeout is None else timeout
        start = time.monotonic()
        with self._cond:
            if not self._queues and not self._inflight:
                return
        while True:
            with self._cond:
                if self.pending() == 0:
                    return
                waited = time.monotonic() - start
                if waited >= limit:
                    error = self._last_error
                    raise StoreUnavailableError(
                        f"{self.description} could not be written for {waited:.1f} s "
                        f"({type(error).__name__ + ': ' + str(error) if error else 'no answer'}); "
                        f"{self.pending()} events are still buffered and will be written when it "
                        "is back: call `flush()` again, or raise `retry_timeout`",
                        store=self.description,
                        pending=self.pending(),
                        waited=waited,
                        error=repr(error),
                    )
                self._cond.notify_all()  # wake the writer now
                self._cond.wait(min(0.05, limit - waited))

    def close(self) -> None:
        """Flush (within `retry_timeout`), stop the writer thread and close the connection."""
        if self._closed:
            return
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=self.retry_timeout)
        with self._io_lock:
            self._disconnect()
        _open_stores.discard(self)

    def _disconnect(self) -> None:  # pragma: no cover - overridden
        pass

    def _retry_sync(self, operation: Callable[[], Any]) -> Any:
        """Run a synchronous database operation, retrying connection errors for `retry_timeout`."""
        start = time.monotonic()
        backoff = 0.05
        while True:
            try:
                with self._io_lock:
                    return operation()
            except self._retryable as err:
                with self._io_lock:
                    self._reset()
                waited = time.monotonic() - start
                if waited >= self.retry_timeout:
                    raise StoreUnavailableError(
                        f"{self.description} could not be reached for {waited:.1f} s "
                        f"({type(err).__name__}: {err}); check that the server is running and "
                        "the URL is right, or raise `retry_timeout`",
                        store=self.description,
                        pending=self.pending(),
                        waited=waited,
                        error=repr(err),
                    ) from err
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)


def experiment_row(experiment: TelemetryExperiment) -> dict[str, Any]:
    """The flat record of an experiment for a database row (JSON text for tags and metadata)."""
    from crucible_telemetry._schema import json_dumps

    return {
        "id": experiment.id,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "condition": experiment.condition,
        "tags": json_dumps(list(experiment.tags)),
        "metadata": json_dumps(experiment.metadata),
        "started_at": experiment.started_at.isoformat(),
        "stopped_at": experiment.stopped_at.isoformat()
        if experiment.stopped_at
        else None,
        "status": experiment.status,
        "sample_size": experiment.sample_size,
        "event_count": experiment.event_count,
        "store": experiment.store,
    }


def experiment_from_row(row: Sequence[Any]) -> TelemetryExperiment:
    """Rebuild an experiment from the columns of `experiment_row`, in that order."""
    from crucible_telemetry._schema import json_loads

    (id_, name, hypothesis, condition, tags, metadata, started, stopped, status, size, count, store) = row  # fmt: skip
    return TelemetryExperiment(
        id=id_,
        name=name,
        hypothesis=hypothesis,
        condition=condition,
        tags=tuple(json_loads(tags)),
        metadata=json_loads(metadata),
        started_at=_datetime(started),
        stopped_at=None if stopped is None else _datetime(stopped),
        status=status,
        sample_size=size,
        event_count=count,
        store=store,
    )


def _datetime(value: str | dt.datetime) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


EXPERIMENT_FIELDS: tuple[str, ...] = (
    "id", "name", "hypothesis", "condition", "tags", "metadata", "started_at", "stopped_at",
    "status", "sample_size", "event_count", "store",
)  # fmt: skip

EVENT_COLUMNS: tuple[str, ...] = tuple(COLUMNS)

"""Experiments and event capture: start, stop, look up, and the handler on the core event bus."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Literal, TypeAlias

import attrs
import orjson

from crucible_core import context
from crucible_core import events as _bus
from crucible_core.events import EventName
from crucible_core.ids import new_id
from crucible_telemetry import _columnar
from crucible_telemetry._experiment import Status, TelemetryExperiment
from crucible_telemetry._schema import valid_text
from crucible_telemetry._stores import MemoryStore, Store, is_positive
from crucible_telemetry.exceptions import (
    ExperimentNotFoundError,
    ExperimentStateError,
    InvalidMetadataError,
    InvalidOptionError,
)

__all__ = (
    "CATALOGUE_PREFIXES",
    "Capture",
    "StoreLike",
    "activate",
    "archive",
    "default_store",
    "experiment",
    "flush",
    "get_experiment",
    "list_experiments",
    "open_store",
    "resolve",
    "start_experiment",
    "stop_experiment",
)

Capture: TypeAlias = Literal["context", "all"]
"""Which events an experiment takes: those emitted in its context, or also those with none."""

StoreLike: TypeAlias = "Store | str | os.PathLike[str]"
"""A store, or a URL naming one: `"memory"`, `"sqlite:///path.db"`, a `.db`/`.sqlite` path, or a
`postgresql://` URL."""

CATALOGUE_PREFIXES: Final[tuple[EventName, ...]] = (
    ("crucible", "llm"),
    ("crucible", "ensemble"),
    ("crucible", "hedging"),
    ("crucible", "trace"),
    ("crucible", "harness"),
    ("crucible", "lora"),
    ("crucible", "dataset"),
    ("crucible", "telemetry"),
)
"""The prefixes an experiment captures by default: every event family of the core catalogue."""

_HANDLER_ID: Final = "crucible-telemetry"


class _Live:
    """The capture state of one running experiment (mutable; internal)."""

    __slots__ = (
        "append",
        "contexts",
        "counter",
        "experiment",
        "prefixes",
        "routes",
        "rows",
        "store",
    )

    def __init__(
        self,
        experiment: TelemetryExperiment,
        store: Store,
        prefixes: tuple[EventName, ...],
    ) -> None:
        self.experiment = experiment
        self.store = store
        self.prefixes = prefixes
        self.routes: dict[EventName, bool] = {}
        self.counter = itertools.count()
        sink = store.writer(experiment)
        self.rows = sink.rows
        self.append = sink.rows.extend
        self.contexts = sink.contexts

    def fast_entry(self) -> tuple[Any, ...]:
        """What the C handler needs to capture for this experiment (see `_speedups.Handler`)."""
        return (self.routes, self.contexts, self.rows, self.counter)

    def route(self, name: EventName) -> bool:
        ok = any(name[: len(p)] == p for p in self.prefixes)
        self.routes[name] = ok
        return ok


_lock = threading.RLock()
_live: dict[str | None, _Live] = {}  # never keyed None: a miss for context-less events
_catch_all: tuple[_Live, ...] = ()
_stores: dict[
    str, Store
] = {}  # experiment id -> the store it was started with (this process)
_default: MemoryStore = MemoryStore()
_current = context.current
_perf_ns = time.perf_counter_ns
_time_ns = time.time_ns


def _handle(
    name: EventName, measurements: Mapping[str, float], metadata: Mapping[str, Any]
) -> None:
    """The one handler on the core bus: attribute the event by context and append it raw."""
    ctx = _current()
    live = _live.get(ctx.experiment_id)  # one look-up; no experiment is keyed None
    if live is not None:
        ok = live.routes.get(name)
        if ok is None:
            ok = live.route(name)
        if ok:
            key = id(ctx)
            if key not in live.contexts:
                live.contexts[key] = ctx
            live.append(
                (
                    next(live.counter),
                    _perf_ns(),
                    _time_ns(),
                    name,
                    measurements,
                    metadata,
                    key,
                )
            )  # one atomic extend: see _schema
        return
    if ctx.experiment_id is not None:
        return  # another experiment's event, or one that stopped
    for live in _catch_all:
        ok = live.routes.get(name)
        if ok is None:
            ok = live.route(name)
        if ok:
            key = id(ctx)
            if key not in live.contexts:
                live.contexts[key] = ctx
            live.append(
                (
                    next(live.counter),
                    _perf_ns(),
                    _time_ns(),
                    name,
                    measurements,
                    metadata,
                    key,
                )
            )  # one atomic extend: see _schema


_fast: dict[
    str, tuple[Any, ...]
] = {}  # experiment id -> _Live.fast_entry(), for the C handler


def _handler() -> Any:
    """The handler to attach: the C extension's fast path in front of `_handle`, if built."""
    speed = _columnar.SPEEDUPS
    if speed is None:
        return _handle
    return speed.Handler(context.context_var(), _fast, _handle, _perf_ns, _time_ns)


def _sync_handler() -> None:
    """Attach the handler while any experiment runs; detach it when none does (under `_lock`)."""
    attached = _HANDLER_ID in _bus.attached()
    if _live and not attached:
        _bus.attach(_HANDLER_ID, [()], _handler())
    elif not _live and attached:
        _bus.detach(_HANDLER_ID)


# ---------------------------------------------------------------------------------------------------
# Stores


def default_store() -> Store:
    """The store experiments use when given no `store=`: the `telemetry.store` setting.

    `CRUCIBLE_TELEMETRY_STORE`, else `[tool.crucible.telemetry] store` in the project file (see
    `crucible_core.settings`): `"memory"` (built in) is one process-wide memory store; a SQLite
    path or a `postgresql://` URL is opened once and shared.
    """
    from crucible_core.settings import load_settings

    url = str(load_settings()["telemetry.store"])
    return _default if url == "memory" else resolve(url)


def open_store(url: str | os.PathLike[str], **options: Any) -> Store:
    """Open a store from a URL or path.

    Args:
        url: `"memory"` (a new, private memory store), `"sqlite:///abs/path.db"`,
            `"sqlite:relative.db"`, a path ending in `.db`, `.sqlite` or `.sqlite3`, or a
            `postgresql://user:password@host:port/db` URL.
        **options: passed to the store (`batch_size`, `flush_interval`, `retry_timeout`, ...).

    Raises:
        InvalidOptionError: if the URL names no known kind of store.
    """
    text = os.fspath(url)
    if text == "memory":
        return MemoryStore()
    if text.startswith(("postgresql://", "postgres://")):
        from crucible_telemetry._postgres import PostgresStore

        return PostgresStore(text, **options)
    if text.startswith("sqlite:"):
        path = text.removeprefix("sqlite:")
        path = path.removeprefix("//") if path.startswith("///") else path
        from crucible_telemetry._sqlite import SQLiteStore

        return SQLiteStore(path, **options)
    if text.endswith((".db", ".sqlite", ".sqlite3")):
        from crucible_telemetry._sqlite import SQLiteStore

        return SQLiteStore(text, **options)
    raise InvalidOptionError(
        f"cannot tell which store {text!r} names; use 'memory', 'sqlite:///path.db', a path "
        "ending in .db, or 'postgresql://user:password@host:5432/db'",
        url=text,
    )


_opened: dict[str, Store] = {}


def resolve(store: StoreLike | None) -> Store:
    """The store named by `store`: `None` is `default_store()`; URLs are opened once."""
    if store is None:
        return default_store()
    if isinstance(store, str | os.PathLike):
        key = os.fspath(store)
        with _lock:
            if key not in _opened:
                _opened[key] = open_store(key)
            return _opened[key]
    if not isinstance(store, Store):
        raise InvalidOptionError(
            f"store must be a Store (MemoryStore, SQLiteStore, PostgresStore) or a URL, "
            f"got {type(store).__name__}",
            store=repr(store),
        )
    return store


def _known_stores(store: StoreLike | None) -> list[Store]:
    if store is not None:
        return [resolve(store)]
    found: list[Store] = [default_store()]
    for s in [_default, *_stores.values(), *_opened.values()]:
        if all(s is not f for f in found):
            found.append(s)
    return found


# ---------------------------------------------------------------------------------------------------
# Validation


def _check_str(value: object, option: str, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidOptionError(
            f"{option} must be a non-empty string, got {value!r}", **{option: value}
        )
    if valid_text(value) != value:
        raise InvalidOptionError(
            f"{option} {value!r} holds a lone surrogate, which no file or database can store "
            "(it comes from decoding bytes with errors='surrogateescape'); decode the bytes "
            "properly, or replace it: text.encode('utf-8', 'replace').decode()",
            **{option: value},
        )


def _check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError(
            f"metadata must be a mapping of names to JSON values, got {type(metadata).__name__}",
            key=None,
            value_type=type(metadata).__name__,
        )
    out = dict(metadata)
    for key, value in out.items():
        if not isinstance(key, str):
            raise InvalidMetadataError(
                f"metadata keys must be strings, got {key!r}",
                key=repr(key),
                value_type=type(value).__name__,
            )
        try:
            orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as err:
            raise InvalidMetadataError(
                f"metadata[{key!r}] is a {type(value).__name__}, which cannot be stored as JSON "
                f"({err}); pass a str, number, bool, None, list or dict of those "
                f"(e.g. `str(value)`)",
                key=key,
                value_type=type(value).__name__,
            ) from err
    return out


def _is_name(value: object) -> bool:
    return isinstance(value, tuple) and all(isinstance(s, str) and s for s in value)


def _is_aware(value: object) -> bool:
    return isinstance(value, dt.datetime) and value.tzinfo is not None


def _check_prefixes(prefixes: Iterable[EventName] | None) -> tuple[EventName, ...]:
    if prefixes is None:
        return CATALOGUE_PREFIXES
    if (
        isinstance(prefixes, str | tuple)
        and prefixes
        and isinstance(next(iter(prefixes)), str)
    ):
        raise InvalidOptionError(
            f"events must be a list of prefixes such as [('crucible', 'llm'), ('myapp',)], "
            f"got one name {prefixes!r}; wrap it in a list",
            events=repr(prefixes),
        )
    out = []
    for p in prefixes:
        if not _is_name(p):
            raise InvalidOptionError(
                f"each event prefix must be a tuple of non-empty strings such as "
                f"('crucible', 'llm'); () takes every event. Got {p!r}",
                events=repr(p),
            )
        out.append(p)
    if not out:
        raise InvalidOptionError(
            "events is empty, so the experiment would capture nothing; omit it to capture the "
            "catalogue (CATALOGUE_PREFIXES) or pass [()] for every event",
            events="[]",
        )
    return tuple(out)


# ---------------------------------------------------------------------------------------------------
# Life cycle


def start_experiment(
    name: str,
    *,
    hypothesis: str | None = None,
    condition: str = "default",
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    sample_size: int | None = None,
    store: StoreLike | None = None,
    events: Iterable[EventName] | None = None,
    capture: Capture = "context",
) -> TelemetryExperiment:
    """Start capturing an experiment's events; returns its record (status `"running"`).

    Events are attributed by context: an event belongs to this experiment when it is emitted
    inside [`activate`][crucible_telemetry.activate]`(exp)` (or any
    `crucible_core.context.use(experiment_id=exp.id)`), including in asyncio tasks created there and
    in threads started through `crucible_core.context.bind`. The
    [`experiment`][crucible_telemetry.experiment] context manager does both for you.

    Args:
        name: a human name; not unique.
        hypothesis: what the experiment should show.
        condition: the condition (arm) of the experiment, e.g. `"treatment"`.
        tags: labels to find it by later.
        metadata: JSON-compatible details, checked now.
        sample_size: the planned number of samples, for the record.
        store: where events go: a [`Store`][crucible_telemetry.Store] or a URL for
            [`open_store`][crucible_telemetry.open_store]; the process's memory store by default.
        events: event-name prefixes to capture; [`CATALOGUE_PREFIXES`][crucible_telemetry.CATALOGUE_PREFIXES]
            by default. Add your own: `events=[*CATALOGUE_PREFIXES, ("myapp",)]`; `[()]` takes all.
        capture: `"context"` (only events emitted in this experiment's context) or `"all"` (also
            events emitted outside any experiment's context).

    Raises:
        InvalidOptionError: a bad name, condition, tag, prefix, capture mode or store.
        InvalidMetadataError: metadata that cannot be stored as JSON.
        StoreUnavailableError: a database store could not be reached.
    """
    _check_str(name, "name")
    _check_str(condition, "condition")
    _check_str(hypothesis, "hypothesis", optional=True)
    if isinstance(tags, str):
        raise InvalidOptionError(
            f"tags must be a list of strings, got the string {tags!r}; write tags=[{tags!r}]",
            tags=tags,
        )
    tag_tuple = tuple(tags)
    for tag in tag_tuple:
        _check_str(tag, "tags")
    meta = _check_metadata({} if metadata is None else metadata)
    if sample_size is not None and not is_positive(sample_size, integer=True):
        raise InvalidOptionError(
            f"sample_size must be a positive integer or None, got {sample_size!r}",
            sample_size=sample_size,
        )
    if capture not in ("context", "all"):
        raise InvalidOptionError(
            f"capture must be 'context' or 'all', got {capture!r}", capture=capture
        )
    prefixes = _check_prefixes(events)
    target = resolve(store)
    exp = TelemetryExperiment(
        id=new_id("exp"),
        name=name,
        hypothesis=hypothesis,
        condition=condition,
        tags=tag_tuple,
        metadata=meta,
        started_at=dt.datetime.now(dt.UTC),
        sample_size=sample_size,
        store=target.description,
    )
    target.save_experiment(exp)
    live = _Live(exp, target, prefixes)
    global _catch_all
    with _lock:
        _live[exp.id] = live
        _fast[exp.id] = live.fast_entry()
        _stores[exp.id] = target
        if capture == "all":
            _catch_all = (*_catch_all, live)
        _sync_handler()
    return exp


def stop_experiment(experiment_id: str) -> TelemetryExperiment:
    """Stop capturing, write everything buffered, and record the stop; returns the final record.

    Raises:
        ExperimentNotFoundError: no experiment has this id.
        ExperimentStateError: the experiment is not running (stopped twice, or archived).
        StoreUnavailableError: its database store could not be written in time; the experiment
            keeps running and capturing, so call `stop_experiment` again once the store is back.
    """
    global _catch_all
    with _lock:
        live = _live.get(experiment_id)
    if live is None:
        found = get_experiment(experiment_id)  # raises ExperimentNotFoundError
        raise ExperimentStateError(
            f"experiment {experiment_id!r} is {found.status}, not running, so it cannot be "
            "stopped again; get_experiment() shows its record",
            experiment_id=experiment_id,
            status=found.status,
        )
    live.store.flush()
    with _lock:
        _fast.pop(experiment_id, None)
        if _live.pop(experiment_id, None) is None:
            raise ExperimentStateError(
                f"experiment {experiment_id!r} was stopped by another caller meanwhile",
                experiment_id=experiment_id,
                status="stopped",
            )
        _catch_all = tuple(c for c in _catch_all if c is not live)
        _sync_handler()
    live.store.flush()
    final = attrs.evolve(
        live.experiment,
        stopped_at=dt.datetime.now(dt.UTC),
        status="stopped",
        event_count=live.store.count(experiment_id),
    )
    live.store.save_experiment(final)
    return final


def get_experiment(
    experiment_id: str, *, store: StoreLike | None = None
) -> TelemetryExperiment:
    """The current record of an experiment (with its event count so far).

    Args:
        experiment_id: the id `start_experiment` returned.
        store: where to look; by default the stores this process has used.

    Raises:
        ExperimentNotFoundError: no store searched holds it.
    """
    with _lock:
        live = _live.get(experiment_id)
    if live is not None and store is None:
        return attrs.evolve(
            live.experiment, event_count=live.store.count(experiment_id)
        )
    searched = _known_stores(store)
    for s in searched:
        found = s.load_experiment(experiment_id)
        if found is not None:
            if found.status == "running" and experiment_id in _live:
                return attrs.evolve(found, event_count=s.count(experiment_id))
            return found
    where = ", ".join(s.description for s in searched)
    raise ExperimentNotFoundError(
        f"no experiment has id {experiment_id!r} in {where}; list_experiments() shows the "
        "experiments there, and store= looks in a SQLite or PostgreSQL store",
        experiment_id=experiment_id,
        store=where,
    )


def store_of(
    experiment_id: str, store: StoreLike | None = None
) -> tuple[Store, TelemetryExperiment]:
    """The store holding an experiment, and its record."""
    for s in _known_stores(store):
        found = s.load_experiment(experiment_id)
        if found is not None:
            return s, found
    get_experiment(experiment_id, store=store)  # raises the not-found error
    raise AssertionError("unreachable")  # pragma: no cover


def list_experiments(
    *,
    name: str | None = None,
    tag: str | None = None,
    condition: str | None = None,
    status: Status | None = None,
    started_after: dt.datetime | None = None,
    started_before: dt.datetime | None = None,
    include_archived: bool = False,
    store: StoreLike | None = None,
) -> list[TelemetryExperiment]:
    """Experiments matching every filter given, oldest first.

    Args:
        name: exact experiment name.
        tag: experiments carrying this tag.
        condition: experiments of this condition.
        status: `"running"`, `"stopped"` or `"archived"`.
        started_after: started at or after this time (timezone-aware).
        started_before: started before this time (timezone-aware).
        include_archived: also list archived experiments (implied by `status="archived"`).
        store: where to look; by default the stores this process has used.
    """
    for option, when in (
        ("started_after", started_after),
        ("started_before", started_before),
    ):
        if when is not None and not _is_aware(when):
            raise InvalidOptionError(
                f"{option} must be a timezone-aware datetime, e.g. "
                f"datetime.now(timezone.utc), got {when!r}",
                **{option: repr(when)},
            )
    seen: dict[str, TelemetryExperiment] = {}
    for s in _known_stores(store):
        for exp in s.experiments():
            seen.setdefault(exp.id, exp)
    out = []
    for exp in seen.values():
        if exp.id in _live and exp.status == "running":
            exp = get_experiment(exp.id)
        if (
            (name is None or exp.name == name)
            and (tag is None or tag in exp.tags)
            and (condition is None or exp.condition == condition)
            and (status is None or exp.status == status)
            and (include_archived or status == "archived" or exp.status != "archived")
            and (started_after is None or exp.started_at >= started_after)
            and (started_before is None or exp.started_at < started_before)
        ):
            out.append(exp)
    return sorted(out, key=lambda e: e.id)


def archive(
    experiment_id: str, *, store: StoreLike | None = None
) -> TelemetryExperiment:
    """Mark a stopped experiment archived (kept, hidden from `list_experiments` by default).

    Raises:
        ExperimentNotFoundError: no experiment has this id.
        ExperimentStateError: it is still running (stop it first) or already archived.
    """
    found_store, found = store_of(experiment_id, store)
    if found.status != "stopped" or experiment_id in _live:
        raise ExperimentStateError(
            f"experiment {experiment_id!r} is {found.status}; only a stopped experiment can be "
            "archived (call stop_experiment first)",
            experiment_id=experiment_id,
            status=found.status,
        )
    archived = attrs.evolve(found, status="archived")
    found_store.save_experiment(archived)
    return archived


def flush(*, store: StoreLike | None = None) -> None:
    """Write everything buffered in `store` (or in every store this process has used)."""
    for s in _known_stores(store):
        s.flush()


@contextmanager
def activate(
    experiment: TelemetryExperiment | str,
    *,
    condition: str | None = None,
    repeat: int | None = None,
    item: str | None = None,
    **extra: Any,
) -> Iterator[context.Context]:
    """Run the `with` block in an experiment's context, so its events are captured by it.

    Asyncio tasks created inside inherit the context; for threads, wrap the callable with
    `crucible_core.context.bind` (or use `asyncio.to_thread`, which copies it).

    Args:
        experiment: the experiment or its id.
        condition: the condition of the events emitted in the block (overrides the experiment's).
        repeat: the repeat number, for the events' context.
        item: the dataset item id, for the events' context.
        **extra: any other context fields, stored with each event under `context`.
    """
    exp = (
        experiment
        if isinstance(experiment, TelemetryExperiment)
        else get_experiment(experiment)
    )
    fields: dict[str, Any] = {"experiment_id": exp.id, "experiment_name": exp.name}
    fields.update(
        {
            key: value
            for key, value in (
                ("condition", condition),
                ("repeat", repeat),
                ("item", item),
            )
            if value is not None
        }
    )
    with context.use(**fields, **extra) as ctx:
        yield ctx


@contextmanager
def experiment(
    name: str,
    *,
    hypothesis: str | None = None,
    condition: str = "default",
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    sample_size: int | None = None,
    store: StoreLike | None = None,
    events: Iterable[EventName] | None = None,
    capture: Capture = "context",
) -> Iterator[TelemetryExperiment]:
    """Start an experiment, run the block in its context, and stop it when the block ends.

    Takes the arguments of [`start_experiment`][crucible_telemetry.start_experiment]. The
    experiment is stopped even if the block raises.

    Examples:
        >>> import crucible_telemetry as ct
        >>> from crucible_core import events
        >>> with ct.experiment("doc", condition="baseline") as exp:
        ...     events.emit(events.LLM_REQUEST_STOP, {"duration": 0.2}, {"model": "sim:gpt-4"})
        >>> ct.get_experiment(exp.id).event_count
        1
    """
    exp = start_experiment(
        name,
        hypothesis=hypothesis,
        condition=condition,
        tags=tags,
        metadata=metadata,
        sample_size=sample_size,
        store=store,
        events=events,
        capture=capture,
    )
    try:
        with activate(exp):
            yield exp
    finally:
        stop_experiment(exp.id)

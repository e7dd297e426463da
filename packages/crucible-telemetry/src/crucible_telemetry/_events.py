"""Captured events as results, and the functions that read them from stores.

One [`Event`][crucible_telemetry.Event], many [`Events`][crucible_telemetry.Events].
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crucible_core.render import RenderMixin, Table, View
from crucible_telemetry._capture import StoreLike, list_experiments, store_of
from crucible_telemetry._schema import (
    COLUMNS,
    JSON_COLUMNS,
    Columns,
    empty_columns,
    json_dumps,
)
from crucible_telemetry.exceptions import InvalidOptionError

if TYPE_CHECKING:
    import polars
    import pyarrow

__all__ = ("Event", "Events", "arrow_schema", "get_events", "query_events")


@attrs.define(frozen=True, kw_only=True)
class Event(RenderMixin):
    """One captured, enriched event (the columns of [`COLUMNS`][crucible_telemetry.COLUMNS])."""

    event_id: str
    """`"<experiment_id>-<seq>"`, unique in a store."""
    experiment_id: str
    """The experiment it belongs to."""
    experiment_name: str
    """That experiment's name."""
    seq: int
    """Capture order within the experiment, from 0."""
    name: str
    """The dotted event name, e.g. `"crucible.llm.request.stop"`."""
    timestamp_ns: int
    """Wall-clock capture time, nanoseconds since the Unix epoch (UTC)."""
    monotonic_ns: int
    """`time.perf_counter_ns()` at capture."""
    condition: str
    """The context's condition, else the experiment's."""
    repeat: int | None = None
    """The context's repeat."""
    item: str | None = None
    """The context's item id."""
    tags: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """The experiment's tags."""
    latency_ms: float | None = None
    """`duration` × 1000, or the `latency_ms` measurement."""
    cost_usd: float | None = None
    """The event's `cost`, else priced from its tokens and model."""
    success: bool | None = None
    """False for `exception` events, true for `stop` events, else `None` (or metadata `success`)."""
    model: str | None = None
    """Metadata `model`."""
    provider: str | None = None
    """Metadata `provider`, or the prefix of a `provider:model` string."""
    prompt_tokens: int | None = None
    """Measurement `input_tokens` (or `prompt_tokens`)."""
    completion_tokens: int | None = None
    """Measurement `output_tokens` (or `completion_tokens`)."""
    measurements: Mapping[str, Any] = attrs.field(factory=dict)
    """Every measurement, as emitted."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """Every metadata value, as emitted."""
    context: Mapping[str, Any] = attrs.field(factory=dict)
    """The context's extra fields."""

    @property
    def timestamp(self) -> dt.datetime:
        """`timestamp_ns` as a timezone-aware datetime (microsecond precision)."""
        return dt.datetime.fromtimestamp(self.timestamp_ns / 1e9, dt.UTC)

    def _view(self) -> View:
        return View(
            title=f"Event {self.name}",
            facts=[(k, getattr(self, k)) for k in COLUMNS if k not in JSON_COLUMNS]
            + [(k, json_dumps(getattr(self, k))) for k in JSON_COLUMNS],
        )


class _Owned(dict[str, list[Any]]):
    """Columns built for one `Events` and shared with no one: taken without copying."""


def _as_columns(value: Mapping[str, Sequence[Any]]) -> Columns:
    if type(value) is _Owned:
        return dict(value)
    cols = {c: list(value.get(c, ())) for c in COLUMNS}
    lengths = {len(v) for v in cols.values()}
    if len(lengths) > 1:
        raise InvalidOptionError(
            f"every column needs one value per event; lengths {sorted(lengths)}",
            lengths=sorted(lengths),
        )
    return cols


_SHOWN = ("seq", "name", "condition", "latency_ms", "cost_usd", "success", "model")


@attrs.define(frozen=True, kw_only=True)
class Events(RenderMixin):
    """Captured events as columns (one list per [`COLUMNS`][crucible_telemetry.COLUMNS] entry).

    Iterate for [`Event`][crucible_telemetry.Event] objects, take a `column(name)`, or convert with
    `to_polars()` / `to_arrow()` (JSON columns as JSON text there).
    """

    columns: Mapping[str, list[Any]] = attrs.field(
        factory=empty_columns, converter=_as_columns
    )
    """The data: column name → one value per event."""

    def __repr__(self) -> str:
        ids = sorted(set(self.columns["experiment_id"]))
        shown = ids[:3] + (["..."] if len(ids) > 3 else [])
        return f"Events(n={len(self)}, experiments={shown!r})"

    def __len__(self) -> int:
        return len(self.columns["seq"])

    def __getitem__(self, index: int) -> Event:
        return Event(**{c: self.columns[c][index] for c in COLUMNS})

    def __iter__(self) -> Iterator[Event]:
        for i in range(len(self)):
            yield self[i]

    def column(self, name: str) -> list[Any]:
        """One column, e.g. `events.column("latency_ms")`.

        Raises:
            InvalidOptionError: `name` is not a column.
        """
        if name not in self.columns:
            raise InvalidOptionError(
                f"no column {name!r}; the columns are {', '.join(COLUMNS)}", column=name
            )
        return self.columns[name]

    def _view(self) -> View:
        limit = 20
        rows = [
            [self.columns[c][i] for c in _SHOWN] for i in range(min(len(self), limit))
        ]
        notes = [f"showing {limit} of {len(self)} events"] if len(self) > limit else []
        return View(
            title=f"{len(self)} events",
            tables=[Table(headers=_SHOWN, rows=rows)],
            notes=notes,
        )

    def to_arrow(self) -> pyarrow.Table:
        """A pyarrow Table with the export schema (needs the `pyarrow` extra)."""
        from crucible_telemetry._export import to_arrow

        return to_arrow(dict(self.columns))

    def to_polars(self) -> polars.DataFrame:
        """A polars DataFrame with every column (needs the `polars` extra; JSON columns as text)."""
        from crucible_core._optional import import_optional

        pl = import_optional(
            "polars", extra="polars", distribution="crucible-telemetry"
        )
        data = dict(self.columns)
        for c in JSON_COLUMNS:
            data[c] = [json_dumps(v) for v in data[c]]
        frame: polars.DataFrame = pl.DataFrame(
            data, schema=_polars_schema(pl), strict=False
        )
        return frame


def _polars_schema(pl: Any) -> dict[str, Any]:
    types = {
        "seq": pl.Int64,
        "timestamp_ns": pl.Int64,
        "monotonic_ns": pl.Int64,
        "repeat": pl.Int64,
        "tags": pl.List(pl.String),
        "latency_ms": pl.Float64,
        "cost_usd": pl.Float64,
        "success": pl.Boolean,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
    }
    return {c: types.get(c, pl.String) for c in COLUMNS}


def arrow_schema() -> pyarrow.Schema:
    """The pyarrow schema of exported events (schema version 1)."""
    from crucible_telemetry._export import arrow_schema as schema

    return schema()


def _is_aware(value: object) -> bool:
    return isinstance(value, dt.datetime) and value.tzinfo is not None


def _ns(when: dt.datetime | None, option: str) -> int | None:
    if when is None:
        return None
    if not _is_aware(when):
        raise InvalidOptionError(
            f"{option} must be a timezone-aware datetime, e.g. datetime.now(timezone.utc), "
            f"got {when!r}",
            **{option: repr(when)},
        )
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (
        delta.days * 86_400 + delta.seconds
    ) * 1_000_000_000 + delta.microseconds * 1000


def _concat(parts: list[Columns]) -> _Owned:
    """The batches' columns end to end, as new lists (each batch's own when there is one)."""
    if len(parts) == 1 and all(c in parts[0] for c in COLUMNS):
        return _Owned({c: parts[0][c] for c in COLUMNS})
    out = _Owned(empty_columns())
    for part in parts:
        for c in COLUMNS:
            out[c].extend(part[c])
    return out


def get_events(
    experiment_id: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    store: StoreLike | None = None,
) -> Events:
    """Every captured event of an experiment, in capture order.

    Args:
        experiment_id: the experiment.
        since: only events captured at or after this time (timezone-aware).
        until: only events captured before this time.
        store: where to look; by default the stores this process has used.

    Raises:
        ExperimentNotFoundError: no store searched holds the experiment.
    """
    found, _ = store_of(experiment_id, store)
    parts = list(
        found.batches(
            experiment_id, since_ns=_ns(since, "since"), until_ns=_ns(until, "until")
        )
    )
    return Events(columns=_concat(parts))


def query_events(
    *,
    experiment: str | None = None,
    tag: str | None = None,
    condition: str | None = None,
    event: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    include_archived: bool = False,
    store: StoreLike | None = None,
) -> Events:
    """Events across experiments, filtered by experiment name, tag, condition, event and time.

    Args:
        experiment: experiment name (every experiment of that name).
        tag: experiments carrying this tag.
        condition: events whose condition (context, else experiment) is this.
        event: events whose dotted name starts with this, e.g. `"crucible.llm"`.
        since: events captured at or after this time (timezone-aware).
        until: events captured before this time.
        include_archived: also read archived experiments.
        store: where to look; by default the stores this process has used.
    """
    since_ns, until_ns = _ns(since, "since"), _ns(until, "until")
    parts = []
    for exp in list_experiments(
        name=experiment, tag=tag, include_archived=include_archived, store=store
    ):
        found, _ = store_of(exp.id, store)
        for batch in found.batches(exp.id, since_ns=since_ns, until_ns=until_ns):
            keep = [
                i
                for i in range(len(batch["seq"]))
                if (condition is None or batch["condition"][i] == condition)
                and (
                    event is None
                    or batch["name"][i] == event
                    or batch["name"][i].startswith(event + ".")
                )
            ]
            parts.append({c: [batch[c][i] for i in keep] for c in COLUMNS})
    return Events(columns=_concat(parts))

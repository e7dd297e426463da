"""Events and chains: frozen values, validated when they are made."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from crucible_core import events as _events
from crucible_core.ids import is_id, new_id
from crucible_core.render import RenderMixin, Table, View
from crucible_trace._check import is_aware, is_probability, is_text
from crucible_trace._types import is_event_type
from crucible_trace.exceptions import InvalidChainError, InvalidEventError

__all__ = ("Chain", "TraceEvent", "create_event", "new_chain", "validate_event")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _strings(field: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise InvalidEventError(
            f"`{field}` takes a list of strings, got the string {values!r}; "
            f"wrap it: `[{values!r}]`",
            field=field,
            value=values,
        )
    return tuple(values)


def _alternatives(values: Iterable[str]) -> tuple[str, ...]:
    return _strings("alternatives", values)


def _parent_ids(values: Iterable[str]) -> tuple[str, ...]:
    return _strings("parent_ids", values)


def _dict(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return {} if value is None else dict(value)


def _bad(field: str, value: object, message: str) -> InvalidEventError:
    return InvalidEventError(message, field=field, value=value)


def _check_event(event: TraceEvent) -> None:
    """Raise InvalidEventError for the first rule `event` breaks."""
    if not is_id(event.id):
        raise _bad(
            "id",
            event.id,
            f"event id {event.id!r} is not a crucible id; leave `id` out to get a new one "
            "(`crucible_core.ids.new_id('evt')`)",
        )
    if not is_aware(event.timestamp):
        raise _bad(
            "timestamp",
            event.timestamp,
            f"timestamp {event.timestamp!r} must be a timezone-aware datetime, "
            "e.g. `datetime.now(timezone.utc)`",
        )
    if not is_event_type(event.type):
        raise _bad(
            "type",
            event.type,
            f"unknown event type {event.type!r}; use one of `crucible_trace.event_types()` or "
            "register it first with `crucible_trace.register_event_type(name, description=...)`",
        )
    if not is_text(event.decision, nonempty=True):
        raise _bad("decision", event.decision, "`decision` must be a non-empty string")
    if not is_text(event.reasoning):
        raise _bad(
            "reasoning", event.reasoning, "`reasoning` must be a string (may be empty)"
        )
    for alt in event.alternatives:
        if not is_text(alt, nonempty=True):
            raise _bad(
                "alternatives",
                event.alternatives,
                f"each alternative must be a non-empty string, got {alt!r}",
            )
    c = event.confidence
    if c is not None and not is_probability(c):
        raise _bad(
            "confidence",
            c,
            f"confidence {c!r} must be a number in [0, 1] (or None when unknown); "
            "write 85% as 0.85",
        )
    for name in ("code_section", "spec_reference"):
        value = getattr(event, name)
        if value is not None and not is_text(value):
            raise _bad(name, value, f"`{name}` must be a string or None")
    for parent in event.parent_ids:
        if not is_id(parent) or parent == event.id:
            raise _bad(
                "parent_ids",
                event.parent_ids,
                f"parent id {parent!r} must be the crucible id of another event",
            )
    if len(set(event.parent_ids)) != len(event.parent_ids):
        raise _bad("parent_ids", event.parent_ids, "`parent_ids` lists an id twice")


@attrs.define(frozen=True, kw_only=True)
class TraceEvent(RenderMixin):
    """One step of a model's reasoning: what it decided, what else it weighed, and why.

    Made with [`create_event`][crucible_trace.create_event] or by the parser; every rule is checked
    when an event is made, so a `TraceEvent` that exists is valid.

    Examples:
        >>> from crucible_trace import create_event
        >>> e = create_event("decision_made", "Use a dict", "O(1) look-ups", confidence=0.9)
        >>> e.type, e.confidence
        ('decision_made', 0.9)
    """

    id: str = attrs.field(factory=lambda: new_id("evt"))
    """A crucible id, `evt_<ULID>`."""
    timestamp: dt.datetime = attrs.field(factory=_utcnow)
    """When the event was made (timezone-aware)."""
    type: str
    """A registered event type, e.g. `"decision_made"`."""
    decision: str
    """What was decided (non-empty)."""
    alternatives: tuple[str, ...] = attrs.field(default=(), converter=_alternatives)
    """The options considered instead."""
    reasoning: str = ""
    """Why this decision."""
    confidence: float | None = None
    """How sure the model was, in [0, 1]; `None` when it did not say."""
    code_section: str | None = None
    """The part of the code the decision concerns."""
    spec_reference: str | None = None
    """The part of the specification the decision answers."""
    parent_ids: tuple[str, ...] = attrs.field(default=(), converter=_parent_ids)
    """Ids of the earlier events this one follows from (the edges of the causal DAG)."""
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_dict, hash=False)
    """Free-form JSON-ready data."""

    def __attrs_post_init__(self) -> None:
        _check_event(self)

    def __repr__(self) -> str:
        conf = "" if self.confidence is None else f", confidence={self.confidence!r}"
        decision = (
            self.decision if len(self.decision) <= 40 else self.decision[:39] + "…"
        )
        return f"TraceEvent(type={self.type!r}, decision={decision!r}{conf}, id={self.id!r})"

    def _view(self) -> View:
        return View(
            title=f"Event {self.type}",
            facts=[
                ("decision", self.decision),
                ("alternatives", ", ".join(self.alternatives) or None),
                ("reasoning", self.reasoning or None),
                ("confidence", self.confidence),
                ("code_section", self.code_section),
                ("spec_reference", self.spec_reference),
                ("id", self.id),
            ],
        )


def _events_tuple(values: Iterable[TraceEvent]) -> tuple[TraceEvent, ...]:
    return tuple(values)


def _check_chain(chain: Chain) -> None:
    if not is_id(chain.id):
        raise InvalidChainError(
            f"chain id {chain.id!r} is not a crucible id; leave `id` out to get a new one",
            chain_id=chain.id,
            event_id=None,
        )
    if not is_text(chain.name):
        raise InvalidChainError(
            f"chain name must be a string, got {chain.name!r}",
            chain_id=chain.id,
            event_id=None,
        )
    if not is_aware(chain.created_at):
        raise InvalidChainError(
            f"`created_at` {chain.created_at!r} must be a timezone-aware datetime",
            chain_id=chain.id,
            event_id=None,
        )
    seen: set[str] = set()
    for event in chain.events:
        if not isinstance(event, TraceEvent):
            raise InvalidChainError(
                f"a chain holds `TraceEvent`s, got {type(event).__name__}; make one with "
                "`create_event`",
                chain_id=chain.id,
                event_id=None,
            )
        if event.id in seen:
            raise InvalidChainError(
                f"event id {event.id!r} appears twice in chain {chain.id!r}; each event is "
                "added once",
                chain_id=chain.id,
                event_id=event.id,
            )
        for parent in event.parent_ids:
            if parent not in seen:
                raise InvalidChainError(
                    f"event {event.id!r} names parent {parent!r}, which is not an earlier event "
                    "of the chain; add the parent first",
                    chain_id=chain.id,
                    event_id=event.id,
                )
        seen.add(event.id)


@attrs.define(frozen=True, kw_only=True)
class Chain(RenderMixin):
    """An ordered, immutable collection of events: one model's reasoning for one task.

    Parents always come before their children, so the events form a DAG in order. Operations such as
    [`add_event`][crucible_trace.add_event] return a new chain.

    Examples:
        >>> from crucible_trace import new_chain, add_event, create_event
        >>> chain = add_event(new_chain("demo"), create_event("decision_made", "Use a dict"))
        >>> len(chain), chain.name
        (1, 'demo')
    """

    id: str = attrs.field(factory=lambda: new_id("chain"))
    """A crucible id, `chain_<ULID>`; also its file name in a store."""
    name: str
    """A human name, e.g. the task."""
    events: tuple[TraceEvent, ...] = attrs.field(default=(), converter=_events_tuple)
    """The events, parents before children."""
    created_at: dt.datetime = attrs.field(factory=_utcnow)
    """When the chain was made (timezone-aware)."""
    metadata: dict[str, Any] = attrs.field(factory=dict, converter=_dict, hash=False)
    """Free-form JSON-ready data (model, prompt id, experiment …)."""

    def __attrs_post_init__(self) -> None:
        _check_chain(self)

    def __repr__(self) -> str:
        return f"Chain(name={self.name!r}, events={len(self.events)}, id={self.id!r})"

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self.events)

    def event(self, event_id: str) -> TraceEvent:
        """The event with this id.

        Raises:
            KeyError: if the chain has no such event.
        """
        for e in self.events:
            if e.id == event_id:
                return e
        raise KeyError(event_id)

    def _view(self) -> View:
        known = [e.confidence for e in self.events if e.confidence is not None]
        return View(
            title=f"Chain {self.name!r}",
            facts=[
                ("id", self.id),
                ("events", len(self.events)),
                ("mean confidence", sum(known) / len(known) if known else None),
            ],
            tables=[
                Table(
                    headers=("#", "type", "decision", "confidence", "alternatives"),
                    rows=[
                        (
                            i,
                            e.type,
                            e.decision,
                            e.confidence,
                            len(e.alternatives),
                        )
                        for i, e in enumerate(self.events, 1)
                    ],
                )
            ],
        )


def new_chain(
    name: str,
    *,
    id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_at: dt.datetime | None = None,
) -> Chain:
    """A new, empty chain; emits `("crucible", "trace", "chain", "created")`.

    Args:
        name: a human name, e.g. the task.
        id: a crucible id to use instead of a new `chain_<ULID>`.
        metadata: free-form JSON-ready data.
        created_at: the creation time (timezone-aware); now by default.

    Raises:
        InvalidChainError: if `id` is not a crucible id or `created_at` is naive.
    """
    chain = Chain(
        id=id if id is not None else new_id("chain"),
        name=name,
        metadata=metadata,
        created_at=created_at if created_at is not None else _utcnow(),
    )
    _events.emit(
        _events.TRACE_CHAIN_CREATED, {}, {"chain_id": chain.id, "name": chain.name}
    )
    return chain


def create_event(
    type: str,
    decision: str,
    reasoning: str = "",
    *,
    alternatives: Iterable[str] = (),
    confidence: float | None = None,
    code_section: str | None = None,
    spec_reference: str | None = None,
    parent_ids: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    id: str | None = None,
    timestamp: dt.datetime | None = None,
) -> TraceEvent:
    """A new event with a fresh id and the current time.

    The event is not in a chain yet; adding it with [`add_event`][crucible_trace.add_event] emits
    `("crucible", "trace", "event", "created")`.

    Args:
        type: a registered event type, e.g. `"decision_made"`.
        decision: what was decided.
        reasoning: why.
        alternatives: the options considered instead.
        confidence: how sure, in [0, 1]; `None` when unknown.
        code_section: the part of the code concerned.
        spec_reference: the part of the specification answered.
        parent_ids: ids of earlier events this one follows from.
        metadata: free-form JSON-ready data.
        id: a crucible id to use instead of a new `evt_<ULID>`.
        timestamp: a timezone-aware time instead of now.

    Raises:
        InvalidEventError: naming the field that breaks a rule and how to fix it.
    """
    return TraceEvent(
        id=id if id is not None else new_id("evt"),
        timestamp=timestamp if timestamp is not None else _utcnow(),
        type=type,
        decision=decision,
        reasoning=reasoning,
        alternatives=alternatives,
        confidence=confidence,
        code_section=code_section,
        spec_reference=spec_reference,
        parent_ids=parent_ids,
        metadata=metadata,
    )


_EVENT_FIELDS = frozenset(a.name for a in attrs.fields(TraceEvent))


def validate_event(value: TraceEvent | Mapping[str, Any]) -> TraceEvent:
    """Check an event, or a mapping of event fields (e.g. read from JSON), and return the event.

    Args:
        value: a `TraceEvent` (checked again, e.g. after the registry changed) or a mapping with the
            fields of one; `type` and `decision` are required, the rest have defaults.

    Raises:
        InvalidEventError: naming the first field that breaks a rule, or unknown fields.
    """
    if isinstance(value, TraceEvent):
        _check_event(value)
        return value
    if not isinstance(value, Mapping):
        raise InvalidEventError(
            f"expected a TraceEvent or a mapping of its fields, got {type(value).__name__}",
            field=None,
            value=value,
        )
    unknown = sorted(set(map(str, value)) - _EVENT_FIELDS)
    if unknown:
        raise InvalidEventError(
            f"unknown event fields {unknown}; an event has {sorted(_EVENT_FIELDS)}",
            field=unknown[0],
            value=value,
        )
    missing = [k for k in ("type", "decision") if k not in value]
    if missing:
        raise InvalidEventError(
            f"an event needs {missing[0]!r}", field=missing[0], value=value
        )
    from crucible_core.serde import converter

    data = dict(value)
    data.setdefault("id", new_id("evt"))
    data.setdefault("timestamp", _utcnow().isoformat())
    try:
        return converter.structure(data, TraceEvent)
    except InvalidEventError:
        raise
    except Exception as err:
        inner = _find_event_error(err)
        if inner is not None:
            raise inner from err
        raise InvalidEventError(
            f"cannot read an event from {value!r}: {err}", field=None, value=value
        ) from err


def _find_event_error(err: BaseException) -> InvalidEventError | None:
    if isinstance(err, InvalidEventError):
        return err
    for sub in getattr(err, "exceptions", ()):
        found = _find_event_error(sub)
        if found is not None:
            return found
    return None

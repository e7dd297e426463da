"""Operations on chains: adding, merging, statistics, queries and diffs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from crucible_core import events as _events
from crucible_core.ids import new_id
from crucible_core.render import RenderMixin, Table, View
from crucible_trace._check import is_probability
from crucible_trace._model import Chain, TraceEvent
from crucible_trace._types import is_event_type
from crucible_trace.exceptions import InvalidChainError, InvalidEventError

__all__ = (
    "ChainDiff",
    "ChainStatistics",
    "EventChange",
    "add_event",
    "add_events",
    "diff",
    "events_by_type",
    "find_decision_points",
    "find_low_confidence",
    "merge_chains",
    "statistics",
)


def _emit_created(chain_id: str, event: TraceEvent) -> None:
    _events.emit(
        _events.TRACE_EVENT_CREATED,
        {} if event.confidence is None else {"confidence": event.confidence},
        {"type": event.type, "chain_id": chain_id, "event_id": event.id},
    )


def add_event(chain: Chain, event: TraceEvent) -> Chain:
    """A new chain with `event` appended; emits `("crucible", "trace", "event", "created")`.

    Raises:
        InvalidChainError: if the chain already holds an event with this id, or a parent of the
            event is not in the chain.
    """
    return add_events(chain, (event,))


def add_events(chain: Chain, events: Iterable[TraceEvent]) -> Chain:
    """A new chain with `events` appended in order; emits one created event per event added.

    Nothing is emitted if any event is rejected.

    Raises:
        InvalidChainError: if an id repeats or a parent is not an earlier event.
    """
    added = tuple(events)
    out = attrs.evolve(chain, events=chain.events + added)
    for event in added:
        _emit_created(out.id, event)
    return out


def merge_chains(
    first: Chain,
    second: Chain,
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Chain:
    """One chain holding the events of both, interleaved by timestamp.

    Each chain's own order is kept (so parents stay before children); an event present in both
    (same id and content) appears once. The result is a new chain with a new id; emits
    `("crucible", "trace", "chain", "created")`.

    Args:
        first: the chain whose events win ties in time.
        second: the other chain.
        name: the merged chain's name; `"<first> + <second>"` by default.
        metadata: the merged chain's metadata; both chains' metadata merged by default
            (`second` wins on conflicts).

    Raises:
        InvalidChainError: if the chains hold different events under the same id.
    """
    a, b = first.events, second.events
    by_id = {e.id: e for e in a}
    for e in b:
        other = by_id.get(e.id)
        if other is not None and other != e:
            raise InvalidChainError(
                f"both chains hold an event {e.id!r} but with different content; "
                "give one of them new ids before merging",
                chain_id=second.id,
                event_id=e.id,
            )
    merged: list[TraceEvent] = []
    seen: set[str] = set()
    i = j = 0
    while i < len(a) or j < len(b):
        take_a = j >= len(b) or (i < len(a) and a[i].timestamp <= b[j].timestamp)
        event = a[i] if take_a else b[j]
        if take_a:
            i += 1
        else:
            j += 1
        if event.id not in seen:
            seen.add(event.id)
            merged.append(event)
    chain = Chain(
        id=new_id("chain"),
        name=name if name is not None else f"{first.name} + {second.name}",
        events=merged,
        created_at=min(first.created_at, second.created_at),
        metadata=(
            {**first.metadata, **second.metadata} if metadata is None else metadata
        ),
    )
    _events.emit(
        _events.TRACE_CHAIN_CREATED, {}, {"chain_id": chain.id, "name": chain.name}
    )
    return chain


def find_decision_points(chain: Chain) -> tuple[TraceEvent, ...]:
    """The events where alternatives were weighed (those with at least one alternative)."""
    return tuple(e for e in chain.events if e.alternatives)


def find_low_confidence(chain: Chain, threshold: float = 0.7) -> tuple[TraceEvent, ...]:
    """The events whose confidence is below `threshold` (events without a confidence are skipped).

    Raises:
        InvalidEventError: if `threshold` is not a number in [0, 1].
    """
    if not is_probability(threshold):
        raise InvalidEventError(
            f"threshold {threshold!r} must be a number in [0, 1]",
            field="threshold",
            value=threshold,
        )
    return tuple(
        e for e in chain.events if e.confidence is not None and e.confidence < threshold
    )


def events_by_type(chain: Chain, type: str) -> tuple[TraceEvent, ...]:
    """The events of one type, in chain order.

    Raises:
        InvalidEventError: if `type` is not a registered event type (a typo would match nothing).
    """
    if not is_event_type(type):
        raise InvalidEventError(
            f"unknown event type {type!r}; see `crucible_trace.event_types()`",
            field="type",
            value=type,
        )
    return tuple(e for e in chain.events if e.type == type)


@attrs.define(frozen=True, kw_only=True)
class ChainStatistics(RenderMixin):
    """Summary numbers of one chain, from [`statistics`][crucible_trace.statistics]."""

    chain_id: str
    """The chain described."""
    event_count: int
    """How many events."""
    counts_by_type: dict[str, int]
    """Events per type, most frequent first."""
    mean_confidence: float | None
    """Mean confidence over the events that state one; `None` if none does."""
    min_confidence: float | None
    """Lowest stated confidence."""
    max_confidence: float | None
    """Highest stated confidence."""
    unknown_confidence: int
    """Events without a confidence."""
    decision_points: int
    """Events with at least one alternative."""
    duration: float
    """Seconds from the first event's timestamp to the last (0 for fewer than two events)."""
    first_event_at: dt.datetime | None
    """The earliest event timestamp."""
    last_event_at: dt.datetime | None
    """The latest event timestamp."""

    def _view(self) -> View:
        return View(
            title="Chain statistics",
            facts=[
                ("chain", self.chain_id),
                ("events", self.event_count),
                ("mean confidence", self.mean_confidence),
                ("min confidence", self.min_confidence),
                ("max confidence", self.max_confidence),
                ("unknown confidence", self.unknown_confidence),
                ("decision points", self.decision_points),
                ("duration (s)", self.duration),
            ],
            tables=[
                Table(headers=("type", "count"), rows=list(self.counts_by_type.items()))
            ],
        )


def statistics(chain: Chain) -> ChainStatistics:
    """Counts by type, confidence summary, decision points and duration of a chain."""
    counts = Counter(e.type for e in chain.events)
    known = [e.confidence for e in chain.events if e.confidence is not None]
    times = [e.timestamp for e in chain.events]
    return ChainStatistics(
        chain_id=chain.id,
        event_count=len(chain.events),
        counts_by_type=dict(counts.most_common()),
        mean_confidence=sum(known) / len(known) if known else None,
        min_confidence=min(known) if known else None,
        max_confidence=max(known) if known else None,
        unknown_confidence=len(chain.events) - len(known),
        decision_points=sum(1 for e in chain.events if e.alternatives),
        duration=(max(times) - min(times)).total_seconds() if times else 0.0,
        first_event_at=min(times) if times else None,
        last_event_at=max(times) if times else None,
    )


_COMPARED = (
    "type",
    "decision",
    "alternatives",
    "reasoning",
    "confidence",
    "code_section",
    "spec_reference",
)


@attrs.define(frozen=True, kw_only=True)
class EventChange:
    """One event present in both chains with different content."""

    before: TraceEvent
    """The event in the first chain."""
    after: TraceEvent
    """The matching event in the second chain."""
    fields: tuple[str, ...]
    """The names of the fields that differ."""


@attrs.define(frozen=True, kw_only=True)
class ChainDiff(RenderMixin):
    """How two chains differ, from [`diff`][crucible_trace.diff]."""

    removed: tuple[TraceEvent, ...]
    """Events only in the first chain."""
    added: tuple[TraceEvent, ...]
    """Events only in the second chain."""
    changed: tuple[EventChange, ...]
    """Events in both whose content differs."""
    unchanged: int
    """How many events match exactly."""

    @property
    def identical(self) -> bool:
        """Whether the chains hold the same reasoning."""
        return not (self.removed or self.added or self.changed)

    def _view(self) -> View:
        rows: list[tuple[str, str, str, str]] = []
        rows += [("-", e.type, e.decision, "") for e in self.removed]
        rows += [("+", e.type, e.decision, "") for e in self.added]
        rows += [
            ("~", c.after.type, c.after.decision, ", ".join(c.fields))
            for c in self.changed
        ]
        return View(
            title="Chain diff",
            facts=[
                ("removed", len(self.removed)),
                ("added", len(self.added)),
                ("changed", len(self.changed)),
                ("unchanged", self.unchanged),
            ],
            tables=[Table(headers=("", "type", "decision", "fields"), rows=rows)]
            if rows
            else [],
        )


def _key(event: TraceEvent) -> tuple[str, str]:
    return (event.type, " ".join(event.decision.split()).casefold())


def diff(first: Chain, second: Chain) -> ChainDiff:
    """Compare the reasoning of two chains.

    Events are matched by id first; the rest are matched by type and decision (ignoring case and
    spacing), in order, so two parses of similar model outputs compare sensibly. Matched events
    whose type, decision, alternatives, reasoning, confidence, code section or spec reference
    differ are reported as changed.
    """
    second_ids = {e.id: e for e in second.events}
    pairs: list[tuple[TraceEvent, TraceEvent]] = []
    rest_a: list[TraceEvent] = []
    matched_b: set[str] = set()
    for e in first.events:
        other = second_ids.get(e.id)
        if other is not None:
            pairs.append((e, other))
            matched_b.add(other.id)
        else:
            rest_a.append(e)
    pool: dict[tuple[str, str], list[TraceEvent]] = {}
    for e in second.events:
        if e.id not in matched_b:
            pool.setdefault(_key(e), []).append(e)
    removed: list[TraceEvent] = []
    for e in rest_a:
        candidates = pool.get(_key(e))
        if candidates:
            other = candidates.pop(0)
            pairs.append((e, other))
            matched_b.add(other.id)
        else:
            removed.append(e)
    added = tuple(e for e in second.events if e.id not in matched_b)
    changed: list[EventChange] = []
    unchanged = 0
    for before, after in pairs:
        fields = tuple(f for f in _COMPARED if getattr(before, f) != getattr(after, f))
        if fields:
            changed.append(EventChange(before=before, after=after, fields=fields))
        else:
            unchanged += 1
    return ChainDiff(
        removed=tuple(removed), added=added, changed=tuple(changed), unchanged=unchanged
    )

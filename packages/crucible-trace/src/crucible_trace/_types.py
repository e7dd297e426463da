"""The registry of event types: the eleven built in, and any a project registers."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import overload

from crucible_trace._check import is_text
from crucible_trace.exceptions import InvalidEventError

__all__ = (
    "BUILTIN_EVENT_TYPES",
    "EventTypes",
    "event_types",
    "is_event_type",
    "register_event_type",
    "unregister_event_type",
)

_NAME_RE = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")

BUILTIN_EVENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        # the stages of the research report
        "hypothesis_formed": "an initial approach or solution was proposed",
        "alternative_rejected": "an option was explicitly rejected",
        "constraint_evaluated": "a requirement or limit was checked",
        "pattern_applied": "a known design pattern was used",
        "ambiguity_flagged": "the specification is unclear or contradictory here",
        "confidence_updated": "confidence in an earlier decision changed",
        # the stages of the README
        "task_decomposed": "the task was split into smaller parts",
        "alternative_considered": "an option was weighed without deciding yet",
        "constraint_identified": "a requirement or limit was noticed",
        "decision_made": "a choice was made",
        "uncertainty_flagged": "the model is unsure about something",
    }
)
"""The built-in event types and what each means."""

_lock = threading.Lock()
_registry: dict[str, str] = dict(BUILTIN_EVENT_TYPES)


def register_event_type(name: str, *, description: str) -> None:
    """Add an event type that events, the parser and the prompt may use from now on.

    Registering the same name with the same description again does nothing.

    Args:
        name: 1-64 lowercase letters, digits or underscores, starting with a letter.
        description: one line saying when a model should emit this type (shown in the prompt).

    Raises:
        InvalidEventError: if `name` is malformed, `description` is empty, or `name` is already
            registered with another description.

    Examples:
        >>> from crucible_trace import register_event_type, unregister_event_type
        >>> register_event_type("test_written", description="a test was written for the code")
        >>> unregister_event_type("test_written")
        True
    """
    if not is_text(name) or not _NAME_RE.match(name):
        raise InvalidEventError(
            f"event type {name!r} must be 1-64 lowercase letters, digits or underscores "
            "starting with a letter, e.g. 'test_written'",
            field="type",
            value=name,
        )
    if not is_text(description, nonempty=True):
        raise InvalidEventError(
            f"event type {name!r} needs a non-empty `description`",
            field="description",
            value=description,
        )
    with _lock:
        known = _registry.get(name)
        if known is not None and known != description:
            raise InvalidEventError(
                f"event type {name!r} is already registered as {known!r}; pick another name or "
                "call `unregister_event_type` first",
                field="type",
                value=name,
            )
        _registry[name] = description


def unregister_event_type(name: str) -> bool:
    """Remove a registered event type; returns whether it was registered.

    Raises:
        InvalidEventError: if `name` is one of the built-in types, which cannot be removed.
    """
    if name in BUILTIN_EVENT_TYPES:
        raise InvalidEventError(
            f"{name!r} is a built-in event type and cannot be unregistered",
            field="type",
            value=name,
        )
    with _lock:
        return _registry.pop(name, None) is not None


class EventTypes(Mapping[str, str]):
    """A read-only, ordered snapshot of the registered event types: name → description.

    A mapping (`types["hypothesis_formed"]`, `in`, `len`, iteration over names in registration
    order, built-in first) that can also be sliced by position, as a notebook user expects of a
    listing: `event_types()[:3]` is an `EventTypes` of the first three, and `event_types()[0]` the
    first name.
    """

    __slots__ = ("_items", "_names")

    def __init__(self, items: Mapping[str, str]) -> None:
        self._items: dict[str, str] = dict(items)
        self._names: tuple[str, ...] = tuple(self._items)

    @overload
    def __getitem__(self, key: str) -> str: ...
    @overload
    def __getitem__(self, key: int) -> str: ...
    @overload
    def __getitem__(self, key: slice) -> EventTypes: ...
    def __getitem__(self, key: str | int | slice) -> str | EventTypes:
        if isinstance(key, slice):
            return EventTypes({n: self._items[n] for n in self._names[key]})
        if isinstance(key, str):
            return self._items[key]
        if isinstance(key, bool):
            raise KeyError(key)
        return self._names[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"EventTypes({', '.join(self._names)})"

    def render(self) -> str:
        """One line per type: its name and what it means."""
        width = max((len(n) for n in self._names), default=0)
        return "\n".join(f"{n:<{width}}  {d}" for n, d in self._items.items())


def event_types() -> EventTypes:
    """Every event type now registered (built-in first), with its description.

    Returns a snapshot: registering a type later does not change it.
    """
    with _lock:
        return EventTypes(_registry)


def is_event_type(name: object) -> bool:
    """Whether `name` is a registered event type."""
    return isinstance(name, str) and name in _registry

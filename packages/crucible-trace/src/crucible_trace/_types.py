"""The registry of event types: the eleven built in, and any a project registers."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from types import MappingProxyType

from crucible_trace._check import is_text
from crucible_trace.exceptions import InvalidEventError

__all__ = (
    "BUILTIN_EVENT_TYPES",
    "event_types",
    "is_event_type",
    "register_event_type",
    "unregister_event_type",
)

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

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


def event_types() -> Mapping[str, str]:
    """Every event type now registered (built-in first), with its description."""
    with _lock:
        return MappingProxyType(dict(_registry))


def is_event_type(name: object) -> bool:
    """Whether `name` is a registered event type."""
    return isinstance(name, str) and name in _registry

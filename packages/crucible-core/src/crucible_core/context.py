"""Who an event belongs to: experiment, condition, repeat and item, carried in `contextvars`.

The context follows asyncio tasks (each task starts with a copy of its creator's context) and
`asyncio.to_thread`. Plain threads and thread pools start empty: wrap the callable with
[`bind`][crucible_core.context.bind] to carry the caller's context into them. Two experiments
running at once in different tasks or threads never see each other's context.

Examples:
    >>> from crucible_core import context
    >>> with context.use(experiment_id="exp_1", condition="ensemble"):
    ...     context.current().condition
    'ensemble'
    >>> context.current().condition is None
    True
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import attrs

__all__ = ("Context", "bind", "context_var", "current", "use")

P = ParamSpec("P")
R = TypeVar("R")


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.define(frozen=True, kw_only=True)
class Context:
    """The attribution of whatever runs now. Every field is `None` outside an experiment."""

    experiment_id: str | None = None
    """Id of the experiment (crucible-telemetry) or run (crucible-harness)."""
    experiment_name: str | None = None
    """Human name of the experiment."""
    condition: str | None = None
    """The condition (arm) being run, e.g. `"ensemble"`."""
    repeat: int | None = None
    """Which repeat of the item, from 0."""
    item: str | None = None
    """Id of the dataset item."""
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    """Anything else to attach to events (e.g. `{"fold": 2}`)."""

    def as_dict(self) -> dict[str, Any]:
        """The set fields as a flat dict (`extra` merged in), for event metadata."""
        out = {
            k: v
            for k, v in (
                ("experiment_id", self.experiment_id),
                ("experiment_name", self.experiment_name),
                ("condition", self.condition),
                ("repeat", self.repeat),
                ("item", self.item),
            )
            if v is not None
        }
        out.update(self.extra)
        return out


_EMPTY = Context()
_CURRENT: contextvars.ContextVar[Context] = contextvars.ContextVar(
    "crucible_context", default=_EMPTY
)


def current() -> Context:
    """The context in force in this task or thread."""
    return _CURRENT.get()


def context_var() -> contextvars.ContextVar[Context]:
    """The `ContextVar` that holds the current context, for code that reads it without a call.

    crucible-telemetry's C capture handler reads it on every event. Read it only; set the
    context with [`use`][crucible_core.context.use] or [`bind`][crucible_core.context.bind].
    """
    return _CURRENT


_FIELDS = frozenset(a.name for a in attrs.fields(Context))


@contextmanager
def use(**fields: Any) -> Iterator[Context]:
    """Set context fields for the `with` block, on top of the current ones.

    Unknown keyword names go into `extra`. Nested blocks override and restore.
    """
    base = _CURRENT.get()
    extra = dict(base.extra)
    extra.update(fields.pop("extra", None) or {})
    for key in [k for k in fields if k not in _FIELDS]:
        extra[key] = fields.pop(key)
    # Direct construction (not attrs.evolve): this runs once per task in a harness run.
    new = Context(
        experiment_id=fields.get("experiment_id", base.experiment_id),
        experiment_name=fields.get("experiment_name", base.experiment_name),
        condition=fields.get("condition", base.condition),
        repeat=fields.get("repeat", base.repeat),
        item=fields.get("item", base.item),
        extra=extra,
    )
    token = _CURRENT.set(new)
    try:
        yield new
    finally:
        _CURRENT.reset(token)


def bind(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap `fn` so it runs in (a copy of) the context in force now, e.g. in a thread pool.

    Examples:
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> with use(condition="a"), ThreadPoolExecutor() as pool:
        ...     pool.submit(bind(lambda: current().condition)).result()
        'a'
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run

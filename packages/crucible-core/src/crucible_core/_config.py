"""Display options for results (`crucible_core.config`), set globally or in a `with` block."""

from __future__ import annotations

import contextvars
from types import TracebackType

import attrs

__all__ = ("DisplayOptions", "config", "display_options")


@attrs.define(frozen=True, kw_only=True)
class DisplayOptions:
    """How results render in text and HTML."""

    max_rows: int = attrs.field(default=30, validator=attrs.validators.ge(1))
    """Rows shown per table before the middle is elided."""
    max_cols: int = attrs.field(default=20, validator=attrs.validators.ge(1))
    """Columns shown per table before the rest are elided."""
    precision: int = attrs.field(default=4, validator=attrs.validators.ge(0))
    """Significant digits for floats."""


_DEFAULT = DisplayOptions()  # frozen, so safe as a ContextVar default
_OPTIONS: contextvars.ContextVar[DisplayOptions] = contextvars.ContextVar(
    "crucible_display_options",
    default=_DEFAULT,
)


def display_options() -> DisplayOptions:
    """The display options in force here."""
    return _OPTIONS.get()


class config:  # lowercase: used like a function, as `pl.Config`
    """Change display options, for a `with` block or (called alone) from now on.

    Examples:
        >>> from crucible_core import config, display_options
        >>> with config(max_rows=5):
        ...     display_options().max_rows
        5
    """

    def __init__(
        self,
        *,
        max_rows: int | None = None,
        max_cols: int | None = None,
        precision: int | None = None,
    ) -> None:
        changes = {
            k: v
            for k, v in {
                "max_rows": max_rows,
                "max_cols": max_cols,
                "precision": precision,
            }.items()
            if v is not None
        }
        self._token = _OPTIONS.set(attrs.evolve(_OPTIONS.get(), **changes))

    def __enter__(self) -> DisplayOptions:
        return _OPTIONS.get()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _OPTIONS.reset(self._token)

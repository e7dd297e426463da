"""Exceptions raised by crucible-hedging.

```
CrucibleError
└── HedgingError
    ├── InvalidHedgingConfigError(ValueError)    a bad policy, budget or option, raised at construction
    ├── HedgingTimeoutError(TimeoutError)        no attempt succeeded within the overall `timeout`
    └── AllAttemptsFailedError(ExceptionGroup)   every attempt failed; holds each attempt's error
```

A *fatal* attempt error (see `fatal=` of [`hedged`][crucible_hedging.hedged]) is re-raised as it is,
so callers keep catching the error their callable raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

from crucible_core.exceptions import CrucibleError

if TYPE_CHECKING:
    from crucible_hedging._hedge import HedgeAttempt

__all__ = (
    "AllAttemptsFailedError",
    "HedgingError",
    "HedgingTimeoutError",
    "InvalidHedgingConfigError",
)


class HedgingError(CrucibleError):
    """Base class of every error raised by crucible-hedging."""


class InvalidHedgingConfigError(HedgingError, ValueError):
    """A policy, budget, throttle or option is out of range or of the wrong type.

    The context attribute named after the bad option holds the value given.
    """


class HedgingTimeoutError(HedgingError, TimeoutError):
    """No attempt succeeded within the overall `timeout`; every attempt still running was cancelled.

    Attributes:
        timeout: the overall timeout, in seconds.
        attempts: how many attempts had been started.
        timeline: every attempt's start, end and outcome (all cancelled or failed).
    """

    timeout: float
    attempts: int
    timeline: tuple[HedgeAttempt, ...]


class AllAttemptsFailedError(ExceptionGroup[Exception], HedgingError):  # type: ignore[override]
    """Every attempt of a hedged request failed and no further hedge was allowed.

    An `ExceptionGroup` of the attempts' errors, in the order the attempts were started, so
    `except*` picks out the kinds you care about.

    Attributes:
        attempts: how many attempts were started.
        key: the request's workload key.
        timeline: every attempt's start, end and outcome (all failed).
    """

    attempts: int
    key: Any
    timeline: tuple[HedgeAttempt, ...]

    def __new__(
        cls, message: str, exceptions: Sequence[Exception], **context: Any
    ) -> Self:
        """Build the group (`ExceptionGroup` takes only the message and the errors here)."""
        return super().__new__(cls, message, exceptions)

    def __init__(
        self, message: str, exceptions: Sequence[Exception], **context: Any
    ) -> None:
        ExceptionGroup.__init__(self, message, exceptions)
        self.context = dict(context)
        for name, value in context.items():
            setattr(self, name, value)

    def derive(self, excs: Sequence[Exception]) -> AllAttemptsFailedError:  # type: ignore[override]
        """A group of the same type and context holding `excs` (used by `split` and `except*`)."""
        return AllAttemptsFailedError(self.message, excs, **self.context)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_group, (self.message, tuple(self.exceptions), self.context))

    def __str__(self) -> str:
        return ExceptionGroup.__str__(self)


def _rebuild_group(
    message: str, exceptions: tuple[Exception, ...], context: dict[str, Any]
) -> AllAttemptsFailedError:
    return AllAttemptsFailedError(message, exceptions, **context)

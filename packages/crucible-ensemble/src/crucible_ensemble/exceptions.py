"""Exceptions raised by crucible-ensemble.

```
CrucibleError
└── EnsembleError
    ├── EnsembleConfigurationError(ValueError)    bad options, caught at construction
    └── InsufficientResponsesError(RuntimeError)  fewer members answered than `min_responses`
        └── EnsembleTimeoutError(TimeoutError)    ... because the `timeout` ran out
```

Usage mistakes (an unknown strategy, weights for members that do not exist) raise
[`EnsembleConfigurationError`][crucible_ensemble.EnsembleConfigurationError] when the
[`Ensemble`][crucible_ensemble.Ensemble] is built. A member that fails at run time is recorded in
the result and left out of the vote; only when too few members answered does a prediction raise
[`InsufficientResponsesError`][crucible_ensemble.InsufficientResponsesError], carrying every
member's error.
"""

from __future__ import annotations

from typing import Any

from crucible_core.exceptions import CrucibleError

__all__ = (
    "EnsembleConfigurationError",
    "EnsembleError",
    "EnsembleTimeoutError",
    "InsufficientResponsesError",
)


class EnsembleError(CrucibleError):
    """Base class of every error raised by crucible-ensemble."""


class EnsembleConfigurationError(EnsembleError, ValueError):
    """An ensemble option is invalid: an unknown strategy, a bad weight, an impossible quorum.

    The context attributes name the offending option (e.g. `strategy`, `weights`, `min_responses`).
    """


class InsufficientResponsesError(EnsembleError, RuntimeError):
    """Fewer members answered than `min_responses`, so there is nothing trustworthy to vote on.

    Attributes:
        errors: each failed member's exception, by member name.
        responses: how many members answered.
        min_responses: how many were required.
    """

    errors: dict[str, BaseException]
    responses: int
    min_responses: int

    def __init__(self, message: str = "", **context: Any) -> None:
        context.setdefault("errors", {})
        context.setdefault("responses", 0)
        context.setdefault("min_responses", 1)
        super().__init__(message, **context)


class EnsembleTimeoutError(InsufficientResponsesError, TimeoutError):
    """The `timeout` ran out before `min_responses` members answered.

    Attributes:
        timeout: the timeout in seconds.
    """

    timeout: float

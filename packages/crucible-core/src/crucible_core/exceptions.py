"""The root of every crucible error and warning, and the leaves all packages share.

Hierarchy:

```
Exception
└── CrucibleError
    ├── ValidationError(ValueError)            bad input: a value, a shape, a NaN
    ├── ConfigurationError(ValueError)         a setting or a missing key/extra
    │   └── MissingDependencyError(ImportError) an optional library is not installed
    ├── SerializationError(ValueError)         a value that cannot be (de)serialized
    ├── BudgetExceededError                    a spending limit would be crossed
    └── ProviderError                          a model provider failed at run time
        ├── NetworkError(ConnectionError)      the connection failed or broke
        ├── ProviderTimeoutError(TimeoutError) no answer within the timeout
        ├── RateLimitError                     HTTP 429; carries `retry_after`
        └── ResponseError                      any other bad answer (4xx/5xx, bad JSON)

Warning:
├── CrucibleWarning(UserWarning)
└── CrucibleDeprecationWarning(DeprecationWarning)
```

Every error carries its context as attributes (named in each class) as well as in its message, and
pickles with them, so errors survive process boundaries.
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "BudgetExceededError",
    "ConfigurationError",
    "CrucibleDeprecationWarning",
    "CrucibleError",
    "CrucibleWarning",
    "MissingDependencyError",
    "NetworkError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseError",
    "SerializationError",
    "ValidationError",
)


class CrucibleError(Exception):
    """Root of every error raised by a crucible package.

    Keyword arguments given to the constructor become attributes (the error's context) and are kept
    when the error is pickled.

    Examples:
        >>> err = CrucibleError("bad thing", field="x")
        >>> err.field
        'x'
    """

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message)
        self.message = message
        """The human-readable message: what went wrong and how to fix it."""
        self.context: dict[str, Any] = dict(context)
        """Every context attribute, by name."""
        for key, value in context.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.context))

    def __str__(self) -> str:
        return self.message


def _rebuild(
    cls: type[CrucibleError], message: str, context: dict[str, Any]
) -> CrucibleError:
    return cls(message, **context)


class ValidationError(CrucibleError, ValueError):
    """Input that cannot be used as given: wrong shape, empty, NaN, out of range."""


class ConfigurationError(CrucibleError, ValueError):
    """A setting that is missing or inconsistent (an API key, a model string, an option)."""


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional library is needed and not installed; the message names the `pip install` line."""


class SerializationError(CrucibleError, ValueError):
    """A value that cannot be turned into JSON, or JSON that does not fit the expected type."""


class BudgetExceededError(CrucibleError):
    """Spending would exceed a budget. Context: `limit`, `spent`, `requested`."""


class ProviderError(CrucibleError):
    """A model provider failed at run time. Context: `provider`, `model`, `status`, `attempt`."""


class NetworkError(ProviderError, ConnectionError):
    """The connection to a provider failed or broke before an answer arrived."""


class ProviderTimeoutError(ProviderError, TimeoutError):
    """A provider did not answer within the timeout. Context: `timeout` in seconds."""


class RateLimitError(ProviderError):
    """The provider answered 429. Context: `retry_after` in seconds, or `None` if not given."""


class ResponseError(ProviderError):
    """The provider answered with an error status or a body that cannot be read."""


class CrucibleWarning(UserWarning):
    """Root of the warnings crucible packages issue."""


class CrucibleDeprecationWarning(DeprecationWarning):
    """A crucible name or behaviour that will be removed; the message names its replacement."""

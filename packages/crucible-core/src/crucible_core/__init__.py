"""crucible-core: what every crucible package stands on.

Errors, time-ordered ids, the event bus and its context, one serialization converter, descriptive
statistics, export, retries and rate limiting, rendering of results, and models (the `Model` protocol,
the registry, HTTP providers and the simulated default). Submodules are public: `crucible_core.events`,
`crucible_core.models`, `crucible_core.stats`, …; the names below are the ones used most.
"""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_core._config import DisplayOptions, config, display_options
from crucible_core.exceptions import (
    BudgetExceededError,
    ConfigurationError,
    CrucibleDeprecationWarning,
    CrucibleError,
    CrucibleWarning,
    MissingDependencyError,
    NetworkError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    SerializationError,
    ValidationError,
)

__version__: str = _version("crucible-core")

__all__ = (
    # errors
    "CrucibleError",
    "ValidationError",
    "ConfigurationError",
    "MissingDependencyError",
    "SerializationError",
    "BudgetExceededError",
    "ProviderError",
    "NetworkError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseError",
    "CrucibleWarning",
    "CrucibleDeprecationWarning",
    # display
    "DisplayOptions",
    "config",
    "display_options",
    # metadata
    "__version__",
)

"""crucible-core: what every crucible package stands on.

Errors, time-ordered ids, the event bus and its context, one serialization converter, descriptive
statistics, export, retries and rate limiting, rendering of results, and models (the `Model` protocol,
the registry, HTTP providers and the simulated default). Submodules are public: `crucible_core.events`,
`crucible_core.models`, `crucible_core.stats`, …; the names below are the ones used most.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crucible_core._config import DisplayOptions, config, display_options
from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_core.events import attach, detach, emit, span
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
from crucible_core.ids import new_id

if TYPE_CHECKING:
    from crucible_core.models import (
        Completion,
        Model,
        Request,
        SimulatedModel,
        Usage,
        build_model,
    )
    from crucible_core.ratelimit import TokenBucket
    from crucible_core.retry import RetryPolicy, retry, retry_context, set_testing

    __version__: str

# The models (and through them the HTTP providers and `ssl`), retries and rate limits (asyncio)
# load when first named, and `__version__` is read from the installed metadata on first use: a
# package that only needs errors or events (crucible-bench) pays for none of them.
__getattr__ = _lazy_getattr(
    __name__,
    "crucible-core",
    {
        **dict.fromkeys(
            (
                "Completion",
                "Model",
                "Request",
                "SimulatedModel",
                "Usage",
                "build_model",
            ),
            "crucible_core.models",
        ),
        "TokenBucket": "crucible_core.ratelimit",
        **dict.fromkeys(
            ("RetryPolicy", "retry", "retry_context", "set_testing"),
            "crucible_core.retry",
        ),
    },
)

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
    # events and ids
    "emit",
    "attach",
    "detach",
    "span",
    "new_id",
    # models
    "Request",
    "Completion",
    "Usage",
    "Model",
    "SimulatedModel",
    "build_model",
    # retries and rate limits
    "retry",
    "retry_context",
    "RetryPolicy",
    "set_testing",
    "TokenBucket",
    # display
    "DisplayOptions",
    "config",
    "display_options",
    # metadata
    "__version__",
)

"""crucible-core: what every crucible package stands on.

Errors, time-ordered ids, the event bus and its context, one serialization converter, descriptive
statistics, export, retries and rate limiting, rendering of results, and models (the `Model` protocol,
the registry, HTTP providers and the simulated default). Submodules are public: `crucible_core.events`,
`crucible_core.models`, `crucible_core.stats`, …; the names below are the ones used most.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crucible_core._lazy import lazy_exports as _lazy_exports
from crucible_core._version import __version__

if TYPE_CHECKING:
    from crucible_core._config import DisplayOptions, config, display_options
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

# Each name loads with its submodule when first named: the event bus and the display options load
# attrs, ids datetime, the models asyncio (and through it `ssl`), the HTTP providers aiohttp. Every
# package imports its errors from `crucible_core.exceptions`, which thus costs none of them.
if not TYPE_CHECKING:  # type checkers see the imports above, and flag a typo
    __getattr__, __dir__ = _lazy_exports(
        __name__,
        {
            "crucible_core._config": ("DisplayOptions", "config", "display_options"),
            "crucible_core.events": ("attach", "detach", "emit", "span"),
            "crucible_core.exceptions": (
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
            ),
            "crucible_core.ids": ("new_id",),
            "crucible_core.models": (
                "Completion",
                "Model",
                "Request",
                "SimulatedModel",
                "Usage",
                "build_model",
            ),
            "crucible_core.ratelimit": ("TokenBucket",),
            "crucible_core.retry": (
                "RetryPolicy",
                "retry",
                "retry_context",
                "set_testing",
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

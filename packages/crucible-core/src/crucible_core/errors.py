"""Alias of [`crucible_core.exceptions`][crucible_core.exceptions], the name ARCHITECTURE.md uses."""

from __future__ import annotations

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

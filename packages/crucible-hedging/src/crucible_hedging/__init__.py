"""Hedged requests that really cut tail latency, with delay policies, budgets and a simulator."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_hedging.exceptions import HedgingError

__version__: str = _version("crucible-hedging")

__all__ = (
    # errors
    "HedgingError",
    # metadata
    "__version__",
)

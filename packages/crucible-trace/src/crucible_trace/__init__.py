"""Causal reasoning traces for LLM outputs: events and chains, a safe parser for model output, storage, search and an HTML viewer."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_trace.exceptions import TraceError

__version__: str = _version("crucible-trace")

__all__ = (
    # errors
    "TraceError",
    # metadata
    "__version__",
)

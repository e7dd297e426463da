"""Declare an experiment, run it durably within a budget, analyse it with crucible-bench and report it for publication."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_harness.exceptions import HarnessError

__version__: str = _version("crucible-harness")

__all__ = (
    # errors
    "HarnessError",
    # metadata
    "__version__",
)

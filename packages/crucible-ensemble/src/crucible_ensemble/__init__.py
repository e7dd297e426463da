"""Several models voting as one model, with execution strategies and the numbers to prove the ensemble helps."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_ensemble.exceptions import EnsembleError

__version__: str = _version("crucible-ensemble")

__all__ = (
    # errors
    "EnsembleError",
    # metadata
    "__version__",
)

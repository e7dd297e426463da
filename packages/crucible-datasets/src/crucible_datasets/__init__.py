"""The real benchmarks (GSM8K, MMLU, HumanEval, SciFact, FEVER) cached and versioned, with honest scorers and samplers."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_datasets.exceptions import DatasetError

__version__: str = _version("crucible-datasets")

__all__ = (
    # errors
    "DatasetError",
    # metadata
    "__version__",
)

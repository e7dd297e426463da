"""Statistical tests, effect sizes, power analysis and multiple-comparison corrections checked against R and NIST."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_bench.exceptions import BenchError

__version__: str = _version("crucible-bench")

__all__ = (
    # errors
    "BenchError",
    # metadata
    "__version__",
)

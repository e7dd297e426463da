"""Exceptions raised by crucible-bench.

```
CrucibleError
└── BenchError
    ├── InvalidInputError(ValidationError, ValueError)    data that cannot be analysed as given
    │   └── InsufficientDataError                         too few (or all-equal) observations
    ├── InvalidParameterError(ConfigurationError, ValueError)  an option out of range or unknown
    └── ConvergenceError(ArithmeticError)                 a numeric solver found no root
```

Every error carries its context as attributes (`argument`, `value`, `reason`, …) and pickles with
them.
"""

from __future__ import annotations

from crucible_core.exceptions import ConfigurationError, CrucibleError, ValidationError

__all__ = (
    "BenchError",
    "ConvergenceError",
    "InsufficientDataError",
    "InvalidInputError",
    "InvalidParameterError",
)


class BenchError(CrucibleError):
    """Base class of every error raised by crucible-bench."""


class InvalidInputError(BenchError, ValidationError):
    """Data that cannot be analysed as given: empty, NaN/inf, negative counts, mismatched lengths.

    Context: `argument` (the parameter name) and `reason` (a short machine-readable tag such as
    `"nan"`, `"empty"`, `"length_mismatch"`, `"negative"`).
    """


class InsufficientDataError(InvalidInputError):
    """Too few observations, or no variability, for the requested statistic.

    Context: `argument`, `reason`, `n` (observations available) and `minimum` (needed).
    """


class InvalidParameterError(BenchError, ConfigurationError):
    """An option that is unknown or out of range (`alternative="bigger"`, `confidence_level=1.5`).

    Context: `argument`, `value`, and `allowed` where the choices are a fixed set.
    """


class ConvergenceError(BenchError, ArithmeticError):
    """A root finder (power solving, exact confidence limits) could not bracket or reach a root.

    Context: `quantity` (what was being solved for).
    """

"""Exceptions raised by crucible-harness.

Hierarchy:

```
CrucibleError
└── HarnessError
    ├── ExperimentDefinitionError(ValueError)   the experiment cannot run as declared
    ├── RunDirectoryError(ValueError)           a run directory is missing, foreign or corrupt
    │   └── ResumeMismatchError                 resuming with a different experiment definition
    └── BudgetStopError                         the run stopped before crossing its budget
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = (
    "BudgetStopError",
    "ExperimentDefinitionError",
    "HarnessError",
    "ResumeMismatchError",
    "RunDirectoryError",
)


class HarnessError(CrucibleError):
    """Base class of every error raised by crucible-harness."""


class ExperimentDefinitionError(HarnessError, ValueError):
    """The experiment cannot run as declared. Context: `field`, the offending setting."""


class RunDirectoryError(HarnessError, ValueError):
    """A run directory is missing, not a crucible run, or corrupt. Context: `path`, `line`."""


class ResumeMismatchError(RunDirectoryError):
    """The run directory was written by a different experiment definition. Context: `expected`, `found`."""


class BudgetStopError(HarnessError):
    """Raised by `run(..., on_budget="raise")` when the budget stopped the run. Context: `spent`, `limit`."""

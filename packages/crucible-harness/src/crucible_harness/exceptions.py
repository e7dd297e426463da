"""Exceptions raised by crucible-harness.

Hierarchy:

```
CrucibleError
└── HarnessError
    ├── ExperimentDefinitionError(ValueError)   the experiment cannot run as declared
    ├── RunDirectoryError(ValueError)           a run directory is missing, foreign or corrupt
    │   ├── ResumeMismatchError                 resuming with a different experiment definition
    │   ├── RunLockedError                      another process is writing the run directory
    │   ├── RunRecordsError                     the task log holds records that cannot be used
    │   └── RunWriteError                       the run's logs could not be written (disk full, …)
    └── BudgetStopError                         the run stopped before crossing its budget

CrucibleWarning
└── RunDirectoryWarning                         something in a run directory was dropped or fixed
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError, CrucibleWarning

__all__ = (
    "BudgetStopError",
    "ExperimentDefinitionError",
    "HarnessError",
    "ResumeMismatchError",
    "RunDirectoryError",
    "RunDirectoryWarning",
    "RunLockedError",
    "RunRecordsError",
    "RunWriteError",
)


class HarnessError(CrucibleError):
    """Base class of every error raised by crucible-harness."""


class ExperimentDefinitionError(HarnessError, ValueError):
    """The experiment cannot run as declared. Context: `field`, the offending setting."""


class RunDirectoryError(HarnessError, ValueError):
    """A run directory is missing, not a crucible run, or corrupt. Context: `path`, `line`."""


class ResumeMismatchError(RunDirectoryError):
    """The run directory was written by a different experiment definition. Context: `expected`, `found`."""


class RunLockedError(RunDirectoryError):
    """Another process holds the run directory's lock. Context: `path`, `pid`, `host` (the holder)."""


class RunRecordsError(RunDirectoryError):
    """The task log holds damaged, foreign or conflicting records; `crucible repair` fixes it.

    Context: `path` (the log), `lines` (their numbers), `problems` (what is wrong with each).
    """


class RunWriteError(RunDirectoryError):
    """The run's logs could not be written (disk full, I/O error, read-only), so the run stopped.

    Every task written before is kept; resume once the disk is fixed. Context: `path`, `errno`,
    `recorded`, `unwritten` (finished tasks that could not be written and will run again).
    """


class RunDirectoryWarning(CrucibleWarning):
    """Something in a run directory was dropped or read leniently (an exact duplicate record)."""


class BudgetStopError(HarnessError):
    """Raised by `run(..., on_budget="raise")` when the budget stopped the run. Context: `spent`, `limit`."""

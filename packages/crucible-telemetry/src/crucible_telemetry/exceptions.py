"""Exceptions raised by crucible-telemetry.

```
CrucibleError
└── TelemetryError
    ├── ExperimentNotFoundError(KeyError)        no experiment has this id in the store searched
    ├── ExperimentStateError(RuntimeError)       e.g. stopping an experiment that is not running
    ├── InvalidMetadataError(TypeError)          experiment metadata JSON cannot hold
    ├── InvalidOptionError(ValueError)           a bad argument (format, prefix, store URL, ...)
    └── StoreUnavailableError(ConnectionError)   a store could not be written within its retry window
```

Every error keeps its context as attributes (named in each class) and pickles with them.
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = (
    "ExperimentNotFoundError",
    "ExperimentStateError",
    "InvalidMetadataError",
    "InvalidOptionError",
    "StoreUnavailableError",
    "TelemetryError",
)


class TelemetryError(CrucibleError):
    """Base class of every error raised by crucible-telemetry."""


class ExperimentNotFoundError(TelemetryError, KeyError):
    """No experiment has this id. Context: `experiment_id`, `store` (a description of the store)."""

    def __str__(self) -> str:
        # KeyError's __str__ would quote the message; show it as written.
        return self.message


class ExperimentStateError(TelemetryError, RuntimeError):
    """The experiment is not in a state that allows this. Context: `experiment_id`, `status`."""


class InvalidMetadataError(TelemetryError, TypeError):
    """Experiment metadata or tags that cannot be stored as JSON. Context: `key`, `value_type`."""


class InvalidOptionError(TelemetryError, ValueError):
    """An argument that cannot be used as given. Context: the offending option by name."""


class StoreUnavailableError(TelemetryError, ConnectionError):
    """A store stayed unreachable for longer than its retry window.

    Buffered events are kept, never dropped: call `flush()` again once the store is back.
    Context: `store`, `pending` (events still buffered), `waited` (seconds), `error` (the last one).
    """

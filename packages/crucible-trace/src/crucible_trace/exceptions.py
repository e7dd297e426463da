"""Exceptions raised by crucible-trace.

```
CrucibleError
└── TraceError
    ├── InvalidEventError(ValueError)       an event breaks a rule (type, confidence, ids, text)
    ├── InvalidChainError(ValueError)       a chain breaks a rule (duplicate ids, unknown parents)
    ├── InvalidChainIdError(ValueError)     a chain id that is not a crucible id (path safety)
    ├── ChainNotFoundError(KeyError)        no chain with that id in the store
    ├── ChainFormatError(SerializationError) JSON that is not a chain of a known schema version
    ├── TraceParseError(ValueError)         strict parsing of model output found problems
    └── InvalidQueryError(ValueError)       a search or export option that cannot be used
```

Every error carries its context as attributes (named in each class) and pickles with them.
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError, SerializationError

__all__ = (
    "ChainFormatError",
    "ChainNotFoundError",
    "InvalidChainError",
    "InvalidChainIdError",
    "InvalidEventError",
    "InvalidQueryError",
    "TraceError",
    "TraceParseError",
)


class TraceError(CrucibleError):
    """Base class of every error raised by crucible-trace."""


class InvalidEventError(TraceError, ValueError):
    """An event that breaks a rule. Context: `field`, `value`."""


class InvalidChainError(TraceError, ValueError):
    """A chain that breaks a rule. Context: `chain_id`, `event_id`."""


class InvalidChainIdError(TraceError, ValueError):
    """A chain id that is not a crucible id, so it could not be a file in a store. Context: `chain_id`."""


class ChainNotFoundError(TraceError, KeyError):
    """No chain with this id is stored. Context: `chain_id`, `directory`."""


class ChainFormatError(TraceError, SerializationError):
    """Text that is not a chain in a schema version this package reads. Context: `version`."""


class TraceParseError(TraceError, ValueError):
    """Strict parsing found problems in model output. Context: `warnings` (the `ParseWarning`s)."""


class InvalidQueryError(TraceError, ValueError):
    """A search or export option that cannot be used. Context: `option`, `value`."""

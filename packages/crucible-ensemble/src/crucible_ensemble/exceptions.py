"""Exceptions raised by crucible-ensemble.

```
CrucibleError
└── EnsembleError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("EnsembleError",)


class EnsembleError(CrucibleError):
    """Base class of every error raised by crucible-ensemble."""

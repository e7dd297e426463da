"""Exceptions raised by crucible-hedging.

```
CrucibleError
└── HedgingError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("HedgingError",)


class HedgingError(CrucibleError):
    """Base class of every error raised by crucible-hedging."""

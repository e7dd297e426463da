"""Exceptions raised by crucible-trace.

```
CrucibleError
└── TraceError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("TraceError",)


class TraceError(CrucibleError):
    """Base class of every error raised by crucible-trace."""

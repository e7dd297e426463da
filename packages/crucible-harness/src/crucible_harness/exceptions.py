"""Exceptions raised by crucible-harness.

```
CrucibleError
└── HarnessError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("HarnessError",)


class HarnessError(CrucibleError):
    """Base class of every error raised by crucible-harness."""

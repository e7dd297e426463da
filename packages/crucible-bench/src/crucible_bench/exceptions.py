"""Exceptions raised by crucible-bench.

```
CrucibleError
└── BenchError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("BenchError",)


class BenchError(CrucibleError):
    """Base class of every error raised by crucible-bench."""

"""Exceptions raised by crucible-datasets.

```
CrucibleError
└── DatasetError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("DatasetError",)


class DatasetError(CrucibleError):
    """Base class of every error raised by crucible-datasets."""

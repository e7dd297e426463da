"""Exceptions raised by crucible-lora.

```
CrucibleError
└── LoraError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("LoraError",)


class LoraError(CrucibleError):
    """Base class of every error raised by crucible-lora."""

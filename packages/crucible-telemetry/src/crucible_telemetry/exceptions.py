"""Exceptions raised by crucible-telemetry.

```
CrucibleError
└── TelemetryError
```
"""

from __future__ import annotations

from crucible_core.exceptions import CrucibleError

__all__ = ("TelemetryError",)


class TelemetryError(CrucibleError):
    """Base class of every error raised by crucible-telemetry."""

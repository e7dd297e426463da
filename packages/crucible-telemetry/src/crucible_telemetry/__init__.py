"""Research-grade event capture for experiments: isolated experiments, stores (memory, SQLite, PostgreSQL), metrics, pricing and export."""

from __future__ import annotations

from importlib.metadata import version as _version

from crucible_telemetry.exceptions import TelemetryError

__version__: str = _version("crucible-telemetry")

__all__ = (
    # errors
    "TelemetryError",
    # metadata
    "__version__",
)

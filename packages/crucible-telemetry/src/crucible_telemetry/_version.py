"""The version of crucible-telemetry, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

"""The version of crucible-ensemble, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

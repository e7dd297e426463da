"""The version of crucible-core, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

"""The version of crucible-datasets, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

"""The version of crucible-bench, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

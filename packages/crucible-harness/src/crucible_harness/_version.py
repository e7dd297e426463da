"""The version of crucible-harness, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

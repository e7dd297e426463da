"""The version of crucible-trace, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

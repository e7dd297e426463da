"""The version of crucible-hedging, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

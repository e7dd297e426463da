"""The version of crucible-framework, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

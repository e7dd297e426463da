"""The version of crucible-lora, rewritten by `scripts/bump-version`."""

__version__ = "0.1.0"

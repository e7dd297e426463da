"""Alias of [`crucible_core.exceptions`][crucible_core.exceptions], the name ARCHITECTURE.md uses."""

from __future__ import annotations

from crucible_core.exceptions import *  # noqa: F403 - this module is an alias
from crucible_core.exceptions import __all__ as __all__

"""One helper to import an optional library, with the exact install line on failure."""

from __future__ import annotations

import importlib
from types import ModuleType

from crucible_core.exceptions import MissingDependencyError

__all__ = ("import_optional",)


def import_optional(
    module: str, *, extra: str, distribution: str = "crucible-core"
) -> ModuleType:
    """Import `module`, or raise `MissingDependencyError` naming the pip line that installs it.

    Args:
        module: the module to import, e.g. `"pyarrow.parquet"`.
        extra: the extra of `distribution` that brings it, e.g. `"pyarrow"`.
        distribution: the crucible distribution whose extra it is.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".", 1)[0]
        raise MissingDependencyError(
            f"{top!r} is needed for this and is not installed: "
            f'`pip install "{distribution}[{extra}]"`',
            module=module,
            extra=extra,
            distribution=distribution,
        ) from err

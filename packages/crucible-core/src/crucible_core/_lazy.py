"""Module attributes resolved on first use: `__version__` and names from heavy submodules.

`importlib.metadata` costs ~55 ms to import, and crucible-core's HTTP providers pull in `ssl`;
a package that needs neither at import time defers both through a module `__getattr__`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ("lazy_getattr",)


def lazy_getattr(
    module: str,
    distribution: str,
    names: Mapping[str, str] | None = None,
    *,
    renamed: Mapping[str, tuple[str, str]] | None = None,
) -> Callable[[str], Any]:
    """A module `__getattr__` for `__version__` and `names`, each looked up once and cached.

    `__version__` comes from the installed distribution's metadata; each of `names` (attribute →
    module) is imported from its module; any other name that is a submodule is imported.

    Args:
        module: the module it serves (`__name__`).
        distribution: the distribution whose version `__version__` is, e.g. `"crucible-bench"`.
        names: attributes imported on first access, e.g. `{"Model": "crucible_core.models"}`.
        renamed: old public names still served, with a `CrucibleDeprecationWarning` on every
            use: old name → (new name, why), e.g. `{"Event": ("TraceEvent", "... clashes ...")}`.
            They are not cached, so each use warns; they are in no `__all__`.
    """
    where = dict(names or {})
    old_names = dict(renamed or {})

    def __getattr__(name: str) -> Any:
        if name in old_names:
            import warnings

            from crucible_core.exceptions import CrucibleDeprecationWarning

            new, why = old_names[name]
            warnings.warn(
                f"{module}.{name} is renamed {new}: {why}",
                CrucibleDeprecationWarning,
                stacklevel=2,
            )
            return getattr(sys.modules[module], new)
        if name == "__version__":
            from importlib.metadata import version

            value: Any = version(distribution)
        elif name in where:
            value = getattr(importlib.import_module(where[name]), name)
        elif not name.startswith("__") and _has_submodule(f"{module}.{name}"):
            # `import crucible_core; crucible_core.models` worked while __init__ imported it
            value = importlib.import_module(f"{module}.{name}")
        else:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__


def _has_submodule(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False

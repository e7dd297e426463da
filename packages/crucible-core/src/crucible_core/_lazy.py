"""Module attributes resolved on first use: public names from submodules, and old names.

Importing a package should cost what its caller uses: crucible-bench's tests need numpy and attrs,
crucible-core's models need asyncio (and through it `ssl`), `importlib.metadata` costs ~40 ms. A
package `__init__` lists its names per submodule and gets a PEP 562 `__getattr__` and `__dir__`
that import each submodule when one of its names is first used, so `import crucible_bench` loads
none of them and `from crucible_bench import ttest` loads only what `ttest` needs. Type checkers
and the docs see the same names through an `if TYPE_CHECKING:` import block.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ("lazy_exports", "lazy_getattr")


def lazy_exports(
    module: str,
    exports: Mapping[str, Iterable[str]],
    *,
    renamed: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's `__getattr__` and `__dir__` serving `exports` on first use.

    Args:
        module: the module they serve (`__name__`).
        exports: submodule → the names it provides, e.g.
            `{"crucible_bench._ttest": ("TtestResult", "ttest")}`.
        renamed: old public names still served, see [`lazy_getattr`][crucible_core._lazy.lazy_getattr].

    Returns:
        `(__getattr__, __dir__)`; `dir(module)` lists the module's globals and every lazy name.
    """
    names = {name: source for source, provided in exports.items() for name in provided}
    getattr_ = lazy_getattr(module, names, renamed=renamed)
    extra = set(names)
    shadowed = {n: s for n, s in names.items() if s == f"{module}.{n}"}
    if shadowed:
        _keep_names_over_submodules(module, shadowed)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module])) | extra)

    return getattr_, __dir__


def _keep_names_over_submodules(module: str, shadowed: Mapping[str, str]) -> None:
    """Keep `package.name` the exported object when a same-named submodule loads.

    After loading `crucible_core.retry`, the import system binds the submodule as the attribute
    `retry` of `crucible_core`, where the export is the function `crucible_core.retry.retry`.
    An eager `from crucible_core.retry import retry` in `__init__` rebound it; a lazy name needs
    the module itself to refuse, so its class gets a `__setattr__` that binds the export instead.
    """

    class _Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if (
                isinstance(value, types.ModuleType)
                and shadowed.get(name) == value.__name__
                and hasattr(value, name)
            ):
                value = getattr(value, name)
            super().__setattr__(name, value)

    sys.modules[module].__class__ = _Package


def lazy_getattr(
    module: str,
    names: Mapping[str, str] | None = None,
    *,
    renamed: Mapping[str, tuple[str, str]] | None = None,
) -> Callable[[str], Any]:
    """A module `__getattr__` for `names` and old names, each looked up once and cached.

    Each of `names` (attribute → module) is imported from its module; any other name that is a
    submodule is imported. (`__version__` is each package's `_version.py`, imported eagerly: it is
    one line, where `importlib.metadata` costs ~40 ms.)

    Args:
        module: the module it serves (`__name__`).
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
        if name in where:
            value: Any = getattr(importlib.import_module(where[name]), name)
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

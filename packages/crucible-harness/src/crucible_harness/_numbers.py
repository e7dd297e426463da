"""The one number-formatting rule of every report (Markdown, HTML, LaTeX, the notebook, `render()`).

Digits follow the quantity, not the float:

- counts: whole numbers (`1234`);
- proportions (accuracy): three decimals (`0.833`); differences of proportions signed (`+0.120`);
- p-values: APA style, three decimals without the leading zero (`.014`, `< .001`, `p = .014`);
- standardized effects (Cohen's h, d_z): two decimals, signed (`+0.42`);
- seconds, dollars, tokens, ratios: three significant digits (`0.700`, `0.00350`, `12.2`, `1.52`),
  whole numbers from 1000 up (`1235`);
- settings (a budget, a temperature, a declared value): as declared, up to six significant digits
  (`0.05`, `1.56`), never the float's noise (`1.5599999999999838`);
- a difference of two measured quantities (and its interval) gets the decimals of the larger of the
  two, so float noise prints as `0.000` and never as `-7.685e-13`.

Non-finite values are spelled `NaN`, `inf`, `-inf`; a missing value is `—`. The minus sign is ASCII
so every table cell parses back with `float()`.
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

__all__ = ("Kind", "decimals_for", "interval", "number", "pvalue")

Kind: TypeAlias = Literal[
    "count",
    "proportion",
    "difference",
    "effect",
    "seconds",
    "usd",
    "tokens",
    "ratio",
    "p",
    "setting",
]
"""What a number measures; it decides the digits."""

SIGNIFICANT = 3
"""Significant digits of measured quantities (seconds, dollars, tokens, ratios)."""

_FIXED: dict[str, int] = {"proportion": 3, "difference": 3, "effect": 2}
_SIGNED = frozenset({"difference", "effect"})


def decimals_for(magnitude: float, digits: int = SIGNIFICANT) -> int:
    """Decimals that show `digits` significant digits of a number of this magnitude."""
    if not math.isfinite(magnitude) or magnitude == 0:
        return digits - 1
    return max(digits - 1 - math.floor(math.log10(abs(magnitude))), 0)


def _fixed(x: float, decimals: int, *, signed: bool) -> str:
    text = f"{x:.{decimals}f}"
    if float(text) == 0:
        return text.lstrip("-")  # -0.000 is 0.000
    return f"+{text}" if signed and x > 0 else text


def _special(x: float | None) -> str | None:
    if x is None:
        return "—"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return None


def number(
    value: float | int | None,
    kind: Kind,
    *,
    scale: float | None = None,
    signed: bool | None = None,
) -> str:
    """Format one number by what it measures.

    Args:
        value: the number (`None` prints as `—`).
        kind: what it measures (see the module docstring).
        scale: for a difference of measured quantities (seconds, dollars, tokens, ratios): the
            magnitude of what was compared; the difference gets the decimals of that magnitude.
        signed: force (`True`) or suppress (`False`) a leading `+`; differences and effects are signed
            by default.

    Returns:
        The formatted number.
    """
    if value is not None and not isinstance(value, bool):
        value = float(value)
    special = _special(value)
    if special is not None:
        return special
    assert value is not None
    x = float(value)
    plus = kind in _SIGNED if signed is None else signed
    if kind == "p":
        return pvalue(x, prefix=False)
    if kind == "setting":
        text = f"{x:.6g}"
        return f"+{text}" if plus and x > 0 else text
    if kind == "count":
        return _fixed(x, 0 if x == round(x) else 1, signed=plus)
    if kind in _FIXED:
        return _fixed(x, _FIXED[kind], signed=plus)
    if scale is not None:
        return _fixed(x, decimals_for(scale), signed=plus)
    return _fixed(x, decimals_for(x), signed=plus)


def interval(
    low: float | None,
    high: float | None,
    kind: Kind,
    *,
    scale: float | None = None,
    each: bool = False,
) -> str:
    """`[low, high]` in the digits of `kind`, unsigned unless negative.

    For measured kinds both ends share the decimals of `scale` (default: the larger end), as a
    difference's interval should; with `each`, every end has its own significant digits (an odds
    ratio's interval, as in a table of effects).
    """
    if kind in ("seconds", "usd", "tokens", "ratio") and scale is None and not each:
        ends = [abs(v) for v in (low, high) if v is not None and math.isfinite(v)]
        scale = max(ends) if ends else None
    ends_text = (number(v, kind, scale=scale, signed=False) for v in (low, high))
    return "[{}, {}]".format(*ends_text)


def pvalue(p: float | None, *, prefix: bool = True) -> str:
    """An APA-style p-value: `p = .014`, `p < .001`, `p = 1.000` (or without `p ` when not `prefix`)."""
    special = _special(p)
    if special is not None:
        return f"p = {special}" if prefix else special
    assert p is not None
    if p < 0.001:
        text = "< .001"
    else:
        fixed = f"{min(p, 1.0):.3f}"
        text = "= " + (fixed[1:] if fixed.startswith("0") else fixed)
    if prefix:
        return f"p {text}"
    return text.removeprefix("= ")

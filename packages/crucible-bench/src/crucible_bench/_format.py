"""APA-style number formatting for interpretation strings."""

from __future__ import annotations

import math

_MINUS = "\u2212"


def num(x: float, digits: int = 3) -> str:
    """A number with `digits` significant digits (a true minus sign; `inf` and `NaN` spelled out)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "∞" if x > 0 else f"{_MINUS}∞"
    if x == 0:
        return "0"
    text = f"{x:,.0f}" if abs(x) >= 10**digits else f"{x:#.{digits}g}".rstrip(".")
    if "e" in text:
        text = f"{x:.{digits - 1}e}"
    return text.replace("-", _MINUS)


def pval(p: float) -> str:
    """APA p: `p < .001`, else `p = .016` (no leading zero)."""
    if math.isnan(p):
        return "p = NaN"
    if p < 0.001:
        return "p < .001"
    text = f"{p:.3f}"
    return f"p = {text[1:] if text.startswith('0') else text}"


def df_text(df: float) -> str:
    """Degrees of freedom: integers plain, fractional ones to two decimals."""
    if math.isnan(df):
        return "NaN"
    return str(round(df)) if abs(df - round(df)) < 1e-9 else f"{df:.2f}"


def ci(low: float, high: float, level: float) -> str:
    """`95% CI [low, high]`."""
    return f"{level * 100:g}% CI [{num(low)}, {num(high)}]"


def magnitude_d(d: float) -> str:
    """Cohen's (1988) labels for a standardized mean difference."""
    a = abs(d)
    if math.isnan(a):
        return "undefined"
    return (
        "negligible"
        if a < 0.2
        else "small"
        if a < 0.5
        else "medium"
        if a < 0.8
        else "large"
    )


def magnitude_r(r: float) -> str:
    """Cohen's labels for a correlation-type effect (also rank-biserial)."""
    a = abs(r)
    if math.isnan(a):
        return "undefined"
    return (
        "negligible"
        if a < 0.1
        else "small"
        if a < 0.3
        else "medium"
        if a < 0.5
        else "large"
    )


def magnitude_eta(eta: float) -> str:
    """Cohen's labels for η² / ω²."""
    if math.isnan(eta):
        return "undefined"
    return (
        "negligible"
        if eta < 0.01
        else "small"
        if eta < 0.06
        else "medium"
        if eta < 0.14
        else "large"
    )


def significance(p: float, alpha: float) -> str:
    """`significant` / `not significant` at `alpha`."""
    return "significant" if p < alpha else "not significant"

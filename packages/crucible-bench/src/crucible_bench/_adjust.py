"""Multiple-comparison p-value adjustment (R `p.adjust` definitions)."""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _validate as v
from crucible_bench._validate import FloatArray
from crucible_bench.exceptions import InvalidInputError

__all__ = ("AdjustMethod", "adjust_pvalues")

AdjustMethod: TypeAlias = Literal[
    "bonferroni", "holm", "hochberg", "bh", "by", "hommel", "sidak"
]
_METHODS = ("bonferroni", "holm", "hochberg", "bh", "by", "hommel", "sidak")
_ALIASES = {"fdr_bh": "bh", "fdr_by": "by", "BH": "bh", "BY": "by", "fdr": "bh"}


def adjust_pvalues(pvalues: ArrayLike, *, method: AdjustMethod = "holm") -> FloatArray:
    """Adjust p-values for multiple comparisons; the output is in input order.

    Definitions follow R's `p.adjust`: `bonferroni` = min(1, m·p); `holm` step-down with a
    cumulative max; `hochberg` step-up; `bh` (Benjamini–Hochberg FDR) = cumulative min from the
    top of m·p₍ᵢ₎/i; `by` (Benjamini–Yekutieli) = BH × Σ1/i; `hommel`; `sidak` = 1 − (1 − p)^m.

    Args:
        pvalues: raw p-values in [0, 1].
        method: the adjustment (R's `"BH"`/`"BY"` and statsmodels' `"fdr_bh"`/`"fdr_by"` are
            accepted as aliases).

    Returns:
        Adjusted p-values, each ≥ its raw value and ≤ 1, in the order given.

    Raises:
        InvalidInputError: empty input, NaN, or values outside [0, 1].
        InvalidParameterError: an unknown method.

    Examples:
        >>> adjust_pvalues([0.01, 0.04, 0.03], method="holm").round(3).tolist()
        [0.03, 0.06, 0.06]
    """
    method = _ALIASES.get(method, method)  # type: ignore[assignment]
    method = v.choice("method", method, _METHODS)
    p = v.as_float_array("pvalues", pvalues)
    if p.size == 0:
        raise InvalidInputError(
            "`pvalues` is empty", argument="pvalues", reason="empty"
        )
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise InvalidInputError(
            "`pvalues` must be in [0, 1] with no NaN; drop missing tests before adjusting",
            argument="pvalues",
            reason="range",
        )
    m = p.size
    if method == "bonferroni":
        return np.minimum(1.0, m * p)
    if method == "sidak":
        with np.errstate(divide="ignore"):
            out: FloatArray = -np.expm1(m * np.log1p(-p))
        return np.where(p == 1.0, 1.0, out)
    if method == "hommel":
        return _hommel(p)
    ascending = method == "holm"
    order = np.argsort(p if ascending else -p, kind="stable")
    ro = np.empty(m, dtype=np.intp)
    ro[order] = np.arange(m)
    ps = p[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ps)
    else:
        i = np.arange(m, 0, -1, dtype=float)
        if method == "hochberg":
            adj = np.minimum.accumulate((m - i + 1) * ps)
        else:
            q = float((1.0 / np.arange(1, m + 1)).sum()) if method == "by" else 1.0
            adj = np.minimum.accumulate(q * m / i * ps)
    result: FloatArray = np.minimum(1.0, adj)[ro]
    return result


def _hommel(p: FloatArray) -> FloatArray:
    n = p.size
    order = np.argsort(p, kind="stable")
    ro = np.empty(n, dtype=np.intp)
    ro[order] = np.arange(n)
    ps = p[order]
    i = np.arange(1, n + 1)
    q = np.full(n, float((n * ps / i).min()))
    pa = q.copy()
    for m in range(n - 1, 1, -1):
        i1 = np.arange(n - m + 1)
        i2 = np.arange(n - m + 1, n)
        q1 = float((m * ps[i2] / np.arange(2, m + 1)).min())
        q[i1] = np.minimum(m * ps[i1], q1)
        q[i2] = q[n - m]
        pa = np.maximum(pa, q)
    out: FloatArray = np.maximum(pa, ps)[ro]
    return out

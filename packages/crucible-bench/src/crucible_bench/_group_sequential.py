"""Group-sequential designs: O'Brien–Fleming and Pocock boundaries, by alpha spending or classical.

Boundaries come from the exact recursive numerical integration of Armitage, McPherson & Rowe
(1969) as laid out in Jennison & Turnbull (2000), *Group Sequential Methods with Applications to
Clinical Trials*, ch. 19: the score statistic Sₖ = Zₖ√tₖ has independent normal increments, its
sub-density on the continuation region is carried from look to look on a Simpson grid, and each
boundary is solved so the exit probability matches its share of α.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypeAlias

import attrs
import numpy as np
from numpy.typing import ArrayLike

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import FloatArray
from crucible_bench.exceptions import InvalidInputError, InvalidParameterError
from crucible_core.render import RenderMixin, Table, View

__all__ = ("GroupSequentialDesign", "group_sequential_design")

BoundaryMethod: TypeAlias = Literal["obrien_fleming", "pocock"]
Sides: TypeAlias = Literal["two-sided", "one-sided"]

_GRID = 401  # Simpson points per look (odd): boundaries agree with a 1201-point grid to 1e-9
_SPAN = 8.0  # one-sided designs: the continuation region is cut 8 SD below the mean


def _norm_cdf(x: FloatArray | float) -> FloatArray:
    from scipy.special import ndtr

    out: FloatArray = ndtr(x)
    return out


def _simpson(lo: float, hi: float) -> tuple[FloatArray, FloatArray]:
    s = np.linspace(lo, hi, _GRID)
    w = np.ones(_GRID)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return s, w * (hi - lo) / (3 * (_GRID - 1))


class _Recursion:
    """Exit probabilities of a boundary sequence, one look at a time (J&T ch. 19)."""

    def __init__(self, t: FloatArray, drift: float, sides: Sides) -> None:
        self.t = t
        self.drift = drift
        self.sides = sides
        self.nodes: FloatArray | None = (
            None  # grid of S on the previous continuation region
        )
        self.weights: FloatArray | None = (
            None  # Simpson weight × sub-density at the nodes
        )

    def exit(self, k: int, b: float) -> tuple[float, float]:
        """P(cross the upper, lower boundary first at look k | continued so far) for bound b."""
        tk = self.t[k]
        prev = self.t[k - 1] if k else 0.0
        sd = math.sqrt(tk - prev)
        upper = b * math.sqrt(tk)
        lower = -upper if self.sides == "two-sided" else -math.inf
        if self.nodes is None:
            mean: FloatArray | float = self.drift * tk
            weight: FloatArray | float = 1.0
        else:
            assert self.weights is not None
            mean = self.nodes + self.drift * (tk - prev)
            weight = self.weights
        up = float(np.sum(weight * (1.0 - _norm_cdf((upper - mean) / sd))))
        down = (
            float(np.sum(weight * _norm_cdf((lower - mean) / sd)))
            if math.isfinite(lower)
            else 0.0
        )
        return up, down

    def advance(self, k: int, b: float) -> None:
        """Carry the sub-density past look k, continuing inside the boundary b."""
        from scipy.stats import norm

        tk = self.t[k]
        prev = self.t[k - 1] if k else 0.0
        sd = math.sqrt(tk - prev)
        upper = b * math.sqrt(tk)
        centre, span = self.drift * tk, _SPAN * math.sqrt(tk)
        lower = -upper if self.sides == "two-sided" else -math.inf
        s, w = _simpson(max(lower, centre - span), min(upper, centre + span))
        if self.nodes is None:
            dens = norm.pdf(s, loc=self.drift * tk, scale=math.sqrt(tk))
        else:
            assert self.weights is not None
            z = (s[:, None] - self.nodes[None, :] - self.drift * (tk - prev)) / sd
            dens = (np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))) @ self.weights
        self.nodes, self.weights = s, w * dens


def _exit_path(
    t: FloatArray, bounds: Sequence[float], drift: float, sides: Sides
) -> list[float]:
    """P(stop first at look k) for each k, for given boundaries."""
    rec = _Recursion(t, drift, sides)
    out = []
    for k, b in enumerate(bounds):
        up, down = rec.exit(k, b)
        out.append(up + down)
        if k + 1 < t.size:
            rec.advance(k, b)
    return out


def _solve_bound(rec: _Recursion, k: int, target: float) -> float:
    from scipy.optimize import brentq

    if target <= 0:
        return math.inf

    def excess(b: float) -> float:
        up, down = rec.exit(k, b)
        return up + down - target

    return float(brentq(excess, 0.0, 40.0, xtol=1e-12, rtol=1e-14))


def _spend(
    method: BoundaryMethod, t: FloatArray, alpha: float, sides: Sides
) -> FloatArray:
    """Lan–DeMets (1983) spending functions α*(t)."""
    from scipy.special import ndtri

    if method == "obrien_fleming":
        # per tail at one-sided level a₁ (α/2 when two-sided): a₁(t) = 2 − 2Φ(z_{a₁/2}/√t),
        # the form of Lan & DeMets (1983) as implemented in ld98 and gsDesign's sfLDOF
        one = alpha / 2 if sides == "two-sided" else alpha
        q = float(ndtri(1 - one / 2))
        scale = 2.0 if sides == "two-sided" else 1.0
        out: FloatArray = scale * 2.0 * (1.0 - _norm_cdf(q / np.sqrt(t)))
        return np.minimum(out, alpha)
    return alpha * np.log1p((math.e - 1.0) * t)


def _constant_bounds(
    method: BoundaryMethod, t: FloatArray, alpha: float, sides: Sides
) -> FloatArray:
    """Classical Pocock (1977) / O'Brien–Fleming (1979) boundaries: a constant C solved for α."""
    from scipy.optimize import brentq

    shape = np.ones_like(t) if method == "pocock" else 1.0 / np.sqrt(t)

    def total(c: float) -> float:
        return sum(_exit_path(t, (c * shape).tolist(), 0.0, sides)) - alpha

    c = float(brentq(total, 0.5, 10.0, xtol=1e-12, rtol=1e-14))
    out: FloatArray = c * shape
    return out


@attrs.define(frozen=True, kw_only=True)
class GroupSequentialDesign(RenderMixin):
    """Efficacy boundaries for K planned looks at accumulating data (Z statistics).

    Stop at look k and reject H₀ when |Zₖ| ≥ `boundaries[k]` (two-sided) or Zₖ ≥ it
    (one-sided); the overall type I error is `alpha`.
    """

    method: BoundaryMethod
    """`"obrien_fleming"` or `"pocock"`."""
    spending: bool
    """True: Lan–DeMets spending-function boundaries; False: the classical constant-C ones."""
    alpha: float
    """Overall type I error."""
    sides: Sides
    """`"two-sided"` (symmetric boundaries) or `"one-sided"` (upper only)."""
    information: tuple[float, ...]
    """Information fraction tₖ at each look (the last is 1)."""
    boundaries: tuple[float, ...]
    """Critical |Z| at each look."""
    nominal_alpha: tuple[float, ...]
    """The per-look p-value threshold each boundary corresponds to."""
    alpha_spent: tuple[float, ...]
    """Type I error spent at each look (sums to `alpha`)."""

    @property
    def looks(self) -> int:
        """Number of analyses K."""
        return len(self.boundaries)

    @property
    def cumulative_alpha(self) -> tuple[float, ...]:
        """Type I error spent up to and including each look."""
        return tuple(float(x) for x in np.cumsum(self.alpha_spent))

    @property
    def title(self) -> str:
        """E.g. `"O'Brien–Fleming (Lan–DeMets spending)"`."""
        name = "O'Brien–Fleming" if self.method == "obrien_fleming" else "Pocock"
        return f"{name} ({'Lan–DeMets spending' if self.spending else 'classical'})"

    def first_crossing(self, z: ArrayLike) -> int | None:
        """The first look (1-based) whose statistic crosses its boundary, or None.

        Args:
            z: the Z statistics observed so far, one per look (at most `looks`).

        Raises:
            InvalidInputError: more statistics than looks, or NaN.
        """
        zs = v.sample("z", z, minimum=0)
        if zs.size > self.looks:
            raise InvalidInputError(
                f"{zs.size} statistics for a design with {self.looks} looks",
                argument="z",
                reason="too_many",
            )
        stat = np.abs(zs) if self.sides == "two-sided" else zs
        hit = np.flatnonzero(stat >= np.asarray(self.boundaries[: zs.size]))
        return int(hit[0]) + 1 if hit.size else None

    def power(self, drift: float) -> float:
        """Probability of crossing a boundary at some look when E[Z at t = 1] = `drift`.

        Under the alternative Zₖ√tₖ is Brownian motion with drift `drift` at information
        fraction tₖ; `power(0)` is the type I error (≈ `alpha`).
        """
        return float(sum(self.exit_probabilities(drift)))

    def exit_probabilities(self, drift: float) -> tuple[float, ...]:
        """P(stop at look k) for each k when E[Z at t = 1] = `drift`."""
        d = v.finite_number("drift", drift)
        t = np.asarray(self.information)
        return tuple(_exit_path(t, self.boundaries, d, self.sides))

    @property
    def interpretation(self) -> str:
        """A sentence with the boundaries."""
        bounds = ", ".join(fmt.num(b, 4) for b in self.boundaries)
        return (
            f"{self.title} design, {self.looks} looks, {self.sides} α = {self.alpha:g}: "
            f"stop for efficacy when {'|Z|' if self.sides == 'two-sided' else 'Z'} ≥ "
            f"{bounds} at looks 1–{self.looks}."
        )

    def _view(self) -> View:
        cum = self.cumulative_alpha
        rows = [
            (
                k + 1,
                self.information[k],
                self.boundaries[k],
                self.nominal_alpha[k],
                self.alpha_spent[k],
                cum[k],
            )
            for k in range(self.looks)
        ]
        return View(
            title=f"Group-sequential design: {self.title}",
            facts=[("looks", self.looks), ("alpha", self.alpha), ("sides", self.sides)],
            tables=[
                Table(
                    title="boundaries",
                    headers=(
                        "look",
                        "information",
                        "z",
                        "nominal p",
                        "alpha spent",
                        "cumulative alpha",
                    ),
                    rows=rows,
                )
            ],
            notes=[self.interpretation],
        )


def group_sequential_design(
    looks: int | Sequence[float] = 5,
    *,
    alpha: float = 0.05,
    method: BoundaryMethod = "obrien_fleming",
    spending: bool = True,
    sides: Sides = "two-sided",
) -> GroupSequentialDesign:
    """Efficacy boundaries of a group-sequential design.

    With `spending=True` (the default) α is spent by the Lan & DeMets (1983, Biometrika 70(3))
    functions: O'Brien–Fleming type α*(t) = 2 − 2Φ(z_{α/2}/√t) (one-sided: 1 − Φ(z_α/√t)) and
    Pocock type α*(t) = α·log(1 + (e − 1)t); looks may be unequally spaced. With
    `spending=False` the classical boundaries are solved instead: Pocock (1977) constant
    Zₖ = C_P and O'Brien & Fleming (1979) Zₖ = C_B/√tₖ (Jennison & Turnbull 2000, tables 2.1 and
    2.3). Computation: the recursive integration of Jennison & Turnbull (2000, ch. 19).

    Args:
        looks: the number of equally spaced looks, or the information fractions of each look
            (increasing, the last 1).
        alpha: overall type I error.
        method: `"obrien_fleming"` or `"pocock"`.
        spending: Lan–DeMets spending (True) or the classical constant boundaries.
        sides: `"two-sided"` (symmetric, α split between the tails) or `"one-sided"`.

    Returns:
        A [`GroupSequentialDesign`][crucible_bench.GroupSequentialDesign].

    Raises:
        InvalidParameterError: bad α, method, sides, or information fractions.

    Examples:
        >>> d = group_sequential_design(5, alpha=0.05)
        >>> [round(b, 3) for b in d.boundaries]
        [4.877, 3.357, 2.68, 2.29, 2.031]
    """
    a = v.probability("alpha", alpha)
    method = v.choice("method", method, ("obrien_fleming", "pocock"))
    sides = v.choice("sides", sides, ("two-sided", "one-sided"))
    if isinstance(looks, int | np.integer) and not isinstance(looks, bool):
        k = v.count_option("looks", looks, minimum=1)
        t = np.arange(1, k + 1) / k
    else:
        t = v.as_float_array("looks", looks)
        if (
            t.size == 0
            or not np.isfinite(t).all()
            or (t <= 0).any()
            or (np.diff(t) <= 0).any()
            or abs(t[-1] - 1.0) > 1e-12
        ):
            raise InvalidParameterError(
                "`looks` must be a count or strictly increasing information fractions in "
                f"(0, 1] ending at 1; got {looks!r}",
                argument="looks",
                value=looks,
            )
        t = t.copy()
        t[-1] = 1.0
    if spending:
        cum = _spend(method, t, a, sides)
        cum[-1] = a
        increments = np.diff(np.concatenate(([0.0], cum)))
        rec = _Recursion(t, 0.0, sides)
        bounds = []
        for k in range(t.size):
            b = _solve_bound(rec, k, float(increments[k]))
            bounds.append(b)
            if k + 1 < t.size:
                rec.advance(k, min(b, 40.0))
        bvals = np.asarray(bounds)
    else:
        bvals = _constant_bounds(method, t, a, sides)
        increments = np.asarray(_exit_path(t, bvals.tolist(), 0.0, sides))
    nominal = (2.0 if sides == "two-sided" else 1.0) * (1.0 - _norm_cdf(bvals))
    return GroupSequentialDesign(
        method=method,
        spending=spending,
        alpha=a,
        sides=sides,
        information=tuple(float(x) for x in t),
        boundaries=tuple(float(x) for x in bvals),
        nominal_alpha=tuple(float(x) for x in nominal),
        alpha_spent=tuple(float(x) for x in increments),
    )

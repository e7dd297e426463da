"""Anytime-valid inference: betting confidence sequences, e-values and anytime p-values.

A confidence sequence (CS) is a sequence of intervals that covers the true mean at *every*
sample size simultaneously with probability ≥ the confidence level, so one may look after every
observation and stop whenever one likes (optional stopping) without inflating errors. The method is
the hedged capital process of Waudby-Smith & Ramdas (2023), "Estimating means of bounded random
variables by betting", JRSS-B 86(1):1–27, with their predictable plug-in bets (eq. 26–27) and
a running intersection (§2.1). The capital process at the null value is an e-process, so
``1 / max(capital)`` is an anytime-valid p-value (Ramdas, Grünwald, Vovk & Shafer 2023, "Game-
theoretic statistics and safe anytime-valid inference", Stat. Sci. 38(4)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, TypeAlias

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import Alternative, FloatArray
from crucible_bench.exceptions import InvalidInputError, InvalidParameterError
from crucible_core.render import RenderMixin, Table, View

__all__ = (
    "ConfidenceSequence",
    "ConfidenceSequenceResult",
    "FamilyMethod",
    "SequentialFamilyResult",
    "confidence_sequence",
    "e_bh",
    "paired_confidence_sequence",
    "proportion_difference_sequence",
    "sequential_family",
)

Estimand: TypeAlias = Literal[
    "mean", "paired mean difference", "difference of proportions"
]

_TRUNCATION = 0.5  # c in λ ≤ c/m: WSR's recommended 1/2 (also confseq's default)
_CHUNK_CELLS = 1_000_000  # times × grid points evaluated at once (memory bound)


def _bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"`bounds` must be a pair (lower, upper) of finite numbers; got {bounds!r}",
            argument="bounds",
            value=bounds,
        ) from err
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InvalidParameterError(
            f"`bounds` must be finite with lower < upper; got {bounds!r}",
            argument="bounds",
            value=bounds,
        )
    return lo, hi


class ConfidenceSequence:
    """A streaming betting confidence sequence and e-process for a bounded mean.

    Feed observations as they arrive with [`update`][crucible_bench.ConfidenceSequence.update];
    at any moment [`interval`][crucible_bench.ConfidenceSequence.interval] covers the mean with
    probability ≥ `confidence_level` *uniformly over time*, and
    [`pvalue`][crucible_bench.ConfidenceSequence.pvalue] is an anytime-valid p-value for
    H₀: mean = `null` (or ≤ / ≥ for one-sided alternatives). Both stay valid at any data-dependent
    stopping time.

    Method: the hedged capital process of Waudby-Smith & Ramdas (2023, JRSS-B 86(1), §4):
    for a candidate mean m, K⁺ₜ(m) = ∏(1 + λᵢ⁺(xᵢ − m)) and K⁻ₜ(m) = ∏(1 − λᵢ⁻(xᵢ − m)) with
    predictable plug-in bets λᵢ = √(2 log(2/α) / (σ̂²ᵢ₋₁ · i · log(1 + i))) truncated at
    ½/m and ½/(1 − m) (data rescaled to [0, 1]). The CS is {m : θK⁺ + (1 − θ)K⁻ < 1/α}
    (θ = ½ two-sided; the mixture dominates WSR's max, so it is valid by Ville's inequality and
    no wider), intersected over time. Candidate means are a grid of `grid_size` points; each
    endpoint is rounded *outward* to the next grid point, so the reported interval contains the
    exact one. One-sided alternatives bet on one side only (θ = 1 or 0) with log(1/α).

    Args:
        bounds: the range the observations can take (`(0, 1)` for accuracies and proportions,
            `(-1, 1)` for per-item differences of binary outcomes).
        confidence_level: uniform coverage level 1 − α.
        null: the mean under H₀ (strictly inside `bounds`; default the middle).
        alternative: `"two-sided"`, `"greater"` (H₁: mean > null) or `"less"`.
        grid_size: candidate means evaluated (the interval's resolution is the range / grid_size).

    Examples:
        >>> cs = ConfidenceSequence(bounds=(0, 1), null=0.5)
        >>> cs.update([1, 1, 0, 1, 1, 1, 1, 0, 1, 1] * 5)
        >>> cs.n, round(cs.estimate, 2)
        (50, 0.8)
        >>> lo, hi = cs.interval
        >>> lo > 0.5 and cs.pvalue < 0.05
        True
    """

    def __init__(
        self,
        *,
        bounds: tuple[float, float] = (0.0, 1.0),
        confidence_level: float = 0.95,
        null: float | None = None,
        alternative: Alternative = "two-sided",
        grid_size: int = 1000,
    ) -> None:
        self._lo, self._hi = _bounds(bounds)
        self.confidence_level = v.probability("confidence_level", confidence_level)
        self.alternative: Alternative = v.alternative(alternative)
        self.grid_size = v.count_option("grid_size", grid_size, minimum=10)
        if null is None:
            null = (self._lo + self._hi) / 2
        self.null = v.finite_number("null", null)
        if not self._lo < self.null < self._hi:
            raise InvalidParameterError(
                f"`null` must lie strictly inside bounds {bounds!r}; got {null!r}",
                argument="null",
                value=null,
            )
        alpha = 1.0 - self.confidence_level
        self._log_threshold = math.log(1.0 / alpha)
        self._theta = {"two-sided": 0.5, "greater": 1.0, "less": 0.0}[self.alternative]
        self._log_bet = math.log(
            (2.0 if self.alternative == "two-sided" else 1.0) / alpha
        )
        g = self.grid_size
        scaled_null = (self.null - self._lo) / (self._hi - self._lo)
        # interior grid m_j = j/g (j = 1..g-1), then the null as the last column
        self._m = np.append(np.arange(1, g) / g, scaled_null)
        self._log_kp = np.zeros(self._m.size)
        self._log_km = np.zeros(self._m.size)
        self._n = 0
        self._sum = 0.0
        self._sum_sq = 0.0  # Σ (xᵢ − μ̂ᵢ)², WSR's variance numerator
        self._sigma2_prev = 0.25  # σ̂²₀
        self._lower = 0.0  # running intersection, scaled
        self._upper = 1.0
        self._max_log_e = 0.0
        self._log_e_now = 0.0
        self._first_decided: int | None = None
        self._lower_path: list[float] = []
        self._upper_path: list[float] = []

    # ------------------------------------------------------------------ updating
    def update(self, values: ArrayLike | float) -> None:
        """Add observations in the order they arrived (one value or a batch).

        Raises:
            InvalidInputError: NaN, infinite values or values outside `bounds`.
        """
        x = v.sample("values", values, minimum=0)
        if x.size == 0:
            return
        if (x < self._lo).any() or (x > self._hi).any():
            bad = x[(x < self._lo) | (x > self._hi)][0]
            raise InvalidInputError(
                f"observation {bad!r} is outside bounds ({self._lo:g}, {self._hi:g}); a "
                "betting confidence sequence needs bounded outcomes: widen `bounds` to the "
                "range the metric can take",
                argument="values",
                reason="range",
            )
        z = (x - self._lo) / (self._hi - self._lo)
        step = max(1, _CHUNK_CELLS // self._m.size)
        for start in range(0, z.size, step):
            self._update_chunk(z[start : start + step])

    def _update_chunk(self, z: FloatArray) -> None:
        k = z.size
        t = self._n + np.arange(1, k + 1, dtype=np.float64)
        mu = (0.5 + self._sum + np.cumsum(z)) / (t + 1.0)
        ss = self._sum_sq + np.cumsum((z - mu) ** 2)
        sigma2 = (0.25 + ss) / (t + 1.0)
        sigma2_prev = np.concatenate(([self._sigma2_prev], sigma2[:-1]))
        lam = np.sqrt(2.0 * self._log_bet / (sigma2_prev * t * np.log1p(t)))
        m = self._m[None, :]
        dev = z[:, None] - m
        log_kp_path = log_km_path = None
        if self._theta > 0:
            lam_p = np.minimum(lam[:, None], _TRUNCATION / m)
            log_kp_path = self._log_kp + np.cumsum(np.log1p(lam_p * dev), axis=0)
            self._log_kp = log_kp_path[-1]
        if self._theta < 1:
            lam_m = np.minimum(lam[:, None], _TRUNCATION / (1.0 - m))
            log_km_path = self._log_km + np.cumsum(np.log1p(-lam_m * dev), axis=0)
            self._log_km = log_km_path[-1]
        if log_km_path is None:
            assert log_kp_path is not None
            log_e: FloatArray = log_kp_path
        elif log_kp_path is None:
            log_e = log_km_path
        else:
            log_e = np.logaddexp(
                math.log(self._theta) + log_kp_path,
                math.log(1.0 - self._theta) + log_km_path,
            )
        self._record(log_e, t)
        self._n += k
        self._sum += float(z.sum())
        self._sum_sq = float(ss[-1])
        self._sigma2_prev = float(sigma2[-1])

    def _record(self, log_e: FloatArray, t: FloatArray) -> None:
        g = self.grid_size
        grid = log_e[:, :-1]
        accepted = grid < self._log_threshold
        anyacc = accepted.any(axis=1)
        first = np.argmax(accepted, axis=1)
        last = grid.shape[1] - 1 - np.argmax(accepted[:, ::-1], axis=1)
        # no grid point accepted: the exact set (if any) lies within a grid cell around the min
        best = np.argmin(grid, axis=1)
        first = np.where(anyacc, first, best)
        last = np.where(anyacc, last, best)
        # grid index j holds m = (j + 1)/g; round outward to the neighbouring grid points
        lower = first / g
        upper = (last + 2) / g
        if self._theta == 1.0:
            upper = np.ones_like(upper)
        elif self._theta == 0.0:
            lower = np.zeros_like(lower)
        lower = np.maximum.accumulate(np.maximum(lower, self._lower))
        upper = np.minimum.accumulate(np.minimum(upper, self._upper))
        self._lower, self._upper = float(lower[-1]), float(upper[-1])
        self._lower_path.extend(lower.tolist())
        self._upper_path.extend(upper.tolist())
        null_path = np.maximum.accumulate(log_e[:, -1])
        if self._first_decided is None:
            hit = np.flatnonzero(null_path >= self._log_threshold)
            if hit.size:
                self._first_decided = int(t[hit[0]])
        self._max_log_e = max(self._max_log_e, float(null_path[-1]))
        self._log_e_now = float(log_e[-1, -1])

    # ------------------------------------------------------------------ reading
    def _unscale(self, value: float) -> float:
        return self._lo + value * (self._hi - self._lo)

    @property
    def n(self) -> int:
        """Observations seen."""
        return self._n

    @property
    def estimate(self) -> float:
        """The sample mean so far (NaN before any observation)."""
        return self._unscale(self._sum / self._n) if self._n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """The current (running-intersection) confidence interval, in the data's units."""
        lo, hi = self._lower, self._upper
        if (
            lo > hi
        ):  # the intersection emptied (probability ≤ α): report the crossing point
            lo = hi = (lo + hi) / 2
        return self._unscale(lo), self._unscale(hi)

    @property
    def e_value(self) -> float:
        """The e-process at the null now (the capital of a bettor against H₀; 1 at the start)."""
        return math.exp(self._log_e_now) if self._n else 1.0

    @property
    def pvalue(self) -> float:
        """Anytime-valid p-value: min(1, 1 / max over time of the e-process)."""
        return min(1.0, math.exp(-self._max_log_e))

    @property
    def decided_at(self) -> int | None:
        """The first sample size at which H₀ was rejected at α (None if not yet)."""
        return self._first_decided

    def result(
        self, *, estimand: Estimand = "mean", labels: tuple[str, str] | None = None
    ) -> ConfidenceSequenceResult:
        """A frozen snapshot of the sequence so far, with its interval path."""
        path_lo = tuple(self._unscale(x) for x in self._lower_path)
        path_hi = tuple(self._unscale(x) for x in self._upper_path)
        return ConfidenceSequenceResult(
            estimand=estimand,
            labels=labels,
            estimate=self.estimate,
            confidence_interval=self.interval,
            confidence_level=self.confidence_level,
            null=self.null,
            alternative=self.alternative,
            e_value=self.e_value,
            pvalue=self.pvalue,
            decided_at=self.decided_at,
            n=self.n,
            bounds=(self._lo, self._hi),
            grid_size=self.grid_size,
            lower_path=path_lo,
            upper_path=path_hi,
        )


@attrs.define(frozen=True, kw_only=True)
class ConfidenceSequenceResult(RenderMixin):
    """An anytime-valid confidence sequence and test, as of the last observation.

    `confidence_interval` covers the true value with probability ≥ `confidence_level`
    simultaneously at every n, so it (and `pvalue`) may be read at any data-dependent stopping
    time. The paths give the interval after each observation.
    """

    estimand: Estimand
    """What the interval is for: `"mean"`, `"paired mean difference"` or `"difference of proportions"`."""
    labels: tuple[str, str] | None
    """Names of the two conditions for differences (a − b)."""
    estimate: float
    """The sample mean (of differences, for the two-sample estimands)."""
    confidence_interval: tuple[float, float]
    """The anytime-valid interval at the last observation (running intersection)."""
    confidence_level: float
    """Uniform coverage level."""
    null: float
    """The value under H₀."""
    alternative: Alternative
    """Direction of the test."""
    e_value: float
    """The e-process against H₀ at the last observation."""
    pvalue: float
    """Anytime-valid p-value, min(1, 1/max e)."""
    decided_at: int | None
    """First n at which H₀ was rejected at α = 1 − confidence_level (None: not yet)."""
    n: int
    """Observations (pairs, for differences)."""
    bounds: tuple[float, float]
    """Range of one observation."""
    grid_size: int
    """Resolution of the candidate-mean grid (the interval is rounded outward to it)."""
    lower_path: tuple[float, ...] = attrs.field(repr=False)
    """Lower end of the interval after each observation."""
    upper_path: tuple[float, ...] = attrs.field(repr=False)
    """Upper end of the interval after each observation."""

    method = "Betting confidence sequence (Waudby-Smith & Ramdas 2023)"

    @property
    def alpha(self) -> float:
        """1 − confidence_level: the error rate controlled uniformly over time."""
        return 1.0 - self.confidence_level

    @property
    def decided(self) -> bool:
        """Whether H₀ has been rejected at α (at some n so far)."""
        return self.decided_at is not None

    def futile(self, margin: float) -> bool:
        """Whether the interval lies within `null ± margin`: any effect is smaller than `margin`."""
        lo, hi = self.confidence_interval
        return bool(self.null - margin < lo and hi < self.null + margin)

    @property
    def interpretation(self) -> str:
        """A sentence with the estimate, the anytime-valid interval and the decision."""
        what: str = self.estimand
        if self.labels is not None and self.estimand != "mean":
            what = f"{self.estimand} ({self.labels[0]} − {self.labels[1]})"
        lo, hi = self.confidence_interval
        decision = (
            f"H₀ ({self.null:g}) rejected at n = {self.decided_at}"
            if self.decided_at is not None
            else f"H₀ ({self.null:g}) not rejected"
        )
        return (
            f"{what} = {fmt.num(self.estimate)} after n = {self.n}, anytime-valid "
            f"{fmt.ci(lo, hi, self.confidence_level)}; e = {fmt.num(self.e_value)}, anytime "
            f"{fmt.pval(self.pvalue)} ({self.alternative}); {decision} (valid under optional "
            "stopping)."
        )

    def _view(self) -> View:
        level = f"{self.confidence_level * 100:g}%"
        facts: list[tuple[str, object]] = [
            ("estimand", self.estimand),
            ("estimate", self.estimate),
            (f"{level} anytime CI", self.confidence_interval),
            ("null", self.null),
            ("alternative", self.alternative),
            ("e-value", self.e_value),
            ("anytime p-value", self.pvalue),
            ("decided at n", self.decided_at),
            ("n", self.n),
        ]
        if self.labels is not None:
            facts.insert(0, ("conditions", " − ".join(self.labels)))
        n = len(self.lower_path)
        marks = sorted({min(n, 2**i) for i in range(n.bit_length() + 1)} | {n} - {0})
        table = Table(
            title="interval over time",
            headers=("n", "lower", "upper"),
            rows=[(i, self.lower_path[i - 1], self.upper_path[i - 1]) for i in marks],
        )
        return View(
            title=self.method,
            facts=facts,
            tables=[table] if n else [],
            notes=[self.interpretation],
        )


def confidence_sequence(
    x: ArrayLike,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    confidence_level: float = 0.95,
    null: float | None = None,
    alternative: Alternative = "two-sided",
    grid_size: int = 1000,
) -> ConfidenceSequenceResult:
    """Anytime-valid confidence sequence and e-value for the mean of bounded observations.

    The observations are taken in the order given (the order they arrived). Method: the hedged
    betting CS of Waudby-Smith & Ramdas (2023), "Estimating means of bounded random variables by
    betting", JRSS-B 86(1) (see [`ConfidenceSequence`][crucible_bench.ConfidenceSequence]).
    For 0/1 outcomes it is a CS for a proportion.

    Args:
        x: observations in arrival order, each within `bounds`.
        bounds: the range an observation can take.
        confidence_level: uniform coverage 1 − α.
        null: mean under H₀ for the e-value (default the middle of `bounds`).
        alternative: `"two-sided"`, `"greater"` or `"less"`.
        grid_size: resolution of the candidate-mean grid.

    Returns:
        A [`ConfidenceSequenceResult`][crucible_bench.ConfidenceSequenceResult].

    Raises:
        InvalidInputError: empty input, NaN, or values outside `bounds`.
        InvalidParameterError: bad bounds, level, null or alternative.

    Examples:
        >>> r = confidence_sequence([1, 0, 1, 1, 1, 0, 1, 1, 1, 1] * 10, null=0.5)
        >>> r.n, r.estimate, r.decided
        (100, 0.8, True)
    """
    cs = ConfidenceSequence(
        bounds=bounds,
        confidence_level=confidence_level,
        null=null,
        alternative=alternative,
        grid_size=grid_size,
    )
    cs.update(v.sample("x", x))
    return cs.result()


def paired_confidence_sequence(
    a: ArrayLike,
    b: ArrayLike,
    *,
    bounds: tuple[float, float] = (0.0, 1.0),
    confidence_level: float = 0.95,
    null: float = 0.0,
    alternative: Alternative = "two-sided",
    grid_size: int = 1000,
    labels: tuple[str, str] = ("a", "b"),
) -> ConfidenceSequenceResult:
    """Anytime-valid CS and e-value for the mean per-item difference a − b.

    Items are matched by position and taken in order; each difference lies in
    [lower − upper, upper − lower] of `bounds` (e.g. [−1, 1] for 0/1 correctness), and the betting
    CS of Waudby-Smith & Ramdas (2023, JRSS-B 86(1)) is run on the differences. H₀: mean
    difference = `null` (0: the conditions are equally good).

    Args:
        a: per-item outcomes of the first condition, in arrival order.
        b: per-item outcomes of the second condition on the same items.
        bounds: range of one outcome (both conditions).
        confidence_level: uniform coverage 1 − α.
        null: the difference under H₀.
        alternative: `"two-sided"`, `"greater"` (a better) or `"less"`.
        grid_size: resolution of the candidate grid.
        labels: names of the two conditions.

    Returns:
        A [`ConfidenceSequenceResult`][crucible_bench.ConfidenceSequenceResult] with
        `estimand="paired mean difference"`.

    Raises:
        InvalidInputError: unequal lengths, NaN, or outcomes outside `bounds`.

    Examples:
        >>> a = [1, 1, 1, 0, 1, 1, 1, 1] * 20
        >>> b = [1, 0, 0, 0, 1, 0, 1, 0] * 20
        >>> r = paired_confidence_sequence(a, b)
        >>> round(r.estimate, 3), r.decided
        (0.5, True)
    """
    lo, hi = _bounds(bounds)
    xa, xb = v.paired("a", a, "b", b)
    for name, arr in (("a", xa), ("b", xb)):
        if (arr < lo).any() or (arr > hi).any():
            raise InvalidInputError(
                f"`{name}` has outcomes outside bounds ({lo:g}, {hi:g}); widen `bounds`",
                argument=name,
                reason="range",
            )
    cs = ConfidenceSequence(
        bounds=(lo - hi, hi - lo),
        confidence_level=confidence_level,
        null=null,
        alternative=alternative,
        grid_size=grid_size,
    )
    cs.update(xa - xb)
    return cs.result(estimand="paired mean difference", labels=labels)


def proportion_difference_sequence(
    a: ArrayLike,
    b: ArrayLike,
    *,
    confidence_level: float = 0.95,
    null: float = 0.0,
    alternative: Alternative = "two-sided",
    grid_size: int = 1000,
    labels: tuple[str, str] = ("a", "b"),
) -> ConfidenceSequenceResult:
    """Anytime-valid CS and e-value for p_a − p_b from two independent 0/1 streams.

    The i-th outcome of `a` is paired with the i-th of `b` in arrival order (the streams may
    have different lengths; the unmatched tail of the longer one waits for its partner). With
    independent draws each pair's difference has mean p_a − p_b and lies in [−1, 1], so the
    betting CS of Waudby-Smith & Ramdas (2023, JRSS-B 86(1)) on the differences is a CS for the
    difference of proportions. (For the *same* items under both conditions use
    [`paired_confidence_sequence`][crucible_bench.paired_confidence_sequence].)

    Args:
        a: 0/1 outcomes of the first stream, in arrival order.
        b: 0/1 outcomes of the second stream.
        confidence_level: uniform coverage 1 − α.
        null: the difference under H₀.
        alternative: `"two-sided"`, `"greater"` or `"less"`.
        grid_size: resolution of the candidate grid.
        labels: names of the two streams.

    Returns:
        A [`ConfidenceSequenceResult`][crucible_bench.ConfidenceSequenceResult] whose `n` is the
        number of matched pairs.

    Raises:
        InvalidInputError: non-binary outcomes or NaN.

    Examples:
        >>> r = proportion_difference_sequence([1] * 60 + [0] * 20, [1] * 30 + [0] * 50)
        >>> r.n, r.estimate
        (80, 0.375)
    """
    xa = v.sample("a", a)
    xb = v.sample("b", b)
    for name, arr in (("a", xa), ("b", xb)):
        if not np.isin(arr, (0.0, 1.0)).all():
            raise InvalidInputError(
                f"`{name}` must hold 0/1 outcomes; use paired_confidence_sequence or "
                "confidence_sequence with `bounds` for graded scores",
                argument=name,
                reason="not_binary",
            )
    m = min(xa.size, xb.size)
    cs = ConfidenceSequence(
        bounds=(-1.0, 1.0),
        confidence_level=confidence_level,
        null=null,
        alternative=alternative,
        grid_size=grid_size,
    )
    cs.update(xa[:m] - xb[:m])
    return cs.result(estimand="difference of proportions", labels=labels)


FamilyMethod: TypeAlias = Literal["e-bh", "holm"]


@attrs.define(frozen=True, kw_only=True)
class SequentialFamilyResult(RenderMixin):
    """Which comparisons of a family of sequential tests are decided, with multiplicity control."""

    method: FamilyMethod
    """`"e-bh"` (FDR ≤ α, any dependence) or `"holm"` (FWER ≤ α on anytime p-values)."""
    alpha: float
    """The error rate controlled."""
    labels: tuple[str, ...]
    """Name of each comparison."""
    e_values: tuple[float, ...]
    """Each comparison's e-value at the current (stopping) time."""
    pvalues: tuple[float, ...]
    """Each comparison's anytime-valid p-value."""
    adjusted_pvalues: tuple[float, ...] | None
    """Holm-adjusted anytime p-values (None for e-BH, which works on e-values)."""
    rejected: tuple[bool, ...]
    """Whether each null is rejected."""

    @property
    def all_decided(self) -> bool:
        """Whether every comparison in the family is rejected."""
        return all(self.rejected)

    @property
    def interpretation(self) -> str:
        """A sentence naming the rejected comparisons."""
        hits = [label for label, r in zip(self.labels, self.rejected, strict=True) if r]
        rate = "FDR" if self.method == "e-bh" else "FWER"
        names = ", ".join(hits) if hits else "none"
        return (
            f"{len(hits)} of {len(self.labels)} sequential comparisons decided ({names}); "
            f"{self.method} controls the {rate} at {self.alpha:g} at any stopping time."
        )

    def _view(self) -> View:
        adjusted = self.adjusted_pvalues or (None,) * len(self.labels)
        return View(
            title=f"Sequential family ({self.method})",
            facts=[("alpha", self.alpha), ("comparisons", len(self.labels))],
            tables=[
                Table(
                    headers=(
                        "comparison",
                        "e-value",
                        "anytime p",
                        "adjusted p",
                        "rejected",
                    ),
                    rows=zip(
                        self.labels,
                        self.e_values,
                        self.pvalues,
                        adjusted,
                        self.rejected,
                        strict=True,
                    ),
                )
            ],
            notes=[self.interpretation],
        )


def e_bh(e_values: ArrayLike, *, alpha: float = 0.05) -> NDArray[np.bool_]:
    """The e-Benjamini–Hochberg procedure: which nulls to reject, in input order.

    Wang & Ramdas (2022), "False discovery rate control with e-values", JRSS-B 84(3): with
    e₍₁₎ ≥ … ≥ e₍ₘ₎ the sorted e-values, reject the k* largest where
    k* = max{k : e₍ₖ₎ ≥ m/(αk)}. The FDR is ≤ α under *any* dependence between the tests, and
    e-processes read at a common stopping time are e-values, so it applies when a family of
    sequential comparisons stops.

    Args:
        e_values: non-negative e-values, one per hypothesis.
        alpha: target false discovery rate.

    Returns:
        A boolean array, True where the null is rejected.

    Raises:
        InvalidInputError: empty input, NaN or negative e-values.

    Examples:
        >>> e_bh([200.0, 50.0, 1.2, 0.5], alpha=0.05).tolist()
        [True, True, False, False]
    """
    a = v.probability("alpha", alpha)
    e = v.as_float_array("e_values", e_values)
    if e.size == 0 or np.isnan(e).any() or (e < 0).any():
        raise InvalidInputError(
            "`e_values` must be a non-empty array of non-negative numbers",
            argument="e_values",
            reason="range",
        )
    m = e.size
    order = np.argsort(-e, kind="stable")
    k = np.arange(1, m + 1)
    ok = np.flatnonzero(e[order] >= m / (a * k))
    out = np.zeros(m, dtype=bool)
    if ok.size:
        out[order[: ok[-1] + 1]] = True
    return out


def sequential_family(
    results: Sequence[ConfidenceSequenceResult] | dict[str, ConfidenceSequenceResult],
    *,
    method: FamilyMethod = "holm",
    alpha: float | None = None,
) -> SequentialFamilyResult:
    """Multiplicity control across a family of sequential comparisons read at one stopping time.

    `"holm"` applies Holm's step-down procedure to the anytime-valid p-values (each is a valid
    p-value at any stopping time, so the family-wise error stays ≤ α however the stopping time was
    chosen). `"e-bh"` applies [`e_bh`][crucible_bench.e_bh] to the current e-values, controlling the
    false discovery rate at α under arbitrary dependence (Wang & Ramdas 2022).

    Args:
        results: the comparisons, as a list (labelled by their conditions) or a dict by name.
        method: `"holm"` (FWER) or `"e-bh"` (FDR).
        alpha: error rate; defaults to 1 − the (common) confidence level of the results.

    Returns:
        A [`SequentialFamilyResult`][crucible_bench.SequentialFamilyResult].

    Raises:
        InvalidInputError: an empty family.
        InvalidParameterError: an unknown method or a bad alpha.

    Examples:
        >>> a = confidence_sequence([1] * 40 + [0] * 5, null=0.5)
        >>> b = confidence_sequence([1, 0] * 20, null=0.5)
        >>> sequential_family({"a": a, "b": b}).rejected
        (True, False)
    """
    from crucible_bench._adjust import adjust_pvalues

    method = v.choice("method", method, ("e-bh", "holm"))
    if isinstance(results, dict):
        labels = tuple(str(k) for k in results)
        items = list(results.values())
    else:
        items = list(results)
        labels = tuple(
            " − ".join(r.labels) if r.labels else f"comparison {i + 1}"
            for i, r in enumerate(items)
        )
    if not items:
        raise InvalidInputError(
            "the family is empty; pass at least one result",
            argument="results",
            reason="empty",
        )
    a = v.probability(
        "alpha", 1.0 - items[0].confidence_level if alpha is None else alpha
    )
    e = np.array([r.e_value for r in items])
    p = np.array([r.pvalue for r in items])
    adjusted: tuple[float, ...] | None = None
    if method == "holm":
        adj = adjust_pvalues(p, method="holm")
        adjusted = tuple(float(x) for x in adj)
        rejected = adj <= a
    else:
        rejected = e_bh(e, alpha=a)
    return SequentialFamilyResult(
        method=method,
        alpha=a,
        labels=labels,
        e_values=tuple(float(x) for x in e),
        pvalues=tuple(float(x) for x in p),
        adjusted_pvalues=adjusted,
        rejected=tuple(bool(x) for x in rejected),
    )

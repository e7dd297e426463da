"""Power and sample size (R `pwr` semantics): t-tests, one-way ANOVA, χ², two proportions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import attrs

from crucible_bench import _format as fmt
from crucible_bench import _validate as v
from crucible_bench._validate import Alternative
from crucible_bench.exceptions import ConvergenceError, InvalidParameterError
from crucible_core.render import RenderMixin, View

__all__ = (
    "PowerResult",
    "power_anova",
    "power_chi2",
    "power_proportions",
    "power_ttest",
    "power_ttest_unequal",
)

Kind = Literal["two-sample", "one-sample", "paired"]


@attrs.define(frozen=True, kw_only=True, repr=False)
class PowerResult(RenderMixin):
    """A power analysis: the given quantities and the one solved for."""

    method: str
    """E.g. `"Two-sample t-test power"`."""
    solved_for: str
    """Which quantity was solved: `"power"`, `"n"`, `"effect_size"`, `"n1"`, `"n2"`, `"k"`."""
    effect_size: float
    """Cohen's d (t-tests), f (ANOVA), w (χ²) or h (proportions)."""
    n: float
    """Sample size per group (`n1` for the unequal-n t-test; total N for χ²). Not rounded."""
    power: float
    """Probability of rejecting the null at `alpha` when the effect is `effect_size`."""
    alpha: float
    """Significance level."""
    alternative: Alternative
    """Direction of the test."""
    n2: float | None = None
    """Second group size (unequal-n t-test only)."""
    k: float | None = None
    """Number of groups (ANOVA only)."""
    df: float | None = None
    """Degrees of freedom (χ² only)."""

    @property
    def n_required(self) -> int:
        """`n` rounded up: the sample size to plan for."""
        return math.ceil(self.n - 1e-9)

    @property
    def interpretation(self) -> str:
        """A sentence stating the solved quantity."""
        n_text = f"n = {fmt.num(self.n, 4)}" + (
            f" and {fmt.num(self.n2, 4)}" if self.n2 is not None else " per group"
        )
        if self.df is not None:
            n_text = f"N = {fmt.num(self.n, 4)}"
        return (
            f"{self.method}: with effect size {fmt.num(self.effect_size)}, {n_text} and "
            f"α = {self.alpha:g} ({self.alternative}), power = {fmt.num(self.power)} "
            f"(solved for {self.solved_for})."
        )

    def _view(self) -> View:
        facts: list[tuple[str, object]] = [
            ("solved for", self.solved_for),
            ("effect size", self.effect_size),
            ("n", self.n),
        ]
        if self.n2 is not None:
            facts.append(("n2", self.n2))
        if self.k is not None:
            facts.append(("groups", self.k))
        if self.df is not None:
            facts.append(("df", self.df))
        facts += [
            ("power", self.power),
            ("alpha", self.alpha),
            ("alternative", self.alternative),
        ]
        return View(title=self.method, facts=facts, notes=[self.interpretation])


def _one_unknown(**values: float | None) -> str:
    missing = [k for k, x in values.items() if x is None]
    if len(missing) != 1:
        names = ", ".join(f"`{k}`" for k in values)
        raise InvalidParameterError(
            f"give all but exactly one of {names} (the one left as None is solved for); "
            f"{len(missing)} are None",
            argument=missing[0] if missing else next(iter(values)),
            value=None,
        )
    return missing[0]


def _solve(f: Callable[[float], float], lo: float, hi: float, quantity: str) -> float:
    """Root of an increasing-or-decreasing `f` on [lo, hi], growing the bracket from `lo` outward."""
    from scipy.optimize import brentq

    flo = f(lo)
    if math.isnan(flo):
        raise ConvergenceError(
            f"cannot evaluate power at {quantity} = {lo:g}", quantity=quantity
        )
    if flo > 0:
        raise ConvergenceError(
            f"the smallest allowed {quantity} ({lo:g}) already exceeds the target power; plan "
            "for that minimum, or ask for a higher power",
            quantity=quantity,
        )
    # walk geometrically away from lo: the functions are monotone and can be NaN far out
    step = min(1.0, abs(hi - lo) / 4) or 1.0
    b = lo
    while True:
        nb = lo + step if hi > lo else lo - step
        if (hi > lo and nb >= hi) or (hi < lo and nb <= hi):
            nb = hi
        fb = f(nb)
        if math.isnan(fb):
            break
        if flo * fb <= 0:
            return float(brentq(f, b, nb, xtol=1e-14, rtol=1e-15, maxiter=1000))
        b, flo = nb, fb
        if nb == hi:
            break
        step *= 2
    raise ConvergenceError(
        f"no {quantity} in range reaches the requested power; check that the target power "
        "exceeds alpha and the effect is in the tested direction",
        quantity=quantity,
    )


def _t_power(ncp: float, df: float, alpha: float, alternative: Alternative) -> float:
    from scipy.special import stdtrit

    from crucible_bench._effect import nct_cdf as nctdtr

    if alternative == "two-sided":
        crit = float(stdtrit(df, 1 - alpha / 2))
        return float(1 - nctdtr(df, ncp, crit) + nctdtr(df, ncp, -crit))
    if alternative == "greater":
        return float(1 - nctdtr(df, ncp, float(stdtrit(df, 1 - alpha))))
    return float(nctdtr(df, ncp, float(stdtrit(df, alpha))))


def _check_common(
    alpha: float, power: float | None, alternative: Alternative
) -> tuple[float, Alternative]:
    a = v.probability("alpha", alpha)
    if power is not None:
        v.probability("power", power)
        if power <= a:
            raise InvalidParameterError(
                f"`power` ({power!r}) must exceed `alpha` ({a!r})",
                argument="power",
                value=power,
            )
    return a, v.alternative(alternative)


def _given(
    sizes: dict[str, tuple[float | None, float, str]],
    effects: dict[str, tuple[float | None, float | None]],
) -> None:
    """Check every quantity the caller gave: sizes against their minimum, effects finite."""
    for name, (value, minimum, what) in sizes.items():
        if value is not None:
            v.at_least(name, value, minimum, what)
    for name, (value, low) in effects.items():
        if value is None:
            continue
        x = v.finite_number(name, value)
        if low is not None and x < low:
            raise InvalidParameterError(
                f"`{name}` must be ≥ {low:g}; got {value!r}", argument=name, value=value
            )


def _effect_bracket(alternative: Alternative) -> tuple[float, float]:
    return (-1e-10, -50.0) if alternative == "less" else (1e-10, 50.0)


def power_ttest(
    *,
    effect_size: float | None = None,
    n: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    kind: Kind = "two-sample",
    alternative: Alternative = "two-sided",
) -> PowerResult:
    """Power of a t-test, or the n or effect size that reaches a power (R `pwr.t.test`).

    Leave exactly one of `effect_size`, `n`, `power` as None; it is solved for exactly (not
    rounded). `n` is per group. Two-sided power counts both rejection tails.

    Args:
        effect_size: Cohen's d (negative for `alternative="less"`).
        n: observations per group (pairs for `"paired"`).
        power: target power.
        alpha: significance level.
        kind: `"two-sample"`, `"one-sample"` or `"paired"`.
        alternative: `"two-sided"`, `"less"` or `"greater"`.

    Returns:
        A [`PowerResult`][crucible_bench.PowerResult]; `n_required` rounds n up.

    Raises:
        InvalidParameterError: not exactly one unknown, or values out of range.
        ConvergenceError: no solution in range (e.g. power below alpha).

    Examples:
        >>> round(power_ttest(effect_size=0.5, n=20).power, 4)
        0.3379
        >>> power_ttest(effect_size=0.5, power=0.8).n_required
        64
    """
    alpha, alternative = _check_common(alpha, power, alternative)
    kind = v.choice("kind", kind, ("two-sample", "one-sample", "paired"))
    target = _one_unknown(effect_size=effect_size, n=n, power=power)
    two = kind == "two-sample"
    _given(
        {"n": (n, 2, "a t-test needs two observations per group for a variance")},
        {"effect_size": (effect_size, None)},
    )

    def pw(d: float, nn: float) -> float:
        df = 2 * (nn - 1) if two else nn - 1
        ncp = d * math.sqrt(nn / 2) if two else d * math.sqrt(nn)
        return _t_power(ncp, df, alpha, alternative)

    if target == "power":
        assert effect_size is not None
        assert n is not None
        power = pw(float(effect_size), float(n))
    elif target == "n":
        assert effect_size is not None
        assert power is not None
        d = float(effect_size)
        power = float(power)
        n = _solve(lambda x: pw(d, x) - power, 2.0, 1e7, "sample size")
    else:
        assert n is not None
        assert power is not None
        nn, target_power = float(n), float(power)
        lo, hi = _effect_bracket(alternative)
        effect_size = _solve(lambda d: pw(d, nn) - target_power, lo, hi, "effect size")
    name = {"two-sample": "Two-sample", "one-sample": "One-sample", "paired": "Paired"}[
        kind
    ]
    return PowerResult(
        method=f"{name} t-test power",
        solved_for="effect_size" if target == "effect_size" else target,
        effect_size=float(effect_size),
        n=float(n),
        power=float(power),
        alpha=alpha,
        alternative=alternative,
    )


def power_ttest_unequal(
    *,
    effect_size: float | None = None,
    n1: float | None = None,
    n2: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> PowerResult:
    """Two-sample t-test power with unequal group sizes (R `pwr.t2n.test`).

    ncp = d/√(1/n₁ + 1/n₂), df = n₁ + n₂ − 2. Leave exactly one of the four as None.

    Args:
        effect_size: Cohen's d.
        n1: size of the first group.
        n2: size of the second group.
        power: target power.
        alpha: significance level.
        alternative: `"two-sided"`, `"less"` or `"greater"`.

    Returns:
        A [`PowerResult`][crucible_bench.PowerResult] with `n = n1` and `n2`.

    Examples:
        >>> round(power_ttest_unequal(effect_size=0.5, n1=20, n2=18, alternative="greater").power, 4)
        0.4464
    """
    alpha, alternative = _check_common(alpha, power, alternative)
    target = _one_unknown(effect_size=effect_size, n1=n1, n2=n2, power=power)
    why = "each group needs two observations for a variance, as R pwr.t2n.test requires"
    _given(
        {"n1": (n1, 2, why), "n2": (n2, 2, why)},
        {"effect_size": (effect_size, None)},
    )

    def pw(d: float, a: float, b: float) -> float:
        return _t_power(d / math.sqrt(1 / a + 1 / b), a + b - 2, alpha, alternative)

    if target == "power":
        assert effect_size is not None
        assert n1 is not None
        assert n2 is not None
        power = pw(effect_size, n1, n2)
    elif target == "n1":
        assert effect_size is not None
        assert n2 is not None
        assert power is not None
        d, b, pt = float(effect_size), float(n2), float(power)
        n1 = _solve(lambda a: pw(d, a, b) - pt, 2.0, 1e7, "n1")
    elif target == "n2":
        assert effect_size is not None
        assert n1 is not None
        assert power is not None
        d, a_, pt = float(effect_size), float(n1), float(power)
        n2 = _solve(lambda b: pw(d, a_, b) - pt, 2.0, 1e7, "n2")
    else:
        assert n1 is not None
        assert n2 is not None
        assert power is not None
        a_, b, pt = float(n1), float(n2), float(power)
        lo, hi = _effect_bracket(alternative)
        effect_size = _solve(lambda d: pw(d, a_, b) - pt, lo, hi, "effect size")
    return PowerResult(
        method="Two-sample t-test power (unequal n)",
        solved_for=target,
        effect_size=float(effect_size),
        n=float(n1),
        n2=float(n2),
        power=float(power),
        alpha=alpha,
        alternative=alternative,
    )


def power_anova(
    *,
    k: float | None,
    n: float | None = None,
    f: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
) -> PowerResult:
    """Power of a balanced one-way ANOVA (R `pwr.anova.test`): λ = k·n·f², df = (k−1, k(n−1)).

    Leave exactly one of `k`, `n`, `f`, `power` as None.

    Args:
        k: number of groups.
        n: observations per group.
        f: Cohen's f (√(η²/(1−η²))).
        power: target power.
        alpha: significance level.

    Returns:
        A [`PowerResult`][crucible_bench.PowerResult] with `effect_size = f`.

    Examples:
        >>> round(power_anova(k=4, n=5, f=0.5).power, 4)
        0.3536
    """
    from scipy.special import fdtri, ncfdtr

    alpha, _ = _check_common(alpha, power, "greater")
    target = _one_unknown(k=k, n=n, f=f, power=power)
    _given(
        {
            "k": (k, 2, "an ANOVA compares at least two groups"),
            "n": (
                n,
                2,
                "each group needs two observations for a within-group variance",
            ),
        },
        {"f": (f, 0.0)},
    )

    def pw(kk: float, nn: float, ff: float) -> float:
        df1, df2 = kk - 1, kk * (nn - 1)
        crit = float(fdtri(df1, df2, 1 - alpha))
        return float(1 - ncfdtr(df1, df2, kk * nn * ff * ff, crit))

    if target == "power":
        assert k is not None
        assert n is not None
        assert f is not None
        power = pw(k, n, f)
    elif target == "n":
        assert k is not None
        assert f is not None
        assert power is not None
        kk, ff, pt = float(k), float(f), float(power)
        n = _solve(lambda x: pw(kk, x, ff) - pt, 2.0, 1e7, "sample size")
    elif target == "f":
        assert k is not None
        assert n is not None
        assert power is not None
        kk, nn, pt = float(k), float(n), float(power)
        f = _solve(lambda x: pw(kk, nn, x) - pt, 1e-7, 100.0, "effect size")
    else:
        assert n is not None
        assert f is not None
        assert power is not None
        nn, ff, pt = float(n), float(f), float(power)
        k = _solve(lambda x: pw(x, nn, ff) - pt, 2.0, 100.0, "number of groups")
    return PowerResult(
        method="One-way ANOVA power",
        solved_for=target,
        effect_size=float(f),
        n=float(n),
        power=float(power),
        alpha=alpha,
        alternative="greater",
        k=float(k),
    )


def power_chi2(
    *,
    w: float | None = None,
    n: float | None = None,
    df: float,
    power: float | None = None,
    alpha: float = 0.05,
) -> PowerResult:
    """Power of a χ² test (R `pwr.chisq.test`): noncentral χ² with λ = N·w².

    Args:
        w: Cohen's w.
        n: total number of observations N.
        df: degrees of freedom of the test.
        power: target power.
        alpha: significance level.

    Returns:
        A [`PowerResult`][crucible_bench.PowerResult] (`n` is the total N).

    Examples:
        >>> round(power_chi2(w=0.3, n=20, df=1).power, 4)
        0.2687
    """
    from scipy.special import chdtri, chndtr

    alpha, _ = _check_common(alpha, power, "greater")
    df = v.count_option("df", df, minimum=1)
    target = _one_unknown(w=w, n=n, power=power)
    _given(
        {"n": (n, 1, "the total number of observations N")},
        {"w": (w, 0.0)},
    )
    crit = float(chdtri(df, alpha))

    def pw(ww: float, nn: float) -> float:
        return float(1 - chndtr(crit, df, nn * ww * ww))

    if target == "power":
        assert w is not None
        assert n is not None
        power = pw(w, n)
    elif target == "n":
        assert w is not None
        assert power is not None
        ww, pt = float(w), float(power)
        n = _solve(lambda x: pw(ww, x) - pt, 1.0, 1e9, "sample size")
    else:
        assert n is not None
        assert power is not None
        nn, pt = float(n), float(power)
        w = _solve(lambda x: pw(x, nn) - pt, 1e-7, 100.0, "effect size")
    return PowerResult(
        method="χ² test power",
        solved_for="effect_size" if target == "w" else target,
        effect_size=float(w),
        n=float(n),
        power=float(power),
        alpha=alpha,
        alternative="greater",
        df=float(df),
    )


def power_proportions(
    *,
    effect_size: float | None = None,
    n: float | None = None,
    power: float | None = None,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> PowerResult:
    """Power of a two-proportion z-test with Cohen's h (R `pwr.2p.test`), n per group.

    Args:
        effect_size: Cohen's h (see [`cohens_h`][crucible_bench.cohens_h]).
        n: observations per group.
        power: target power.
        alpha: significance level.
        alternative: `"two-sided"`, `"less"` or `"greater"`.

    Returns:
        A [`PowerResult`][crucible_bench.PowerResult].

    Examples:
        >>> round(power_proportions(effect_size=0.3, n=80).power, 4)
        0.4751
    """
    from scipy.special import ndtr, ndtri

    alpha, alternative = _check_common(alpha, power, alternative)
    target = _one_unknown(effect_size=effect_size, n=n, power=power)
    _given(
        {"n": (n, 1, "observations per group")},
        {"effect_size": (effect_size, None)},
    )
    if effect_size is not None and abs(effect_size) > math.pi:
        raise InvalidParameterError(
            f"Cohen's h lies in [-π, π]; got `effect_size` = {effect_size!r}",
            argument="effect_size",
            value=effect_size,
        )

    def pw(h: float, nn: float) -> float:
        s = h * math.sqrt(nn / 2)
        if alternative == "two-sided":
            z = float(ndtri(1 - alpha / 2))
            return float(ndtr(s - z) + ndtr(-z - s))
        if alternative == "greater":
            return float(ndtr(s - float(ndtri(1 - alpha))))
        return float(ndtr(float(ndtri(alpha)) - s))

    if target == "power":
        assert effect_size is not None
        assert n is not None
        power = pw(effect_size, n)
    elif target == "n":
        assert effect_size is not None
        assert power is not None
        h, pt = float(effect_size), float(power)
        n = _solve(lambda x: pw(h, x) - pt, 1.0, 1e9, "sample size")
    else:
        assert n is not None
        assert power is not None
        nn, pt = float(n), float(power)
        lo, hi = _effect_bracket(alternative)
        effect_size = _solve(
            lambda x: pw(x, nn) - pt, lo, min(hi, math.pi), "effect size"
        )
    return PowerResult(
        method="Two-proportion test power",
        solved_for=target,
        effect_size=float(effect_size),
        n=float(n),
        power=float(power),
        alpha=alpha,
        alternative=alternative,
    )

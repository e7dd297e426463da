"""Analysis of a run: per-condition metrics with intervals, paired comparisons, the cost frontier."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from crucible_core import stats
from crucible_core.render import RenderMixin, Table, View
from crucible_harness._experiment import AnalysisConfig

__all__ = ("Analysis", "Comparison", "ConditionSummary", "analyse")


@attrs.define(frozen=True, kw_only=True)
class ConditionSummary(RenderMixin):
    """Every metric of one condition."""

    name: str
    """The condition."""
    tasks: int
    """Tasks recorded (completed + failed)."""
    completed: int
    """Tasks that produced an answer."""
    errors: int
    """Tasks that failed for good (after retries), counted as wrong in `accuracy`."""
    items: int
    """Distinct items with at least one recorded task."""
    accuracy: float
    """Share correct of all attempted tasks (failures count as wrong); the mean of per-item accuracies."""
    accuracy_ci: tuple[float, float]
    """Interval of `accuracy`: cluster bootstrap over items (then repeats) with repeats, else Wilson."""
    accuracy_completed: float
    """Share correct among completed tasks only."""
    latency_p50: float
    """Median latency of completed tasks (seconds)."""
    latency_p95: float
    """95th percentile latency (seconds)."""
    latency_p99: float
    """99th percentile latency (seconds)."""
    latency_mean: float
    """Mean latency (seconds)."""
    cost_total: float
    """Dollars spent."""
    cost_per_query: float
    """Dollars per task."""
    cost_per_correct: float
    """Dollars per correct answer (inf when none was correct)."""
    input_tokens: float
    """Mean prompt tokens per completed task."""
    output_tokens: float
    """Mean completion tokens per completed task."""
    latency_p99_ci: tuple[float, float] = (math.nan, math.nan)
    """Distribution-free interval of the 99th percentile latency (order statistics, binomial)."""
    cost_per_query_ci: tuple[float, float] = (math.nan, math.nan)
    """t interval of the mean cost per task."""

    def _view(self) -> View:
        return View(
            title=f"Condition {self.name}",
            facts=[(f.name, getattr(self, f.name)) for f in attrs.fields(type(self))],
        )


@attrs.define(frozen=True, kw_only=True)
class Comparison(RenderMixin):
    """One paired comparison of accuracy between two conditions."""

    a: str
    """Baseline condition."""
    b: str
    """Compared condition."""
    accuracy_a: float
    """Accuracy of `a` on the shared items."""
    accuracy_b: float
    """Accuracy of `b` on the shared items."""
    difference: float
    """`accuracy_b - accuracy_a`."""
    confidence_interval: tuple[float, float]
    """Interval of the difference."""
    pvalue: float
    """Unadjusted p-value."""
    pvalue_adjusted: float
    """p-value after the family-wise correction."""
    significant: bool
    """`pvalue_adjusted < alpha`."""
    method: str
    """The test used (from crucible-bench)."""
    n_items: int
    """Items both conditions answered."""
    power: float | None
    """Power achieved to detect the observed effect at `alpha` (paired t on per-item means)."""
    items_needed: int | None
    """Items needed for 80% power at the observed effect."""
    interpretation: str
    """One sentence, APA style."""

    def _view(self) -> View:
        return View(
            title=f"{self.b} vs {self.a}",
            facts=[(f.name, getattr(self, f.name)) for f in attrs.fields(type(self))],
        )


@attrs.define(frozen=True, kw_only=True)
class Analysis(RenderMixin):
    """The analysis of a run, from which every report is written."""

    conditions: tuple[ConditionSummary, ...]
    """One summary per condition, in declaration order."""
    comparisons: tuple[Comparison, ...]
    """Paired comparisons (the primary one, or all pairs), p-values corrected across them."""
    frontier: tuple[str, ...]
    """Conditions on the cost–accuracy Pareto frontier (no other is both cheaper and more accurate)."""
    frontier_latency: tuple[str, ...] = ()
    """Conditions on the cost–accuracy–latency frontier: no other is at least as cheap, as accurate
    and as fast at P95, and strictly better in one."""
    config: AnalysisConfig
    """Alpha, correction and confidence level used."""
    manifest: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """The run manifest: experiment, items, seeds, versions."""
    records: tuple[Mapping[str, Any], ...] = attrs.field(default=(), repr=False)
    """The task records analysed."""

    SUMMARY_HEADERS = ("condition", "tasks", "errors", "accuracy", "ci_low", "ci_high", "p50_s", "p95_s", "p99_s",
                       "cost_usd", "usd_per_correct")  # fmt: skip
    COMPARISON_HEADERS = (
        "comparison",
        "difference",
        "ci_low",
        "ci_high",
        "p",
        "p_adj",
        "significant",
        "power",
        "items_needed",
    )

    def summary_rows(self) -> list[tuple[object, ...]]:
        """One row per condition (see `SUMMARY_HEADERS`)."""
        return [(c.name, c.tasks, c.errors, c.accuracy, c.accuracy_ci[0], c.accuracy_ci[1], c.latency_p50, c.latency_p95,
                 c.latency_p99, c.cost_total, c.cost_per_correct) for c in self.conditions]  # fmt: skip

    def comparison_rows(self) -> list[tuple[object, ...]]:
        """One row per comparison (see `COMPARISON_HEADERS`)."""
        return [(f"{c.b} − {c.a}", c.difference, c.confidence_interval[0], c.confidence_interval[1], c.pvalue, c.pvalue_adjusted,
                 c.significant, c.power, c.items_needed) for c in self.comparisons]  # fmt: skip

    def methods_text(self) -> str:
        """The methods paragraph: tests, correction, intervals, seeds and versions."""
        exp = self.manifest.get("experiment", {})
        versions = ", ".join(
            f"{k} {v}" for k, v in self.manifest.get("versions", {}).items()
        )
        n_items = len(self.manifest.get("items", []))
        correction = self.config.correction
        parts = [
            f"Each of {len(self.conditions)} conditions answered {n_items} items"
            f" {exp.get('repeats', 1)} time(s) (seed {exp.get('run', {}).get('seed', 0)}; scorer {self.manifest.get('scorer', '?')}).",
            "Failed tasks (after retries) count as incorrect.",
            f"Accuracy intervals are {self.config.confidence_level:.0%} cluster-bootstrap intervals over items"
            " (Wilson score intervals with a single repeat).",
            "Conditions were compared on the same items: McNemar's exact test with one repeat, otherwise a paired t-test"
            " on per-item mean accuracy with a two-stage cluster-bootstrap interval of the difference.",
            f"p-values were adjusted across the {len(self.comparisons)} comparison(s) with the {correction} method;"
            f" alpha = {self.config.alpha}.",
            "Power is that of a paired t-test on per-item means at the observed standardized effect.",
        ]
        if self.manifest.get("git_commit"):
            parts.append(f"Code at git commit {self.manifest['git_commit']}.")
        if versions:
            parts.append(f"Software: {versions}.")
        return " ".join(parts)

    def _view(self) -> View:
        tables = [
            Table(
                title="Conditions",
                headers=self.SUMMARY_HEADERS,
                rows=self.summary_rows(),
            )
        ]
        if self.comparisons:
            tables.append(
                Table(
                    title="Comparisons",
                    headers=self.COMPARISON_HEADERS,
                    rows=self.comparison_rows(),
                )
            )
        notes = [c.interpretation for c in self.comparisons]
        if self.frontier:
            notes.append(f"Cost–accuracy frontier: {', '.join(self.frontier)}.")
        if self.frontier_latency:
            notes.append(
                f"Cost–accuracy–latency (P95) frontier: {', '.join(self.frontier_latency)}."
            )
        return View(
            title=f"Analysis: {self.manifest.get('experiment', {}).get('name', 'run')}",
            tables=tables,
            notes=notes,
        )


def _per_item(
    records: Sequence[Mapping[str, Any]], condition: str
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in records:
        if r["condition"] == condition and r.get("correct") is not None:
            out.setdefault(str(r["item"]), []).append(1.0 if r["correct"] else 0.0)
    return out


def _summary(
    name: str, records: Sequence[Mapping[str, Any]], config: AnalysisConfig, seed: int
) -> ConditionSummary:
    mine = [r for r in records if r["condition"] == name]
    ok = [r for r in mine if r["status"] == "ok"]
    per_item = _per_item(mine, name)
    outcomes = [v for vs in per_item.values() for v in vs]
    nan = math.nan
    if per_item:
        item_means = np.array([np.mean(v) for v in per_item.values()])
        accuracy = float(item_means.mean())
        if max(len(v) for v in per_item.values()) > 1 and len(per_item) > 1:
            low, high = _cluster_ci(list(per_item.values()), config, seed)
        else:
            ci = stats.proportion_ci(
                int(sum(outcomes)),
                len(outcomes),
                confidence_level=config.confidence_level,
            )
            low, high = ci.low, ci.high
    else:
        accuracy, low, high = nan, nan, nan
    graded_ok = [r for r in ok if r.get("correct") is not None]
    latencies = [float(r["latency"]) for r in ok if r.get("latency") is not None]
    p50, p95, p99 = (
        stats.percentiles(latencies, [50, 95, 99]) if latencies else (nan, nan, nan)
    )
    cost = math.fsum(float(r.get("cost") or 0.0) for r in mine)
    correct = sum(1 for r in mine if r.get("correct"))
    return ConditionSummary(
        name=name, tasks=len(mine), completed=len(ok), errors=len(mine) - len(ok), items=len({r["item"] for r in mine}),
        accuracy=accuracy, accuracy_ci=(low, high),
        accuracy_completed=float(np.mean([bool(r["correct"]) for r in graded_ok])) if graded_ok else nan,
        latency_p50=p50, latency_p95=p95, latency_p99=p99, latency_mean=float(np.mean(latencies)) if latencies else nan,
        cost_total=cost, cost_per_query=cost / len(mine) if mine else nan,
        cost_per_correct=cost / correct if correct else math.inf,
        input_tokens=float(np.mean([r.get("input_tokens") or 0 for r in ok])) if ok else nan,
        output_tokens=float(np.mean([r.get("output_tokens") or 0 for r in ok])) if ok else nan,
        latency_p99_ci=_quantile_ci(latencies, 0.99, config.confidence_level),
        cost_per_query_ci=_mean_ci([float(r.get("cost") or 0.0) for r in mine], config.confidence_level),
    )  # fmt: skip


def _quantile_ci(
    values: Sequence[float], q: float, level: float
) -> tuple[float, float]:
    """Distribution-free CI of a quantile from order statistics: ranks from Binomial(n, q) quantiles.

    An end is NaN when the sample is too small for it (e.g. the upper end of P99 with n < ~300).
    """
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    from scipy.stats import binom

    ordered = np.sort(np.asarray(values, dtype=float))
    alpha = 1 - level
    lo = int(binom.ppf(alpha / 2, n, q))  # number of observations below the lower bound
    hi = int(binom.ppf(1 - alpha / 2, n, q)) + 1
    low = float(ordered[lo - 1]) if lo >= 1 else math.nan
    high = float(ordered[hi - 1]) if hi <= n else math.nan
    return low, high


def _mean_ci(values: Sequence[float], level: float) -> tuple[float, float]:
    if len(values) < 2:
        return math.nan, math.nan
    ci = stats.mean_ci(values, confidence_level=level)
    return ci.low, ci.high


def _cluster_ci(
    groups: list[list[float]], config: AnalysisConfig, seed: int
) -> tuple[float, float]:
    """Two-stage cluster bootstrap of the mean of per-item means: resample items, then repeats."""
    rng = np.random.default_rng(seed)
    n = len(groups)
    lengths = np.array([len(g) for g in groups])
    width = int(lengths.max())
    padded = np.zeros((n, width))
    for i, g in enumerate(groups):
        padded[i, : len(g)] = g
    b = config.n_resamples
    pick_items = rng.integers(0, n, size=(b, n))
    rows = padded[pick_items]  # b × n × width
    lens = lengths[pick_items]  # b × n
    pick_reps = (rng.random((b, n, width)) * lens[..., None]).astype(int)
    resampled = np.take_along_axis(rows, pick_reps, axis=2)
    mask = np.arange(width)[None, None, :] < lens[..., None]
    means = (resampled * mask).sum(axis=2) / lens
    boot = means.mean(axis=1)
    alpha = 1 - config.confidence_level
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _compare(
    a: str,
    b: str,
    records: Sequence[Mapping[str, Any]],
    config: AnalysisConfig,
    seed: int,
) -> Comparison | None:
    import crucible_bench as bench

    ia, ib = _per_item(records, a), _per_item(records, b)
    shared = [i for i in ia if i in ib]
    if len(shared) < 2:
        return None
    repeated = max(max(len(ia[i]), len(ib[i])) for i in shared) > 1
    if repeated:
        xa = [ia[i] for i in shared]
        xb = [ib[i] for i in shared]
    else:
        xa = [ia[i][0] for i in shared]  # type: ignore[misc]
        xb = [ib[i][0] for i in shared]  # type: ignore[misc]
    # compare_accuracy reports a − b; we report b − a (treatment minus baseline).
    result = bench.compare_accuracy(xb, xa, paired=True, confidence_level=config.confidence_level, alpha=config.alpha,
                                    n_resamples=config.n_resamples, rng=seed, labels=(b, a))  # fmt: skip
    diffs = np.array([np.mean(ib[i]) - np.mean(ia[i]) for i in shared])
    power: float | None = None
    needed: int | None = None
    sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0
    if sd > 0 and diffs.mean() != 0:
        dz = abs(float(diffs.mean())) / sd
        try:
            power = float(
                bench.power_ttest(
                    effect_size=dz, n=len(shared), alpha=config.alpha, kind="paired"
                ).power
            )
            needed = math.ceil(
                float(
                    bench.power_ttest(
                        effect_size=dz, power=0.8, alpha=config.alpha, kind="paired"
                    ).n
                )
            )
        except bench.BenchError:
            power, needed = None, None
    return Comparison(
        a=a, b=b, accuracy_a=result.accuracy_b, accuracy_b=result.accuracy_a, difference=result.difference,
        confidence_interval=result.confidence_interval, pvalue=result.pvalue, pvalue_adjusted=result.pvalue,
        significant=False, method=result.method, n_items=len(shared), power=power, items_needed=needed,
        interpretation=result.interpretation,
    )  # fmt: skip


def _frontier(
    summaries: Sequence[ConditionSummary], *, latency: bool = False
) -> tuple[str, ...]:
    """Pareto frontier: lower cost and higher accuracy (and, with `latency`, lower P95) are better."""
    points = [
        (s.cost_per_query, -s.accuracy, s.latency_p95 if latency else 0.0, s.name)
        for s in summaries
        if not math.isnan(s.accuracy) and not (latency and math.isnan(s.latency_p95))
    ]
    keep = []
    for *mine, name in points:
        dominated = any(
            all(o <= m for o, m in zip(other, mine, strict=True))
            and any(o < m for o, m in zip(other, mine, strict=True))
            for *other, _ in points
        )
        if not dominated:
            keep.append(name)
    return tuple(keep)


def _p(p: float) -> str:
    return "< .001" if p < 0.001 else f"= {p:.3f}".replace("0.", ".", 1)


def _interpreted(c: Comparison, config: AnalysisConfig) -> Comparison:
    low, high = c.confidence_interval
    adjusted = (
        ""
        if config.correction == "none"
        else f", {config.correction}-adjusted p {_p(c.pvalue_adjusted)}"
    )
    verdict = "significant" if c.significant else "not significant"
    power = "" if c.power is None else f"; power {c.power:.2f}"
    needed = (
        ""
        if c.items_needed is None
        else f", {c.items_needed} items needed for 80% power"
    )
    text = (
        f"{c.b} vs {c.a}: accuracy {c.accuracy_b:.3f} vs {c.accuracy_a:.3f}, difference {c.difference:+.3f} "
        f"({config.confidence_level:.0%} CI [{low:+.3f}, {high:+.3f}]) over {c.n_items} items; {c.method}, "
        f"p {_p(c.pvalue)}{adjusted}: {verdict} at α = {config.alpha}{power}{needed}."
    )
    return attrs.evolve(c, interpretation=text)


def analyse(
    records: Sequence[Mapping[str, Any]],
    *,
    conditions: Sequence[str],
    config: AnalysisConfig,
    manifest: Mapping[str, Any] | None = None,
) -> Analysis:
    """Analyse task records: summaries, corrected paired comparisons, the frontier."""
    manifest = dict(manifest or {})
    seed = int(manifest.get("experiment", {}).get("run", {}).get("seed", 0))
    summaries = tuple(_summary(c, records, config, seed) for c in conditions)
    pairs = (
        [tuple(config.primary)]
        if config.primary
        else list(itertools.combinations(conditions, 2))
    )
    raw = [_compare(a, b, records, config, seed) for a, b in pairs]
    found = [c for c in raw if c is not None]
    if found:
        import crucible_bench as bench

        pvalues = [c.pvalue for c in found]
        adjusted = (
            pvalues
            if config.correction == "none"
            else list(bench.adjust_pvalues(pvalues, method=config.correction))
        )
        found = [_interpreted(attrs.evolve(c, pvalue_adjusted=float(p), significant=bool(p < config.alpha)), config)
                 for c, p in zip(found, adjusted, strict=True)]  # fmt: skip
    return Analysis(conditions=summaries, comparisons=tuple(found), frontier=_frontier(summaries),
                    frontier_latency=_frontier(summaries, latency=True), config=config,
                    manifest=manifest, records=tuple(records))  # fmt: skip

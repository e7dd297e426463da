"""Analysis of a run: per-condition metrics with intervals, paired comparisons, the cost frontier."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import attrs
import numpy as np
from numpy.typing import NDArray

import crucible_harness._numbers as fmt
from crucible_core import stats
from crucible_core.exceptions import ValidationError
from crucible_core.render import RenderMixin, Table, View
from crucible_harness._experiment import AnalysisConfig
from crucible_harness._numbers import Kind

__all__ = (
    "Analysis",
    "Comparison",
    "ConditionSummary",
    "EffectSize",
    "MetricComparison",
    "PlanRow",
    "analyse",
    "in_task_order",
)

FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]


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
    cost_total: float | None
    """Dollars spent by the tasks whose cost is known (`None`: no task's cost is known)."""
    cost_per_query: float | None
    """Dollars per task, over the tasks whose cost is known (`None`: unknown)."""
    cost_per_correct: float | None
    """Dollars per correct answer, over the tasks whose cost is known (inf when none was
    correct, `None`: unknown)."""
    input_tokens: float
    """Mean prompt tokens per completed task."""
    output_tokens: float
    """Mean completion tokens per completed task."""
    latency_p99_ci: tuple[float, float] = (math.nan, math.nan)
    """Distribution-free interval of the 99th percentile latency (order statistics, binomial)."""
    cost_per_query_ci: tuple[float, float] = (math.nan, math.nan)
    """t interval of the mean cost per task."""
    cost_unknown: int = 0
    """Tasks whose cost is unknown (a model without a price), left out of every cost figure."""

    def _view(self) -> View:
        return View(
            title=f"Condition {self.name}",
            facts=[(f.name, getattr(self, f.name)) for f in attrs.fields(type(self))],
        )


@attrs.define(frozen=True, kw_only=True)
class EffectSize:
    """A standardized (or raw) effect of a comparison, with its interval and how it was computed."""

    name: str
    """`"risk difference"`, `"odds ratio"`, `"Cohen's h"` or `"d_z"`."""
    estimate: float
    """The effect, treatment against baseline."""
    confidence_interval: tuple[float, float]
    """Its interval at the analysis' confidence level."""
    method: str
    """How the interval was computed."""


@attrs.define(frozen=True, kw_only=True)
class PlanRow:
    """One design of the sensitivity table: repeats per item, and what the run's items detect."""

    repeats: int
    """Repeats per item."""
    mde: float | None
    """Smallest |difference| in accuracy detectable with `target_power` at `alpha` with the items run."""
    items_needed: int | None
    """Items needed to detect `target_effect` with `target_power` (None without a target effect)."""
    evaluations: int | None
    """`items_needed × repeats`: evaluations per condition."""


@attrs.define(frozen=True, kw_only=True)
class Comparison(RenderMixin):
    """One paired comparison of accuracy, `b − a` (treatment − baseline)."""

    a: str
    """Baseline condition."""
    b: str
    """Treatment condition."""
    accuracy_a: float
    """Accuracy of `a` on the shared items (mean of per-item accuracies)."""
    accuracy_b: float
    """Accuracy of `b` on the shared items."""
    difference: float
    """`accuracy_b - accuracy_a`: the risk difference."""
    confidence_interval: tuple[float, float]
    """Interval of the difference from the same procedure as `pvalue`: it excludes zero exactly when
    `pvalue < 1 - confidence_level`."""
    pvalue: float
    """Unadjusted two-sided p-value."""
    pvalue_adjusted: float
    """p-value after the correction across the accuracy comparisons."""
    significant: bool
    """`pvalue_adjusted < alpha`."""
    method: str
    """The test and the interval that inverts it."""
    confidence_interval_adjusted: tuple[float, float] = (math.nan, math.nan)
    """The same procedure's interval at the level the correction implies, 1 − α·p/p_adjusted: it
    excludes zero exactly when `significant` (Bonferroni: simultaneous intervals)."""
    n_items: int
    """Items both conditions answered."""
    n_repeats: float = 1.0
    """Mean repeats per item and condition."""
    effects: tuple[EffectSize, ...] = ()
    """Risk difference, odds ratio and Cohen's h (and d_z on per-item means with repeats)."""
    mde: float | None = None
    """Minimum detectable |difference| at `target_power` for the items and repeats run."""
    mde_dz: float | None = None
    """The same as a standardized effect d_z (paired t-test on per-item means)."""
    power: float | None = None
    """A priori power of the run to detect `target_effect` (None without a target effect)."""
    items_needed: int | None = None
    """Items needed for `target_effect` at the repeats run (None without a target effect)."""
    plan: tuple[PlanRow, ...] = ()
    """Sensitivity and sample-size plan by repeats per item, from the run as a pilot."""
    interpretation: str = ""
    """One sentence, APA style."""

    def _view(self) -> View:
        return View(
            title=f"{self.b} − {self.a}",
            facts=[(f.name, getattr(self, f.name)) for f in attrs.fields(type(self))],
        )


@attrs.define(frozen=True, kw_only=True)
class MetricComparison(RenderMixin):
    """A paired comparison of latency or cost, `treatment − baseline` (second family of tests)."""

    a: str
    """Baseline condition."""
    b: str
    """Treatment condition."""
    metric: str
    """`"latency_mean"`, `"latency_p95"`, `"latency_p99"` or `"cost_mean"`."""
    label: str
    """The metric in words, with its unit."""
    kind: Kind
    """`"seconds"` or `"usd"` (how its numbers are formatted)."""
    n_items: int
    """Items with a value in both conditions."""
    baseline: float
    """The metric for `a` on those items."""
    treatment: float
    """The metric for `b` on those items."""
    difference: float
    """`treatment - baseline`."""
    confidence_interval: tuple[float, float]
    """Interval of the difference, from the same procedure as `pvalue`."""
    pvalue: float
    """Unadjusted two-sided p-value."""
    pvalue_adjusted: float
    """p-value after the correction across the latency and cost family."""
    significant: bool
    """`pvalue_adjusted < alpha`."""
    method: str
    """The test and its interval."""
    confidence_interval_adjusted: tuple[float, float] = (math.nan, math.nan)
    """The same procedure's interval at the level the correction implies, 1 − α·p/p_adjusted: it
    excludes zero exactly when `significant`."""

    def _view(self) -> View:
        return View(
            title=f"{self.label}: {self.b} − {self.a}",
            facts=[(f.name, getattr(self, f.name)) for f in attrs.fields(type(self))],
        )


@attrs.define(frozen=True, kw_only=True)
class Analysis(RenderMixin):
    """The analysis of a run, from which every report is written."""

    conditions: tuple[ConditionSummary, ...]
    """One summary per condition, in declaration order."""
    comparisons: tuple[Comparison, ...]
    """Paired accuracy comparisons (treatment − baseline), p-values corrected across them."""
    frontier: tuple[str, ...]
    """Conditions on the cost–accuracy Pareto frontier (no other is both cheaper and more accurate)."""
    frontier_latency: tuple[str, ...] = ()
    """Conditions on the cost–accuracy–latency frontier: no other is at least as cheap, as accurate
    and as fast at P95, and strictly better in one."""
    metric_comparisons: tuple[MetricComparison, ...] = ()
    """Paired latency and cost comparisons for the same pairs: a second family of tests, corrected
    with the same method among themselves."""
    config: AnalysisConfig
    """Alpha, correction and confidence level used."""
    manifest: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    """The run manifest: experiment, items, seeds, versions."""
    records: tuple[Mapping[str, Any], ...] = attrs.field(default=(), repr=False)
    """The task records analysed, in task order (condition, item, repeat)."""

    @property
    def simulated_conditions(self) -> tuple[str, ...]:
        """The conditions whose model is simulated (see `simulated_notice`), in condition order."""
        marked = simulated_in_manifest(self.manifest)
        return tuple(c.name for c in self.conditions if c.name in marked)

    @property
    def simulated_notice(self) -> str:
        """The sentence every report and summary leads with when a condition is simulated, else `""`."""
        names = self.simulated_conditions
        if not names:
            return ""
        which = (
            "every condition"
            if len(names) == len(self.conditions)
            else "condition(s) " + ", ".join(names)
        )
        return (
            f"Simulated models: {which} used crucible's simulated model profiles, not a real provider. "
            "Their accuracy, latency and cost are simulated, not measurements of any real model."
        )

    def label(self, condition: str) -> str:
        """A condition's name as tables print it: `"<name> (simulated)"` for a simulated one."""
        return (
            f"{condition} (simulated)"
            if condition in self.simulated_conditions
            else condition
        )

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
        "mde",
        "power",
    )

    def summary_rows(self) -> list[tuple[object, ...]]:
        """One row per condition (see `SUMMARY_HEADERS`), unformatted."""
        return [(c.name, c.tasks, c.errors, c.accuracy, c.accuracy_ci[0], c.accuracy_ci[1], c.latency_p50, c.latency_p95,
                 c.latency_p99, c.cost_total, c.cost_per_correct) for c in self.conditions]  # fmt: skip

    def comparison_rows(self) -> list[tuple[object, ...]]:
        """One row per comparison (see `COMPARISON_HEADERS`), unformatted."""
        return [(f"{c.b} − {c.a}", c.difference, c.confidence_interval[0], c.confidence_interval[1], c.pvalue, c.pvalue_adjusted,
                 c.significant, c.mde, c.power) for c in self.comparisons]  # fmt: skip

    def methods_text(self) -> str:
        """The methods paragraph: tests, effects, intervals, correction, sensitivity, seeds, versions."""
        cfg = self.config
        exp = self.manifest.get("experiment", {})
        versions = ", ".join(
            f"{k} {v}" for k, v in self.manifest.get("versions", {}).items()
        )
        n_items = len(self.manifest.get("items", []))
        level = f"{cfg.confidence_level:.0%}"
        alpha = fmt.number(cfg.alpha, "setting")
        if cfg.correction == "none":
            correction = "p-values were not adjusted for multiplicity"
        else:
            correction = f"p-values were adjusted with the {cfg.correction} method within each family"
        parts = [self.simulated_notice] if self.simulated_notice else []
        parts += [
            f"Each of {len(self.conditions)} conditions answered {n_items} items"
            f" {exp.get('repeats', 1)} time(s) (seed {exp.get('run', {}).get('seed', 0)}; scorer {self.manifest.get('scorer', '?')}).",
            "Failed tasks (after retries) count as incorrect. Records are put in task order (condition, item, repeat)"
            " before any resampling, so results do not depend on the order tasks completed.",
            f"Accuracy intervals per condition are {level} cluster-bootstrap intervals over items"
            " (Wilson score intervals with a single repeat).",
            "Each comparison is treatment − baseline on the items both answered. Accuracy with one repeat:"
            " McNemar's asymptotic test without continuity correction, with Tango's score interval of the paired"
            " risk difference, which inverts it; with repeats: a paired t-test on per-item mean accuracies with"
            " its t interval. The interval and the p-value come from the same procedure, so an interval excludes"
            f" zero exactly when p < {fmt.number(1 - cfg.confidence_level, 'setting')}.",
            "Effect sizes: the risk difference (with the test's interval), the odds ratio and Cohen's h of the two"
            " accuracies (percentile cluster-bootstrap intervals over items), and with repeats d_z of the per-item"
            " mean accuracies (noncentral-t interval).",
            "Latency and cost: paired t-tests on per-item mean latency (completed tasks) and per-item mean cost,"
            " with t intervals, and the differences of P95 and P99 latency with a paired cluster bootstrap over"
            f" items (B = {cfg.n_resamples}; percentile interval and the bootstrap p-value"
            " 2·min(#θ* ≤ 0 + 1, #θ* ≥ 0 + 1)/(B + 1), which agree).",
            f"Families: the {len(self.comparisons)} accuracy comparison(s) form the primary family and the"
            f" {len(self.metric_comparisons)} latency and cost comparison(s) a declared second family; {correction};"
            f" significance at α = {alpha}. The CI columns are unadjusted; each comparison also gives its"
            " procedure's interval at the level the correction implies (1 − α·p/p_adjusted), which excludes"
            " zero exactly when the comparison is significant (simultaneous intervals for Bonferroni).",
            (
                f"Sensitivity: the minimum detectable difference is the smallest accuracy difference a paired"
                f" t-test on per-item means detects with {cfg.target_power:.0%} power at α = {alpha} with the items"
                " and repeats run, from the run's between-item and within-item (repeat) variance as a pilot;"
                " no power is computed at the observed effect (Hoenig & Heisey 2001)."
            ),
        ]
        if cfg.target_effect is not None:
            parts.append(
                f"A priori power and the items needed are for the target difference"
                f" {fmt.number(abs(cfg.target_effect), 'proportion')} named before the run."
            )
        if cfg.alpha > 1 - cfg.confidence_level:
            parts.append(
                f"Note: α = {alpha} exceeds 1 − {level}, so a significant result can have an interval covering zero."
            )
        seq = (self.manifest.get("run_state") or {}).get("sequential")
        if seq:
            parts.append(_sequential_text(seq))
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
                rows=[
                    (self.label(c.name), fmt.number(c.tasks, "count"), fmt.number(c.errors, "count"),
                     fmt.number(c.accuracy, "proportion"), fmt.number(c.accuracy_ci[0], "proportion"),
                     fmt.number(c.accuracy_ci[1], "proportion"), fmt.number(c.latency_p50, "seconds"),
                     fmt.number(c.latency_p95, "seconds"), fmt.number(c.latency_p99, "seconds"),
                     _usd(c.cost_total), _usd(c.cost_per_correct))
                    for c in self.conditions
                ],
            )
        ]  # fmt: skip
        if self.comparisons:
            tables.append(
                Table(
                    title="Comparisons (treatment − baseline)",
                    headers=self.COMPARISON_HEADERS,
                    rows=[
                        (f"{c.b} − {c.a}", fmt.number(c.difference, "difference"),
                         fmt.number(c.confidence_interval[0], "difference", signed=False),
                         fmt.number(c.confidence_interval[1], "difference", signed=False),
                         fmt.number(c.pvalue, "p"), fmt.number(c.pvalue_adjusted, "p"),
                         "yes" if c.significant else "no", fmt.number(c.mde, "proportion"),
                         fmt.number(c.power, "proportion"))
                        for c in self.comparisons
                    ],
                )
            )  # fmt: skip
        if self.metric_comparisons:
            tables.append(
                Table(
                    title="Latency and cost (treatment − baseline; second family)",
                    headers=("comparison", "metric", "difference", "ci", "p", "p_adj", "significant"),
                    rows=[
                        (f"{m.b} − {m.a}", m.label, _difference_text(m), _interval_text(m),
                         fmt.number(m.pvalue, "p"), fmt.number(m.pvalue_adjusted, "p"),
                         "yes" if m.significant else "no")
                        for m in self.metric_comparisons
                    ],
                )
            )  # fmt: skip
        notes = [self.simulated_notice] if self.simulated_notice else []
        seq = (self.manifest.get("run_state") or {}).get("sequential")
        if seq:
            notes.append(_sequential_text(seq))
        notes += [c.interpretation for c in self.comparisons]
        if self.frontier:
            notes.append(f"Cost–accuracy frontier: {', '.join(self.frontier)}.")
        if self.frontier_latency:
            notes.append(
                f"Cost–accuracy–latency (P95) frontier: {', '.join(self.frontier_latency)}."
            )
        if unknown_cost_note(self.conditions):
            notes.append(unknown_cost_note(self.conditions))
        return View(
            title=f"Analysis: {self.manifest.get('experiment', {}).get('name', 'run')}",
            facts=[("simulated", self.simulated_notice)]
            if self.simulated_notice
            else [],
            tables=tables,
            notes=notes,
        )


def _sequential_text(seq: Mapping[str, Any]) -> str:
    """How a sequential run stopped, and what that means for the fixed-n numbers."""
    stopped = (
        f"stopped early after {seq['items_at_stop']} of {seq['items_total']} items"
        if seq.get("fired")
        else f"ran all {seq['items_total']} items (the rule did not fire)"
    )
    kind = (
        "anytime-valid betting confidence sequences"
        if seq.get("method") == "confidence_sequence"
        else "repeated confidence intervals of the O'Brien–Fleming design"
    )
    parts = [
        f"Sequential run: {seq['rule']}; it {stopped}. The sequential intervals are {kind}:"
    ]
    for c in seq.get("comparisons", []):
        lo, hi = c["confidence_interval"]
        parts.append(
            f" {c['b']} − {c['a']} = {c['difference']:.3f} [{lo:.3f}, {hi:.3f}]"
            f"{' (decided)' if c['decided'] else ''}{' (futile)' if c['futile'] else ''};"
        )
    if seq.get("fired"):
        parts.append(
            " this non-sequential analysis of a sequentially stopped run does not account for the"
            " stopping rule: its p-values and intervals are for reference only."
        )
    return "".join(parts)


_SIM_TARGET = re.compile(r"(?:^|[(,\s])sim:")


def simulated_in_manifest(manifest: Mapping[str, Any]) -> frozenset[str]:
    """The names of the manifest's simulated conditions.

    Manifests record `simulated` per condition; for runs written before they did, a condition is
    simulated when its target names a `sim:` model (`"sim:gpt-4"`, an ensemble id with `sim:` members).
    """
    conditions = (manifest.get("experiment") or {}).get("conditions") or []
    names = set()
    for c in conditions:
        if not isinstance(c, Mapping):
            continue
        flag = c.get("simulated")
        if flag is None:
            flag = bool(_SIM_TARGET.search(str(c.get("target", ""))))
        if flag:
            names.add(str(c.get("name")))
    return frozenset(names)


def metric_scale(m: MetricComparison) -> float | None:
    """The magnitude a latency or cost difference is shown at: the larger of the compared values."""
    values = [abs(v) for v in (m.baseline, m.treatment) if math.isfinite(v)]
    return max(values) if values else None


def effect_kind(name: str) -> Kind:
    """How an effect's numbers are formatted."""
    if name == "risk difference":
        return "difference"
    return "ratio" if name == "odds ratio" else "effect"


def _difference_text(m: MetricComparison) -> str:
    return fmt.number(m.difference, m.kind, scale=metric_scale(m), signed=True)


def _interval_text(m: MetricComparison) -> str:
    return fmt.interval(*m.confidence_interval, m.kind, scale=metric_scale(m))


def _per_item(
    records: Sequence[Mapping[str, Any]], condition: str
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in records:
        if r["condition"] == condition and r.get("correct") is not None:
            out.setdefault(str(r["item"]), []).append(1.0 if r["correct"] else 0.0)
    return out


def _by_repeat(
    records: Sequence[Mapping[str, Any]], condition: str
) -> dict[str, dict[int, float]]:
    """Graded outcomes of one condition by item, then by repeat index."""
    out: dict[str, dict[int, float]] = {}
    for r in records:
        if r["condition"] == condition and r.get("correct") is not None:
            out.setdefault(str(r["item"]), {})[int(r.get("repeat") or 0)] = (
                1.0 if r["correct"] else 0.0
            )
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
    priced = [r for r in mine if r.get("cost") is not None]
    costs = [float(r["cost"]) for r in priced]
    cost = math.fsum(costs) if priced else None
    correct = sum(1 for r in priced if r.get("correct"))
    return ConditionSummary(
        name=name, tasks=len(mine), completed=len(ok), errors=len(mine) - len(ok), items=len({r["item"] for r in mine}),
        accuracy=accuracy, accuracy_ci=(low, high),
        accuracy_completed=float(np.mean([bool(r["correct"]) for r in graded_ok])) if graded_ok else nan,
        latency_p50=p50, latency_p95=p95, latency_p99=p99, latency_mean=float(np.mean(latencies)) if latencies else nan,
        cost_total=cost, cost_per_query=None if cost is None else cost / len(priced),
        cost_per_correct=None if cost is None else cost / correct if correct else math.inf,
        input_tokens=float(np.mean([r.get("input_tokens") or 0 for r in ok])) if ok else nan,
        output_tokens=float(np.mean([r.get("output_tokens") or 0 for r in ok])) if ok else nan,
        latency_p99_ci=_quantile_ci(latencies, 0.99, config.confidence_level),
        cost_per_query_ci=_mean_ci(costs, config.confidence_level) if costs else (nan, nan),
        cost_unknown=len(mine) - len(priced),
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


def unknown_cost_note(conditions: Sequence[ConditionSummary]) -> str:
    """The sentence naming conditions whose cost is (partly) unknown, or `""`."""
    parts = [
        f"{c.name} ({c.cost_unknown} of {c.tasks} tasks)"
        for c in conditions
        if c.cost_unknown
    ]
    if not parts:
        return ""
    return (
        f"Cost unknown (no price for the model) for {', '.join(parts)}: those tasks are left out of"
        " every cost figure and comparison, and a condition with no known cost is not on a frontier."
    )  # fmt: skip


def _usd(value: float | None) -> str:
    """Dollars, or "unknown" for a cost nobody could price (never shown as $0)."""
    return "unknown" if value is None else fmt.number(value, "usd")


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


def in_task_order(
    records: Sequence[Mapping[str, Any]],
) -> tuple[Mapping[str, Any], ...]:
    """The records sorted by task (condition, item, repeat), whatever order they completed in.

    Every resampling draws items by position, so the analysis sorts first: the same records give the
    same intervals and p-values however the tasks were scheduled or resumed.
    """
    return tuple(
        sorted(
            records,
            key=lambda r: (
                str(r["condition"]),
                str(r["item"]),
                int(r.get("repeat") or 0),
            ),
        )
    )


@attrs.define(frozen=True)
class _Test:
    """An estimate with the interval and p-value of one procedure."""

    estimate: float
    interval: tuple[float, float]
    pvalue: float
    method: str
    interval_method: str
    at: Callable[[float], tuple[float, float]] = attrs.field(eq=False, repr=False)
    """The interval of the same procedure at another confidence level."""


def _with_interval(test: _Test) -> str:
    """`"<test> with its t interval"`, `"<test> with Tango's score interval"`."""
    article = "" if "'" in test.interval_method else "its "
    return f"{test.method} with {article}{test.interval_method}"


def _paired_t(d: FloatArray, level: float) -> _Test:
    """Paired t-test on per-item differences with its t interval (they agree by construction)."""
    from scipy.stats import t as student

    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    method = f"paired t-test on per-item means (df = {n - 1})"
    if n < 2 or not sd > 0:
        # No spread: the difference is known exactly on these items.
        return _Test(
            mean,
            (mean, mean),
            1.0 if mean == 0 else 0.0,
            method,
            "t interval",
            lambda _: (mean, mean),
        )
    se = sd / math.sqrt(n)
    stat = mean / se
    q = float(student.ppf((1 + level) / 2, n - 1))
    p = float(min(1.0, 2 * student.sf(abs(stat), n - 1)))
    return _Test(
        mean,
        (mean - q * se, mean + q * se),
        p,
        method,
        "t interval",
        lambda lv: _paired_t(d, lv).interval,
    )


def _tango_score(n12: float, n21: float, n: float, delta: float) -> float:
    """Tango's (1998) score statistic for a paired risk difference `delta` (treatment − baseline).

    `n12`: items only the treatment got right; `n21`: items only the baseline got right. At
    `delta = 0` it is McNemar's statistic (n12 − n21)/√(n12 + n21).
    """
    numerator = n12 - n21 - n * delta
    if numerator == 0:
        return 0.0
    a = 2 * n
    b = -n12 - n21 + (2 * n - n12 + n21) * delta
    c = -n21 * delta * (1 - delta)
    p21 = (math.sqrt(max(b * b - 4 * a * c, 0.0)) - b) / (2 * a)
    variance = n * (2 * p21 + delta * (1 - delta))
    if variance <= 0:
        return math.copysign(math.inf, numerator)
    return numerator / math.sqrt(variance)


def _mcnemar_tango(a: FloatArray, b: FloatArray, level: float) -> _Test:
    """McNemar's asymptotic test (no continuity correction) with Tango's score interval, its inversion.

    Fagerland, Lydersen & Laake (2013, 2014) recommend both for paired binomial proportions.
    """
    from scipy.optimize import brentq
    from scipy.special import ndtr, ndtri

    n = float(a.size)
    n12 = float(((b == 1) & (a == 0)).sum())
    n21 = float(((b == 0) & (a == 1)).sum())
    diff = (n12 - n21) / n
    z0 = _tango_score(n12, n21, n, 0.0)
    p = float(min(1.0, 2 * ndtr(-abs(z0))))
    crit = float(ndtri((1 + level) / 2))
    edge = 1 - 1e-12

    def bound(target: float, lo: float, hi: float, default: float) -> float:
        def f(d: float) -> float:
            return _tango_score(n12, n21, n, d) - target

        if f(lo) * f(hi) > 0:
            return default
        return float(brentq(f, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps))

    low = bound(crit, -edge, diff, -1.0) if diff > -edge else -1.0
    high = bound(-crit, diff, edge, 1.0) if diff < edge else 1.0
    # The test and the interval are the same statistic against the same critical value; settle the
    # root finder's last ulp so that they can never disagree about zero.
    if p < 1 - level:
        low, high = (
            (max(low, math.ulp(0.0)), high)
            if diff > 0
            else (low, min(high, -math.ulp(0.0)))
        )
    else:
        low, high = min(low, 0.0), max(high, 0.0)
    return _Test(
        diff,
        (low, high),
        p,
        "McNemar's test (asymptotic, no continuity correction)",
        "Tango's score interval",
        lambda lv: _mcnemar_tango(a, b, lv).interval,
    )


def _order_interval(boots: FloatArray, level: float) -> tuple[float, float]:
    """Percentile interval from order statistics θ*_(k), θ*_(B+1−k), k the largest with 2k/(B+1) < 1 − level.

    With that k the interval excludes zero exactly when the bootstrap p-value
    2·min(#θ* ≤ 0 + 1, #θ* ≥ 0 + 1)/(B + 1) is below 1 − level (see `_boot_test`).
    """
    ordered = np.sort(boots)
    size = ordered.size
    alpha = 1 - level
    # The same comparison `_boot_test` makes, so the two agree to the last float.
    k = max(int(alpha * (size + 1) / 2) + 2, 1)
    while k > 0 and not 2 * k / (size + 1) < alpha:
        k -= 1
    if k == 0:
        return -math.inf, math.inf  # too few resamples for this level
    return float(ordered[k - 1]), float(ordered[size - k])


def _boot_test(estimate: float, boots: FloatArray, level: float, method: str) -> _Test:
    """Bootstrap p-value 2·min(#θ* ≤ 0 + 1, #θ* ≥ 0 + 1)/(B + 1) with the matching percentile interval."""
    size = boots.size
    below = int((boots <= 0).sum()) + 1
    above = int((boots >= 0).sum()) + 1
    p = min(1.0, 2 * min(below, above) / (size + 1))
    return _Test(
        estimate,
        _order_interval(boots, level),
        p,
        method,
        "percentile interval",
        lambda lv: _order_interval(boots, lv),
    )


def _bootstrap_indices(n: int, config: AnalysisConfig, seed: int) -> IntArray:
    """Item indices of the paired cluster bootstrap: B resamples of the n shared items."""
    rng = np.random.default_rng(seed)
    out: IntArray = rng.integers(0, n, size=(config.n_resamples, n))
    return out


def _padded(groups: Sequence[Sequence[float]]) -> tuple[FloatArray, IntArray]:
    lengths = np.array([len(g) for g in groups], dtype=np.int64)
    pad = np.full((len(groups), int(lengths.max(initial=1))), np.nan)
    for i, g in enumerate(groups):
        pad[i, : len(g)] = g
    return pad, lengths


def _resampled_percentiles(
    groups: Sequence[Sequence[float]], picks: IntArray, qs: Sequence[float]
) -> FloatArray:
    """Percentiles (numpy's linear rule) of all values of the resampled items: B × len(qs)."""
    pad, lengths = _padded(groups)
    out = np.empty((picks.shape[0], len(qs)))
    block = max(1, 2_000_000 // max(pad.size, 1))
    for start in range(0, picks.shape[0], block):
        idx = picks[start : start + block]
        values = np.sort(pad[idx].reshape(idx.shape[0], -1), axis=1)  # NaN sort last
        counts = lengths[idx].sum(axis=1)
        for j, q in enumerate(qs):
            pos = (counts - 1) * (q / 100)
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, counts - 1)
            frac = pos - lo
            rows = np.arange(idx.shape[0])
            v_lo, v_hi = values[rows, lo], values[rows, hi]
            out[start : start + block, j] = v_lo + (v_hi - v_lo) * frac
    return out


def _logit(p: FloatArray | float) -> Any:
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-np.asarray(p))


def _exp(*values: float) -> tuple[float, float]:
    with np.errstate(over="ignore"):
        low, high = (float(np.exp(v)) for v in values)
    return low, high


def _accuracy_effects(
    ma: FloatArray,
    mb: FloatArray,
    test: _Test,
    picks: IntArray,
    level: float,
    *,
    repeated: bool,
) -> tuple[EffectSize, ...]:
    """Risk difference (the test's interval), odds ratio and Cohen's h (cluster bootstrap), d_z."""
    pa, pb = float(ma.mean()), float(mb.mean())
    boot_a, boot_b = ma[picks].mean(axis=1), mb[picks].mean(axis=1)
    log_or = float(_logit(pb) - _logit(pa)) if 0 < pa < 1 and 0 < pb < 1 else math.nan
    h = 2 * math.asin(math.sqrt(pb)) - 2 * math.asin(math.sqrt(pa))
    with np.errstate(invalid="ignore"):
        boot_log_or = _logit(boot_b) - _logit(boot_a)
    boot_h = 2 * np.arcsin(np.sqrt(boot_b)) - 2 * np.arcsin(np.sqrt(boot_a))
    boot = "percentile cluster bootstrap over items"
    or_low, or_high = (
        _order_interval(np.nan_to_num(boot_log_or, nan=0.0), level)
        if math.isfinite(log_or)
        else (math.nan, math.nan)
    )
    effects = [
        EffectSize(name="risk difference", estimate=test.estimate, confidence_interval=test.interval,
                   method=f"the test's interval ({test.interval_method})"),
        EffectSize(name="odds ratio", estimate=math.exp(log_or) if math.isfinite(log_or) else math.nan,
                   confidence_interval=_exp(or_low, or_high), method=f"{boot} (log scale)"),
        EffectSize(name="Cohen's h", estimate=h, confidence_interval=_order_interval(boot_h, level), method=boot),
    ]  # fmt: skip
    if repeated:
        import crucible_bench as bench

        d = mb - ma
        if d.size > 2 and float(d.std(ddof=1)) > 0:
            try:
                dz = bench.cohen_dz(mb, ma, confidence_level=level)
            except (
                bench.BenchError
            ):  # pragma: no cover - guarded by the spread check above
                pass
            else:
                effects.append(
                    EffectSize(name="d_z", estimate=float(dz.estimate),
                               confidence_interval=(float(dz.confidence_interval[0]), float(dz.confidence_interval[1])),
                               method="per-item mean accuracies; noncentral-t interval")
                )  # fmt: skip
    return tuple(effects)


def _variance_components(
    xa: Sequence[Sequence[float]],
    xb: Sequence[Sequence[float]],
    paired: Sequence[Sequence[float]],
) -> tuple[float, float]:
    """Between-item variance σ²_b of the true per-item difference, and the within-item variance σ²_w.

    Repeats are paired by their index (the same repeat of an item in both conditions), so σ²_w is
    the pooled within-item variance of the per-repeat differences `paired`, and
    Var(per-item mean difference) = σ²_b + σ²_w/r. Pairing keeps the covariance of two conditions
    that answer a repeat alike (a hedged copy of a model); for independent repeats it estimates
    σ²_w,a + σ²_w,b, the split `plan_sample_size` uses.
    """
    dof = sum(len(g) - 1 for g in paired if len(g) > 1)
    ss = sum(
        float(((np.asarray(g) - np.mean(g)) ** 2).sum()) for g in paired if len(g) > 1
    )
    within = ss / dof if dof > 0 else 0.0
    d = np.array([np.mean(b) - np.mean(a) for a, b in zip(xa, xb, strict=True)])
    counts = np.array([(len(a) + len(b)) / 2 for a, b in zip(xa, xb, strict=True)])
    observed = float(d.var(ddof=1)) if d.size > 1 else 0.0
    between = max(observed - float((within / counts).mean()), 0.0)
    return between, within


_REPEAT_GRID = (1, 2, 3, 5, 10)


def _sensitivity(
    xa: Sequence[Sequence[float]],
    xb: Sequence[Sequence[float]],
    paired: Sequence[Sequence[float]],
    config: AnalysisConfig,
) -> dict[str, Any]:
    """MDE at the items and repeats run, a priori power at `target_effect`, and the plan by repeats."""
    import crucible_bench as bench

    n = len(xa)
    d = np.array([np.mean(b) - np.mean(a) for a, b in zip(xa, xb, strict=True)])
    sd_run = float(d.std(ddof=1)) if n > 1 else 0.0
    reps = float(np.mean([len(g) for g in (*xa, *xb)]))
    run_reps = max(1, round(reps))
    out: dict[str, Any] = {
        "mde": None,
        "mde_dz": None,
        "power": None,
        "items_needed": None,
        "plan": (),
    }
    if n < 3 or not sd_run > 0:
        return out
    try:
        d_mde = float(
            bench.power_ttest(
                n=n, power=config.target_power, alpha=config.alpha, kind="paired"
            ).effect_size
        )
    except bench.BenchError:
        return out
    between, within = (
        _variance_components(xa, xb, paired) if run_reps > 1 else (sd_run**2, 0.0)
    )

    def sd_at(r: int) -> float:
        return sd_run if r == run_reps else math.sqrt(between + within / r)

    def needed(r: int) -> int | None:
        if config.target_effect is None or not sd_at(r) > 0:
            return None
        try:
            return bench.power_ttest(
                effect_size=abs(config.target_effect) / sd_at(r),
                power=config.target_power,
                alpha=config.alpha,
                kind="paired",
            ).n_required
        except bench.BenchError:
            return None

    grid = sorted({*_REPEAT_GRID, run_reps}) if run_reps > 1 else [1]
    plan = []
    for r in grid:
        items = needed(r)
        plan.append(
            PlanRow(
                repeats=r,
                mde=min(d_mde * sd_at(r), 1.0),
                items_needed=items,
                evaluations=None if items is None else items * r,
            )
        )
    out.update(
        mde=min(d_mde * sd_run, 1.0),
        mde_dz=d_mde,
        plan=tuple(plan),
        items_needed=needed(run_reps),
    )
    if config.target_effect is not None:
        try:
            out["power"] = float(
                bench.power_ttest(
                    effect_size=abs(config.target_effect) / sd_run,
                    n=n,
                    alpha=config.alpha,
                    kind="paired",
                ).power
            )
        except bench.BenchError:
            out["power"] = None
    return out  # fmt: skip


def _compare(
    a: str,
    b: str,
    records: Sequence[Mapping[str, Any]],
    config: AnalysisConfig,
    seed: int,
) -> tuple[tuple[Comparison, _Test] | None, list[tuple[MetricComparison, _Test]]]:
    ia, ib = _per_item(records, a), _per_item(records, b)
    shared = [i for i in ia if i in ib]
    metrics = _metric_comparisons(a, b, records, config, seed)
    if len(shared) < 2:
        return None, metrics
    xa, xb = [ia[i] for i in shared], [ib[i] for i in shared]
    repeated = max(len(v) for v in (*xa, *xb)) > 1
    ma = np.array([np.mean(v) for v in xa])
    mb = np.array([np.mean(v) for v in xb])
    level = config.confidence_level
    test = _paired_t(mb - ma, level) if repeated else _mcnemar_tango(ma, mb, level)
    picks = _bootstrap_indices(len(shared), config, seed)
    ra, rb = _by_repeat(records, a), _by_repeat(records, b)
    paired = [
        [rb[i][r] - ra[i][r] for r in sorted(ra[i].keys() & rb[i].keys())]
        for i in shared
    ]
    sens = _sensitivity(xa, xb, paired, config)
    comparison = Comparison(
        a=a, b=b, accuracy_a=float(ma.mean()), accuracy_b=float(mb.mean()), difference=test.estimate,
        confidence_interval=test.interval, pvalue=test.pvalue, pvalue_adjusted=test.pvalue, significant=False,
        method=_with_interval(test), n_items=len(shared), n_repeats=float(np.mean([len(v) for v in (*xa, *xb)])),
        effects=_accuracy_effects(ma, mb, test, picks, level, repeated=repeated), **sens,
    )  # fmt: skip
    return (comparison, test), metrics


def _item_values(
    records: Sequence[Mapping[str, Any]], condition: str, field: str, *, completed: bool
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in records:
        if r["condition"] != condition or (completed and r.get("status") != "ok"):
            continue
        value = r.get(field)
        if (completed or field == "cost") and value is None:
            continue  # an unknown cost is left out, never counted as $0
        out.setdefault(str(r["item"]), []).append(float(value or 0.0))
    return out


_TAIL_MINIMUM = 10
"""Observations above a percentile below which its bootstrap interval is flagged as rough."""


def _metric_comparisons(
    a: str,
    b: str,
    records: Sequence[Mapping[str, Any]],
    config: AnalysisConfig,
    seed: int,
) -> list[tuple[MetricComparison, _Test]]:
    """Mean latency and mean cost (paired t on per-item means), P95/P99 latency (cluster bootstrap)."""
    level = config.confidence_level
    out: list[tuple[MetricComparison, _Test]] = []
    for field, completed, kind, key, label in (
        ("latency", True, "seconds", "latency", "latency (s)"),
        ("cost", False, "usd", "cost", "cost per task (USD)"),
    ):
        va = _item_values(records, a, field, completed=completed)
        vb = _item_values(records, b, field, completed=completed)
        shared = [i for i in va if i in vb]
        if len(shared) < 2:
            continue
        ga, gb = [va[i] for i in shared], [vb[i] for i in shared]
        ma = np.array([np.mean(g) for g in ga])
        mb = np.array([np.mean(g) for g in gb])
        rows: list[tuple[str, str, float, float, _Test]] = [
            (f"{key}_mean", f"per-item mean {label}", float(ma.mean()), float(mb.mean()), _paired_t(mb - ma, level)),
        ]  # fmt: skip
        if field == "latency":
            qs = (95.0, 99.0)
            picks = _bootstrap_indices(len(shared), config, seed)
            boot_a = _resampled_percentiles(ga, picks, qs)
            boot_b = _resampled_percentiles(gb, picks, qs)
            flat_a = np.concatenate([np.asarray(g) for g in ga])
            flat_b = np.concatenate([np.asarray(g) for g in gb])
            for j, q in enumerate(qs):
                pa = float(np.percentile(flat_a, q))
                pb = float(np.percentile(flat_b, q))
                method = (
                    f"paired cluster bootstrap over items (B = {config.n_resamples})"
                )
                above = min(flat_a.size, flat_b.size) * (1 - q / 100)
                if above < _TAIL_MINIMUM:
                    method += (
                        f"; fewer than {_TAIL_MINIMUM} latencies per condition lie above"
                        f" P{q:.0f}, so its interval is rough"
                    )
                test = _boot_test(pb - pa, boot_b[:, j] - boot_a[:, j], level, method)
                if "; " in method:  # the caveat reads after the interval's name
                    head, caveat = method.split("; ", 1)
                    test = attrs.evolve(
                        test,
                        method=head,
                        interval_method=f"percentile interval; {caveat}",
                    )
                rows.append((f"latency_p{q:.0f}", f"P{q:.0f} {label}", pa, pb, test))
        for metric, name, base, treat, test in rows:
            out.append((
                MetricComparison(a=a, b=b, metric=metric, label=name, kind=kind,  # type: ignore[arg-type]
                                 n_items=len(shared), baseline=base, treatment=treat, difference=test.estimate,
                                 confidence_interval=test.interval, pvalue=test.pvalue, pvalue_adjusted=test.pvalue,
                                 significant=False, method=_with_interval(test)),
                test,
            ))  # fmt: skip
    return out


def _frontier(
    summaries: Sequence[ConditionSummary], *, latency: bool = False
) -> tuple[str, ...]:
    """Pareto frontier: lower cost and higher accuracy (and, with `latency`, lower P95) are better."""
    points = [
        (s.cost_per_query, -s.accuracy, s.latency_p95 if latency else 0.0, s.name)
        for s in summaries
        if s.cost_per_query
        is not None  # an unknown cost is never on a frontier (as free)
        and not math.isnan(s.accuracy)
        and not (latency and math.isnan(s.latency_p95))
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


_C = TypeVar("_C", Comparison, MetricComparison)


def _corrected(found: Sequence[tuple[_C, _Test]], config: AnalysisConfig) -> list[_C]:
    """Adjust the p-values of one family; significance at alpha; intervals at the implied level.

    A comparison is significant when p_adjusted < α, that is when p < α·p/p_adjusted: the interval
    of its procedure at level 1 − α·p/p_adjusted excludes zero exactly then.
    """
    if not found:
        return []
    import crucible_bench as bench

    pvalues = [c.pvalue for c, _ in found]
    adjusted = (
        pvalues
        if config.correction == "none"
        else [float(p) for p in bench.adjust_pvalues(pvalues, method=config.correction)]
    )
    out = []
    for (c, test), p_adj in zip(found, adjusted, strict=True):
        level = 1 - config.alpha * (c.pvalue / p_adj if p_adj > 0 else 1.0)
        out.append(
            attrs.evolve(
                c,
                pvalue_adjusted=float(p_adj),
                significant=bool(p_adj < config.alpha),
                confidence_interval_adjusted=test.at(level)
                if p_adj > 0
                else test.interval,
            )
        )
    return out


def _effects_text(c: Comparison) -> str:
    parts = []
    for e in c.effects:
        if e.name == "risk difference":
            continue
        kind = effect_kind(e.name)
        signed = False if kind == "ratio" else None
        parts.append(
            f"{e.name} {fmt.number(e.estimate, kind, signed=signed)}"
            f" {fmt.interval(*e.confidence_interval, kind, each=True)}"
        )
    return "; ".join(parts)


def _interpreted(c: Comparison, config: AnalysisConfig) -> Comparison:
    level = f"{config.confidence_level:.0%}"
    adjusted = (
        ""
        if config.correction == "none"
        else f", {config.correction}-adjusted {fmt.pvalue(c.pvalue_adjusted)}"
    )
    if adjusted and c.pvalue_adjusted != c.pvalue:
        adjusted += (
            f" (interval at the adjusted level"
            f" {fmt.interval(*c.confidence_interval_adjusted, 'difference')})"
        )
    verdict = "significant" if c.significant else "not significant"
    repeats = fmt.number(c.n_repeats, "count")
    text = (
        f"{c.b} − {c.a}: accuracy {fmt.number(c.accuracy_b, 'proportion')} vs {fmt.number(c.accuracy_a, 'proportion')},"
        f" difference {fmt.number(c.difference, 'difference')} ({level} CI"
        f" {fmt.interval(*c.confidence_interval, 'difference')}) over {c.n_items} items × {repeats} repeat(s);"
        f" {c.method}, {fmt.pvalue(c.pvalue)}{adjusted}: {verdict} at α = {fmt.number(config.alpha, 'setting')}."
    )
    effects = _effects_text(c)
    if effects:
        text += f" Effects ({level} CI): {effects}."
    power = f"{config.target_power:.0%} power"
    if config.target_effect is not None:
        target = fmt.number(abs(config.target_effect), "proportion")
        if c.power is not None:
            text += f" A priori power to detect a difference of {target}: {fmt.number(c.power, 'proportion')}"
            text += (
                f"; {c.items_needed} items at {repeats} repeat(s) give {power}."
                if c.items_needed is not None
                else "."
            )
    elif c.mde is not None:
        text += (
            f" Minimum detectable difference at {power}: {fmt.number(c.mde, 'proportion')}"
            f" (d_z = {fmt.number(c.mde_dz, 'effect', signed=False)})."
        )
    return attrs.evolve(c, interpretation=text)


def _pairs(conditions: Sequence[str], config: AnalysisConfig) -> list[tuple[str, str]]:
    """(baseline, treatment) pairs: the primary one, each condition against the baseline, or all pairs."""
    if config.primary:
        baseline, treatment = config.primary
        return [(baseline, treatment)]
    if config.baseline is not None:
        if config.baseline not in conditions:
            raise ValidationError(
                f"analysis baseline {config.baseline!r} is not a condition of {list(conditions)}",
                baseline=config.baseline,
            )
        return [(config.baseline, c) for c in conditions if c != config.baseline]
    return list(itertools.combinations(conditions, 2))


def analyse(
    records: Sequence[Mapping[str, Any]],
    *,
    conditions: Sequence[str],
    config: AnalysisConfig,
    manifest: Mapping[str, Any] | None = None,
) -> Analysis:
    """Analyse task records: summaries, corrected paired comparisons (treatment − baseline), the frontier.

    The records are first put in task order (see `in_task_order`), so the result does not depend on
    the order tasks completed in.
    """
    manifest = dict(manifest or {})
    ordered = in_task_order(records)
    seed = int(manifest.get("experiment", {}).get("run", {}).get("seed", 0))
    summaries = tuple(_summary(c, ordered, config, seed) for c in conditions)
    accuracy: list[tuple[Comparison, _Test]] = []
    metrics: list[tuple[MetricComparison, _Test]] = []
    for a, b in _pairs(conditions, config):
        comparison, metric = _compare(a, b, ordered, config, seed)
        if comparison is not None:
            accuracy.append(comparison)
        metrics.extend(metric)
    found = [_interpreted(c, config) for c in _corrected(accuracy, config)]
    return Analysis(conditions=summaries, comparisons=tuple(found), frontier=_frontier(summaries),
                    frontier_latency=_frontier(summaries, latency=True),
                    metric_comparisons=tuple(_corrected(metrics, config)), config=config,
                    manifest=manifest, records=ordered)  # fmt: skip

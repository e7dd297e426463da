"""Metrics of an experiment: summary, latency, cost, reliability and tokens, with breakdowns."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeAlias

import attrs
import numpy as np
from numpy.typing import NDArray

from crucible_core import stats
from crucible_core.render import RenderMixin, Table, View
from crucible_core.stats import ConfidenceInterval
from crucible_telemetry._capture import StoreLike
from crucible_telemetry._events import Events, get_events
from crucible_telemetry.exceptions import InvalidOptionError

__all__ = (
    "ConditionComparison",
    "CostMetrics",
    "GroupMetrics",
    "LatencyMetrics",
    "Metrics",
    "ReliabilityMetrics",
    "SummaryMetrics",
    "TokenMetrics",
    "calculate_metrics",
    "compare_conditions",
    "quantile_ci",
)

REQUESTS = "crucible.llm.request"
_NAN = math.nan

SeriesName: TypeAlias = Literal[
    "latency_ms", "cost_usd", "success", "prompt_tokens", "completion_tokens"
]


def quantile_ci(
    x: Sequence[float] | NDArray[np.float64],
    q: float,
    *,
    confidence_level: float = 0.95,
) -> ConfidenceInterval | None:
    """Distribution-free confidence interval of the `q` quantile from order statistics.

    The interval is `[x_(l), x_(u)]` (1-based order statistics) with `l` the `α/2` quantile of
    Binomial(n, q) and `u` one more than its `1 − α/2` quantile, so its coverage is at least the
    confidence level whatever the distribution (Hahn & Meeker, *Statistical Intervals*, §5.2).
    The estimate is the type-7 percentile.

    Returns:
        The interval, or `None` when the sample is too small for one (e.g. the 99th percentile at
        95 % needs n ≥ 368: below that no order statistic bounds it from above).

    Examples:
        >>> ci = quantile_ci(list(range(1, 1001)), 0.5)
        >>> ci.low, ci.high
        (469.0, 532.0)
    """
    if not 0 < q < 1:
        raise InvalidOptionError(f"q must be in (0, 1), got {q!r}", q=q)
    if not 0 < confidence_level < 1:
        raise InvalidOptionError(
            f"confidence_level must be in (0, 1), got {confidence_level!r}",
            confidence_level=confidence_level,
        )
    arr = np.sort(stats.as_sample(x))
    n = arr.size
    alpha = 1 - confidence_level
    k = np.arange(n + 1, dtype=np.float64)
    log_fact = np.concatenate(
        ([0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64))))
    )
    log_pmf = (
        log_fact[n]
        - log_fact[:]
        - log_fact[::-1]
        + k * math.log(q)
        + (n - k) * math.log1p(-q)
    )
    cdf = np.cumsum(np.exp(log_pmf))
    lower = int(np.searchsorted(cdf, alpha / 2 * (1 - 1e-12), side="left"))
    upper = int(np.searchsorted(cdf, (1 - alpha / 2) * (1 - 1e-12), side="left")) + 1
    if lower < 1 or upper > n:
        return None
    return ConfidenceInterval(
        estimate=float(np.percentile(arr, q * 100)),
        low=float(arr[lower - 1]),
        high=float(arr[upper - 1]),
        confidence_level=confidence_level,
        method="order statistics",
    )


# ---------------------------------------------------------------------------------------------------
# Results


def _fmt_dt(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@attrs.define(frozen=True, kw_only=True)
class SummaryMetrics(RenderMixin):
    """What was captured: counts, time range and event types."""

    total_events: int
    """Every captured event."""
    first: dt.datetime | None = None
    """Wall-clock time of the first event (UTC)."""
    last: dt.datetime | None = None
    """Wall-clock time of the last event (UTC)."""
    duration_seconds: float = 0.0
    """From the first to the last event, on the monotonic clock."""
    event_types: Mapping[str, int] = attrs.field(factory=dict)
    """Count per dotted event name, most frequent first."""

    def _view(self) -> View:
        return View(
            title="Summary",
            facts=[
                ("events", self.total_events),
                ("first", _fmt_dt(self.first)),
                ("last", _fmt_dt(self.last)),
                ("duration (s)", self.duration_seconds),
            ],
            tables=[
                Table(headers=("event", "count"), rows=list(self.event_types.items()))
            ],
        )


@attrs.define(frozen=True, kw_only=True)
class LatencyMetrics(RenderMixin):
    """Latency of successful requests, in milliseconds (NaN when there are none)."""

    n: int
    """Successful requests with a latency."""
    mean: float = _NAN
    """Mean."""
    median: float = _NAN
    """Median (= p50)."""
    p50: float = _NAN
    """50th percentile (type 7)."""
    p90: float = _NAN
    """90th percentile."""
    p95: float = _NAN
    """95th percentile."""
    p99: float = _NAN
    """99th percentile."""
    sd: float = _NAN
    """Sample standard deviation (NaN for n < 2)."""
    min: float = _NAN
    """Fastest."""
    max: float = _NAN
    """Slowest."""
    p99_ci: ConfidenceInterval | None = None
    """Distribution-free 95 % CI of the 99th percentile (see `quantile_ci`); `None` if n < 368."""

    _FIELDS: ClassVar[tuple[str, ...]] = (
        "n",
        "mean",
        "median",
        "p90",
        "p95",
        "p99",
        "sd",
        "min",
        "max",
    )

    def _view(self) -> View:
        notes = []
        if self.p99_ci is not None:
            notes.append(
                f"p99 95% CI: [{self.p99_ci.low:.4g}, {self.p99_ci.high:.4g}] ms"
            )
        return View(
            title="Latency (ms)",
            tables=[
                Table(
                    headers=self._FIELDS,
                    rows=[[getattr(self, f) for f in self._FIELDS]],
                )
            ],
            notes=notes,
        )


@attrs.define(frozen=True, kw_only=True)
class CostMetrics(RenderMixin):
    """Cost of requests in USD (from the events' cost, else the pricing table)."""

    total: float = 0.0
    """Sum over priced requests."""
    mean_per_request: float = _NAN
    """`total / priced`."""
    cost_per_1k_requests: float = _NAN
    """`mean_per_request × 1000`."""
    cost_per_1m_requests: float = _NAN
    """`mean_per_request × 1 000 000`."""
    priced: int = 0
    """Requests with a known cost."""
    unpriced: int = 0
    """Requests whose cost is unknown (no `cost` and no price for the model): not in `total`."""

    def _view(self) -> View:
        fields = ("total", "mean_per_request", "cost_per_1k_requests", "cost_per_1m_requests", "priced", "unpriced")  # fmt: skip
        return View(title="Cost (USD)", facts=[(f, getattr(self, f)) for f in fields])


@attrs.define(frozen=True, kw_only=True)
class ReliabilityMetrics(RenderMixin):
    """Success and failure of requests, and SLA compliance."""

    requests: int = 0
    """Finished requests (`stop` plus `exception` events)."""
    successes: int = 0
    """`stop` events."""
    failures: int = 0
    """`exception` events."""
    success_rate: float = _NAN
    """`successes / requests`."""
    failure_rate: float = _NAN
    """`failures / requests`."""
    success_rate_ci: ConfidenceInterval | None = None
    """Wilson 95 % CI of the success rate."""
    sla_99: bool = False
    """Whether the success rate is at least 99 %."""
    sla_999: bool = False
    """Whether the success rate is at least 99.9 %."""

    def _view(self) -> View:
        fields = ("requests", "successes", "failures", "success_rate", "failure_rate", "sla_99", "sla_999")  # fmt: skip
        return View(title="Reliability", facts=[(f, getattr(self, f)) for f in fields])


@attrs.define(frozen=True, kw_only=True)
class TokenMetrics(RenderMixin):
    """Token use of requests."""

    total_prompt: int = 0
    """Sum of prompt (input) tokens."""
    total_completion: int = 0
    """Sum of completion (output) tokens."""
    mean_total: float = _NAN
    """Mean prompt + completion tokens per request that reported tokens."""
    n: int = 0
    """Requests that reported tokens."""

    def _view(self) -> View:
        fields = ("total_prompt", "total_completion", "mean_total", "n")
        return View(title="Tokens", facts=[(f, getattr(self, f)) for f in fields])


@attrs.define(frozen=True, kw_only=True)
class GroupMetrics(RenderMixin):
    """Request metrics of one group of events (a condition, a model)."""

    latency: LatencyMetrics
    """Latency of successful requests."""
    cost: CostMetrics
    """Cost."""
    reliability: ReliabilityMetrics
    """Success and failure."""
    tokens: TokenMetrics
    """Token use."""

    def _view(self) -> View:
        return _group_view("Request metrics", self)


def _group_row(label: str, g: GroupMetrics) -> list[Any]:
    return [
        label,
        g.reliability.requests,
        g.reliability.success_rate,
        g.latency.mean,
        g.latency.p50,
        g.latency.p99,
        g.cost.total,
        g.tokens.mean_total,
    ]


_GROUP_HEADERS = ("group", "requests", "success_rate", "latency_mean_ms", "latency_p50_ms", "latency_p99_ms", "cost_usd", "mean_tokens")  # fmt: skip


def _group_view(title: str, g: GroupMetrics) -> View:
    return View(
        title=title, tables=[Table(headers=_GROUP_HEADERS, rows=[_group_row("all", g)])]
    )


@attrs.define(frozen=True, kw_only=True)
class Metrics(RenderMixin):
    """Everything [`calculate_metrics`][crucible_telemetry.calculate_metrics] computes.

    `latency`, `cost`, `reliability` and `tokens` cover the request events (by default
    `crucible.llm.request.stop` and `.exception`); `by_condition` and `by_model` repeat them per
    group. `to_polars()` gives one row per group.
    """

    experiment_id: str
    """The experiment."""
    summary: SummaryMetrics
    """Counts, time range, event types (all events)."""
    latency: LatencyMetrics
    """Latency of successful requests."""
    cost: CostMetrics
    """Cost of requests."""
    reliability: ReliabilityMetrics
    """Success and failure of requests."""
    tokens: TokenMetrics
    """Token use of requests."""
    by_condition: Mapping[str, GroupMetrics] = attrs.field(factory=dict)
    """The request metrics per condition."""
    by_model: Mapping[str, GroupMetrics] = attrs.field(factory=dict)
    """The request metrics per model."""

    def _view(self) -> View:
        overall = GroupMetrics(
            latency=self.latency,
            cost=self.cost,
            reliability=self.reliability,
            tokens=self.tokens,
        )
        rows = [_group_row("all", overall)]
        rows += [_group_row(f"condition={k}", g) for k, g in self.by_condition.items()]
        rows += [_group_row(f"model={k}", g) for k, g in self.by_model.items()]
        notes = []
        if self.latency.p99_ci is not None:
            ci = self.latency.p99_ci
            notes.append(f"p99 latency 95% CI: [{ci.low:.4g}, {ci.high:.4g}] ms")
        if self.cost.unpriced:
            notes.append(f"{self.cost.unpriced} request(s) had no known cost")
        return View(
            title=f"Metrics of {self.experiment_id}",
            facts=[
                ("events", self.summary.total_events),
                ("duration (s)", self.summary.duration_seconds),
                ("requests", self.reliability.requests),
                ("SLA 99%", self.reliability.sla_99),
                ("SLA 99.9%", self.reliability.sla_999),
            ],
            tables=[Table(headers=_GROUP_HEADERS, rows=rows)],
            notes=notes,
        )


# ---------------------------------------------------------------------------------------------------
# Computation


def _latency(values: NDArray[np.float64]) -> LatencyMetrics:
    if values.size == 0:
        return LatencyMetrics(n=0)
    p50, p90, p95, p99 = stats.percentiles(values, [50, 90, 95, 99])
    return LatencyMetrics(
        n=int(values.size),
        mean=float(values.mean()),
        median=p50,
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        sd=float(values.std(ddof=1)) if values.size > 1 else _NAN,
        min=float(values.min()),
        max=float(values.max()),
        p99_ci=quantile_ci(values, 0.99),
    )


def _group(cols: Mapping[str, list[Any]], rows: list[int]) -> GroupMetrics:
    success = [cols["success"][i] for i in rows]
    latency = np.array(
        [
            cols["latency_ms"][i]
            for i, ok in zip(rows, success, strict=True)
            if ok and cols["latency_ms"][i] is not None
        ],
        dtype=np.float64,
    )
    costs = [c for c in (cols["cost_usd"][i] for i in rows) if c is not None]
    total = math.fsum(costs)
    mean_cost = total / len(costs) if costs else _NAN
    n_ok = sum(1 for s in success if s)
    n = len(rows)
    rate = n_ok / n if n else _NAN
    prompt = [cols["prompt_tokens"][i] for i in rows]
    completion = [cols["completion_tokens"][i] for i in rows]
    with_tokens = [
        (p or 0) + (c or 0)
        for p, c in zip(prompt, completion, strict=True)
        if p is not None or c is not None
    ]
    return GroupMetrics(
        latency=_latency(latency),
        cost=CostMetrics(
            total=total,
            mean_per_request=mean_cost,
            cost_per_1k_requests=mean_cost * 1e3,
            cost_per_1m_requests=mean_cost * 1e6,
            priced=len(costs),
            unpriced=n - len(costs),
        ),
        reliability=ReliabilityMetrics(
            requests=n,
            successes=n_ok,
            failures=n - n_ok,
            success_rate=rate,
            failure_rate=1 - rate if n else _NAN,
            success_rate_ci=stats.proportion_ci(n_ok, n) if n else None,
            sla_99=bool(n) and rate >= 0.99,
            sla_999=bool(n) and rate >= 0.999,
        ),
        tokens=TokenMetrics(
            total_prompt=sum(p for p in prompt if p is not None),
            total_completion=sum(c for c in completion if c is not None),
            mean_total=sum(with_tokens) / len(with_tokens) if with_tokens else _NAN,
            n=len(with_tokens),
        ),
    )


def _request_rows(events: Events, requests: str) -> list[int]:
    names = events.columns["name"]
    stop, exc = requests + ".stop", requests + ".exception"
    return [i for i, nm in enumerate(names) if nm in (stop, exc)]


def metrics_of(
    experiment_id: str, events: Events, *, requests: str = REQUESTS
) -> Metrics:
    """The metrics of already-read events (what `calculate_metrics` computes)."""
    cols = events.columns
    n = len(events)
    if n:
        wall = cols["timestamp_ns"]
        mono = cols["monotonic_ns"]
        summary = SummaryMetrics(
            total_events=n,
            first=dt.datetime.fromtimestamp(min(wall) / 1e9, dt.UTC),
            last=dt.datetime.fromtimestamp(max(wall) / 1e9, dt.UTC),
            duration_seconds=(max(mono) - min(mono)) / 1e9,
            event_types=dict(Counter(cols["name"]).most_common()),
        )
    else:
        summary = SummaryMetrics(total_events=0)
    rows = _request_rows(events, requests)
    overall = _group(cols, rows)
    by_condition: dict[str, list[int]] = {}
    by_model: dict[str, list[int]] = {}
    for i in rows:
        by_condition.setdefault(cols["condition"][i], []).append(i)
        model = cols["model"][i]
        if model is not None:
            by_model.setdefault(model, []).append(i)
    return Metrics(
        experiment_id=experiment_id,
        summary=summary,
        latency=overall.latency,
        cost=overall.cost,
        reliability=overall.reliability,
        tokens=overall.tokens,
        by_condition={k: _group(cols, v) for k, v in sorted(by_condition.items())},
        by_model={k: _group(cols, v) for k, v in sorted(by_model.items())},
    )


def calculate_metrics(
    experiment_id: str, *, requests: str = REQUESTS, store: StoreLike | None = None
) -> Metrics:
    """Summary, latency, cost, reliability and token metrics of an experiment.

    Request metrics use the outcome events of `requests`: `<requests>.stop` (success) and
    `<requests>.exception` (failure). Latency is over successful requests; percentiles are R's
    type 7; the p99 has a distribution-free CI; the success rate a Wilson CI.

    Args:
        experiment_id: the experiment.
        requests: the dotted prefix of the request events, `"crucible.llm.request"` by default
            (e.g. `"crucible.hedging.request"` for hedged requests).
        store: where the experiment is; by default the stores this process has used.

    Raises:
        ExperimentNotFoundError: no store searched holds the experiment.
    """
    return metrics_of(
        experiment_id, get_events(experiment_id, store=store), requests=requests
    )


@attrs.define(frozen=True, kw_only=True)
class ConditionComparison(RenderMixin):
    """Per-request series of two experiments side by side, and crucible-bench's test of them."""

    a: str
    """The first experiment id."""
    b: str
    """The second experiment id."""
    metric: str
    """The compared series, e.g. `"latency_ms"`."""
    a_values: tuple[float, ...]
    """The series of `a`, one value per request."""
    b_values: tuple[float, ...]
    """The series of `b`."""
    a_summary: stats.Summary | None
    """Descriptive statistics of `a` (`None` if empty)."""
    b_summary: stats.Summary | None
    """Descriptive statistics of `b`."""
    test: Any = None
    """crucible-bench's result (Welch's t-test, or its `compare`), or `None` without crucible-bench."""

    def _view(self) -> View:
        headers = ("experiment", "n", "mean", "sd", "p50", "p90", "p99")
        rows = [
            [label, s.n, s.mean, s.sd, s.p50, s.p90, s.p99]
            if s
            else [label, 0] + [None] * 5
            for label, s in ((self.a, self.a_summary), (self.b, self.b_summary))
        ]
        notes = (
            [str(getattr(self.test, "interpretation", self.test))]
            if self.test is not None
            else ["install crucible-bench for a significance test and effect size"]
        )
        return View(
            title=f"{self.metric}: {self.a} vs {self.b}",
            tables=[Table(headers=headers, rows=rows)],
            notes=notes,
        )


_SERIES: tuple[str, ...] = ("latency_ms", "cost_usd", "success", "prompt_tokens", "completion_tokens")  # fmt: skip


def series(
    events: Events, metric: str, *, requests: str = REQUESTS
) -> tuple[float, ...]:
    """One value per request event of `metric` (latency: successful requests only)."""
    cols = events.columns
    rows = _request_rows(events, requests)
    if metric == "latency_ms":
        rows = [i for i in rows if cols["success"][i]]
    values = (cols[metric][i] for i in rows)
    return tuple(float(v) for v in values if v is not None)


def compare_conditions(
    a: str,
    b: str,
    *,
    metric: SeriesName = "latency_ms",
    requests: str = REQUESTS,
    store: StoreLike | None = None,
) -> ConditionComparison:
    """Compare a per-request metric between two experiments (e.g. control vs treatment).

    The series go to crucible-bench when it is installed (`crucible_bench.compare` if it exists,
    else Welch's `crucible_bench.ttest`); otherwise only descriptive statistics are given.

    Args:
        a: the first experiment id.
        b: the second experiment id.
        metric: `"latency_ms"` (successful requests), `"cost_usd"`, `"success"` (1/0),
            `"prompt_tokens"` or `"completion_tokens"`.
        requests: the dotted prefix of the request events.
        store: where the experiments are.

    Raises:
        ExperimentNotFoundError: either experiment is unknown.
        InvalidOptionError: an unknown metric.
    """
    if metric not in _SERIES:
        raise InvalidOptionError(
            f"metric must be one of {', '.join(_SERIES)}, got {metric!r}", metric=metric
        )
    xa = series(get_events(a, store=store), metric, requests=requests)
    xb = series(get_events(b, store=store), metric, requests=requests)
    test = None
    if (
        importlib.util.find_spec("crucible_bench") is not None
        and len(xa) > 1
        and len(xb) > 1
    ):
        bench = importlib.import_module("crucible_bench")
        compare = getattr(bench, "compare", None)
        # two experiments' requests are independent samples, never pairs
        test = (
            compare(xa, xb, paired=False, labels=(a, b))
            if compare is not None
            else bench.ttest(xa, xb)
        )
    return ConditionComparison(
        a=a,
        b=b,
        metric=metric,
        a_values=xa,
        b_values=xb,
        a_summary=stats.describe(xa) if xa else None,
        b_summary=stats.describe(xb) if xb else None,
        test=test,
    )

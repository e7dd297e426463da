"""Production monitoring: a baseline, sequential change detectors with a known false-alarm rate, alerts.

Every metric is watched as a bounded per-request "badness" y ∈ [0, 1] whose baseline mean is μ₀:
a failed request (`success_rate`), a wrong answer (`accuracy`), a latency above the baseline's
95th percentile (`latency_p95`), a cost above the baseline's median (`cost_per_request`). A
degradation raises the mean of y, and each detector bets against "the mean is still ≤ μ₀":

- `"confidence_sequence"`: the Shiryaev–Roberts e-detector of Shin, Ramdas & Rinaldo (2024),
  "E-detectors: a nonparametric framework for sequential change detection", NEJSDS 2(2) — the
  change-point counterpart of a betting confidence sequence — mixed over a grid of bets so no
  shift size has to be guessed. Rₜ = Lₜ(Rₜ₋₁ + 1) with Lₜ = 1 + λ(yₜ − μ₀); alarm at Rₜ ≥ ARL₀.
  Under no change, Rₜ − t is a supermartingale, so the average run length to a false alarm is
  **at least ARL₀** for any distribution of y in [0, 1] with mean ≤ μ₀ (Pollak 1987's argument).
- `"cusum"`: Page's (1954) CUSUM of log(1 + λ(yₜ − μ₀)) with the bet λ = δ/(μ₀(1 − μ₀)) that is
  the exact likelihood ratio of Bernoulli(μ₀) → Bernoulli(μ₀ + δ); alarm at log(ARL₀). Its
  statistic never exceeds the SR e-detector's at the same bet, so ARL₀ is guaranteed too; it is
  tuned to the shift `shift`.
- `"page_hinkley"`: the Page–Hinkley test (Hinkley 1971) on yₜ − μ₀ − δ/2 with threshold
  log(ARL₀)·μ₀(1 − μ₀)/δ, the Gaussian approximation of the CUSUM; its ARL₀ is approximate
  (measured in `scripts/bench/bench_monitor.py`), not guaranteed.

The baseline's own sampling error is handled by betting against its upper confidence bound of μ₀
(`conservative=True`), so the guarantee holds whenever the baseline bound is right.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeAlias

import attrs
import numpy as np
from numpy.typing import NDArray

from crucible_core import events as core_events
from crucible_core.render import RenderMixin, Table, View
from crucible_telemetry._capture import StoreLike
from crucible_telemetry._events import Events, get_events, query_events
from crucible_telemetry._metrics import quantile_ci
from crucible_telemetry.exceptions import InvalidOptionError

__all__ = (
    "Alert",
    "AlertSink",
    "Baseline",
    "DetectorMethod",
    "EventSink",
    "LogSink",
    "MetricBaseline",
    "MonitorMetric",
    "Monitor",
    "WebhookSink",
)

MonitorMetric: TypeAlias = Literal[
    "success_rate", "latency_p95", "accuracy", "cost_per_request"
]
DetectorMethod: TypeAlias = Literal["cusum", "confidence_sequence", "page_hinkley"]

METRICS: tuple[MonitorMetric, ...] = (
    "success_rate",
    "latency_p95",
    "accuracy",
    "cost_per_request",
)
_METHODS = ("cusum", "confidence_sequence", "page_hinkley")
# default shift of the bad-outcome rate the cusum / page_hinkley detectors are tuned to
_DEFAULT_SHIFT: Mapping[str, float] = {
    "success_rate": 0.03,
    "accuracy": 0.03,
    "latency_p95": 0.05,
    "cost_per_request": 0.1,
}
_REQUEST = "crucible.llm.request."
_log = logging.getLogger("crucible.monitor")
_CHUNK = 2048  # requests evaluated at once: bounds the work thrown away after an alarm
FloatArray: TypeAlias = NDArray[np.float64]


# ----------------------------------------------------------------------------------- extraction
def _ns_to_datetime(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC)


def _correct(measurements: Any, metadata: Any) -> float | None:
    for source in (measurements, metadata):
        if isinstance(source, Mapping):
            for key in ("correct", "score"):
                value = source.get(key)
                if isinstance(value, bool | int | float) and not (
                    isinstance(value, float) and math.isnan(value)
                ):
                    x = float(value)
                    if 0.0 <= x <= 1.0:
                        return x
    return None


def _series(
    events: Events, metric: MonitorMetric
) -> tuple[FloatArray, NDArray[np.int64], list[str]]:
    """The metric's raw per-request values, timestamps and event ids, in capture order."""
    cols = events.columns
    names = cols["name"]
    ts = cols["timestamp_ns"]
    ids = cols["event_id"]
    values: list[float] = []
    keep: list[int] = []
    for i, name in enumerate(names):
        if metric == "accuracy":
            x = _correct(cols["measurements"][i], cols["metadata"][i])
            if x is None:
                continue
        else:
            if not (name.startswith(_REQUEST) and name.endswith(("stop", "exception"))):
                continue
            if metric == "success_rate":
                ok = cols["success"][i]
                if ok is None:
                    continue
                x = float(bool(ok))
            else:
                raw = cols["latency_ms" if metric == "latency_p95" else "cost_usd"][i]
                if raw is None or not cols["success"][i]:
                    continue
                x = float(raw)
        values.append(x)
        keep.append(i)
    return (
        np.asarray(values, dtype=np.float64),
        np.asarray([ts[i] for i in keep], dtype=np.int64),
        [ids[i] for i in keep],
    )


def _wilson_upper(k: float, n: int, level: float) -> float:
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + half) / (1 + z * z / n))


# ----------------------------------------------------------------------------------- baseline
@attrs.define(frozen=True, kw_only=True)
class MetricBaseline:
    """The baseline of one metric and of its bounded bad-outcome indicator."""

    metric: MonitorMetric
    """Which metric."""
    value: float
    """The metric in its own units: a rate, the p95 latency (ms) or the mean cost (USD)."""
    cutoff: float | None
    """Latency and cost: the baseline p95 / median a request is compared with."""
    bad_rate: float
    """Baseline mean of the bad-outcome indicator y (failures, errors, exceedances)."""
    bad_rate_upper: float
    """Upper confidence bound of `bad_rate` (Wilson); what the detectors bet against."""
    n: int
    """Requests in the baseline."""
    spread: float
    """Baseline standard deviation of the raw values (for the change CI)."""


def _metric_baseline(
    metric: MonitorMetric, values: FloatArray, level: float
) -> MetricBaseline | None:
    n = values.size
    if n < 20:
        return None
    cutoff: float | None = None
    if metric in ("success_rate", "accuracy"):
        value = float(values.mean())
        bad = 1.0 - values
    else:
        q = 0.95 if metric == "latency_p95" else 0.5
        cutoff = float(np.quantile(values, q))
        value = cutoff if metric == "latency_p95" else float(values.mean())
        bad = (values > cutoff).astype(np.float64)
    k = float(bad.sum())
    return MetricBaseline(
        metric=metric,
        value=value,
        cutoff=cutoff,
        bad_rate=k / n,
        bad_rate_upper=_wilson_upper(k, n, level),
        n=int(n),
        spread=float(values.std(ddof=1)),
    )


def _bad(mb: MetricBaseline, values: FloatArray) -> FloatArray:
    if mb.cutoff is None:
        out: FloatArray = 1.0 - values
        return out
    return (values > mb.cutoff).astype(np.float64)


@attrs.define(frozen=True, kw_only=True)
class Baseline(RenderMixin):
    """What normal looks like: per-metric levels from a period of telemetry or an experiment.

    Build it with [`from_events`][crucible_telemetry.Baseline.from_events],
    [`from_store`][crucible_telemetry.Baseline.from_store] (a time period) or
    [`from_experiment`][crucible_telemetry.Baseline.from_experiment]. Metrics with fewer than 20
    requests in the baseline are left out.
    """

    metrics: dict[str, MetricBaseline]
    """The baseline of each metric found, by name."""
    source: str
    """Where it came from (a period, an experiment id)."""
    start: dt.datetime | None
    """First event of the baseline."""
    end: dt.datetime | None
    """Last event of the baseline."""
    confidence_level: float
    """Level of the `bad_rate_upper` bounds."""

    @classmethod
    def from_events(
        cls, events: Events, *, source: str = "events", confidence_level: float = 0.95
    ) -> Baseline:
        """A baseline from captured events (any mix of experiments)."""
        if not 0 < confidence_level < 1:
            raise InvalidOptionError(
                f"confidence_level must be in (0, 1), got {confidence_level!r}",
                confidence_level=confidence_level,
            )
        found: dict[str, MetricBaseline] = {}
        for metric in METRICS:
            values, _, _ = _series(events, metric)
            mb = _metric_baseline(metric, values, confidence_level)
            if mb is not None:
                found[metric] = mb
        if not found:
            raise InvalidOptionError(
                f"the baseline ({source}) has no metric with ≥ 20 requests; give a longer "
                "period or an experiment with request (or scored task) events",
                source=source,
            )
        ts = events.columns["timestamp_ns"]
        return cls(
            metrics=found,
            source=source,
            start=_ns_to_datetime(min(ts)) if ts else None,
            end=_ns_to_datetime(max(ts)) if ts else None,
            confidence_level=confidence_level,
        )

    @classmethod
    def from_store(
        cls,
        store: StoreLike | None = None,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        experiment: str | None = None,
        tag: str | None = None,
        condition: str | None = None,
        confidence_level: float = 0.95,
    ) -> Baseline:
        """A baseline from a period of a store (e.g. the last 30 days), optionally filtered."""
        evs = query_events(
            experiment=experiment,
            tag=tag,
            condition=condition,
            since=since,
            until=until,
            store=store,
        )
        period = f"{since.isoformat() if since else '…'} to {until.isoformat() if until else '…'}"
        return cls.from_events(
            evs, source=f"period {period}", confidence_level=confidence_level
        )

    @classmethod
    def from_experiment(
        cls,
        experiment_id: str,
        *,
        store: StoreLike | None = None,
        confidence_level: float = 0.95,
    ) -> Baseline:
        """A baseline from every event of one experiment."""
        return cls.from_events(
            get_events(experiment_id, store=store),
            source=f"experiment {experiment_id}",
            confidence_level=confidence_level,
        )

    @property
    def interpretation(self) -> str:
        """A sentence listing the baseline levels."""
        parts = [f"{m} {_fmt_value(m, b.value)}" for m, b in self.metrics.items()]
        return f"Baseline from {self.source}: " + ", ".join(parts) + "."

    def _view(self) -> View:
        rows = [
            (m, b.value, b.cutoff, b.bad_rate, b.bad_rate_upper, b.n)
            for m, b in self.metrics.items()
        ]
        return View(
            title="Monitoring baseline",
            facts=[("source", self.source), ("start", self.start), ("end", self.end)],
            tables=[
                Table(
                    headers=(
                        "metric",
                        "value",
                        "cutoff",
                        "bad rate",
                        "bad rate (upper)",
                        "n",
                    ),
                    rows=rows,
                )
            ],
            notes=[self.interpretation],
        )


def _fmt_value(metric: str, value: float) -> str:
    if metric in ("success_rate", "accuracy"):
        return f"{value * 100:.1f}%"
    if metric == "latency_p95":
        return f"{value:.0f} ms"
    return f"${value:.4g}"


# ----------------------------------------------------------------------------------- detectors
def _bets(mu0: float) -> FloatArray:
    """A geometric grid of bets λ for the mixture, from tiny shifts to the largest allowed."""
    cap = 0.9 / mu0 if mu0 > 0 else 50.0
    shifts = np.geomspace(0.005, max(0.5, 1.0 - mu0), 10)
    lam = np.minimum(shifts / max(mu0 * (1.0 - mu0), 1e-6), cap)
    out: FloatArray = np.unique(lam)
    return out


class _Detector:
    """One metric's sequential statistic; `update` returns the index of the first alarm, if any."""

    def __init__(
        self, method: DetectorMethod, mu0: float, shift: float, arl0: float
    ) -> None:
        self.method = method
        self.mu0 = mu0
        self.arl0 = arl0
        var = max(mu0 * (1.0 - mu0), 1e-6)
        if method == "confidence_sequence":
            self.lam = _bets(mu0)
            self.threshold = math.log(arl0)  # on log(mean R)
        elif method == "cusum":
            self.lam = np.array([min(shift / var, 0.9 / mu0 if mu0 > 0 else 50.0)])
            self.threshold = math.log(arl0)
        else:
            self.lam = np.array([shift])
            self.threshold = math.log(arl0) * var / shift
        self.reset()

    def reset(self) -> None:
        self.log_r = np.full(self.lam.size, -math.inf)  # SR statistic per bet, log
        self.level = 0.0  # CUSUM / PH: S_t − min S
        self.statistic = 0.0

    def update(self, y: FloatArray) -> int | None:
        """Feed y; the index of the first alarm (the state is then at the alarm), else None."""
        for start in range(0, y.size, _CHUNK):
            hit = self._update(y[start : start + _CHUNK])
            if hit is not None:
                return start + hit
        return None

    def _update(self, y: FloatArray) -> int | None:
        log_r: FloatArray | None = None
        if self.method == "confidence_sequence":
            inc = np.log1p(self.lam[None, :] * (y[:, None] - self.mu0))  # k × J
            log_p = np.cumsum(inc, axis=0)
            prev = np.vstack([np.zeros((1, self.lam.size)), log_p[:-1]])
            acc = np.logaddexp.accumulate(
                np.vstack([self.log_r[None, :], -prev]), axis=0
            )[1:]
            log_r = log_p + acc  # log Rₜ per bet, k × J
            stat = np.logaddexp.reduce(log_r, axis=1) - math.log(self.lam.size)
        else:
            if self.method == "page_hinkley":
                score = y - self.mu0 - self.lam[0] / 2
            else:
                score = np.log1p(self.lam[0] * (y - self.mu0))
            # Wₜ = max(0, Wₜ₋₁ + scoreₜ) = Sₜ − min(0, min_{u≤t} Sᵤ) with S starting at W₀
            path = self.level + np.cumsum(score)
            stat = path - np.minimum(0.0, np.minimum.accumulate(path))
        hit = np.flatnonzero(stat >= self.threshold)
        at = int(hit[0]) if hit.size else y.size - 1
        self.statistic = float(stat[at])
        self.level = self.statistic
        if log_r is not None:
            self.log_r = log_r[at]
        return at if hit.size else None

    @property
    def evidence(self) -> str:
        if self.method == "confidence_sequence":
            return (
                f"e-detector (mixture Shiryaev–Roberts) {math.exp(self.statistic):.4g} ≥ "
                f"ARL₀ = {self.arl0:g}"
            )
        if self.method == "cusum":
            return f"CUSUM log-likelihood ratio {self.statistic:.3f} ≥ log(ARL₀) = {self.threshold:.3f}"
        return f"Page–Hinkley statistic {self.statistic:.3f} ≥ threshold {self.threshold:.3f}"

    def change_start(self, y: FloatArray) -> int:
        """Where the change most likely began in the retained window `y` (CUSUM argmin)."""
        lam = (
            self.lam[int(np.argmax(self.log_r))]
            if self.method != "page_hinkley"
            else None
        )
        if lam is None:
            score = y - self.mu0 - self.lam[0] / 2
        else:
            score = np.log1p(lam * (y - self.mu0))
        path = np.concatenate(([0.0], np.cumsum(score)))
        # the latest minimum of the running sum: the CUSUM restarts there
        return int(path.size - 1 - np.argmin(path[::-1]))


# ----------------------------------------------------------------------------------- alerts
@attrs.define(frozen=True, kw_only=True)
class Alert(RenderMixin):
    """A detected degradation of one metric, with its size, start and evidence."""

    metric: MonitorMetric
    """The metric that degraded."""
    method: DetectorMethod
    """The detector that fired."""
    baseline_value: float
    """The metric in the baseline."""
    current_value: float
    """The metric since the estimated change."""
    change: float
    """`current_value − baseline_value`."""
    change_ci: tuple[float, float]
    """Confidence interval of `change` (normal approximation; order statistics for p95)."""
    confidence_level: float
    """Level of `change_ci`."""
    started_at: dt.datetime
    """When the change most likely began (the CUSUM restart point)."""
    detected_at: dt.datetime
    """The request at which the detector crossed its threshold."""
    n_since_change: int
    """Requests between `started_at` and `detected_at`."""
    statistic: float
    """The detector statistic at the alarm (log scale for the e-detector and CUSUM)."""
    threshold: float
    """The threshold it crossed."""
    arl0: float
    """Average run length to a false alarm the threshold guarantees (approximate for PH)."""
    evidence: str
    """The statistic against its threshold, in words."""

    @property
    def summary(self) -> str:
        """One line for a chat message or a log."""
        lo, hi = self.change_ci
        return (
            f"{self.metric} degraded: {_fmt_value(self.metric, self.baseline_value)} → "
            f"{_fmt_value(self.metric, self.current_value)} since {self.started_at:%Y-%m-%d %H:%M} "
            f"UTC (change {self.change:+.4g}, {self.confidence_level * 100:g}% CI "
            f"[{lo:+.4g}, {hi:+.4g}]); {self.evidence}."
        )

    @property
    def recommendation(self) -> str:
        """What to do next."""
        if self.metric == "accuracy":
            return (
                "Compare the outputs since the change with the baseline's; if the input mix "
                "did not change, roll back or retrain, and re-baseline once fixed."
            )
        if self.metric == "success_rate":
            return "Check the provider's status, rate limits and error types since the change."
        if self.metric == "latency_p95":
            return "Check the provider's latency and load; consider hedged requests."
        return "Check prompt and completion lengths and the pricing since the change."

    @property
    def interpretation(self) -> str:
        """The summary and the recommendation."""
        return f"{self.summary} {self.recommendation}"

    def _view(self) -> View:
        return View(
            title=f"Alert: {self.metric} degraded",
            facts=[
                ("metric", self.metric),
                ("method", self.method),
                ("baseline", self.baseline_value),
                ("current", self.current_value),
                ("change", self.change),
                (f"{self.confidence_level * 100:g}% CI", self.change_ci),
                ("started at", self.started_at),
                ("detected at", self.detected_at),
                ("requests since change", self.n_since_change),
                ("statistic", self.statistic),
                ("threshold", self.threshold),
                ("ARL₀", self.arl0),
            ],
            notes=[self.interpretation],
        )

    def slack_payload(self) -> dict[str, Any]:
        """Slack-compatible incoming-webhook JSON (`text` plus one mrkdwn section)."""
        return {
            "text": self.summary,
            "blocks": [
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"*{self.metric} degraded* ({self.method})\n{self.summary}\n_{self.recommendation}_",
                    },
                }
            ],
        }


class AlertSink(Protocol):
    """Anything called with each [`Alert`][crucible_telemetry.Alert] (a plain callable works)."""

    def __call__(self, alert: Alert) -> None: ...  # pragma: no cover - protocol


@attrs.define
class LogSink:
    """Logs each alert (logger `crucible.monitor`, WARNING) with its summary."""

    logger: logging.Logger = attrs.field(factory=lambda: _log)
    level: int = logging.WARNING

    def __call__(self, alert: Alert) -> None:
        """Log the alert."""
        self.logger.log(self.level, "%s %s", alert.summary, alert.recommendation)


@attrs.define
class WebhookSink:
    """POSTs each alert as Slack-compatible JSON to `url` (Slack, Mattermost, a custom receiver)."""

    url: str
    timeout: float = 10.0

    def __call__(self, alert: Alert) -> None:
        """Send the alert; raises on an HTTP error (the monitor logs it and carries on)."""
        import urllib.request  # here: it loads http.client and ssl

        body = json.dumps(alert.slack_payload()).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()


@attrs.define
class EventSink:
    """Emits each alert as a `crucible.telemetry.monitor.alert` event (so it is captured too)."""

    def __call__(self, alert: Alert) -> None:
        """Emit the alert event."""
        core_events.emit(
            core_events.TELEMETRY_MONITOR_ALERT,
            {
                "statistic": alert.statistic,
                "threshold": alert.threshold,
                "change": alert.change,
                "baseline": alert.baseline_value,
                "current": alert.current_value,
            },
            {"metric": alert.metric, "method": alert.method, "summary": alert.summary},
        )


# ----------------------------------------------------------------------------------- monitor
def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Monitor:
    """Watches metrics against a baseline and raises [`Alert`][crucible_telemetry.Alert]s.

    Feed captured events with [`update`][crucible_telemetry.Monitor.update] (any batch size, in
    capture order) or let [`poll`][crucible_telemetry.Monitor.poll] read what is new in a store.
    After an alert the metric's detector restarts, so a persisting degradation alerts again
    after about as many requests as it took to detect.

    Args:
        baseline: the [`Baseline`][crucible_telemetry.Baseline] to compare with.
        metrics: which metrics to watch (default: every metric the baseline has).
        method: `"confidence_sequence"` (e-detector, no tuning, guaranteed ARL₀),
            `"cusum"` (tuned to `shift`, guaranteed ARL₀) or `"page_hinkley"` (approximate).
        arl0: average number of requests between false alarms (at least this, for the first
            two methods).
        shift: the increase of a metric's bad-outcome rate to be quickest at (cusum and
            Page–Hinkley), one number or per metric; default 0.03 for accuracy and success,
            0.05 for latency, 0.1 for cost.
        window: requests kept per metric to estimate the change after an alarm.
        sinks: where alerts go (callables taking an `Alert`).
        conservative: bet against the baseline's upper confidence bound of the bad-outcome rate
            (protects the false-alarm guarantee from baseline sampling error).

    Raises:
        InvalidOptionError: an unknown metric or method, a metric missing from the baseline,
            arl0 ≤ 1, a shift outside (0, 1) or a window < 10.
    """

    def __init__(
        self,
        baseline: Baseline,
        *,
        metrics: Sequence[MonitorMetric] | None = None,
        method: DetectorMethod = "confidence_sequence",
        arl0: float = 10_000,
        shift: float | Mapping[str, float] | None = None,
        window: int = 5000,
        sinks: Iterable[Callable[[Alert], None]] = (),
        conservative: bool = True,
    ) -> None:
        if method not in _METHODS:
            raise InvalidOptionError(
                f"method must be one of {', '.join(map(repr, _METHODS))}; got {method!r}",
                method=method,
            )
        chosen = tuple(baseline.metrics) if metrics is None else tuple(metrics)
        for m in chosen:
            if m not in METRICS:
                raise InvalidOptionError(
                    f"unknown metric {m!r}; the metrics are {', '.join(METRICS)}",
                    metric=m,
                )
            if m not in baseline.metrics:
                raise InvalidOptionError(
                    f"the baseline has no {m!r} (too few requests with it); monitor "
                    f"{', '.join(baseline.metrics)} or build a longer baseline",
                    metric=m,
                )
        if not (_is_real(arl0) and arl0 > 1):
            raise InvalidOptionError(
                f"arl0 must be a number > 1, got {arl0!r}", arl0=arl0
            )
        if not (_is_real(window) and window == int(window) and window >= 10):
            raise InvalidOptionError(
                f"window must be an int ≥ 10, got {window!r}", window=window
            )
        self.baseline = baseline
        self.method: DetectorMethod = method
        self.arl0 = float(arl0)
        self.metrics: tuple[MonitorMetric, ...] = chosen  # type: ignore[assignment]
        self.sinks = list(sinks)
        self.alerts: list[Alert] = []
        self.sink_errors: list[str] = []
        self._detectors: dict[str, _Detector] = {}
        self._history: dict[str, deque[tuple[float, float, int]]] = {}
        for m in self.metrics:
            mb = baseline.metrics[m]
            d = shift.get(m, _DEFAULT_SHIFT[m]) if isinstance(shift, Mapping) else shift
            d = _DEFAULT_SHIFT[m] if d is None else d
            if not 0 < d < 1:
                raise InvalidOptionError(f"shift must be in (0, 1), got {d!r}", shift=d)
            mu0 = mb.bad_rate_upper if conservative else mb.bad_rate
            mu0 = min(max(mu0, 1e-4), 1 - 1e-4)
            self._detectors[m] = _Detector(method, mu0, d, self.arl0)
            self._history[m] = deque(maxlen=int(window))
        self._seen_ns = -1
        self._seen_ids: set[str] = set()

    def statistics(self) -> dict[str, tuple[float, float]]:
        """Each metric's current detector statistic and its threshold."""
        return {m: (d.statistic, d.threshold) for m, d in self._detectors.items()}

    def update(self, events: Events) -> list[Alert]:
        """Feed new events (in capture order); returns the alerts they raised (also sent to sinks)."""
        raised: list[Alert] = []
        for m in self.metrics:
            values, ts, _ = _series(events, m)
            raised.extend(self._feed(m, values, ts))
        for alert in raised:
            self.alerts.append(alert)
            for sink in self.sinks:
                try:
                    sink(alert)
                except Exception as err:  # a broken sink must not stop the monitor
                    self.sink_errors.append(f"{type(err).__name__}: {err}")
                    _log.exception("alert sink %r failed", sink)
        return raised

    def _feed(
        self, metric: MonitorMetric, values: FloatArray, ts: NDArray[np.int64]
    ) -> list[Alert]:
        mb = self.baseline.metrics[metric]
        det = self._detectors[metric]
        hist = self._history[metric]
        y = _bad(mb, values)
        out: list[Alert] = []
        pos = 0
        while pos < y.size:
            hit = det.update(y[pos:])
            stop = y.size if hit is None else pos + hit + 1
            hist.extend(
                zip(
                    values[pos:stop].tolist(),
                    y[pos:stop].tolist(),
                    ts[pos:stop].tolist(),
                    strict=True,
                )
            )
            if hit is None:
                break
            out.append(self._alert(metric, det))
            det.reset()
            hist.clear()
            pos = stop
        return out

    def _alert(self, metric: MonitorMetric, det: _Detector) -> Alert:
        from statistics import NormalDist

        mb = self.baseline.metrics[metric]
        rows = list(self._history[metric])
        raw = np.array([r[0] for r in rows])
        ys = np.array([r[1] for r in rows])
        start = min(det.change_start(ys), raw.size - 1)
        post = raw[start:]
        level = self.baseline.confidence_level
        z = NormalDist().inv_cdf(1 - (1 - level) / 2)
        if metric == "latency_p95":
            # a p95 interval needs ≥ 59 values at 95%; with fewer since the change, widen the
            # sample back into the window (older values pull the estimate down: conservative)
            sample = raw[-max(post.size, 100) :]
            current = float(np.quantile(sample, 0.95))
            ci = quantile_ci(sample, 0.95, confidence_level=level)
            lo, hi = (
                (ci.low, ci.high)
                if ci is not None
                else (float(sample.min()), float(sample.max()))
            )
            change_ci = (lo - mb.value, hi - mb.value)
        else:
            current = float(post.mean())
            if metric == "cost_per_request":
                var = (post.var(ddof=1) if post.size > 1 else 0.0) / post.size
                var += mb.spread**2 / mb.n
            else:
                var = (
                    current * (1 - current) / post.size
                    + mb.value * (1 - mb.value) / mb.n
                )
            half = z * math.sqrt(var)
            change_ci = (current - mb.value - half, current - mb.value + half)
        return Alert(
            metric=metric,
            method=self.method,
            baseline_value=mb.value,
            current_value=current,
            change=current - mb.value,
            change_ci=(float(change_ci[0]), float(change_ci[1])),
            confidence_level=level,
            started_at=_ns_to_datetime(rows[start][2]),
            detected_at=_ns_to_datetime(rows[-1][2]),
            n_since_change=int(post.size),
            statistic=det.statistic,
            threshold=det.threshold,
            arl0=self.arl0,
            evidence=det.evidence,
        )

    def poll(
        self,
        store: StoreLike | None = None,
        *,
        experiment: str | None = None,
        tag: str | None = None,
        condition: str | None = None,
        since: dt.datetime | None = None,
    ) -> list[Alert]:
        """Read the events added to `store` since the last poll and feed them; returns new alerts.

        Args:
            store: the telemetry store (default: the stores this process has used).
            experiment: only events of experiments with this name.
            tag: only events of experiments with this tag.
            condition: only events of this condition.
            since: on the first poll, start at this time (e.g. the baseline's end); later polls
                continue where the previous one stopped.
        """
        if self._seen_ns < 0 and since is not None:
            if since.tzinfo is None:
                raise InvalidOptionError(
                    f"since must be timezone-aware, got {since!r}", since=since
                )
            self._seen_ns = int(since.timestamp() * 1e9) - 1
        since = _ns_to_datetime(self._seen_ns) if self._seen_ns >= 0 else None
        evs = query_events(
            experiment=experiment,
            tag=tag,
            condition=condition,
            since=since,
            store=store,
        )
        cols = evs.columns
        fresh = [
            i
            for i, (t, eid) in enumerate(
                zip(cols["timestamp_ns"], cols["event_id"], strict=True)
            )
            if t > self._seen_ns or (t == self._seen_ns and eid not in self._seen_ids)
        ]
        fresh.sort(key=lambda i: (cols["timestamp_ns"][i], cols["seq"][i]))
        if not fresh:
            return []
        new = Events(columns={c: [v[i] for i in fresh] for c, v in cols.items()})
        last = max(cols["timestamp_ns"][i] for i in fresh)
        at_last = {
            cols["event_id"][i] for i in fresh if cols["timestamp_ns"][i] == last
        }
        self._seen_ids = at_last | (self._seen_ids if last == self._seen_ns else set())
        self._seen_ns = last
        return self.update(new)

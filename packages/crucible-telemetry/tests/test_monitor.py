"""Production monitoring: baselines from stores, detectors with a known false-alarm rate, sinks.

Event streams go through the real capture path into each real store (memory, SQLite,
PostgreSQL when configured); the webhook sink posts to a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

import crucible_telemetry as ct
from crucible_core import events
from crucible_telemetry._monitor import _Detector


def _emit_scored(correct: np.ndarray) -> None:
    """One scored task per outcome, as the harness emits them (metadata `correct`)."""
    for c in correct:
        events.emit(events.HARNESS_TASK_STOP, {"duration": 0.1}, {"correct": bool(c)})


def _emit_requests(latency_s: np.ndarray, cost: np.ndarray, ok: np.ndarray) -> None:
    for lat, usd, good in zip(latency_s, cost, ok, strict=True):
        if good:
            events.emit(
                events.LLM_REQUEST_STOP,
                {"duration": float(lat), "cost": float(usd)},
                {"model": "sim:gpt-4"},
            )
        else:
            events.emit(
                events.LLM_REQUEST_EXCEPTION,
                {"duration": float(lat)},
                {"model": "sim:gpt-4"},
            )


def _baseline_experiment(store: ct.Store, rng: np.random.Generator) -> str:
    with ct.experiment("production baseline", store=store, tags=("prod",)) as exp:
        _emit_scored(rng.random(12_000) < 0.92)
    ct.flush(store=store)
    return exp.id


def test_accuracy_drop_from_92_to_89_is_detected_in_each_store(store: ct.Store) -> None:
    rng = np.random.default_rng(21)
    base = ct.Baseline.from_experiment(_baseline_experiment(store, rng), store=store)
    assert base.metrics["accuracy"].value == pytest.approx(0.92, abs=0.01)
    monitor = ct.Monitor(base, metrics=("accuracy",), arl0=1000)
    received: list[ct.Alert] = []
    monitor.sinks.append(received.append)
    with ct.experiment("production", store=store, tags=("prod",)) as exp:
        _emit_scored(rng.random(3000) < 0.92)
        ct.flush(store=store)
        assert monitor.poll(store, experiment="production") == []
        _emit_scored(rng.random(8000) < 0.89)
    ct.flush(store=store)
    alerts = monitor.poll(store, experiment="production")
    assert alerts and received == alerts
    first = alerts[0]
    assert first.metric == "accuracy" and first.method == "confidence_sequence"
    assert first.change < 0 and first.change_ci[0] < -0.03 < first.change_ci[1] < 0
    assert first.statistic >= first.threshold
    changed = ct.get_events(exp.id, store=store).column("timestamp_ns")[3000]
    assert first.started_at >= dt.datetime.fromtimestamp(
        changed / 1e9, tz=dt.UTC
    ) - dt.timedelta(seconds=5)
    assert (
        "92.0%" in first.summary or "91.9%" in first.summary or "92.1%" in first.summary
    )
    assert "retrain" in first.recommendation
    assert monitor.poll(store, experiment="production") == []


@pytest.mark.parametrize("method", ["cusum", "confidence_sequence", "page_hinkley"])
def test_no_alert_on_a_stable_stream(method: str) -> None:
    rng = np.random.default_rng(3)
    store = ct.MemoryStore()
    with ct.experiment("base", store=store):
        _emit_scored(rng.random(10_000) < 0.92)
    base = ct.Baseline.from_store(store, experiment="base")
    # P(any false alarm in 5000 requests) is small only when ARL₀ is well above 5000
    monitor = ct.Monitor(base, method=method, arl0=1_000_000)  # type: ignore[arg-type]
    with ct.experiment("live", store=store):
        _emit_scored(rng.random(5000) < 0.92)
    assert monitor.poll(store, experiment="live") == []
    stat, threshold = monitor.statistics()["accuracy"]
    assert stat < threshold


@pytest.mark.parametrize("method", ["cusum", "confidence_sequence"])
def test_average_run_length_to_false_alarm_is_at_least_arl0(method: str) -> None:
    """Seeded Monte Carlo: 100 pre-change Bernoulli(μ₀) streams; mean run length ≥ ARL₀."""
    rng = np.random.default_rng(2026)
    arl0, mu0, horizon = 200.0, 0.08, 20_000
    det = _Detector(method, mu0, 0.03, arl0)  # type: ignore[arg-type]
    lengths = []
    for _ in range(100):
        det.reset()
        hit = det.update((rng.random(horizon) < mu0).astype(float))
        lengths.append(
            horizon if hit is None else hit + 1
        )  # censoring only lowers the mean
    assert float(np.mean(lengths)) >= arl0
    # the e-detector is close to its bound; a detector that ignored the data would not be
    if method == "confidence_sequence":
        assert float(np.mean(lengths)) < 3 * arl0


def test_every_detector_flags_the_92_to_89_shift_within_a_few_thousand_requests() -> (
    None
):
    rng = np.random.default_rng(8)
    delays: dict[str, list[int]] = {
        "cusum": [],
        "confidence_sequence": [],
        "page_hinkley": [],
    }
    for _ in range(30):
        y = (rng.random(20_000) < 0.11).astype(float)
        for method, out in delays.items():
            det = _Detector(method, 0.08, 0.03, 10_000)  # type: ignore[arg-type]
            hit = det.update(y)
            out.append(20_000 if hit is None else hit + 1)
    for method, values in delays.items():
        assert float(np.mean(values)) < 3000, method


def test_latency_cost_and_failures_are_monitored_from_request_events() -> None:
    rng = np.random.default_rng(4)
    store = ct.MemoryStore()
    with ct.experiment("base", store=store):
        _emit_requests(
            rng.lognormal(-1.5, 0.4, 6000),
            rng.gamma(4, 0.0005, 6000),
            rng.random(6000) > 0.02,
        )
    base = ct.Baseline.from_store(store, experiment="base")
    assert set(base.metrics) == {"success_rate", "latency_p95", "cost_per_request"}
    assert base.metrics["latency_p95"].bad_rate == pytest.approx(0.05, abs=0.005)
    monitor = ct.Monitor(base, arl0=2000)
    with ct.experiment("live", store=store):
        # latency doubles, cost rises 30%, failures triple
        _emit_requests(
            rng.lognormal(-1.5 + 0.7, 0.4, 4000),
            rng.gamma(4, 0.00065, 4000),
            rng.random(4000) > 0.06,
        )
    alerts = monitor.poll(store, experiment="live")
    metrics = {a.metric for a in alerts}
    assert metrics == {"success_rate", "latency_p95", "cost_per_request"}
    lat = next(a for a in alerts if a.metric == "latency_p95")
    # detected within a few dozen requests: the p95 interval then reaches back into the window
    assert lat.current_value > 1.5 * lat.baseline_value and lat.change > 0
    assert lat.change_ci[0] < lat.change < lat.change_ci[1]
    cost = next(a for a in alerts if a.metric == "cost_per_request")
    assert cost.change > 0 and cost.change_ci[0] > 0


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.headers["Content-Type"] == "application/json"
        _Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet (the stdlib logs every request to stderr)."""


@pytest.fixture
def receiver() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    server.shutdown()
    server.server_close()
    thread.join()


def _degraded_monitor(sinks: list[Any]) -> tuple[ct.Monitor, list[ct.Alert]]:
    rng = np.random.default_rng(5)
    store = ct.MemoryStore()
    with ct.experiment("base", store=store):
        _emit_scored(rng.random(5000) < 0.92)
    monitor = ct.Monitor(
        ct.Baseline.from_store(store, experiment="base"), arl0=500, sinks=sinks
    )
    with ct.experiment("live", store=store):
        _emit_scored(rng.random(3000) < 0.75)
    return monitor, monitor.poll(store, experiment="live")


def test_alerts_reach_webhook_log_callback_and_event_sinks(
    receiver: str, caplog: pytest.LogCaptureFixture
) -> None:
    called: list[ct.Alert] = []
    captured = ct.MemoryStore()
    with (
        ct.experiment(
            "alerts", store=captured, events=[("crucible", "telemetry")]
        ) as exp,
        caplog.at_level(logging.WARNING, logger="crucible.monitor"),
    ):
        _, alerts = _degraded_monitor(
            [ct.WebhookSink(receiver), ct.LogSink(), called.append, ct.EventSink()]
        )
    assert alerts and called == alerts
    assert len(_Receiver.received) == len(alerts)
    payload = _Receiver.received[0]
    assert payload["text"] == alerts[0].summary
    assert payload["blocks"][0]["text"]["type"] == "mrkdwn"
    assert alerts[0].summary in caplog.text
    emitted = ct.get_events(exp.id, store=captured)
    assert emitted.column("name") == ["crucible.telemetry.monitor.alert"] * len(alerts)
    assert emitted[0].metadata["metric"] == "accuracy"


def test_a_failing_sink_is_logged_and_the_others_still_run() -> None:
    def broken(alert: ct.Alert) -> None:
        raise RuntimeError("receiver down")

    called: list[ct.Alert] = []
    monitor, alerts = _degraded_monitor([broken, called.append])
    assert alerts and called == alerts
    assert monitor.sink_errors[0] == "RuntimeError: receiver down"


def test_alert_and_baseline_views_and_round_trip() -> None:
    from crucible_core.serde import from_json, to_json

    monitor, alerts = _degraded_monitor([])
    for result in (alerts[0], monitor.baseline):
        text = result.render()
        assert result.interpretation in text
        assert result._repr_html_().startswith('<div class="crucible-view">')
        assert "|" in result.to_markdown()
        assert to_json(from_json(to_json(result), type(result))) == to_json(result)


def test_bad_options_are_refused() -> None:
    monitor, _ = _degraded_monitor([])
    base = monitor.baseline
    with pytest.raises(ct.InvalidOptionError, match="method"):
        ct.Monitor(base, method="ewma")  # type: ignore[arg-type]
    with pytest.raises(ct.InvalidOptionError, match="no 'latency_p95'"):
        ct.Monitor(base, metrics=("latency_p95",))
    with pytest.raises(ct.InvalidOptionError, match="unknown metric"):
        ct.Monitor(base, metrics=("f1",))  # type: ignore[arg-type]
    with pytest.raises(ct.InvalidOptionError, match="arl0"):
        ct.Monitor(base, arl0=1)
    with pytest.raises(ct.InvalidOptionError, match="shift"):
        ct.Monitor(base, shift=1.5)
    with pytest.raises(ct.InvalidOptionError, match="≥ 20 requests"):
        ct.Baseline.from_events(ct.Events())

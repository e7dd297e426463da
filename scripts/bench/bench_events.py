"""Cost of `crucible_core.events.emit`, with no handler and with one, against peers doing the same.

Peers, same process, same run:
- no handler: OpenTelemetry's API with no SDK installed (a no-op span), and a disabled `logging` call;
- one handler: the OpenTelemetry SDK recording a span into an in-memory exporter.

    uv run --group bench python scripts/bench/bench_events.py
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from crucible_core import events

N = 200_000
NAME = events.LLM_REQUEST_STOP
MEASUREMENTS = {"duration": 0.25, "input_tokens": 12.0, "output_tokens": 40.0}
METADATA = {"model": "sim:gpt-4", "provider": "sim", "request_id": "r1"}


def per_call_ns(fn: Callable[[], None], n: int = N, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / n)
    return best


def loop_overhead() -> float:
    return per_call_ns(lambda: None)


def main() -> None:
    base = loop_overhead()
    rows: list[tuple[str, float]] = []

    def emit() -> None:
        events.emit(NAME, MEASUREMENTS, METADATA)

    rows.append(("crucible emit, no handler attached", per_call_ns(emit) - base))
    events.attach("other", [("crucible", "ensemble")], lambda n, m, md: None)
    rows.append(("crucible emit, handler on another prefix", per_call_ns(emit) - base))
    events.detach("other")

    logger = logging.getLogger("bench.disabled")
    logger.setLevel(logging.WARNING)
    rows.append(
        (
            "logging.debug on a disabled logger",
            per_call_ns(lambda: logger.debug("x %s", 1)) - base,
        )
    )

    from opentelemetry import trace as otel_trace

    noop = otel_trace.NoOpTracer()

    def otel_noop() -> None:
        noop.start_span("llm.request", attributes=METADATA).end()

    rows.append(("OpenTelemetry no-op span (API only)", per_call_ns(otel_noop) - base))

    captured: list[object] = []
    events.attach("bench", [("crucible", "llm")], lambda n, m, md: captured.append(m))
    rows.append(("crucible emit, one handler (append)", per_call_ns(emit) - base))
    events.detach("bench")

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def otel_sdk() -> None:
        tracer.start_span("llm.request", attributes=METADATA).end()

    rows.append(
        (
            "OpenTelemetry SDK span into in-memory exporter",
            per_call_ns(otel_sdk, n=20_000) - base,
        )
    )

    width = max(len(r[0]) for r in rows)
    print(
        f"emit benchmark: {N:,} calls, best of 5, loop overhead ({base:.0f} ns) subtracted"
    )
    for label, ns in rows:
        print(f"  {label.ljust(width)}  {ns:9.0f} ns/event")
    d = dict(rows)
    print()
    print(
        "ratio, no handler:  OpenTelemetry no-op span / crucible emit = "
        f"{d['OpenTelemetry no-op span (API only)'] / d['crucible emit, no handler attached']:.1f}x"
    )
    print(
        "ratio, one handler: OpenTelemetry SDK span / crucible emit   = "
        f"{d['OpenTelemetry SDK span into in-memory exporter'] / d['crucible emit, one handler (append)']:.1f}x"
    )


if __name__ == "__main__":
    main()

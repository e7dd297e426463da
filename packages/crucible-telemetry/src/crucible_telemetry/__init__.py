"""Research-grade event capture for experiments: isolated, enriched, stored, exported, analysed.

Every event of an experiment is captured (no sampling) from the crucible-core event bus, attributed
by context (so experiments running at once in tasks or threads never mix), enriched with latency,
cost, success, model and tokens, kept in memory, SQLite or PostgreSQL, exported to CSV, JSONL or
Parquet, and summarised by [`calculate_metrics`][crucible_telemetry.calculate_metrics].

Examples:
    >>> import crucible_telemetry as ct
    >>> from crucible_core import events
    >>> with ct.experiment("quick look", condition="baseline") as exp:
    ...     events.emit(
    ...         events.LLM_REQUEST_STOP,
    ...         {"duration": 0.25, "input_tokens": 10, "output_tokens": 5, "cost": 0.001},
    ...         {"model": "sim:gpt-4", "provider": "sim"},
    ...     )
    >>> m = ct.calculate_metrics(exp.id)
    >>> m.latency.mean, m.cost.total, m.reliability.success_rate
    (250.0, 0.001, 1.0)
"""

from __future__ import annotations

from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_telemetry._capture import (
    CATALOGUE_PREFIXES,
    Capture,
    StoreLike,
    activate,
    archive,
    default_store,
    experiment,
    flush,
    get_experiment,
    list_experiments,
    open_store,
    start_experiment,
    stop_experiment,
)
from crucible_telemetry._events import (
    Event,
    Events,
    arrow_schema,
    get_events,
    query_events,
)
from crucible_telemetry._experiment import Status, TelemetryExperiment
from crucible_telemetry._export import ExportFormat, export
from crucible_telemetry._metrics import (
    ConditionComparison,
    CostMetrics,
    GroupMetrics,
    LatencyMetrics,
    Metrics,
    ReliabilityMetrics,
    SummaryMetrics,
    TokenMetrics,
    calculate_metrics,
    compare_conditions,
    quantile_ci,
)
from crucible_telemetry._monitor import (
    Alert,
    AlertSink,
    Baseline,
    DetectorMethod,
    EventSink,
    LogSink,
    MetricBaseline,
    Monitor,
    MonitorMetric,
    WebhookSink,
)
from crucible_telemetry._postgres import PostgresStore
from crucible_telemetry._schema import COLUMNS, SCHEMA_VERSION
from crucible_telemetry._sqlite import SQLiteStore
from crucible_telemetry._stores import MemoryStore, Store
from crucible_telemetry._version import __version__
from crucible_telemetry.exceptions import (
    ExperimentNotFoundError,
    ExperimentStateError,
    InvalidMetadataError,
    InvalidOptionError,
    StoreUnavailableError,
    TelemetryError,
)

__getattr__ = _lazy_getattr(
    __name__,
    renamed={
        "Experiment": (
            "TelemetryExperiment",
            "one public class name per concept across the workspace (crucible_harness.Experiment declares an experiment)",
        )
    },
)

__all__ = (
    # experiments
    "start_experiment",
    "stop_experiment",
    "experiment",
    "activate",
    "get_experiment",
    "list_experiments",
    "archive",
    "TelemetryExperiment",
    "Status",
    "Capture",
    "CATALOGUE_PREFIXES",
    # events
    "get_events",
    "query_events",
    "Event",
    "Events",
    "COLUMNS",
    "SCHEMA_VERSION",
    # stores
    "Store",
    "StoreLike",
    "MemoryStore",
    "SQLiteStore",
    "PostgresStore",
    "open_store",
    "default_store",
    "flush",
    # export
    "export",
    "ExportFormat",
    "arrow_schema",
    # analysis
    "calculate_metrics",
    "compare_conditions",
    "quantile_ci",
    "Metrics",
    "SummaryMetrics",
    "LatencyMetrics",
    "CostMetrics",
    "ReliabilityMetrics",
    "TokenMetrics",
    "GroupMetrics",
    "ConditionComparison",
    # production monitoring
    "Monitor",
    "Baseline",
    "MetricBaseline",
    "Alert",
    "AlertSink",
    "LogSink",
    "WebhookSink",
    "EventSink",
    "MonitorMetric",
    "DetectorMethod",
    # errors
    "TelemetryError",
    "ExperimentNotFoundError",
    "ExperimentStateError",
    "InvalidMetadataError",
    "InvalidOptionError",
    "StoreUnavailableError",
    # metadata
    "__version__",
)

"""crucible-trace: why a model decided what it did.

Reasoning events (a decision, the alternatives weighed, the reasoning, a confidence) collected in
chains; a prompt that makes a model emit them as `<event>` tags and a parser that reads them back
from real, messy output, whole or streamed; a store with search; and exports to JSON, JSONL, CSV,
Markdown, Mermaid and a self-contained HTML viewer.

Examples:
    >>> import crucible_trace as ct
    >>> chain = ct.new_chain("cache design")
    >>> chain = ct.add_event(
    ...     chain,
    ...     ct.create_event(
    ...         "decision_made",
    ...         "Use an LRU cache",
    ...         "Bounded memory with good hit rates",
    ...         alternatives=["TTL cache", "no cache"],
    ...         confidence=0.8,
    ...     ),
    ... )
    >>> ct.statistics(chain).decision_points
    1
"""

from __future__ import annotations

from crucible_core._lazy import lazy_getattr as _lazy_getattr
from crucible_trace._export import (
    SCHEMA,
    SCHEMA_VERSION,
    ExportFormat,
    export,
    from_json,
    to_csv,
    to_json,
    to_jsonl,
    to_markdown,
    to_mermaid,
)
from crucible_trace._model import (
    Chain,
    TraceEvent,
    create_event,
    new_chain,
    validate_event,
)
from crucible_trace._ops import (
    ChainDiff,
    ChainStatistics,
    EventChange,
    add_event,
    add_events,
    diff,
    events_by_type,
    find_decision_points,
    find_low_confidence,
    merge_chains,
    statistics,
)
from crucible_trace._parser import (
    ParseResult,
    ParseWarning,
    StreamParser,
    build_causal_prompt,
    extract_code,
    parse_llm_output,
    to_tags,
)
from crucible_trace._store import ChainSummary, SearchHit, TraceStore
from crucible_trace._types import (
    BUILTIN_EVENT_TYPES,
    EventTypes,
    event_types,
    is_event_type,
    register_event_type,
    unregister_event_type,
)
from crucible_trace._version import __version__
from crucible_trace._viewer import open_visualization, to_html
from crucible_trace.exceptions import (
    ChainFormatError,
    ChainNotFoundError,
    InvalidChainError,
    InvalidChainIdError,
    InvalidEventError,
    InvalidQueryError,
    TraceError,
    TraceParseError,
)

__getattr__ = _lazy_getattr(
    __name__,
    renamed={
        "Event": (
            "TraceEvent",
            "one public class name per concept across the workspace (crucible_telemetry.Event is a telemetry record)",
        )
    },
)

__all__ = (
    # events and chains
    "TraceEvent",
    "Chain",
    "create_event",
    "new_chain",
    "validate_event",
    # event types
    "BUILTIN_EVENT_TYPES",
    "EventTypes",
    "event_types",
    "is_event_type",
    "register_event_type",
    "unregister_event_type",
    # operations and analysis
    "add_event",
    "add_events",
    "merge_chains",
    "statistics",
    "ChainStatistics",
    "find_decision_points",
    "find_low_confidence",
    "events_by_type",
    "diff",
    "ChainDiff",
    "EventChange",
    # model output
    "build_causal_prompt",
    "parse_llm_output",
    "StreamParser",
    "ParseResult",
    "ParseWarning",
    "extract_code",
    "to_tags",
    # storage
    "TraceStore",
    "ChainSummary",
    "SearchHit",
    # export
    "SCHEMA",
    "SCHEMA_VERSION",
    "ExportFormat",
    "export",
    "to_json",
    "from_json",
    "to_jsonl",
    "to_csv",
    "to_markdown",
    "to_mermaid",
    "to_html",
    "open_visualization",
    # errors
    "TraceError",
    "InvalidEventError",
    "InvalidChainError",
    "InvalidChainIdError",
    "ChainNotFoundError",
    "ChainFormatError",
    "TraceParseError",
    "InvalidQueryError",
    # metadata
    "__version__",
)

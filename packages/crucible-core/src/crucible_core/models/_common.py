"""What the simulated and HTTP models share: token estimates, the default retry policy, events."""

from __future__ import annotations

import math
from typing import Any

from crucible_core import events
from crucible_core._retry import RetryPolicy, is_transient
from crucible_core.models._types import Completion, Request

__all__ = (
    "DEFAULT_RETRY",
    "emit_exception",
    "emit_retry",
    "emit_start",
    "emit_stop",
    "estimate_input_tokens",
    "estimate_tokens",
)

DEFAULT_RETRY = RetryPolicy(
    on=is_transient,
    attempts=4,
    timeout=120.0,
    wait_initial=0.5,
    wait_max=20.0,
    wait_jitter=0.5,
)
"""The retry policy models use unless given another: up to 4 attempts on 429, 5xx, timeouts and
broken connections, exponential backoff from 0.5 s, honouring `Retry-After`."""


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters per token), for providers that report none."""
    return math.ceil(len(text) / 4) if text else 0


def estimate_input_tokens(request: Request) -> int:
    """A rough count of the tokens a request sends, including a few per message of overhead."""
    total = sum(estimate_tokens(m.content) + 4 for m in request.conversation())
    if request.system:
        total += estimate_tokens(request.system) + 4
    return total


def _metadata(
    model_id: str, provider: str, request_id: str, attempt: int
) -> dict[str, Any]:
    return {
        "model": model_id,
        "provider": provider,
        "request_id": request_id,
        "attempt": attempt,
    }


def emit_start(model_id: str, provider: str, request_id: str) -> None:
    """Emit `LLM_REQUEST_START` for a request's first attempt."""
    events.emit(
        events.LLM_REQUEST_START, {}, _metadata(model_id, provider, request_id, 1)
    )


def emit_stop(model_id: str, completion: Completion, request_id: str) -> None:
    """Emit `LLM_REQUEST_STOP` with duration, tokens and (when known) cost."""
    measurements: dict[str, float] = {
        "duration": completion.latency,
        "input_tokens": completion.usage.input_tokens,
        "output_tokens": completion.usage.output_tokens,
    }
    if completion.cost is not None:
        measurements["cost"] = completion.cost
    metadata = _metadata(model_id, completion.provider, request_id, completion.attempts)
    metadata["finish_reason"] = completion.finish_reason
    events.emit(events.LLM_REQUEST_STOP, measurements, metadata)


def emit_retry(
    model_id: str,
    provider: str,
    request_id: str,
    *,
    attempt: int,
    wait: float,
    error: BaseException,
) -> None:
    """Emit `LLM_REQUEST_RETRY` after failed attempt `attempt`, with the wait before the next."""
    metadata = _metadata(model_id, provider, request_id, attempt)
    metadata["error_type"] = type(error).__name__
    metadata["error"] = str(error)
    events.emit(events.LLM_REQUEST_RETRY, {"wait": wait}, metadata)


def emit_exception(
    model_id: str,
    provider: str,
    request_id: str,
    *,
    attempt: int,
    duration: float,
    error: BaseException,
) -> None:
    """Emit `LLM_REQUEST_EXCEPTION` when a request fails for good."""
    metadata = _metadata(model_id, provider, request_id, attempt)
    metadata["error_type"] = type(error).__name__
    metadata["error"] = str(error)
    events.emit(events.LLM_REQUEST_EXCEPTION, {"duration": duration}, metadata)

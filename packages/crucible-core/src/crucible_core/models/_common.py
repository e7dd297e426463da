"""What the simulated and HTTP models share: token estimates, the default retry policy, events."""

from __future__ import annotations

import math
import re
import threading
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
    "redact",
    "redact_bytes",
    "register_secret",
)

DEFAULT_RETRY = RetryPolicy(
    on=is_transient,
    attempts=4,
    timeout=120.0,
    wait_initial=0.5,
    wait_max=20.0,
    wait_jitter=0.5,
    full_jitter=True,
)
"""The retry policy models use unless given another: up to 4 attempts in all on 429, 5xx,
timeouts and broken connections; full-jitter exponential backoff (uniform in `[0, 0.5 * 2**n]` s,
at most 20 s) added on top of any `Retry-After`, so a retry is never earlier than the server
asked."""

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None
_MIN_SECRET = 8  # shorter values would redact ordinary words


def register_secret(value: str) -> None:
    """Remember `value` (an API key, an `Authorization` value) so that `redact` removes it."""
    global _pattern
    value = value.strip()
    if len(value) < _MIN_SECRET:
        return
    with _secrets_lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _pattern = re.compile(
            "|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True))
        )


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub("***", text)


def redact_bytes(raw: bytes) -> bytes:
    """`raw` with every registered secret replaced by `***` (for bodies before they are parsed)."""
    if not _secrets or not raw:
        return raw
    for secret in tuple(_secrets):
        encoded = secret.encode()
        if encoded in raw:
            raw = raw.replace(encoded, b"***")
    return raw


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


def emit_stop(
    model_id: str, completion: Completion, request_id: str, *, wire: bool = False
) -> None:
    """Emit `LLM_REQUEST_STOP` with duration, tokens and (when known) cost.

    `wire=True` (HTTP models) adds `queue_time` and, when streamed, `time_to_first_token`.
    """
    measurements: dict[str, float] = {
        "duration": completion.latency,
        "input_tokens": completion.usage.input_tokens,
        "output_tokens": completion.usage.output_tokens,
    }
    if wire:
        measurements["queue_time"] = completion.queue_time
    if completion.cost is not None:
        measurements["cost"] = completion.cost
    if completion.time_to_first_token is not None:
        measurements["time_to_first_token"] = completion.time_to_first_token
    metadata = _metadata(model_id, completion.provider, request_id, completion.attempts)
    metadata["finish_reason"] = completion.finish_reason
    if completion.usage.estimated:
        metadata["usage_estimated"] = True
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
    metadata["error"] = redact(str(error))
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
    metadata["error"] = redact(str(error))
    events.emit(events.LLM_REQUEST_EXCEPTION, {"duration": duration}, metadata)

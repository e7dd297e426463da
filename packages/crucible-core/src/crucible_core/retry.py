"""Retries: one policy for sync and async code, shaped like stamina, running on tenacity.

```python
from crucible_core.retry import retry, retry_context

@retry(on=ConnectionError, attempts=5, timeout=30)
async def fetch(url): ...

async for attempt in retry_context(on=ConnectionError):
    with attempt:
        await fetch(url)
```

- The wait grows exponentially with jitter and is at least the error's `retry_after` attribute
  (set from an HTTP `Retry-After` header on [`RateLimitError`][crucible_core.RateLimitError]).
- After the last attempt the original exception is raised, not a wrapper.
- [`set_testing(True)`][crucible_core.retry.set_testing] removes all waits (and can cap attempts)
  for fast tests.
- One owner per call chain: inside [`retries_disabled()`][crucible_core.retry.retries_disabled]
  every retry loop (a model's own included) makes one attempt, so a caller that retries (the
  harness) is the only one that does. `full_jitter=True` spreads retries as uniform(0, backoff)
  on top of any `Retry-After`.
- tenacity is imported only when a retry loop first runs.
"""

from __future__ import annotations

from crucible_core._retry import (
    Attempt,
    RetryContext,
    RetryDetails,
    RetryOn,
    RetryPolicy,
    is_testing,
    is_transient,
    retries_disabled,
    retries_enabled,
    retry,
    retry_context,
    set_testing,
)

__all__ = (
    # policies
    "retry",
    "retry_context",
    "RetryPolicy",
    "RetryContext",
    "Attempt",
    "RetryDetails",
    "RetryOn",
    "is_transient",
    # ownership
    "retries_disabled",
    "retries_enabled",
    # testing
    "set_testing",
    "is_testing",
)

"""Models: the `Model` protocol, the registry, HTTP providers, the pricing table and `SimulatedModel`.

```python
from crucible_core.models import Request, build_model

async with build_model("sim:gpt-4", seed=1) as model:
    completion = await model.complete(Request(prompt="2 + 2 = ?", reference="4", kind="number"))
```

- Build any model from a string with [`build_model`][crucible_core.models.build_model]:
  `"sim:gpt-4"`, `"openai:gpt-4o-mini"`, `"anthropic:claude-3-5-haiku"`,
  `"gemini:gemini-2.0-flash"`, `"openai-compatible:<base_url>#<model>"`.
- [`SimulatedModel`][crucible_core.models.SimulatedModel] needs no key and no network and is
  deterministic in its seed; `correlation=` makes simulated models wrong on the same hard items. HTTP providers need the `crucible-core[http]` extra (aiohttp, imported
  only when an HTTP model is built).
- Every request emits `crucible.llm.request.start` / `stop` / `exception` (and `retry`) events.
- HTTP models measure `latency` from the first byte sent to the last byte received, `queue_time`
  (limiter and connection-pool waits) apart, and `time_to_first_token` when streaming (the
  default); see [`HTTPModel`][crucible_core.models.HTTPModel] for connections, limits and retries.

Importing this module loads neither aiohttp nor ssl: the HTTP provider classes are imported when
first named (`crucible_core.models.OpenAIModel`) or built (`build_model("openai:...")`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crucible_core.models._common import DEFAULT_RETRY, estimate_tokens
from crucible_core.models._pricing import (
    PRICES,
    PRICING_AS_OF,
    PRICING_SOURCES,
    Price,
    cost,
    price_for,
)
from crucible_core.models._registry import (
    ProviderFactory,
    ProviderInfo,
    available_providers,
    build_model,
    is_simulated,
    list_models,
    parse_model_string,
    providers,
    register_provider,
    split_options,
)
from crucible_core.models._simulated import (
    LATENCY_CLASSES,
    PROFILES,
    LatencyClass,
    LatencyDistribution,
    Profile,
    SimulatedModel,
    item_difficulty,
    wrong_answer,
)
from crucible_core.models._types import (
    AnswerKind,
    Completion,
    FinishReason,
    Message,
    Model,
    Request,
    ResponseFormat,
    Role,
    TokenLogprob,
    Usage,
    confidence_from_logprobs,
)

if TYPE_CHECKING:
    from crucible_core.models._anthropic import ANTHROPIC_VERSION, AnthropicModel
    from crucible_core.models._gemini import GeminiModel
    from crucible_core.models._http import DEFAULT_MAX_TOKENS, HTTPModel
    from crucible_core.models._openai import OpenAIModel

_LAZY = {
    "AnthropicModel": "_anthropic",
    "ANTHROPIC_VERSION": "_anthropic",
    "GeminiModel": "_gemini",
    "HTTPModel": "_http",
    "DEFAULT_MAX_TOKENS": "_http",
    "OpenAIModel": "_openai",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = (
    # values and protocol
    "Request",
    "Message",
    "Usage",
    "Completion",
    "TokenLogprob",
    "confidence_from_logprobs",
    "ResponseFormat",
    "Model",
    "AnswerKind",
    "Role",
    "FinishReason",
    # registry
    "build_model",
    "is_simulated",
    "parse_model_string",
    "split_options",
    "register_provider",
    "available_providers",
    "providers",
    "list_models",
    "ProviderInfo",
    "ProviderFactory",
    # HTTP providers (need the `crucible-core[http]` extra)
    "OpenAIModel",
    "AnthropicModel",
    "GeminiModel",
    "HTTPModel",
    "DEFAULT_MAX_TOKENS",
    "ANTHROPIC_VERSION",
    # simulated
    "SimulatedModel",
    "Profile",
    "PROFILES",
    "LatencyDistribution",
    "LatencyClass",
    "LATENCY_CLASSES",
    "item_difficulty",
    "wrong_answer",
    # pricing
    "Price",
    "PRICES",
    "price_for",
    "cost",
    "PRICING_AS_OF",
    "PRICING_SOURCES",
    # shared
    "DEFAULT_RETRY",
    "estimate_tokens",
)

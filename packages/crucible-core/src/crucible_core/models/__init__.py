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
"""

from __future__ import annotations

from crucible_core.models._anthropic import AnthropicModel
from crucible_core.models._common import DEFAULT_RETRY, estimate_tokens
from crucible_core.models._gemini import GeminiModel
from crucible_core.models._http import HTTPModel
from crucible_core.models._openai import OpenAIModel
from crucible_core.models._pricing import PRICES, Price, cost, price_for
from crucible_core.models._registry import (
    ProviderFactory,
    ProviderInfo,
    available_providers,
    build_model,
    list_models,
    parse_model_string,
    providers,
    register_provider,
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
    Role,
    Usage,
)

__all__ = (
    # values and protocol
    "Request",
    "Message",
    "Usage",
    "Completion",
    "Model",
    "AnswerKind",
    "Role",
    "FinishReason",
    # registry
    "build_model",
    "parse_model_string",
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
    # shared
    "DEFAULT_RETRY",
    "estimate_tokens",
)

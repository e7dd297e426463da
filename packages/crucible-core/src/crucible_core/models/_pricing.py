"""Prices of current major models, and the cost of a request from its token usage.

Prices are USD per million tokens as each provider published them in 2025 (standard tier, no batch
or cache discounts). They change: check the provider's page before relying on a number, and pass
your own [`Price`][crucible_core.models.Price] to a model (`price=`) for anything not listed here.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs

from crucible_core.exceptions import ConfigurationError, ValidationError
from crucible_core.models._types import Usage, short_repr

__all__ = ("PRICES", "Price", "cost", "price_for")


def _non_negative(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise ValidationError(
            f"`{attribute.name}` must be a finite number, got {value!r}",
            **{attribute.name: value},
        )
    if value < 0:
        raise ValidationError(
            f"`{attribute.name}` must be >= 0, got {value!r}", **{attribute.name: value}
        )


@attrs.define(frozen=True, kw_only=True)
class Price:
    """What a model costs.

    Examples:
        >>> Price(input=0.15, output=0.60).cost(Usage(input_tokens=1_000_000, output_tokens=0))
        0.15
    """

    input: float = attrs.field(default=0.0, validator=_non_negative)
    """USD per million input tokens."""
    output: float = attrs.field(default=0.0, validator=_non_negative)
    """USD per million output tokens."""
    per_request: float = attrs.field(default=0.0, validator=_non_negative)
    """A flat USD amount per request (used by the simulated profiles)."""
    long_context_threshold: int | None = attrs.field(
        default=None, validator=_non_negative
    )
    """Prompts longer than this many tokens are billed at the `*_long` prices (Gemini 2.5 Pro)."""
    input_long: float | None = attrs.field(default=None, validator=_non_negative)
    """USD per million input tokens above `long_context_threshold`."""
    output_long: float | None = attrs.field(default=None, validator=_non_negative)
    """USD per million output tokens above `long_context_threshold`."""

    def __repr__(self) -> str:
        return short_repr(self)

    def cost(self, usage: Usage) -> float:
        """The cost in USD of one request that used `usage`."""
        input_price, output_price = self.input, self.output
        if (
            self.long_context_threshold is not None
            and usage.input_tokens > self.long_context_threshold
        ):
            input_price = (
                self.input_long if self.input_long is not None else input_price
            )
            output_price = (
                self.output_long if self.output_long is not None else output_price
            )
        return (
            usage.input_tokens * input_price + usage.output_tokens * output_price
        ) / 1_000_000 + self.per_request


def _p(input: float, output: float, **more: Any) -> Price:
    return Price(input=input, output=output, **more)


PRICES: Mapping[str, Price] = {
    # OpenAI
    "gpt-4o": _p(2.50, 10.00),
    "gpt-4o-mini": _p(0.15, 0.60),
    "gpt-4.1": _p(2.00, 8.00),
    "gpt-4.1-mini": _p(0.40, 1.60),
    "gpt-4.1-nano": _p(0.10, 0.40),
    "o1": _p(15.00, 60.00),
    "o3": _p(2.00, 8.00),
    "o3-mini": _p(1.10, 4.40),
    "o4-mini": _p(1.10, 4.40),
    "gpt-4-turbo": _p(10.00, 30.00),
    "gpt-3.5-turbo": _p(0.50, 1.50),
    # Anthropic
    "claude-3-haiku": _p(0.25, 1.25),
    "claude-3-opus": _p(15.00, 75.00),
    "claude-3-5-haiku": _p(0.80, 4.00),
    "claude-3-5-sonnet": _p(3.00, 15.00),
    "claude-3-7-sonnet": _p(3.00, 15.00),
    "claude-sonnet-4": _p(3.00, 15.00),
    "claude-opus-4": _p(15.00, 75.00),
    "claude-opus-4-1": _p(15.00, 75.00),
    "claude-sonnet-4-5": _p(3.00, 15.00),
    "claude-haiku-4-5": _p(1.00, 5.00),
    # Google
    "gemini-1.5-flash": _p(0.075, 0.30),
    "gemini-1.5-pro": _p(1.25, 5.00),
    "gemini-2.0-flash": _p(0.10, 0.40),
    "gemini-2.0-flash-lite": _p(0.075, 0.30),
    "gemini-2.5-flash": _p(0.30, 2.50),
    "gemini-2.5-flash-lite": _p(0.10, 0.40),
    "gemini-2.5-pro": _p(
        1.25, 10.00, long_context_threshold=200_000, input_long=2.50, output_long=15.00
    ),
    # Simulated profiles: a flat price per query
    "sim:gpt-4": Price(per_request=0.005),
    "sim:claude-3": Price(per_request=0.003),
    "sim:gemini-pro": Price(per_request=0.001),
    "sim:llama-3-70b": Price(per_request=0.0002),
    "sim:mixtral-8x7b": Price(per_request=0.0008),
}
"""The pricing table: model name → [`Price`][crucible_core.models.Price]. Simulated profiles are
keyed `"sim:<profile>"`."""

# Dated snapshots and aliases of a listed model: gpt-4o-2024-08-06, claude-3-5-haiku-20241022,
# claude-3-5-haiku-latest, claude-sonnet-4-0, gemini-2.0-flash-001, gemini-2.5-pro-preview-05-06.
_SUFFIX = re.compile(
    r"-(latest|\d{8}|\d{4}|\d{4}-\d{2}-\d{2}|\d{3}|0|(preview|exp)(-[0-9-]+)?)(-v\d+(:\d+)?)?$"
)
_PROVIDERS = ("openai", "anthropic", "gemini", "google")


def _normalise(model: str) -> str:
    name = model.strip()
    if name.startswith("sim:"):
        return name
    if name.startswith("openai-compatible:") and "#" in name:
        name = name.rsplit("#", 1)[1]
    else:
        provider, sep, rest = name.partition(":")
        if sep and provider in _PROVIDERS:
            name = rest
    name = name.removeprefix("models/")  # Gemini's resource names
    name = name.rsplit("/", 1)[-1]  # OpenRouter-style "openai/gpt-4o"
    return name.lower()


def _lookup(model: str) -> Price | None:
    name = _normalise(model)
    if name in PRICES:
        return PRICES[name]
    while True:
        stripped = _SUFFIX.sub("", name)
        if stripped == name:
            return None
        name = stripped
        if name in PRICES:
            return PRICES[name]


def price_for(model: str) -> Price:
    """The price of `model`: a name (`"gpt-4o-mini"`), a dated snapshot, or a model string.

    Args:
        model: `"gpt-4o-mini"`, `"gpt-4o-2024-08-06"`, `"anthropic:claude-3-5-haiku-latest"`,
            `"sim:gpt-4"`, ...

    Raises:
        ConfigurationError: if the model is not in [`PRICES`][crucible_core.models.PRICES]; the
            message lists the closest names.

    Examples:
        >>> price_for("openai:gpt-4o-mini-2024-07-18")
        Price(input=0.15, output=0.6)
    """
    found = _lookup(model)
    if found is None:
        close = difflib.get_close_matches(
            _normalise(model), list(PRICES), n=5, cutoff=0.5
        )
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigurationError(
            f"no price is known for model {model!r}{hint} Pass `price=Price(input=..., "
            "output=...)` (USD per million tokens) to the model to price it.",
            model=model,
        )
    return found


def cost(model: str, usage: Usage) -> float | None:
    """The USD cost of a request to `model` that used `usage`, or `None` if its price is unknown.

    Unknown models give `None`, never a silent 0, so totals can tell "free" from "not priced".

    Examples:
        >>> cost("gpt-4o", Usage(input_tokens=1000, output_tokens=500))
        0.0075
        >>> cost("my-local-model", Usage(input_tokens=10)) is None
        True
    """
    found = _lookup(model)
    return None if found is None else found.cost(usage)
